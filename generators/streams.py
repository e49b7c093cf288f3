"""Layers of the two-stream PixelCNN with down- and up-sampling (PixelCNN++, Salimans et al.
2017): shifted convolutions, their strided and transposed forms, and the gated residual block.

Two streams, causal by padding (never by masking weights):

* ``u`` (up): the feature at (i, j) depends only on rows < i (every column).
  Convolutions on it are *down-shifted*: a 2 x 3 window over rows i-1..i, columns j-1..j+1,
  zero-padded above and at both sides.
* ``ul`` (up-left): the feature at (i, j) depends only on pixels before (i, j) in raster order
  (rows < i, and row i left of j). Convolutions on it are *down-right-shifted*: a 2 x 2 window
  over rows i-1..i, columns j-1..j, padded above and on the left.

Both streams start from the image shifted one row down (and, for ``ul``, one column right),
so that from then on a window may include its own position. A stride-2 version of each conv
halves the resolution, a transposed version (cropped so that it adds no look-ahead) doubles
it back: at 7x7 one 2-row window spans 8 rows of the 28x28 image, so a few layers there see
the whole digit. tests/test_pixelcnn.py checks causality and the receptive field by gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Every row one down (row 0 becomes zeros)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    """Every column one right (column 0 becomes zeros)."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class DownShiftedConv(nn.Conv2d):
    """A kh x kw conv padded kh-1 rows above and (kw-1)/2 columns each side (kw odd):
    output (i, j) sees input rows i-kh+1..i, columns j-(kw-1)/2..j+(kw-1)/2. Stride 2 halves H and W."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int] = (2, 3), stride: int = 1):
        super().__init__(c_in, c_out, kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        return super().forward(F.pad(x, ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0)))


class DownRightShiftedConv(nn.Conv2d):
    """A kh x kw conv padded kh-1 rows above and kw-1 columns on the left: output (i, j) sees
    input rows i-kh+1..i, columns j-kw+1..j. Stride 2 halves H and W."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int] = (2, 2), stride: int = 1):
        super().__init__(c_in, c_out, kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        return super().forward(F.pad(x, (kw - 1, 0, kh - 1, 0)))


class DownShiftedDeconv(nn.ConvTranspose2d):
    """Stride-2 transposed 2 x 3 conv, cropped to 2H x 2W so that no output sees a later row."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, (2, 3), stride=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return super().forward(x)[:, :, : 2 * h, 1 : 2 * w + 1]


class DownRightShiftedDeconv(nn.ConvTranspose2d):
    """Stride-2 transposed 2 x 2 conv, cropped to 2H x 2W (no later row, no later column)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, (2, 2), stride=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return super().forward(x)[:, :, : 2 * h, : 2 * w]


class GatedResnet(nn.Module):
    """x + gate(conv(elu(conv(elu(x)) + 1x1(elu(a)))) + V c): PixelCNN++'s gated residual unit.

    ``conv`` is the stream's shifted conv class; ``a`` an auxiliary input at the same positions
    (the other stream, or the skip connection from the way up), already causal for this
    stream; ``c`` the condition (one vector per image, added at every position). The gate is
    a * sigmoid(b) on the two halves, as in the paper; the last conv starts small (x0.1) so
    a deep stack starts near the identity.
    """

    def __init__(self, channels: int, conv: type, aux_channels: int = 0, cond_dim: int = 0, dropout: float = 0.0):
        super().__init__()
        self.conv1 = conv(channels, channels)
        self.aux = nn.Conv2d(aux_channels, channels, 1) if aux_channels else None
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv(channels, 2 * channels)
        with torch.no_grad():
            self.conv2.weight.mul_(0.1)
        self.cond = nn.Linear(cond_dim, 2 * channels, bias=False) if cond_dim else None

    def forward(self, x: torch.Tensor, a: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.elu(x))
        if self.aux is not None:
            h = h + self.aux(F.elu(a))
        h = self.conv2(self.drop(F.elu(h)))
        if self.cond is not None and c is not None:
            h = h + self.cond(c)[:, :, None, None]
        a_half, b_half = h.chunk(2, dim=1)
        return x + a_half * torch.sigmoid(b_half)
