"""Named recipes: `smoke` proves the pipeline in seconds, `full` is the real training run.

Each entry gives the TrainConfig fields for one model; command-line options override them.
The `full` figures were chosen so all default models train on a 2-core CPU in about two hours
(see README, "Training"); on a GPU the same recipe takes minutes.
"""

from __future__ import annotations

CPU_PIXELCNN = dict(channels=32, n_layers=8, kernel_size=3, first_kernel_size=7, head_channels=128)
STREAMS_PIXELCNN = dict(arch="streams", channels=40, nr_resnet=2)

PRESETS: dict[str, dict[str, dict]] = {
    "smoke": {
        "pixelcnn": dict(epochs=1, batch_size=32, lr=2e-3, train_limit=256, test_limit=64, n_samples=10,
                         model_config=dict(channels=8, n_layers=2)),
        "pixelcnn-bin": dict(epochs=1, batch_size=32, lr=2e-3, train_limit=256, test_limit=64, n_samples=10,
                             model_config=dict(channels=8, n_layers=2)),
        "autoencoder": dict(epochs=1, batch_size=32, lr=2e-3, train_limit=256, test_limit=64, n_samples=10,
                            model_config=dict(channels=8, n_layers=2, encoder_channels=4)),
        "vae": dict(epochs=1, batch_size=32, lr=2e-3, train_limit=256, test_limit=64, n_samples=10,
                    model_config=dict(channels=8, hidden=32, latent_dim=4, class_prior=True)),
        "diffusion": dict(epochs=1, batch_size=32, lr=2e-3, train_limit=256, test_limit=64, n_samples=10,
                          model_config=dict(channels=8, sample_steps=5)),
        "dcgan": dict(epochs=1, batch_size=32, lr=2e-4, train_limit=256, test_limit=64, n_samples=16,
                      model_config=dict(g_width=8, d_capacity=0.25)),
        "fcgan": dict(epochs=1, batch_size=32, lr=2e-4, train_limit=256, test_limit=64, n_samples=16,
                      model_config=dict()),
    },
    "full": {
        # The streams PixelCNN (sees every row above; the gated one of 8 3-wide layers saw ~16 rows):
        # 40 wide, 2 units per resolution and direction, ~35 images/s per core with bf16; cosine
        # schedule with warm-up, EMA weights for evaluation and samples. The per-epoch grid is
        # 40 samples: each pixel of a sample is one forward pass, so a grid costs minutes.
        "pixelcnn": dict(epochs=5, batch_size=64, lr=2e-3, lr_schedule="cosine", warmup_steps=500, ema=0.999,
                         cpu_bf16=True, n_samples=40, model_config=STREAMS_PIXELCNN),
        # The paper's binarized MNIST (stochastic: a fresh Bernoulli draw of every training image
        # each time it is seen), with the same streams network as the 8-bit model.
        "pixelcnn-bin": dict(epochs=5, batch_size=64, lr=2e-3, lr_schedule="cosine", warmup_steps=500, ema=0.999,
                             cpu_bf16=True, binarize="stochastic", n_samples=40, model_config=STREAMS_PIXELCNN),
        "autoencoder": dict(epochs=2, batch_size=64, lr=2e-3, lr_decay=0.5, model_config=CPU_PIXELCNN),
        # class_prior: v7's VAE (N(0, I) prior) ignored its label: a third of its samples read as asked.
        "vae": dict(epochs=10, batch_size=128, lr=1e-3, lr_schedule="cosine", warmup_steps=200, ema=0.999,
                    model_config=dict(class_prior=True)),
        # DDPM + DDIM, 32 wide: 5 min an epoch on one core with bf16 (1.6x faster than fp32 here).
        "diffusion": dict(epochs=12, batch_size=64, lr=1e-3, lr_schedule="cosine", warmup_steps=500, ema=0.999,
                          cpu_bf16=True, model_config=dict()),
        # 4 epochs gave FID 120 (issue 20): 20 epochs, sampling from the average of G's weights,
        # and a G twice as wide as D (a narrower D alone trained slower; docs/experiments.md).
        "dcgan": dict(epochs=20, batch_size=64, lr=2e-4, model_config=dict(g_width=128, d_capacity=0.5, g_ema=0.999)),
        "fcgan": dict(epochs=30, batch_size=128, lr=2e-4, model_config=dict()),
    },
}


def preset_config(preset: str, model: str) -> dict:
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    return dict(PRESETS[preset][model])
