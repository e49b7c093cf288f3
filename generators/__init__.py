"""Generative models forgers use: GANs whose trained discriminators become detector signals."""
