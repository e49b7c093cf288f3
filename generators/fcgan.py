"""The fully-connected GAN (Goodfellow et al. 2014), in its common modern form.

G: z -> 128 -> 256 -> 512 -> 1024 -> C*H*W (784 for digits), LeakyReLU 0.2, batch norm on
the hidden layers after the first, tanh out. D: C*H*W -> 512 -> 256 -> 1 logit, LeakyReLU
0.2, no batch norm. Any image shape works: it is flattened to C*H*W. Weights keep
PyTorch's default init: the paper prescribes none.
"""

from __future__ import annotations

import torch
from torch import nn

G_HIDDEN = (128, 256, 512, 1024)
D_HIDDEN = (512, 256)


class Generator(nn.Module):
    """z [B, z_dim] -> images [B, C, H, W] in [-1, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], z_dim: int = 100, hidden: tuple[int, ...] = G_HIDDEN):
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        d_in = z_dim
        for i, d in enumerate(hidden):
            layers.append(nn.Linear(d_in, d))
            if i > 0:  # the first layer sees raw noise; normalising it adds nothing
                layers.append(nn.BatchNorm1d(d))
            layers.append(nn.LeakyReLU(0.2, True))
            d_in = d
        c, h, w = self.image_shape
        layers += [nn.Linear(d_in, c * h * w), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.size(0), *self.image_shape)


class Discriminator(nn.Module):
    """images [B, C, H, W] in [-1, 1] -> logits [B] (real > 0)."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: tuple[int, ...] = D_HIDDEN):
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        d_in = c * h * w
        for d in hidden:
            layers += [nn.Linear(d_in, d), nn.LeakyReLU(0.2, True)]
            d_in = d
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d_in, 1)  # a logit: the loss is BCE-with-logits, no sigmoid here
        self.num_features = d_in

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: [B, num_features]."""
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).view(-1)
