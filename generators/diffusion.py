"""Denoising diffusion (DDPM, Ho et al. 2020) with a compact UNet, DDIM sampling (Song et al.
2021) and classifier-free guidance (Ho & Salimans 2022): the family a forger in 2026 reaches
for first.

    forward   x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,  t = 1..T, a cosine schedule of abar
              (Nichol & Dhariwal 2021: the linear one destroys a 28x28 digit too early)
    training  predict eps from (x_t, t, y); y is replaced by "no class" 10% of the time, so one
              network is both the conditional and the unconditional model
    sampling  DDIM on a subsequence of ``steps`` timesteps (eta = 0: deterministic given the
              initial noise, so `forensics interpolate` can walk it), with the guided noise
              estimate eps_u + w (eps_c - eps_u)

The UNet: 28 -> 14 -> 7 and back, two residual blocks per resolution (GroupNorm, SiLU, the
time and class embedding added in each), skip connections by concatenation; no attention,
which costs more than it gives at 7x7 on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiffusionConfig:
    image_channels: int = 1
    image_size: int = 28  # a multiple of 4
    channels: int = 32  # width at full resolution; 2x at 14 and 7
    timesteps: int = 1000
    num_classes: int = 10  # 0 = unconditional
    drop_class: float = 0.1  # share of training steps that see "no class" (for guidance)
    guidance: float = 2.0  # w in eps_u + w (eps_c - eps_u); 1 = plain conditional
    sample_steps: int = 50  # DDIM steps


def cosine_alpha_bar(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """abar_t for t = 0..T (abar_0 = 1), Nichol & Dhariwal's cosine schedule, float64."""
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    # Their clip of beta at 0.999, as a bound on abar's per-step ratio.
    ratio = (abar[1:] / abar[:-1]).clamp(min=1 - 0.999)
    return torch.cat([abar[:1], torch.cumprod(ratio, 0)])


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def ddim_step(x: torch.Tensor, eps: torch.Tensor, ab: torch.Tensor, ab_next: torch.Tensor) -> torch.Tensor:
    """One DDIM step (eta = 0) from x at abar = ab to abar = ab_next, given the noise estimate.

    The clean-image estimate is clipped to the data range, and the noise is then re-derived from
    the clipped estimate, so that x_next is a point the forward process could give for it. Reusing
    the raw estimate instead (a common shortcut) is harmless without guidance, but a guided
    estimate at high noise predicts a clean image far outside [-1, 1]: its noise then carries that
    overshoot into x_next, step after step, and guidance ends up drawing other digits than the
    one asked for (docs/models.md).
    """
    x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
    eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
    return ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """eps_theta(x_t, t, y): [B, C, H, W] float, [B] int, [B] int (num_classes = no class) -> [B, C, H, W]."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        c, e = cfg.channels, 4 * cfg.channels
        widths = (c, 2 * c, 2 * c)
        self.time = nn.Sequential(nn.Linear(c, e), nn.SiLU(), nn.Linear(e, e))
        self.label = nn.Embedding(cfg.num_classes + 1, e) if cfg.num_classes else None
        self.inp = nn.Conv2d(cfg.image_channels, c, 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        prev = c
        for i, w in enumerate(widths):
            self.down.append(nn.ModuleList([ResBlock(prev, w, e), ResBlock(w, w, e)]))
            prev = w
            if i < len(widths) - 1:
                self.pool.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
        self.mid = nn.ModuleList([ResBlock(prev, prev, e), ResBlock(prev, prev, e)])
        self.up = nn.ModuleList()
        self.unpool = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            self.up.append(nn.ModuleList([ResBlock(prev + w, w, e), ResBlock(w + w, w, e)]))
            prev = w
            if i > 0:
                self.unpool.append(nn.ConvTranspose2d(w, widths[i - 1], 4, stride=2, padding=1))
                prev = widths[i - 1]
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, cfg.image_channels, 3, padding=1))
        self.emb_dim = c

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.emb_dim))
        if self.label is not None and y is not None:
            emb = emb + self.label(y)
        h = self.inp(x)
        skips = []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                skips.append(h)
            if i < len(self.pool):
                h = self.pool[i](h)
        for block in self.mid:
            h = block(h, emb)
        for i, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.unpool):
                h = self.unpool[i](h)
        return self.out(h)


class Diffusion(nn.Module):
    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        if cfg.image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {cfg.image_size}")
        self.cfg = cfg
        self.net = UNet(cfg)
        self.register_buffer("alpha_bar", cosine_alpha_bar(cfg.timesteps).float(), persistent=False)

    @property
    def head_weight(self) -> torch.Tensor:
        return self.net.out[-1].weight

    def _labels(self, y, n: int) -> torch.Tensor | None:
        """Class indices [n]; the index num_classes means "no class"."""
        k = self.cfg.num_classes
        if not k:
            return None
        device = self.head_weight.device
        if y is None:
            return torch.full((n,), k, device=device, dtype=torch.long)
        return torch.as_tensor(y, device=device).expand(n).long()

    @staticmethod
    def scale(x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"the diffusion model expects uint8 images, got {x.dtype}")
        return x.float() / 127.5 - 1

    def noised(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def loss(self, x: torch.Tensor, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error of the predicted noise at uniformly drawn timesteps (Ho et al.'s
        simple loss), with the class dropped for a ``drop_class`` share of the images."""
        x0 = self.scale(x)
        n, device = x0.shape[0], x0.device
        kw = {"generator": generator, "device": device}
        t = torch.randint(1, self.cfg.timesteps + 1, (n,), **kw)
        eps = torch.randn(x0.shape, **kw)
        labels = self._labels(y, n)
        if labels is not None:
            drop = torch.rand(n, **kw) < self.cfg.drop_class
            labels = torch.where(drop, torch.full_like(labels, self.cfg.num_classes), labels)
        return F.mse_loss(self.net(self.noised(x0, t, eps), t, labels), eps)

    def eps(self, xt: torch.Tensor, t: int, labels: torch.Tensor | None, guidance: float) -> torch.Tensor:
        """The guided noise estimate at timestep t."""
        tt = torch.full((xt.shape[0],), t, device=xt.device, dtype=torch.long)
        if labels is None or guidance == 1.0:
            return self.net(xt, tt, labels)
        null = torch.full_like(labels, self.cfg.num_classes)
        both = self.net(torch.cat([xt, xt]), torch.cat([tt, tt]), torch.cat([labels, null]))
        cond, uncond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def denoise(self, xt: torch.Tensor, t_start: int, y=None, steps: int | None = None,
                guidance: float | None = None) -> torch.Tensor:
        """DDIM (eta = 0) from x at timestep t_start down to t = 0; returns uint8 images."""
        cfg = self.cfg
        steps = min(steps or cfg.sample_steps, t_start)
        guidance = cfg.guidance if guidance is None else guidance
        labels = self._labels(y, xt.shape[0])
        ts = torch.linspace(t_start, 0, steps + 1).round().long().tolist()
        x = xt
        for t, t_next in zip(ts[:-1], ts[1:]):
            x = ddim_step(x, self.eps(x, t, labels, guidance), self.alpha_bar[t], self.alpha_bar[t_next])
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
               steps: int | None = None, guidance: float | None = None) -> torch.Tensor:
        """n images, uint8 [n, C, H, W], from Gaussian noise (drawn with ``generator``, or given)."""
        cfg = self.cfg
        device = self.head_weight.device
        if noise is None:
            shape = (n, cfg.image_channels, cfg.image_size, cfg.image_size)
            noise = torch.randn(shape, generator=generator, dtype=torch.float64,
                                device=generator.device if generator is not None else device)
        return self.denoise(noise.to(device, torch.float32), cfg.timesteps, y, steps, guidance)

    @torch.no_grad()
    def rewrite(self, x: torch.Tensor, y=None, t: int = 300, generator: torch.Generator | None = None,
                steps: int | None = None) -> torch.Tensor:
        """Noise given digits to timestep t and denoise them back: machine digits made from human
        ones (the "aligned fakes" of issue 21), closer to the original the lower t. By default
        the DDIM steps are spaced as a full sample's (sample_steps over all timesteps), so a
        rewrite costs t / timesteps of a sample."""
        if steps is None:
            steps = max(1, round(self.cfg.sample_steps * t / self.cfg.timesteps))
        x0 = self.scale(x.to(self.head_weight.device))
        eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64,
                          device=generator.device if generator is not None else x0.device).to(x0)
        tt = torch.full((x0.shape[0],), t, device=x0.device, dtype=torch.long)
        return self.denoise(self.noised(x0, tt, eps), t, y, steps)
