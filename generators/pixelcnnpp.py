"""A PixelCNN that sees the whole digit: two causal streams with down- and up-sampling and
shortcut connections (PixelCNN++, Salimans et al. 2017), gated residual units, class
conditioning, and the same 256-way softmax (or Bernoulli) head and loss as the gated PixelCNN.

    28x28: u, ul --R units--> stride-2 conv
    14x14:        --R units--> stride-2 conv
     7x7:         --R units--   (the way up; every output is kept)
     7x7:         --R units--> transposed conv      (the way down: each unit also takes
    14x14:        --R+1 units--> transposed conv     the matching output of the way up,
    28x28:        --R+1 units--> 1x1 head on ul      a shortcut connection)

Layers are in generators/streams.py. Differences from the paper, for a 2-core CPU: plain ELU
instead of concat-ELU (half the channels), the gated PixelCNN's softmax head instead of a
mixture of logistics (the loss stays the one in generators/pixelcnn.py), no weight norm.

Sampling has no cache (the streams mix rows across resolutions): each pixel is one forward
pass, on just the top rows it needs (outputs of row i depend on input rows <= i only), so a
digit costs about half of H*W full passes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .pixelcnn import HEADS, PixelCNNConfig, PixelModel
from .streams import (DownRightShiftedConv, DownRightShiftedDeconv, DownShiftedConv, DownShiftedDeconv, GatedResnet,
                      down_shift, right_shift)

SCALES = 3  # 28 -> 14 -> 7
MULTIPLE = 2 ** (SCALES - 1)  # image sides (and sampling crops) must be multiples of this


class PixelCNNStreams(PixelModel):
    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        if cfg.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {cfg.head!r}")
        if cfg.nr_resnet < 1:
            raise ValueError("nr_resnet must be >= 1")
        if cfg.image_size % MULTIPLE:
            raise ValueError(f"image_size must be a multiple of {MULTIPLE}, got {cfg.image_size}")
        self.cfg = cfg
        c, k = cfg.channels, cfg.image_channels + 1  # + a channel of ones: image zeros are not padding
        cond, r, drop = cfg.num_classes + cfg.code_dim, cfg.nr_resnet, cfg.dropout
        self.u_init = DownShiftedConv(k, c, (2, 3))
        self.ul_init_up = DownShiftedConv(k, c, (1, 3))
        self.ul_init_left = DownRightShiftedConv(k, c, (2, 1))

        def units(n: int, u_aux: int, ul_aux: int) -> nn.ModuleList:
            return nn.ModuleList(nn.ModuleList([GatedResnet(c, DownShiftedConv, u_aux, cond, drop),
                                                GatedResnet(c, DownRightShiftedConv, ul_aux, cond, drop)])
                                 for _ in range(n))

        self.up = nn.ModuleList(units(r, 0, c) for _ in range(SCALES))
        self.down_u = nn.ModuleList(DownShiftedConv(c, c, (2, 3), stride=2) for _ in range(SCALES - 1))
        self.down_ul = nn.ModuleList(DownRightShiftedConv(c, c, (2, 2), stride=2) for _ in range(SCALES - 1))
        self.down = nn.ModuleList(units(r if s == 0 else r + 1, c, 2 * c) for s in range(SCALES))
        self.up_u = nn.ModuleList(DownShiftedDeconv(c, c) for _ in range(SCALES - 1))
        self.up_ul = nn.ModuleList(DownRightShiftedDeconv(c, c) for _ in range(SCALES - 1))
        self.levels = 256 if cfg.head == "softmax" else 1
        self.out = nn.Conv2d(c, self.levels * cfg.image_channels, 1)

    @property
    def head_weight(self) -> torch.Tensor:
        return self.out.weight

    def _logits(self, xs: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        x = torch.cat([xs, torch.ones_like(xs[:, :1])], dim=1)
        u = down_shift(self.u_init(x))
        ul = down_shift(self.ul_init_up(x)) + right_shift(self.ul_init_left(x))
        us, uls = [u], [ul]
        for s in range(SCALES):  # the way up, keeping every output for the way down
            for unit_u, unit_ul in self.up[s]:
                u = unit_u(u, c=cond)
                ul = unit_ul(ul, u, cond)
                us.append(u)
                uls.append(ul)
            if s < SCALES - 1:
                u, ul = self.down_u[s](u), self.down_ul[s](ul)
                us.append(u)
                uls.append(ul)
        u, ul = us.pop(), uls.pop()
        for s in range(SCALES):  # the way down, lowest resolution first
            for unit_u, unit_ul in self.down[s]:
                u = unit_u(u, us.pop(), cond)
                ul = unit_ul(ul, torch.cat([u, uls.pop()], dim=1), cond)
            if s < SCALES - 1:
                u, ul = self.up_u[s](u), self.up_ul[s](ul)
        assert not us and not uls
        return self._shape(self.out(F.elu(ul)))

    def _sample_fast(self, u: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """One forward per pixel, on the top rows only (a multiple of MULTIPLE covering row i)."""
        n, c, height, width = u.shape
        x = torch.zeros(u.shape, dtype=torch.uint8, device=u.device)
        for i in range(height):
            rows = min(height, MULTIPLE * math.ceil((i + 1) / MULTIPLE))
            for j in range(width):
                logits = self._logits(self.scale(x[:, :, :rows]), cond)
                x[:, :, i, j] = self._draw(logits[..., i, j], u[:, :, i, j])
        return x
