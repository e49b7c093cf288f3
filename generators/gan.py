"""The adversarial recipe shared by DCGAN and the FC-GAN, as in pytorch/examples dcgan.

One ``train_step`` is: (1) update D on a real batch and a fake batch, backward passes
separate; (2) update G with the non-saturating loss -log D(G(z)). Images are uint8 in and
out; the models work in [-1, 1]. Three optional tricks slow D down early: one-sided label
smoothing, a D warm-up against the untrained G, and generated images passed off as real.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import dcgan, fcgan

ARCHS = ("dcgan", "fcgan")


@dataclass
class GANConfig:
    arch: str = "dcgan"  # "dcgan" | "fcgan"
    z_dim: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    g_width: int = 64  # dcgan: ngf; fcgan: hidden sizes scale by g_width/64 (64 = the paper's)
    d_capacity: float = 1.0  # capacity knob for D: D's width = g_width * d_capacity
    real_label: float = 0.9  # one-sided label smoothing (1.0 disables); fake labels stay 0
    d_warmup_steps: int = 0  # pre-train D for N steps against the (untrained) G before the game starts
    fake_as_real_fraction: float = 0.0  # substitute this fraction of the real batch with generated images labelled real...
    fake_as_real_epochs: int = 0  # ...for the first N epochs (0-based: epoch < N) (a trick to slow D down early)
    # > 0: sample (and ship) an exponential moving average of G's weights, this decay per step
    # after a warm-up. A GAN's last iterate circles the equilibrium; its average sits nearer
    # (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training").
    g_ema: float = 0.0


def build_models(cfg: GANConfig, image_shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    """(G, D) for ``cfg.arch`` and the data's C x H x W shape."""
    if cfg.arch == "dcgan":
        ndf = max(1, round(cfg.g_width * cfg.d_capacity))
        return dcgan.Generator(image_shape, cfg.z_dim, cfg.g_width), dcgan.Discriminator(image_shape, ndf)
    if cfg.arch == "fcgan":
        g_scale, d_scale = cfg.g_width / 64, cfg.g_width * cfg.d_capacity / 64
        g_hidden = tuple(max(1, round(d * g_scale)) for d in fcgan.G_HIDDEN)
        d_hidden = tuple(max(1, round(d * d_scale)) for d in fcgan.D_HIDDEN)
        return fcgan.Generator(image_shape, cfg.z_dim, g_hidden), fcgan.Discriminator(image_shape, d_hidden)
    raise ValueError(f"unknown GAN arch {cfg.arch!r}; expected one of {ARCHS}")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range G's tanh produces."""
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")  # catches [0, 1] floats passed by mistake
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return x.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class TrainedGAN:
    """G and D of a trained GAN, for sampling and scoring: no optimisers, no training step."""

    def __init__(self, cfg: GANConfig, image_shape: tuple[int, int, int], device: str | torch.device = "cpu"):
        if not 0.0 < cfg.real_label <= 1.0:
            raise ValueError(f"real_label must be in (0, 1], got {cfg.real_label}")
        if not 0.0 <= cfg.fake_as_real_fraction <= 1.0:
            raise ValueError(f"fake_as_real_fraction must be in [0, 1], got {cfg.fake_as_real_fraction}")
        if cfg.d_capacity <= 0:
            raise ValueError(f"d_capacity must be positive, got {cfg.d_capacity}")
        self.cfg = cfg
        self.image_shape = tuple(int(s) for s in image_shape)
        self.device = torch.device(device)
        G, D = build_models(cfg, self.image_shape)
        self.G, self.D = G.to(self.device), D.to(self.device)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, device=self.device)

    @property
    def sampler(self) -> nn.Module:
        """The G that samples: G itself (a trained GAN's G is the average when one was kept)."""
        return self.G

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, z_dim] -> uint8 images [n, C, H, W] on ``self.device``, G in eval mode."""
        g = self.sampler
        was_training = g.training
        g.eval()
        try:
            return to_uint8(g(z.to(self.device)))
        finally:
            g.train(was_training)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n uint8 images; z is drawn on the generator's device, so a seed gives the same z anywhere."""
        if generator is None:
            return self.generate(self.noise(n))
        return self.generate(torch.randn(n, self.cfg.z_dim, generator=generator, device=generator.device))

    @torch.no_grad()
    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images [B, C, H, W] -> D's logits [B] (real > 0), D in eval mode."""
        return self._eval_d(x, features=False)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images [B, C, H, W] -> D's penultimate features [B, F], D in eval mode."""
        return self._eval_d(x, features=True)

    def _eval_d(self, x: torch.Tensor, features: bool) -> torch.Tensor:
        was_training = self.D.training
        self.D.eval()  # batch norm on running statistics: a score must not depend on batch-mates
        try:
            u = to_unit(x.to(self.device))
            return self.D.features(u) if features else self.D(u)
        finally:
            self.D.train(was_training)


class GAN(TrainedGAN):
    """A GAN in training: G, D, their Adam optimisers, and the training step.

    ``wrap`` (e.g. DistributedDataParallel) is applied to G and D after they are moved to
    ``device``; training runs through the wrapped modules, while ``.G`` and ``.D`` stay the
    plain modules for sampling, scoring and checkpoints.
    """

    def __init__(
        self,
        cfg: GANConfig,
        image_shape: tuple[int, int, int],
        device: str | torch.device = "cpu",
        wrap: Callable[[nn.Module], nn.Module] | None = None,
    ):
        super().__init__(cfg, image_shape, device)
        self.g = wrap(self.G) if wrap else self.G  # used for training forwards
        self.d = wrap(self.D) if wrap else self.D
        # Adam with beta1 = 0.5: the paper found 0.9 oscillated.
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.warmup_done = 0  # D-only steps taken so far
        self.g_avg = None
        if cfg.g_ema > 0:
            from torch.optim.swa_utils import AveragedModel

            from .averaging import ema_with_warmup

            # use_buffers: the average's batch-norm statistics follow the weights they belong to.
            self.g_avg = AveragedModel(self.G, multi_avg_fn=ema_with_warmup(cfg.g_ema), use_buffers=True)

    @property
    def sampler(self) -> nn.Module:
        return self.g_avg.module if self.g_avg is not None else self.G

    def train_step(self, real: torch.Tensor, epoch: int) -> dict[str, float]:
        """One D update, then one G update (D only while the warm-up runs).

        Returns loss_d, loss_g, d_x (mean sigmoid D on the real batch), d_g_z (mean sigmoid
        D on the fake batch, before either update), warmup (1.0 on a D-only step; loss_g is
        then what G's loss would be) and fake_as_real (fraction of the real batch replaced).
        """
        cfg = self.cfg
        self.G.train()
        self.D.train()
        x = to_unit(real.to(self.device, non_blocking=True))
        b = x.size(0)

        replaced = 0
        if epoch < cfg.fake_as_real_epochs:
            replaced = round(cfg.fake_as_real_fraction * b)
            if replaced:  # the loader shuffles, so the first k slots are as good as any
                with torch.no_grad():
                    x[:replaced] = self.g(self.noise(replaced))

        # (1) D: maximise log D(x) + log(1 - D(G(z))).
        self.D.zero_grad(set_to_none=True)
        out_real = self.d(x)
        loss_d_real = F.binary_cross_entropy_with_logits(out_real, torch.full_like(out_real, cfg.real_label))
        loss_d_real.backward()

        warmup = self.warmup_done < cfg.d_warmup_steps
        with torch.set_grad_enabled(not warmup):  # no graph through G when G will not step
            fake = self.g(self.noise(b))
        out_fake = self.d(fake.detach())  # detach: D's loss must not reach G
        loss_d_fake = F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        loss_d_fake.backward()
        self.opt_d.step()

        ones = torch.ones_like(out_fake)  # G's target stays 1.0: smoothing is for D only
        if warmup:
            self.warmup_done += 1
            loss_g = F.binary_cross_entropy_with_logits(out_fake.detach(), ones)
        else:
            # (2) G: maximise log D(G(z)); non-saturating, so G still learns when D wins.
            self.G.zero_grad(set_to_none=True)
            loss_g = F.binary_cross_entropy_with_logits(self.d(fake), ones)
            loss_g.backward()
            self.opt_g.step()
            if self.g_avg is not None:
                self.g_avg.update_parameters(self.G)

        return {
            "loss_d": (loss_d_real + loss_d_fake).item(),
            "loss_g": loss_g.item(),
            "d_x": torch.sigmoid(out_real).mean().item(),
            "d_g_z": torch.sigmoid(out_fake).mean().item(),
            "warmup": float(warmup),
            "fake_as_real": replaced / b,
        }

    def state_dict(self) -> dict:
        """Plain tensors and numbers only: loadable with torch.load(weights_only=True)."""
        return {
            "config": asdict(self.cfg),
            "image_shape": list(self.image_shape),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "warmup_done": self.warmup_done,
            **({"G_avg": self.g_avg.state_dict()} if self.g_avg is not None else {}),
        }

    def load_state_dict(self, sd: dict) -> None:
        if sd["config"]["arch"] != self.cfg.arch or tuple(sd["image_shape"]) != self.image_shape:
            raise ValueError(
                f"checkpoint holds a {sd['config']['arch']} GAN for {tuple(sd['image_shape'])} images, "
                f"not {self.cfg.arch} for {self.image_shape}"
            )
        self.G.load_state_dict(sd["G"])
        self.D.load_state_dict(sd["D"])
        # Optimisers adopt the given state tensors without copying; copy, so that two GANs
        # loaded from one dict do not update each other's Adam moments.
        self.opt_g.load_state_dict(copy.deepcopy(sd["opt_g"]))
        self.opt_d.load_state_dict(copy.deepcopy(sd["opt_d"]))
        self.warmup_done = int(sd["warmup_done"])
        if self.g_avg is not None:
            self.g_avg.load_state_dict(sd["G_avg"])

    @classmethod
    def from_state_dict(cls, sd: dict, device: str | torch.device = "cpu", wrap=None) -> "GAN":
        """Rebuild a GAN from its checkpoint alone (unknown config keys are ignored)."""
        known = {f.name for f in fields(GANConfig)}
        cfg = GANConfig(**{k: v for k, v in sd["config"].items() if k in known})
        gan = cls(cfg, tuple(sd["image_shape"]), device, wrap)
        gan.load_state_dict(sd)
        return gan
