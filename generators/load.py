"""Trained generators for inference: rebuild a model from RUN_DIR/<model>/model.pt, weights only.

Scoring, sampling and the benchmarks need the networks, not a training recipe: nothing here
builds an optimiser, a scheduler or a DDP wrapper. Training (generators/train.py) writes the
files this module reads, and uses ``model_config`` to build the same networks.

    m = load_generator("runs/full/dcgan")     # or a bundle's dcgan/ folder
    images = m.sample(16, torch.Generator().manual_seed(0))  # uint8 [16, 1, 28, 28]
    m.network                                 # PixelCNN, PixelCNNAutoencoder or gan.TrainedGAN
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from forensics.checkpoint import load_checkpoint
from forensics.errors import CheckpointError, ForensicsError

MODELS = ("pixelcnn", "pixelcnn-bin", "autoencoder", "vae", "diffusion", "dcgan", "fcgan")
CONDITIONAL = ("pixelcnn", "pixelcnn-bin", "vae", "diffusion")  # models that can draw a given digit
GANS = ("dcgan", "fcgan")
PIXELCNNS = ("pixelcnn", "pixelcnn-bin")
WEIGHTS_FILE = "model.pt"


def model_config(name: str, overrides: dict, image_shape: tuple[int, int, int], num_classes: int):
    """The model's own config dataclass, with the data's shape filled in and overrides applied."""
    c, h, _ = image_shape
    if name in PIXELCNNS:
        from .pixelcnn import PixelCNNConfig

        base = PixelCNNConfig(image_channels=c, image_size=h, num_classes=num_classes,
                              head="bernoulli" if name == "pixelcnn-bin" else "softmax")
    elif name == "autoencoder":
        from .autoencoder import PixelCNNAutoencoderConfig

        base = PixelCNNAutoencoderConfig()
    elif name == "vae":
        from .vae import VAEConfig

        base = VAEConfig(image_channels=c, image_size=h, num_classes=num_classes)
    elif name == "diffusion":
        from .diffusion import DiffusionConfig

        base = DiffusionConfig(image_channels=c, image_size=h, num_classes=num_classes)
    elif name in GANS:
        from .gan import GANConfig

        base = GANConfig(arch=name)
    else:
        raise ForensicsError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(base)}
    if unknown:
        raise ForensicsError(f"{name}: unknown model settings {sorted(unknown)}")
    return dataclasses.replace(base, **overrides)


@dataclass
class Generator:
    """A trained generator: its name, the network, and how to draw from it."""

    name: str
    network: object  # PixelCNN | PixelCNNStreams | PixelCNNAutoencoder | VAE | Diffusion | gan.TrainedGAN
    image_shape: tuple[int, int, int]

    @property
    def conditional(self) -> bool:
        """True for a class-conditional PixelCNN or VAE (``sample(..., digit=k)`` works)."""
        return self.num_classes > 0

    @property
    def num_classes(self) -> int:
        return int(getattr(self.network.cfg, "num_classes", 0)) if self.name in CONDITIONAL else 0

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, digit: int | None = None) -> torch.Tensor:
        """n uint8 images [n, C, H, W]; a conditional model draws ``digit``, or the digits in turn."""
        if self.name in GANS:
            return self.network.sample(n, generator=generator)
        model = self.network.eval()
        if self.name == "autoencoder":
            return model.sample(n, generator=generator)
        device = next(model.parameters()).device
        y = None
        if self.conditional:
            y = torch.full((n,), digit, device=device) if digit is not None else torch.arange(n, device=device) % 10
        return model.sample(n, y=y, generator=generator)


def build_network(name: str, mcfg, image_shape: tuple[int, int, int], device: torch.device) -> nn.Module | object:
    """The untrained network for a model config (training wraps it in a recipe)."""
    if name in PIXELCNNS:
        from .pixelcnn import make_pixelcnn

        return make_pixelcnn(mcfg).to(device)
    if name == "autoencoder":
        from .autoencoder import PixelCNNAutoencoder

        return PixelCNNAutoencoder(mcfg).to(device)
    if name == "vae":
        from .vae import VAE

        return VAE(mcfg).to(device)
    if name == "diffusion":
        from .diffusion import Diffusion

        return Diffusion(mcfg).to(device)
    from .gan import TrainedGAN

    return TrainedGAN(mcfg, image_shape, device)


def load_generator(model_dir: str | Path, device: str | torch.device = "cpu") -> Generator:
    """The model in MODEL_DIR/model.pt (CheckpointError if missing, unsafe or not a generator)."""
    path = Path(model_dir) / WEIGHTS_FILE
    blob = load_checkpoint(path, map_location=device)
    try:
        name, shape = blob["model_name"], tuple(int(s) for s in blob["image_shape"])
        mcfg = model_config(name, blob["model_config"], shape, int(blob["num_classes"]))
        net = build_network(name, mcfg, shape, torch.device(device))
        weights = blob["weights"]
        if name in GANS:
            net.G.load_state_dict(weights["G"])
            net.D.load_state_dict(weights["D"])
            net.G.eval()
            net.D.eval()
        else:
            net.load_state_dict(weights["model"])
            net.eval()
    except (KeyError, TypeError, ValueError, RuntimeError, ForensicsError) as exc:
        raise CheckpointError(f"{path}: not a trained generator ({type(exc).__name__}: {exc})") from None
    return Generator(name, net, shape)
