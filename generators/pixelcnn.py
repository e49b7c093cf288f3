"""Gated PixelCNN (van den Oord et al. 2016), class- and/or code-conditional.

An autoregressive model of uint8 images: p(x) = prod_i p(x_i | x_<i) in raster order.
Each pixel gets a distribution, so the model yields a per-pixel log-likelihood heatmap
(what the detectors use), a per-image NLL, and samples.

Heads (``PixelCNNConfig.head``):
* "softmax": a 256-way softmax over the 8-bit grey level. NLL in nats; report bits/dim with
  ``nats_to_bits_per_dim``.
* "bernoulli": binarized images, pixel on iff x >= 128 (a fixed threshold, not stochastic
  binarization), so the NLL is of the thresholded image, in nats (as usual for binary MNIST).
  Samples are 0 or 255.

With image_channels > 1 the channels of pixel i are predicted from all channels of the pixels
before i, and independently of each other (a simplification of the paper's R->G->B order).

Layers live in generators/layers.py; this file stacks them, scores and samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from forensics.threads import one_thread

from .layers import Conv1x1, GatedBlock

HEADS = ("softmax", "bernoulli")


@dataclass
class PixelCNNConfig:
    image_channels: int = 1
    image_size: int = 28  # square images; the network is fully convolutional, this sets sample size
    channels: int = 64  # hidden width of both stacks
    n_layers: int = 8  # gated blocks, the first one included
    kernel_size: int = 5  # blocks 2..n: a 3x5 vertical and 1x3 horizontal window
    first_kernel_size: int = 7  # block 1 sees the image itself: a wider first look is cheap
    head: str = "softmax"  # "softmax" (8-bit) or "bernoulli" (binarized at x >= 128)
    num_classes: int = 10  # 0 = unconditional; else the class is a one-hot input to every gate
    code_dim: int = 0  # > 0: also conditioned on a continuous code (the autoencoder's)
    head_channels: int = 256  # width of the 1x1 output head
    # arch "gated": the gated PixelCNN below (n_layers, kernel sizes, head_channels);
    # "streams": PixelCNN++-style down- and up-sampling streams (generators/pixelcnnpp.py:
    # nr_resnet gated residual units per resolution and direction, dropout).
    arch: str = "gated"
    nr_resnet: int = 2
    dropout: float = 0.0


ARCHS = ("gated", "streams")


def make_pixelcnn(cfg: PixelCNNConfig) -> "PixelModel":
    """The network ``cfg.arch`` names."""
    if cfg.arch == "streams":
        from .pixelcnnpp import PixelCNNStreams

        return PixelCNNStreams(cfg)
    if cfg.arch != "gated":
        raise ValueError(f"arch must be one of {ARCHS}, got {cfg.arch!r}")
    return PixelCNN(cfg)


def nats_to_bits_per_dim(nats_per_dim: float | torch.Tensor) -> float | torch.Tensor:
    return nats_per_dim / math.log(2)


def nll_bits_per_dim(nll_nats: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """Per-image NLL in nats (from ``PixelCNN.nll``) -> bits per dimension."""
    return nats_to_bits_per_dim(nll_nats / math.prod(image_shape))


class PixelModel(nn.Module):
    """What every PixelCNN here shares, whatever stacks its layers: inputs, the condition, the
    loss (written once) and sampling by inverse CDF. A subclass sets ``cfg`` and
    ``head_weight`` and defines ``_logits(xs, cond)`` and ``_sample_fast(u, cond)``."""

    cfg: "PixelCNNConfig"

    @property
    def head_weight(self) -> torch.Tensor:
        raise NotImplementedError

    # ----- inputs -----------------------------------------------------------------------------

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the network's input in [-1, 1] (binarized first for the bernoulli head)."""
        if x.dtype != torch.uint8:
            raise TypeError(f"PixelCNN expects uint8 images, got {x.dtype}")
        dtype = self.head_weight.dtype
        if self.cfg.head == "bernoulli":
            return (x >= 128).to(dtype) * 2 - 1
        return x.to(dtype) / 127.5 - 1

    def condition(self, y: torch.Tensor | int | None, code: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """The vector every gate sees: [one-hot(y), code]. A missing y or code is all zeros
        ("no information"), which is meaningful only if the model was trained that way."""
        cfg = self.cfg
        if cfg.num_classes + cfg.code_dim == 0:
            return None
        dtype, device = self.head_weight.dtype, self.head_weight.device
        parts = []
        if cfg.num_classes:
            if y is None:
                parts.append(torch.zeros(n, cfg.num_classes, dtype=dtype, device=device))
            else:
                y = torch.as_tensor(y, device=device).expand(n)  # an int means "all of this class"
                parts.append(F.one_hot(y.long(), cfg.num_classes).to(dtype))
        if cfg.code_dim:
            parts.append(torch.zeros(n, cfg.code_dim, dtype=dtype, device=device) if code is None else code.to(dtype))
        return torch.cat(parts, dim=1)

    # ----- scoring -----------------------------------------------------------------------------

    def _shape(self, out: torch.Tensor) -> torch.Tensor:
        """[B, levels*C, H, W] -> [B, 256, C, H, W] (softmax) or [B, C, H, W] (bernoulli)."""
        if self.cfg.head == "softmax":
            b, _, h, w = out.shape
            return out.view(b, 256, self.cfg.image_channels, h, w)
        return out

    def forward_scaled(self, xs: torch.Tensor, y=None, code=None) -> torch.Tensor:
        """Logits from already scaled float input: lets tests take gradients w.r.t. the input."""
        return self._logits(xs, self.condition(y, code, xs.shape[0]))

    def forward(self, x: torch.Tensor, y=None, code=None) -> torch.Tensor:
        """uint8 [B, C, H, W] -> logits: [B, 256, C, H, W] (softmax) or [B, C, H, W] (bernoulli)."""
        return self.forward_scaled(self.scale(x), y, code)

    def _log_prob(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The loss, written once: log p(x_i | x_<i) per pixel and channel, in nats."""
        if self.cfg.head == "softmax":
            return -F.cross_entropy(logits, x.long(), reduction="none")
        target = (x >= 128).to(logits.dtype)
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none")

    def log_prob_pixels(self, x: torch.Tensor, y=None, code=None) -> torch.Tensor:
        """Per-pixel log-likelihood [B, C, H, W] in nats: the detectors' heatmap."""
        return self._log_prob(self(x, y, code), x)

    def nll(self, x: torch.Tensor, y=None, code=None) -> torch.Tensor:
        """Per-image negative log-likelihood [B] in nats."""
        return -self.log_prob_pixels(x, y, code).flatten(1).sum(1)

    def loss(self, x: torch.Tensor, y=None, code=None) -> torch.Tensor:
        """Mean NLL in nats per dimension: what training minimises."""
        return -self.log_prob_pixels(x, y, code).mean()

    # ----- sampling ---------------------------------------------------------------------------
    #
    # All randomness is drawn up front: one uniform u per pixel and channel, and the value is
    # the inverse CDF at u (bernoulli: on iff u < p). So "naive" and "fast" consume the same
    # numbers and differ only in how they compute the logits; given the same logits they draw
    # the same image. Their logits agree only to rounding (the fast path sums over windows and
    # as matmuls, in another order), and a draw flips if u lies within that rounding of a CDF
    # step: never seen, but possible in float32 (~1e-7), while in float64 (~1e-16) it is
    # practically excluded, so the tests compare there. benchmarks/speed.py (sampling_speed) also
    # checks float32, every pixel of 64 digits, and found them identical.

    @torch.no_grad()
    def sample(self, n: int, y=None, code=None, generator: torch.Generator | None = None,
               method: str = "fast") -> torch.Tensor:
        """n images, uint8 [n, C, H, W]. y: class per image (tensor [n] or one int); code: [n, code_dim].

        method="naive" runs the whole network once per pixel (H*W forwards); "fast" caches the
        vertical stack (run once per row, on just the rows it reaches) and runs only the
        horizontal stack for each pixel, on just the columns it reaches. Same output.
        """
        cfg = self.cfg
        shape = (n, cfg.image_channels, cfg.image_size, cfg.image_size)
        device = self.head_weight.device
        u = torch.rand(shape, generator=generator, dtype=torch.float64,
                       device=generator.device if generator is not None else device).to(device)
        cond = self.condition(y, code, n)
        if method == "naive":
            return self._sample_naive(u, cond)
        if method == "fast":
            with one_thread():  # CPU threads only; a GPU run is unaffected
                return self._sample_fast(u, cond)
        raise ValueError(f"method must be 'naive' or 'fast', got {method!r}")

    def _draw(self, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Logits of one pixel ([n, 256, C] or [n, C]) and uniforms [n, C] -> uint8 values [n, C]."""
        if self.cfg.head == "bernoulli":
            return (u < torch.sigmoid(logits.double())).to(torch.uint8) * 255
        cdf = torch.softmax(logits.double(), dim=1).cumsum(dim=1)  # [n, 256, C]
        return (cdf < u[:, None, :]).sum(dim=1).clamp(max=255).to(torch.uint8)

    def _sample_naive(self, u: torch.Tensor, cond: torch.Tensor | None, rows: int | None = None) -> torch.Tensor:
        """The reference: a full forward pass per pixel. ``rows`` stops early (benchmarks)."""
        n, c, height, width = u.shape
        x = torch.zeros(u.shape, dtype=torch.uint8, device=u.device)
        for i in range(height if rows is None else rows):
            for j in range(width):
                logits = self._logits(self.scale(x), cond)
                x[:, :, i, j] = self._draw(logits[..., i, j], u[:, :, i, j])
        return x

class PixelCNN(PixelModel):
    """The gated PixelCNN: a vertical and a horizontal stack of gated blocks (generators/layers.py)."""

    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        if cfg.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {cfg.head!r}")
        if cfg.n_layers < 1:
            raise ValueError("n_layers must be >= 1")
        self.cfg = cfg
        c, p = cfg.image_channels, cfg.channels
        cond_dim = cfg.num_classes + cfg.code_dim
        self.blocks = nn.ModuleList(
            [GatedBlock(c, p, cfg.first_kernel_size, cond_dim, first=True)]
            + [GatedBlock(p, p, cfg.kernel_size, cond_dim) for _ in range(cfg.n_layers - 1)]
        )
        self.levels = 256 if cfg.head == "softmax" else 1
        self.out = nn.Sequential(  # on the sum of the skips, one position at a time
            nn.ReLU(), Conv1x1(p, cfg.head_channels), nn.ReLU(), Conv1x1(cfg.head_channels, self.levels * c)
        )

    @property
    def head_weight(self) -> torch.Tensor:
        return self.out[-1].weight

    def _logits(self, xs: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        v = h = xs
        skip = 0
        for block in self.blocks:
            v, h, s = block(v, h, cond)
            skip = skip + s
        return self._shape(self.out(skip))

    def _sample_fast(self, u: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Same draws, computing only what each pixel needs.

        Per pixel the naive sampler evaluates every layer at all H*W positions. Here:
        - the vertical stack of row i depends only on rows <= i, so once row i is drawn it is
          run once, on the k//2+1 rows each layer reaches, and its links are kept for row i+1;
        - for pixel (i, j) each layer's horizontal conv is run on the k//2+1 columns it reaches
          in row i (one matmul), and the 1x1 convs, gates and head on that one position.
        Work per pixel falls from H*W positions per layer to about two (one for the pixel, one
        for its share of the row's vertical pass): a few hundred times fewer FLOPs on 28x28,
        and what remains is mostly per-op overhead. Measured for 64 digits, default config,
        2 shared CPU cores: ~4 s against ~17-35 min (250-550x; benchmarks/speed.py).
        Windows are cut out of zero-filled buffers, so borders see the same zero padding as
        the full forward pass.
        """
        n, c, height, width = u.shape
        blocks, p = self.blocks, self.cfg.channels
        x = torch.zeros(u.shape, dtype=torch.uint8, device=u.device)
        xs = self.scale(x)  # scaled image, updated pixel by pixel
        # v_in[l]: input of block l's vertical stack (the image for l = 0), filled row by row.
        v_in = [xs] + [xs.new_zeros(n, p, height, width) for _ in blocks[1:]]
        # links[l]: block l's vertical->horizontal link for the row being drawn; zero for row 0,
        # as down_shift gives.
        links = [xs.new_zeros(n, 2 * p, 1, width) for _ in blocks]
        for i in range(height):
            h_in = [xs[:, :, i : i + 1]] + [xs.new_zeros(n, p, 1, width) for _ in blocks[1:]]
            for j in range(width):
                skip = 0
                for l, block in enumerate(blocks):
                    window = h_in[l][..., max(0, j - block.h_conv.reach) : j + 1]
                    h_pre = block.h_conv.last_column(window) + links[l][..., j : j + 1]
                    h_out, s = block.horizontal(h_pre, window[..., -1:], cond)
                    skip = skip + s
                    if l + 1 < len(blocks):
                        h_in[l + 1][..., j : j + 1] = h_out
                logits = self._shape(self.out(skip))[..., 0, 0]
                x[:, :, i, j] = self._draw(logits, u[:, :, i, j])
                xs[:, :, i, j] = self.scale(x[:, :, i, j])
            # Row i is complete: run the vertical stack on it, giving the links row i+1 sees.
            for l, block in enumerate(blocks):
                rows = v_in[l][:, :, max(0, i - block.v_conv.reach) : i + 1]
                v_out, links[l] = block.vertical(block.v_conv.last_row(rows), cond)
                if l + 1 < len(blocks):
                    v_in[l + 1][:, :, i : i + 1] = v_out
        return x
