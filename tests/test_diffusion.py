"""The diffusion model: schedule, loss, DDIM sampling (deterministic given the noise), guidance,
rewriting a digit, and the CLI on a trained smoke run."""

from __future__ import annotations

import pytest
import torch

from generators.diffusion import Diffusion, DiffusionConfig, cosine_alpha_bar


def tiny(**kw) -> Diffusion:
    torch.manual_seed(0)
    return Diffusion(DiffusionConfig(**{**dict(image_size=8, channels=8, timesteps=100, sample_steps=4), **kw}))


def test_schedule_runs_from_data_to_noise():
    ab = cosine_alpha_bar(1000)
    assert ab[0] == 1 and (ab[1:] < ab[:-1]).all() and ab[-1] < 1e-4


def test_learns_to_denoise_and_samples_deterministically():
    model = tiny()
    x = torch.zeros(8, 1, 8, 8, dtype=torch.uint8)
    x[:, :, 2:6, 3:5] = 255
    y = torch.arange(8) % 10
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    first = model.loss(x, y, generator=g()).item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(x, y, generator=g()).item() < 0.6 * first
    noise = torch.randn(3, 1, 8, 8)
    a = model.sample(3, y=torch.tensor([1, 2, 3]), noise=noise)
    assert a.dtype == torch.uint8 and a.shape == (3, 1, 8, 8)
    assert torch.equal(a, model.sample(3, y=torch.tensor([1, 2, 3]), noise=noise))  # DDIM, eta = 0
    assert torch.equal(model.sample(2, y=1, generator=g()), model.sample(2, y=1, generator=g()))
    plain = model.sample(3, y=torch.tensor([1, 2, 3]), noise=noise, guidance=1.0)
    assert plain.shape == a.shape
    rewritten = model.rewrite(x[:2], y[:2], t=10, generator=g())
    assert rewritten.shape == (2, 1, 8, 8)
    with pytest.raises(TypeError, match="uint8"):
        model.loss(torch.rand(1, 1, 8, 8))


def test_cli_sample_and_interpolate_a_trained_diffusion_model(cli_here, tmp_path):
    r = cli_here("train-generators", "-m", "diffusion", "--preset", "smoke", "--out", "run")
    assert r.exit_code == 0, r.output
    assert "test_denoise_mse" in (tmp_path / "run" / "diffusion" / "metrics.json").read_text()
    r = cli_here("sample", "-m", "diffusion", "--run", "run", "-n", "2", "--digit", "5", "--out", "d/")
    assert r.exit_code == 0, r.output
    r = cli_here("interpolate", "-m", "diffusion", "--run", "run", "--steps", "3", "--rows", "1", "--out", "walk.png")
    assert r.exit_code == 0 and (tmp_path / "walk.png").is_file(), r.output
