"""PixelCNN autoencoder (van den Oord et al. 2016, section 3.4): a conv encoder squeezes the
image into a small code, and a Gated PixelCNN decoder conditioned on that code models the
image. The decoder handles local detail (stroke texture), so the code is free to capture the
global shape; the loss is the decoder's NLL, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .pixelcnn import PixelCNN, PixelCNNConfig


@dataclass
class PixelCNNAutoencoderConfig:
    image_channels: int = 1
    image_size: int = 28
    code_dim: int = 10
    encoder_channels: int = 32  # first conv's width; the second has twice as many
    # the decoder (see PixelCNNConfig)
    channels: int = 64
    n_layers: int = 8
    kernel_size: int = 5
    first_kernel_size: int = 7
    head: str = "softmax"
    num_classes: int = 0  # > 0: the decoder also sees the class
    head_channels: int = 256

    def decoder_config(self) -> PixelCNNConfig:
        return PixelCNNConfig(
            image_channels=self.image_channels, image_size=self.image_size, channels=self.channels,
            n_layers=self.n_layers, kernel_size=self.kernel_size, first_kernel_size=self.first_kernel_size,
            head=self.head, num_classes=self.num_classes, code_dim=self.code_dim, head_channels=self.head_channels,
        )


class Encoder(nn.Module):
    """uint8 [B, C, S, S] -> code [B, code_dim]: two stride-2 convs (28 -> 14 -> 7), then linear."""

    def __init__(self, cfg: PixelCNNAutoencoderConfig):
        super().__init__()
        w = cfg.encoder_channels
        side = (cfg.image_size + 3) // 4  # each stride-2 conv (k3, p1) gives ceil(side / 2)
        self.net = nn.Sequential(
            nn.Conv2d(cfg.image_channels, w, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * w * side * side, cfg.code_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.net[0].weight.dtype) / 127.5 - 1)


class PixelCNNAutoencoder(nn.Module):
    def __init__(self, cfg: PixelCNNAutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = PixelCNN(cfg.decoder_config())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images [B, C, H, W] -> codes [B, code_dim]."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """The decoder's logits for x, given x's own code."""
        return self.decoder(x, y, self.encode(x))

    def log_prob_pixels(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """Per-pixel log-likelihood [B, C, H, W] in nats, given the image's own code."""
        return self.decoder.log_prob_pixels(x, y, self.encode(x))

    def nll(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """Per-image NLL [B] in nats."""
        return self.decoder.nll(x, y, self.encode(x))

    def loss(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """Mean NLL in nats per dimension; gradients reach the encoder through the code."""
        return self.decoder.loss(x, y, self.encode(x))

    @torch.no_grad()
    def sample(self, n: int | None = None, code: torch.Tensor | None = None, x: torch.Tensor | None = None,
               y=None, generator: torch.Generator | None = None, method: str = "fast") -> torch.Tensor:
        """Decode codes into uint8 images [n, C, H, W].

        x given: reconstruct, i.e. decode x's own codes (n = len(x)). code given: decode those.
        Neither: codes drawn from N(0, I) with ``generator``. Nothing pulls the codes towards
        N(0, I) in training, so such samples are only roughly digit-like; prefer x or code.
        """
        if x is not None:
            code = self.encode(x)
        if code is None:
            if n is None:
                raise ValueError("give n, code or x")
            device = self.decoder.out[-1].weight.device
            code = torch.randn(n, self.cfg.code_dim, generator=generator, dtype=torch.float64,
                               device=generator.device if generator is not None else device).to(device)
        return self.decoder.sample(len(code), y=y, code=code, generator=generator, method=method)
