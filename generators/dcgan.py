"""DCGAN (Radford et al. 2015): all-convolutional generator and discriminator.

The geometry follows the data: a square side ``base * 2**n_up`` with base 7 or 4, so
28x28 (digits) is z -> 7x7 -> 14x14 -> 28x28 and 64x64 (faces, image folders) is the
paper's z -> 4 -> 8 -> 16 -> 32 -> 64. G's channels at each resolution mirror D's.
"""

from __future__ import annotations

import torch
from torch import nn


def geometry(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(base, n_up) for a C x H x W shape: H = W = base * 2**n_up, base in (7, 4), n_up >= 1."""
    _, h, w = image_shape
    if h == w:
        for base in (7, 4):
            n_up, side = 0, h
            while side > base and side % 2 == 0:
                side, n_up = side // 2, n_up + 1
            if side == base and n_up >= 1:
                return base, n_up
    raise ValueError(
        f"DCGAN needs a square image of side 7*2**k or 4*2**k (28x28, 64x64, ...), got {h}x{w}"
    )


def init_weights(m: nn.Module) -> None:
    """The paper's init: conv weights N(0, 0.02); batch-norm scale N(1, 0.02), shift 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z [B, z_dim] -> images [B, C, H, W] in [-1, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], z_dim: int = 100, ngf: int = 64):
        super().__init__()
        c = image_shape[0]
        base, n_up = geometry(image_shape)
        ch = ngf * 2 ** (n_up - 1)
        # Project z to a base x base map (a "fully connected" layer written as a conv).
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=False),  # bias is redundant before BN
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):  # each step doubles the side and halves the channels
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1, bias=False), nn.Tanh()]  # no BN on G's output
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.size(0), self.z_dim, 1, 1))


class Discriminator(nn.Module):
    """images [B, C, H, W] in [-1, 1] -> logits [B] (real > 0)."""

    def __init__(self, image_shape: tuple[int, int, int], ndf: int = 64):
        super().__init__()
        c = image_shape[0]
        base, n_up = geometry(image_shape)
        # No BN on D's input layer (the paper: BN there made samples oscillate).
        layers: list[nn.Module] = [nn.Conv2d(c, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for _ in range(n_up - 1):  # each step halves the side and doubles the channels
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, base, 1, 0, bias=False)  # base x base map -> one logit
        self.num_features = ch * base * base
        self.apply(init_weights)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, flattened: [B, num_features]."""
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).view(-1)
