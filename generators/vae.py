"""Convolutional VAE (Kingma & Welling 2014), class-conditional: a forger's model that draws a
whole digit from a latent code in one pass.

    encoder  q(z | x, y): two stride-2 convs (28 -> 14 -> 7), then mu and log-variance
    decoder  p(x | z, y): linear to 7x7, two stride-2 transposed convs back to 28x28, then a
             256-way softmax per pixel: a proper likelihood of the 8-bit grey levels, so the
             ELBO is a bound on the same NLL the PixelCNN reports (bits/dim), beside it
    prior    p(z | y) = N(m_y, I): with ``class_prior``, a learned mean per digit (else N(0, I))
    loss     -ELBO = -E_q[log p(x | z, y)] + KL(q(z | x, y) || p(z | y)), one z per image

Why the class prior: with N(0, I) for every digit, the label is worth at most ln 10 nats of the
ELBO, so training may ignore it (the decoder then reads the digit from z, and a sample "of a 3"
is whatever digit its z happens to fall on). With m_y the KL itself pays z to sit near its
digit's mean, so a draw from p(z | y) lands among that digit's codes.

Pixels are independent given z, so a drawn image would be speckled; ``sample`` returns each
pixel's expected grey level instead, as a forger would print the decoder's picture.
``importance_nll`` gives the tighter importance-weighted bound (Burda et al. 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VAEConfig:
    image_channels: int = 1
    image_size: int = 28  # a multiple of 4
    latent_dim: int = 16
    channels: int = 32  # the first conv's width; the second has twice as many
    hidden: int = 256
    num_classes: int = 10  # 0 = unconditional; else y is a one-hot input to encoder and decoder
    class_prior: bool = False  # p(z | y) = N(m_y, I) with a learned m_y per digit (needs num_classes)


class VAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        if cfg.image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {cfg.image_size}")
        self.cfg = cfg
        c, w, k, side = cfg.image_channels, cfg.channels, cfg.num_classes, cfg.image_size // 4
        self.side = side
        self.enc = nn.Sequential(nn.Conv2d(c, w, 4, 2, 1), nn.ELU(), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ELU(),
                                 nn.Flatten())
        self.enc_fc = nn.Sequential(nn.Linear(2 * w * side * side + k, cfg.hidden), nn.ELU(),
                                    nn.Linear(cfg.hidden, 2 * cfg.latent_dim))
        self.dec_fc = nn.Sequential(nn.Linear(cfg.latent_dim + k, cfg.hidden), nn.ELU(),
                                    nn.Linear(cfg.hidden, 2 * w * side * side), nn.ELU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ELU(),
                                 nn.ConvTranspose2d(w, w, 4, 2, 1), nn.ELU(), nn.Conv2d(w, 256 * c, 1))
        if cfg.class_prior and not k:
            raise ValueError("class_prior needs a class-conditional VAE (num_classes > 0)")
        # Zeros: training starts from the N(0, I) prior and moves each digit's mean where its codes go.
        self.prior_mean = nn.Parameter(torch.zeros(k, cfg.latent_dim)) if cfg.class_prior else None

    @property
    def head_weight(self) -> torch.Tensor:
        return self.dec[-1].weight

    def _onehot(self, y, n: int) -> torch.Tensor | None:
        k = self.cfg.num_classes
        if not k:
            return None
        w = self.head_weight
        if y is None:
            return torch.zeros(n, k, dtype=w.dtype, device=w.device)
        y = torch.as_tensor(y, device=w.device).expand(n)
        return F.one_hot(y.long(), k).to(w.dtype)

    def prior_mean_of(self, y, n: int) -> torch.Tensor:
        """The mean of p(z | y) for n codes, [n, latent_dim]: m_y with a class prior, else zeros
        (also when y is None: the unconditional draw starts from the prior's centre)."""
        w = self.head_weight
        if self.prior_mean is None or y is None:
            return torch.zeros(n, self.cfg.latent_dim, dtype=w.dtype, device=w.device)
        return self.prior_mean.to(w.dtype)[torch.as_tensor(y, device=w.device).long().expand(n)]

    def latent(self, eps: torch.Tensor, y=None) -> torch.Tensor:
        """Standard-normal draws [n, latent_dim] placed in p(z | y): what ``sample`` and the
        interpolation walk decode."""
        return self.prior_mean_of(y, len(eps)) + eps.to(self.head_weight.dtype)

    @staticmethod
    def _cat(a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return a if b is None else torch.cat([a, b], dim=1)

    def encode(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images -> (mu, log-variance) of q(z | x, y), each [B, latent_dim]."""
        if x.dtype != torch.uint8:
            raise TypeError(f"the VAE expects uint8 images, got {x.dtype}")
        h = self.enc(x.to(self.head_weight.dtype) / 127.5 - 1)
        mu, logvar = self.enc_fc(self._cat(h, self._onehot(y, len(x)))).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)

    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Latents [B, latent_dim] -> logits [B, 256, C, H, W] of each pixel's grey level."""
        w = self.cfg.channels
        h = self.dec_fc(self._cat(z, self._onehot(y, len(z)))).view(len(z), 2 * w, self.side, self.side)
        out = self.dec(h)
        return out.view(len(z), 256, self.cfg.image_channels, *out.shape[-2:])

    def _terms(self, x: torch.Tensor, y, generator: torch.Generator | None = None):
        """(log p(x | z) [B], KL [B], z, mu, logvar) with one reparameterised draw of z."""
        mu, logvar = self.encode(x, y)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype) if generator is not None \
            else torch.randn_like(mu)
        z = mu + eps * torch.exp(0.5 * logvar)
        log_px = -F.cross_entropy(self.decode(z, y), x.long(), reduction="none").flatten(1).sum(1)
        kl = 0.5 * ((mu - self.prior_mean_of(y, len(mu))).pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return log_px, kl, z, mu, logvar

    def nll(self, x: torch.Tensor, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """-ELBO per image [B] in nats: an upper bound on -log p(x | y) (one draw of z)."""
        log_px, kl, *_ = self._terms(x, y, generator)
        return kl - log_px

    def loss(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """Mean -ELBO in nats per dimension: what training minimises."""
        return self.nll(x, y).mean() / math.prod(x.shape[1:])

    @torch.no_grad()
    def importance_nll(self, x: torch.Tensor, y=None, k: int = 100,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """-log of the k-sample importance-weighted estimate of p(x | y), per image [B], nats:
        a tighter upper bound (in expectation) than -ELBO, approaching -log p as k grows."""
        mu, logvar = self.encode(x, y)
        std, m = torch.exp(0.5 * logvar), self.prior_mean_of(y, len(mu))
        weights = []
        for _ in range(k):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * std
            log_px = -F.cross_entropy(self.decode(z, y), x.long(), reduction="none").flatten(1).sum(1)
            log_pz = -0.5 * ((z - m).pow(2) + math.log(2 * math.pi)).sum(1)
            log_qz = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + logvar).sum(1)
            weights.append(log_px + log_pz - log_qz)
        return -(torch.logsumexp(torch.stack(weights), dim=0) - math.log(k))

    @torch.no_grad()
    def render(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Latents -> uint8 images: each pixel's expected grey level under the decoder."""
        probs = torch.softmax(self.decode(z, y).double(), dim=1)
        levels = torch.arange(256, dtype=probs.dtype, device=probs.device).view(1, 256, 1, 1, 1)
        return (probs * levels).sum(1).round().clamp(0, 255).to(torch.uint8)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """Each image through the posterior mean and back: the VAE's rewrite of a given digit."""
        return self.render(self.encode(x, y)[0], y)

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images, uint8 [n, C, H, W], from z ~ p(z | y) (drawn with ``generator``)."""
        w = self.head_weight
        eps = torch.randn(n, self.cfg.latent_dim, generator=generator, dtype=torch.float64,
                          device=generator.device if generator is not None else w.device).to(w.device, w.dtype)
        return self.render(self.latent(eps, y), y)
