"""GANs: shapes, the training step and its tricks, checkpoints, latent walks. Tiny models."""

from __future__ import annotations

import io
import math

import pytest
import torch
from PIL import Image
from torch import nn

from generators import dcgan, fcgan
from generators.gan import GAN, GANConfig, TrainedGAN
from generators.interpolate import along_dim, lerp, save_strip, slerp, strip

ARCHS = ["dcgan", "fcgan"]
SHAPES = [(1, 28, 28), (3, 64, 64)]
KEYS = {"loss_d", "loss_g", "d_x", "d_g_z", "warmup", "fake_as_real"}


def tiny(**kw) -> GANConfig:
    return GANConfig(**{"z_dim": 8, "g_width": 4, **kw})


def make(cfg: GANConfig, shape=(1, 28, 28), seed: int = 0) -> GAN:
    torch.manual_seed(seed)
    return GAN(cfg, shape)


def batch(n: int = 8, shape=(1, 28, 28), seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def step(gan: GAN, real: torch.Tensor, epoch: int = 0, seed: int = 2) -> dict[str, float]:
    torch.manual_seed(seed)
    return gan.train_step(real, epoch)


def params(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- models -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes(arch, shape):
    gan = make(tiny(arch=arch), shape)
    z = torch.randn(3, 8)
    assert gan.G(z).shape == (3, *shape)
    x = batch(3, shape)
    assert gan.discriminate(x).shape == (3,)
    assert gan.features(x).shape == (3, gan.D.num_features)
    out = gan.sample(3)
    assert out.dtype == torch.uint8 and out.shape == (3, *shape)


def test_dcgan_geometry_and_init():
    assert dcgan.geometry((1, 28, 28)) == (7, 2)  # z -> 7 -> 14 -> 28
    assert dcgan.geometry((3, 64, 64)) == (4, 4)  # z -> 4 -> 8 -> 16 -> 32 -> 64
    for bad in [(1, 28, 32), (3, 60, 60), (1, 7, 7)]:
        with pytest.raises(ValueError):
            dcgan.geometry(bad)
    ups = lambda g: sum(isinstance(m, nn.ConvTranspose2d) for m in g.modules())  # noqa: E731
    assert ups(dcgan.Generator((1, 28, 28), 8, 4)) == 3 and ups(dcgan.Generator((3, 64, 64), 8, 4)) == 5
    d = dcgan.Discriminator((3, 64, 64), 64)
    bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 3  # every conv but the first and the head
    w = d.body[2].weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002


def test_fcgan_is_the_classic_mlp():
    g, d = fcgan.Generator((1, 28, 28)), fcgan.Discriminator((1, 28, 28))
    assert [m.out_features for m in g.modules() if isinstance(m, nn.Linear)] == [128, 256, 512, 1024, 784]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == 3
    assert [m.out_features for m in d.modules() if isinstance(m, nn.Linear)] == [512, 256, 1]
    # GANConfig's default width is the paper's.
    gan = GAN(GANConfig(arch="fcgan"), (1, 28, 28))
    assert count(gan.G) == count(g) and count(gan.D) == count(d)


@pytest.mark.parametrize("arch", ARCHS)
def test_d_capacity_scales_d_only(arch):
    small, big = make(tiny(arch=arch, g_width=8)), make(tiny(arch=arch, g_width=8, d_capacity=2.0))
    assert count(big.D) > 1.8 * count(small.D)
    assert count(big.G) == count(small.G)


# --- training -----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_train_steps_finite(arch):
    gan = make(tiny(arch=arch))
    for i in range(3):
        out = gan.train_step(batch(8, seed=i), epoch=0)
        assert set(out) == KEYS
        assert all(math.isfinite(v) for v in out.values())
        assert 0 < out["d_x"] < 1 and 0 < out["d_g_z"] < 1 and out["warmup"] == 0.0


def test_rejects_non_uint8():
    with pytest.raises(TypeError):
        make(tiny()).train_step(batch().float() / 255, 0)


def test_one_sided_label_smoothing_changes_d_loss():
    smooth, hard = make(tiny(real_label=0.9)), make(tiny(real_label=1.0))
    a, b = step(smooth, batch()), step(hard, batch())
    assert a["d_x"] == b["d_x"] and a["d_g_z"] == b["d_g_z"]  # same D, same batches...
    assert a["loss_d"] != b["loss_d"]  # ...only the real target differs


def test_warmup_trains_d_only():
    gan = make(tiny(d_warmup_steps=2))
    g0, d0 = params(gan.G), params(gan.D)
    for _ in range(2):
        out = gan.train_step(batch(), 0)
        assert out["warmup"] == 1.0 and math.isfinite(out["loss_g"])
        assert same(params(gan.G), g0)
    assert not same(params(gan.D), d0)
    assert gan.train_step(batch(), 0)["warmup"] == 0.0
    assert not same(params(gan.G), g0)


def test_fake_as_real_only_in_first_epochs():
    cfg = tiny(fake_as_real_fraction=1.0, fake_as_real_epochs=1)
    # With the whole real batch replaced, what was passed in cannot matter...
    a, b = step(make(cfg), batch(seed=1), epoch=0), step(make(cfg), batch(seed=9), epoch=0)
    assert a == b and a["fake_as_real"] == 1.0
    # ...and from epoch N on, it matters again.
    a, b = step(make(cfg), batch(seed=1), epoch=1), step(make(cfg), batch(seed=9), epoch=1)
    assert a != b and a["fake_as_real"] == 0.0
    half = tiny(fake_as_real_fraction=0.5, fake_as_real_epochs=2)
    assert step(make(half), batch(8), epoch=1)["fake_as_real"] == 0.5


def test_wrap_is_used_for_training_only():
    wrapped = []

    class Wrapper(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m
            wrapped.append(m)

        def forward(self, *a):
            self.calls = getattr(self, "calls", 0) + 1
            return self.m(*a)

    gan = GAN(tiny(), (1, 28, 28), wrap=Wrapper)
    assert wrapped == [gan.G, gan.D] and not isinstance(gan.G, Wrapper)
    gan.train_step(batch(), 0)
    assert gan.g.calls == 1 and gan.d.calls == 3  # real, fake for D; fake for G


# --- sampling and checkpoints -------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_sampling_is_deterministic(arch):
    gan = make(tiny(arch=arch))
    gan.train_step(batch(), 0)  # non-trivial batch-norm running stats
    s1 = gan.sample(4, torch.Generator().manual_seed(7))
    s2 = gan.sample(4, torch.Generator().manual_seed(7))
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, gan.sample(4, torch.Generator().manual_seed(8)))
    assert gan.G.training  # eval mode was temporary
    z = torch.randn(4, 8)
    assert torch.equal(gan.generate(z)[:2], gan.generate(z[:2]))  # eval: no batch dependence


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_resumes_bit_identically(arch):
    cfg = tiny(arch=arch, d_warmup_steps=3)
    gan = make(cfg)
    for i in range(2):
        step(gan, batch(seed=i), seed=10 + i)
    buf = io.BytesIO()
    torch.save(gan.state_dict(), buf)
    sd = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)

    resumed = make(cfg, seed=123)  # different init: everything must come from the checkpoint
    resumed.load_state_dict(sd)
    rebuilt = GAN.from_state_dict(sd)
    for i in range(2, 4):  # crosses the end of the warm-up
        ref = step(gan, batch(seed=i), seed=10 + i)
        assert step(resumed, batch(seed=i), seed=10 + i) == ref
        assert step(rebuilt, batch(seed=i), seed=10 + i) == ref
    assert resumed.warmup_done == 3


def test_averaged_g_samples_resumes_and_is_what_ships():
    cfg = tiny(arch="dcgan", g_ema=0.9)
    gan = make(cfg)
    for i in range(3):
        step(gan, batch(seed=i), seed=10 + i)
    z = torch.randn(4, cfg.z_dim)
    gan.G.eval()
    assert not torch.equal(gan.generate(z), to_uint8_of(gan.G, z)), "samples must come from the average, not G"
    buf = io.BytesIO()
    torch.save(gan.state_dict(), buf)
    rebuilt = GAN.from_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert torch.equal(rebuilt.generate(z), gan.generate(z))
    step(gan, batch(seed=5), seed=20)
    step(rebuilt, batch(seed=5), seed=20)
    assert torch.equal(rebuilt.generate(z), gan.generate(z))  # the average resumes too
    shipped = TrainedGAN(cfg, (1, 28, 28))
    shipped.G.load_state_dict(gan.sampler.state_dict())
    assert torch.equal(shipped.generate(z), gan.generate(z))


def to_uint8_of(g, z):
    from generators.gan import to_uint8

    with torch.no_grad():
        return to_uint8(g(z))


def test_load_state_dict_refuses_other_arch():
    sd = make(tiny(arch="fcgan")).state_dict()
    with pytest.raises(ValueError, match="fcgan"):
        make(tiny(arch="dcgan")).load_state_dict(sd)


# --- latent walks -------------------------------------------------------------------------


def test_slerp_endpoints_and_norms():
    z0, z1 = torch.randn(2, 100, generator=torch.Generator().manual_seed(0))
    walk = slerp(z0, z1, 7)
    assert walk.shape == (7, 100)
    torch.testing.assert_close(walk[0], z0)
    torch.testing.assert_close(walk[-1], z1)
    # Equal norms: the whole walk stays on that sphere, unlike lerp, which cuts inside it.
    z1 = z1 * z0.norm() / z1.norm()
    norms = slerp(z0, z1, 7).norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, z0.norm().item()))
    assert lerp(z0, z1, 3)[1].norm() < 0.9 * z0.norm()


def test_slerp_nearly_parallel_falls_back_to_lerp():
    z = torch.randn(16, generator=torch.Generator().manual_seed(0))
    for z1 in (z, z * (1 + 1e-7), 2 * z, -z):
        walk = slerp(z, z1, 5)
        assert torch.isfinite(walk).all()
        torch.testing.assert_close(walk, lerp(z, z1, 5))


def test_lerp_midpoint_is_the_mean():
    z0, z1 = torch.randn(2, 10)
    walk = lerp(z0, z1, 3)
    torch.testing.assert_close(walk[1], (z0 + z1) / 2)
    torch.testing.assert_close(walk[0], z0)
    torch.testing.assert_close(walk[2], z1)


def test_along_dim_changes_only_that_dim():
    z = torch.randn(10)
    walk = along_dim(z, 3, [-2.0, 0.0, 2.0])
    assert walk.shape == (3, 10)
    assert torch.equal(walk[:, 3], torch.tensor([-2.0, 0.0, 2.0]))
    others = [i for i in range(10) if i != 3]
    assert torch.equal(walk[:, others], z[others].expand(3, -1))


def test_strip_and_save(tmp_path):
    grey = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    im = strip(grey, rows=2)
    assert im.mode == "L" and im.size == (3 * 30 + 2, 2 * 30 + 2)
    rgb = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    assert strip(rgb).mode == "RGB" and strip(rgb).size == (4 * 66 + 2, 66 + 2)
    path = save_strip(grey, tmp_path / "walk.png")
    with Image.open(path) as f:
        assert f.format == "PNG" and f.size == (6 * 30 + 2, 30 + 2)
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind
