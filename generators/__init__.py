"""Generative models forgers use (PixelCNN, DCGAN, FC-GAN, an autoencoder), their training, and loading them for inference (load)."""
