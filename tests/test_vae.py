"""The convolutional VAE: shapes, the bound and its tighter importance-weighted form, learning,
conditioning, and the CLI's sample and interpolate on a trained smoke run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from generators.vae import VAE, VAEConfig


def tiny(**kw) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(**{**dict(image_size=8, channels=4, hidden=16, latent_dim=3), **kw}))


def strokes(n: int, size: int = 8) -> torch.Tensor:
    x = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    for k in range(n):
        x[k, 0, 1 : size - 1, 1 + k % (size - 3) : 3 + k % (size - 3)] = 255
    return x


def test_shapes_bound_and_importance_weighting():
    model = tiny()
    x, y = strokes(6), torch.arange(6) % 10
    assert model.decode(torch.zeros(6, 3), y).shape == (6, 256, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    elbo = model.nll(x, y, generator=g)
    assert elbo.shape == (6,) and (elbo > 0).all()
    # At init the decoder is near uniform over 256 levels: -ELBO ~ 64 ln 256 plus a small KL.
    assert abs(elbo.mean().item() / 64 - math.log(256)) < 0.5
    assert abs(model.loss(x, y).item() - model.nll(x, y).mean().item() / 64) < 1.0
    with pytest.raises(TypeError, match="uint8"):
        model.encode(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="multiple of 4"):
        tiny(image_size=10)


def test_learns_and_is_conditional_and_samples_are_seeded(fit_briefly):
    model = tiny()
    x, y = strokes(8), torch.arange(8) % 10
    first, last = fit_briefly(model, x, y, steps=40)
    assert last < 0.5 * first
    # Trained, the posterior is no longer the prior, and the importance-weighted bound is tighter.
    many = torch.stack([model.nll(x, y, generator=torch.Generator().manual_seed(s)) for s in range(20)]).mean(0)
    iw = model.importance_nll(x, y, k=64, generator=torch.Generator().manual_seed(1))
    assert iw.mean() < many.mean()
    z = torch.randn(2, 3)
    assert not torch.equal(model.decode(z, 1), model.decode(z, 2))
    a = model.sample(4, y=3, generator=torch.Generator().manual_seed(5))
    b = model.sample(4, y=3, generator=torch.Generator().manual_seed(5))
    assert a.dtype == torch.uint8 and a.shape == (4, 1, 8, 8) and torch.equal(a, b)
    rec = model.reconstruct(x, y)
    assert rec.shape == x.shape and rec.dtype == torch.uint8


def test_class_prior_places_each_digit_and_enters_the_bound(fit_briefly):
    with pytest.raises(ValueError, match="class_prior"):
        tiny(class_prior=True, num_classes=0)
    assert tiny().prior_mean is None  # old configs: N(0, I), no new weights to load
    model = tiny(class_prior=True)
    x, y = strokes(8), torch.arange(8) % 10
    assert torch.count_nonzero(model.prior_mean) == 0  # starts as N(0, I)
    before = model.nll(x, y, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.prior_mean[3] = 4.0
    eps = torch.randn(5, 3)
    assert torch.allclose(model.latent(eps, 3), eps + 4.0) and torch.equal(model.latent(eps, 2), eps)
    after = model.nll(x, y, generator=torch.Generator().manual_seed(0))
    # Only digit 3's image (index 3) pays for the moved mean: 0.5 |m_3 - mu|^2 more KL, about 24 nats.
    moved = (after - before).abs() > 1.0
    assert moved.tolist() == [k == 3 for k in range(8)]
    # A sample of digit 3 decodes codes around m_3, not around 0.
    g = torch.Generator().manual_seed(5)
    eps = torch.randn(4, 3, generator=g, dtype=torch.float64).float()
    assert torch.equal(model.sample(4, y=3, generator=torch.Generator().manual_seed(5)),
                       model.render(eps + 4.0, 3))
    with torch.no_grad():
        model.prior_mean.zero_()
    fit_briefly(model, x, y, steps=40)
    assert torch.count_nonzero(model.prior_mean[:8]) > 0  # training moved the means of the digits it saw


def test_cli_sample_and_interpolate_a_trained_vae(cli_here, tmp_path):
    r = cli_here("train-generators", "-m", "vae", "--preset", "smoke", "--out", "run")
    assert r.exit_code == 0, r.output
    assert "test_elbo_bits_per_dim" in (tmp_path / "run" / "vae" / "metrics.json").read_text()
    r = cli_here("sample", "-m", "vae", "--run", "run", "-n", "4", "--digit", "3", "--out", "v/")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "v").iterdir())[0] == "sample_0000_digit3.png"
    r = cli_here("interpolate", "-m", "vae", "--run", "run", "--steps", "5", "--rows", "2", "--out", "walk.png")
    assert r.exit_code == 0, r.output
    assert np.asarray(Image.open(tmp_path / "walk.png")).ndim == 2
    r = cli_here("interpolate", "-m", "dcgan", "--digit", "3", "--out", "x.png")
    assert r.exit_code == 2 and "conditional" in r.output
