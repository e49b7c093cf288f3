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


def test_a_ddim_step_keeps_the_noise_of_the_clipped_estimate():
    # A guided noise estimate can imply a clean image far outside [-1, 1]. The step clips that
    # estimate and must move x along the noise the *clipped* image implies; with the raw estimate
    # the overshoot leaks into x_next (what made guidance draw the wrong digits).
    from generators.diffusion import ddim_step

    ab, ab_next = torch.tensor(0.04), torch.tensor(0.25)
    noise = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x0 = torch.full((1, 1, 8, 8), 0.5)
    x0[..., :4] = 3.0  # the overshooting half: clipped to 1
    x = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    x_next = ddim_step(x, noise, ab, ab_next)
    clipped = x0.clamp(-1, 1)
    implied = (x - ab.sqrt() * clipped) / (1 - ab).sqrt()
    assert torch.allclose(x_next, ab_next.sqrt() * clipped + (1 - ab_next).sqrt() * implied, atol=1e-6)
    # Where the estimate was in range, the step is the plain DDIM step with the given noise.
    assert torch.allclose(x_next[..., 4:], (ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * noise)[..., 4:], atol=1e-6)
    # And at the last step (abar = 1) it lands on the clipped estimate.
    assert torch.allclose(ddim_step(x, noise, ab, torch.tensor(1.0)), clipped, atol=1e-6)


def test_guidance_strengthens_the_asked_class_of_an_oracle():
    # Two exact noise predictors, one for the digit asked for and one for "no class": guided
    # sampling must end at the clipped extrapolation x0_u + w (x0_c - x0_u), every pixel
    # (a sign or order slip in the guidance formula fails this).
    model = tiny(num_classes=2, guidance=3.0)
    x0_c, x0_u = torch.full((1, 8, 8), 0.6), torch.full((1, 8, 8), 0.2)
    x0_c[..., :4] = -0.2

    class Oracle(torch.nn.Module):
        out = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))  # where the model looks up its device

        def forward(self, x, t, y):
            ab = model.alpha_bar[t].view(-1, 1, 1, 1)
            target = torch.where((y == 2).view(-1, 1, 1, 1), x0_u, x0_c)
            return (x - ab.sqrt() * target) / (1 - ab).sqrt()

    model.net = Oracle()
    out = model.sample(2, y=0, generator=torch.Generator().manual_seed(0), steps=5)
    expected = ((x0_u + 3.0 * (x0_c - x0_u)).clamp(-1, 1) + 1) * 127.5
    assert (out.float() - expected.round()).abs().max() <= 1
