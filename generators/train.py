"""One training loop for every generator: data in, checkpoints, grids and curves out.

Each model plugs in as a small *recipe* (how one step trains it, how it is evaluated and
sampled, what its state is); the loop around it is the same for all of them and owns
everything that must be right once: seeding, resumable data order, atomic checkpoints
every epoch and every few minutes, Ctrl-C, DistributedDataParallel, and the run folder:

    RUN_DIR/<model>/checkpoint.pt     everything needed to resume (weights, optimisers, RNG, history)
    RUN_DIR/<model>/model.pt          the trained weights and config alone (what detectors load)
    RUN_DIR/<model>/manifest.json     what the files hold, their SHA-256, command, data, metrics
    RUN_DIR/<model>/samples/epoch_NNN.png, evolution.gif, losses.png, metrics.json
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from forensics.checkpoint import atomic_save, atomic_write_text, load_checkpoint, remove_stale_temp_files, write_manifest
from forensics.data import ImageData, load_dataset
from forensics.errors import ForensicsError

from . import visuals
from .averaging import ema_with_warmup
from .load import model_config

DEFAULT_MODELS = ("pixelcnn", "pixelcnn-bin", "dcgan", "fcgan")
CHECKPOINT_FORMAT = "forensics-train-v1"


@dataclass
class TrainConfig:
    model: str = "pixelcnn"
    dataset: str = "mnist"
    data_dir: str | None = None
    out: str = "runs/default"
    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    lr_decay: float = 1.0  # multiplied into the learning rate after every epoch (lr_schedule "exponential")
    lr_schedule: str = "exponential"  # or "cosine": linear warm-up over warmup_steps, then cosine to 0 per step
    warmup_steps: int = 0
    binarize: str = "threshold"  # pixelcnn-bin: "threshold" (x >= 128) or "stochastic" (each pixel on with
    # probability x / 255: a fresh draw every batch in training, one seeded draw of the test set),
    # the binarized MNIST of the PixelCNN paper's 81.30 nats
    ema: float = 0.0  # > 0: keep an exponential moving average of the weights (this decay per step); the
    # likelihood models evaluate, sample and ship the averaged weights
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # also on a CPU with native bf16 (AVX512-BF16 / AMX): 14% faster for the streams
    # PixelCNN on these machines, measured; off by default, as it changes the numbers a run gives
    train_limit: int | None = None  # use only the first N training images (smoke runs, tests)
    test_limit: int | None = None
    n_samples: int = 100  # a 10x10 grid; the conditional PixelCNN draws each digit down a column
    checkpoint_minutes: float = 10.0
    model_config: dict = field(default_factory=dict)  # overrides of the model's own config dataclass
    command: str = ""  # the command line, recorded in the manifest


class TrainingInterrupted(ForensicsError):
    """Ctrl-C or SIGTERM: the loop saved a checkpoint and stopped."""


# ----------------------------------------------------------------------------- recipes


class _LossModule(nn.Module):
    """Lets DistributedDataParallel see `model.loss(...)` as a forward call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, y):
        return self.model.loss(x, y)


def cosine_with_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """Learning-rate factor at step s: linear from 1/warmup to 1 over ``warmup`` steps, then a
    cosine from 1 down to 0 at step ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return factor




class LikelihoodRecipe:
    """PixelCNN (8-bit or binarized), the PixelCNN autoencoder and the VAE: minimise NLL (for
    the VAE, -ELBO, a bound on it) with Adam."""

    def __init__(self, name: str, model: nn.Module, cfg: TrainConfig, device: torch.device, wrap: Callable,
                 total_steps: int = 0):
        self.name, self.model, self.device = name, model, device
        self.step_module = wrap(_LossModule(model))
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        if cfg.lr_schedule == "cosine":
            self.per_step = True
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, cosine_with_warmup(cfg.warmup_steps, total_steps))
        elif cfg.lr_schedule == "exponential":
            self.per_step = False
            self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=cfg.lr_decay)
        else:
            raise ForensicsError(f"lr_schedule must be 'exponential' or 'cosine', got {cfg.lr_schedule!r}")
        self.amp = cfg.amp and (device.type == "cuda" or (cfg.cpu_bf16 and _cpu_has_bf16()))
        self.conditional = getattr(getattr(model, "cfg", None), "num_classes", 0) > 0
        self.binarize = cfg.binarize
        self._test_draw: tuple[int, torch.Tensor] | None = None
        self.ema = None
        if cfg.ema > 0:
            from torch.optim.swa_utils import AveragedModel

            self.ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(cfg.ema))

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated, sampled and shipped: the average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def train_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> dict[str, float]:
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss = self.step_module(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.opt.step()
        lr = self.opt.param_groups[0]["lr"]
        if self.per_step:
            self.sched.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return {"loss": loss.item(), "grad_norm": float(grad_norm), "lr": lr}

    def end_epoch(self) -> None:
        if not self.per_step:
            self.sched.step()

    @torch.no_grad()
    def evaluate(self, test: ImageData, batch_size: int = 500) -> dict[str, float]:
        model = self.eval_model.eval()
        total, count = 0.0, 0
        # The VAE's bound draws z: from its own seeded generator, so evaluating leaves training's RNG alone.
        draws = {"generator": torch.Generator(device=self.device).manual_seed(0)} if self.name == "vae" else {}
        images = self._test_images(test)
        for i in range(0, len(test), batch_size):
            x = images[i : i + batch_size].to(self.device)
            y = test.labels[i : i + batch_size].to(self.device)
            total += model.nll(x, y, **draws).double().sum().item()
            count += x.shape[0]
        nats_image = total / max(count, 1)
        dims = math.prod(test.shape)
        # The VAE's nll is -ELBO: a bound on the NLL, named so wherever it is reported.
        key = "test_elbo" if self.name == "vae" else "test_nll"
        out = {f"{key}_nats_per_image": nats_image, f"{key}_nats_per_dim": nats_image / dims}
        out[f"{key}_bits_per_dim"] = out[f"{key}_nats_per_dim"] / math.log(2)
        if self.binarize == "stochastic":
            out["test_binarization"] = f"stochastic, one draw with seed {TEST_BINARIZE_SEED}"
        return out

    def _test_images(self, test: ImageData) -> torch.Tensor:
        """The test images as evaluated: for stochastic binarization one fixed draw, made once."""
        if self.binarize != "stochastic":
            return test.images
        if self._test_draw is None or self._test_draw[0] != len(test):
            self._test_draw = (len(test), binarized_test_set(test.images))
        return self._test_draw[1]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        model = self.eval_model.eval()
        if self.name == "autoencoder":
            return model.sample(n, generator=generator)
        if self.name == "vae":
            return model.sample(n, y=torch.arange(n, device=self.device) % 10 if self.conditional else None,
                                generator=generator)
        y = torch.arange(n, device=self.device) % 10 if self.conditional else None
        return model.sample(n, y=y, generator=generator)

    def state_dict(self) -> dict:
        sd = {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict()}
        if self.ema is not None:
            sd["ema"] = self.ema.state_dict()
        return sd

    def load_state_dict(self, sd: dict) -> None:
        self.model.load_state_dict(sd["model"])
        self.opt.load_state_dict(sd["opt"])
        self.sched.load_state_dict(sd["sched"])
        if self.ema is not None:
            self.ema.load_state_dict(sd["ema"])

    def weights(self) -> dict:
        return {"model": self.eval_model.state_dict()}


class DiffusionRecipe(LikelihoodRecipe):
    """The diffusion model: the same optimiser, schedule and average; its figure of merit is the
    noise-prediction error on test digits at seeded timesteps (it has no likelihood to report)."""

    @torch.no_grad()
    def evaluate(self, test: ImageData, batch_size: int = 500, n: int = 2000) -> dict[str, float]:
        model = self.eval_model.eval()
        g = torch.Generator(device=self.device).manual_seed(0)
        total, count = 0.0, 0
        for i in range(0, min(n, len(test)), batch_size):
            x = test.images[i : i + batch_size].to(self.device)
            y = test.labels[i : i + batch_size].to(self.device)
            total += model.loss(x, y, generator=g).item() * len(x)
            count += len(x)
        return {"test_denoise_mse": total / max(count, 1)}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        y = torch.arange(n, device=self.device) % 10 if self.conditional else None
        return self.eval_model.eval().sample(n, y=y, generator=generator)


class AdversarialRecipe:
    """DCGAN and the fully-connected GAN: the game itself lives in generators/gan.py."""

    def __init__(self, name: str, gan, device: torch.device):
        self.name, self.gan, self.device = name, gan, device

    def train_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> dict[str, float]:
        return self.gan.train_step(x, epoch)

    def end_epoch(self) -> None:
        pass

    @torch.no_grad()
    def evaluate(self, test: ImageData, n: int = 2000) -> dict[str, float]:
        # D's belief on held-out real digits: if it collapses towards 0, D has overfit the training set.
        # The histograms of D(x) and D(G(z)) over epochs show the balance of the two players.
        x = test.images[:n].to(self.device)
        d_real = torch.sigmoid(self.gan.discriminate(x))
        fakes = self.gan.sample(len(x), generator=torch.Generator(device=self.device).manual_seed(HIST_SEED))
        d_fake = torch.sigmoid(self.gan.discriminate(fakes))
        return {"d_test_x": d_real.mean().item(), "d_test_g_z": d_fake.mean().item(),
                "d_hist_real": _histogram(d_real), "d_hist_fake": _histogram(d_fake)}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.gan.sample(n, generator=generator)

    def state_dict(self) -> dict:
        return self.gan.state_dict()

    def load_state_dict(self, sd: dict) -> None:
        self.gan.load_state_dict(sd)

    def weights(self) -> dict:
        # The shipped G is the one that samples: the average when one is kept.
        return {"G": self.gan.sampler.state_dict(), "D": self.gan.D.state_dict()}


TEST_BINARIZE_SEED = 2017  # the one draw of the binarized test set


def stochastic_binarize(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 images -> 0/255, each pixel on with probability x / 255 (drawn on the CPU, so the
    draw is the same on any device)."""
    u = torch.rand(x.shape, generator=generator)
    return ((u < x.cpu().float() / 255.0).to(torch.uint8) * 255).to(x.device)


def binarized_test_set(images: torch.Tensor) -> torch.Tensor:
    """The one seeded stochastic draw of a test set that training and benchmarks evaluate on."""
    return stochastic_binarize(images, torch.Generator().manual_seed(TEST_BINARIZE_SEED))


HIST_BINS = 40  # of D's output in [0, 1], per epoch
HIST_SEED = 4242  # the same fakes' noise every epoch, like the sample grid's


def _histogram(p: torch.Tensor) -> list[int]:
    return torch.histc(p.double().flatten().cpu(), bins=HIST_BINS, min=0.0, max=1.0).long().tolist()


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def build_recipe(cfg: TrainConfig, image_shape, num_classes: int, device: torch.device, wrap: Callable,
                 total_steps: int = 0):
    mcfg = model_config(cfg.model, cfg.model_config, image_shape, num_classes)
    if cfg.model in ("pixelcnn", "pixelcnn-bin"):
        from .pixelcnn import make_pixelcnn

        return mcfg, LikelihoodRecipe(cfg.model, make_pixelcnn(mcfg).to(device), cfg, device, wrap, total_steps)
    if cfg.model == "autoencoder":
        from .autoencoder import PixelCNNAutoencoder

        return mcfg, LikelihoodRecipe(cfg.model, PixelCNNAutoencoder(mcfg).to(device), cfg, device, wrap,
                                      total_steps)
    if cfg.model == "vae":
        from .vae import VAE

        return mcfg, LikelihoodRecipe(cfg.model, VAE(mcfg).to(device), cfg, device, wrap, total_steps)
    if cfg.model == "diffusion":
        from .diffusion import Diffusion

        return mcfg, DiffusionRecipe(cfg.model, Diffusion(mcfg).to(device), cfg, device, wrap, total_steps)
    from .gan import GAN

    mcfg = dataclasses.replace(mcfg, lr=cfg.lr)
    return mcfg, AdversarialRecipe(cfg.model, GAN(mcfg, image_shape, device=device, wrap=wrap), device)


# ----------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Under torchrun (WORLD_SIZE > 1) join the process group: gloo on CPU, nccl on GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            return torch.device(f"cuda:{local}")
        return torch.device("cpu")
    return torch.device(name)


# ----------------------------------------------------------------------------- the loop


def _permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    # The data order is a pure function of (seed, epoch), so a resumed run sees the same batches.
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def _fixed_noise_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed + 12_345)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class _StopFlag:
    """Ctrl-C / SIGTERM set a flag; the loop saves at the next step boundary and stops."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def _handle(self, signum, frame):
        if self.stop:  # a second Ctrl-C means "now"
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _progress(enabled: bool, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=not enabled, transient=False,
    )


def train(cfg: TrainConfig, resume: bool = False, console=None, log: Callable[[str], None] | None = None) -> dict:
    """Train one model as `cfg` says; returns the run's metrics (also written to metrics.json)."""
    from rich.console import Console

    console = console or Console(stderr=True)
    device = resolve_device(cfg.device)
    dist = setup_distributed(device)
    say = (log or console.print) if dist.main else (lambda *_: None)
    run_dir = Path(cfg.out) / cfg.model
    ckpt_path = run_dir / "checkpoint.pt"

    torch.manual_seed(cfg.seed)
    train_data = load_dataset(cfg.dataset, train=True, data_dir=cfg.data_dir).subset(cfg.train_limit)
    test_data = _load_test(cfg)
    image_shape, num_classes = train_data.shape, train_data.num_classes

    wrap = _ddp_wrapper(dist, device)
    mcfg, recipe = build_recipe(cfg, image_shape, num_classes, device, wrap,
                                total_steps=cfg.epochs * (len(train_data) // cfg.batch_size))

    state = {"epoch": 0, "batch": 0, "step": 0, "history": [], "epochs": [], "train_seconds": 0.0}
    if ckpt_path.exists() and not resume:
        raise ForensicsError(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location=device)
        _check_compatible(ck, cfg, mcfg, ckpt_path)
        recipe.load_state_dict(ck["recipe"])
        _set_rng_state(ck["rng"], device)
        state = ck["state"]
        say(f"{cfg.model}: resumed from {ckpt_path} at epoch {state['epoch']}, batch {state['batch']}, step {state['step']}")

    def save(reason: str) -> None:
        if not dist.main:
            return
        atomic_save({"format": CHECKPOINT_FORMAT, "model_name": cfg.model, "train_config": asdict(cfg),
                     "model_config": asdict(mcfg), "recipe": recipe.state_dict(), "rng": _rng_state(device),
                     "state": state}, ckpt_path)

    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        # A run killed mid-write (SIGKILL, power loss) leaves the temporary file of that write;
        # the real files are whole (atomic renames), the leftovers are only clutter.
        for folder in (run_dir, run_dir / "samples"):
            remove_stale_temp_files(folder)
    if cfg.binarize not in ("threshold", "stochastic"):
        raise ForensicsError(f"binarize must be 'threshold' or 'stochastic', got {cfg.binarize!r}")
    if cfg.binarize == "stochastic" and cfg.model != "pixelcnn-bin":
        raise ForensicsError("stochastic binarization is for pixelcnn-bin, whose Bernoulli head models 0/1 pixels")
    n = len(train_data)
    per_rank = cfg.batch_size // dist.world
    if per_rank < 1 or cfg.batch_size % dist.world:
        raise ForensicsError(f"--batch-size {cfg.batch_size} must be a multiple of the {dist.world} processes")
    batches = n // cfg.batch_size
    if batches == 0 and cfg.epochs > 0:
        raise ForensicsError(f"only {n} training images: fewer than one batch of {cfg.batch_size}")

    last_save = last_log = time.monotonic()
    with _StopFlag() as flag, _progress(dist.main and cfg.epochs > 0, console) as progress:
        epoch_task = progress.add_task(f"{cfg.model} epochs", total=cfg.epochs, completed=state["epoch"], info="")
        step_task = progress.add_task("steps", total=batches, completed=state["batch"], info="")
        while state["epoch"] < cfg.epochs:
            epoch = state["epoch"]
            perm = _permutation(cfg.seed, epoch, n)
            t0 = time.monotonic()
            progress.update(step_task, completed=state["batch"], description=f"epoch {epoch + 1}")
            while state["batch"] < batches:
                b = state["batch"]
                idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size][dist.rank :: dist.world]
                x = train_data.images[idx]
                if cfg.binarize == "stochastic":  # a fresh draw per step, a pure function of (seed, step)
                    x = stochastic_binarize(x, torch.Generator().manual_seed(cfg.seed * 1_000_003 + state["step"]))
                x = x.to(device, non_blocking=True)
                y = train_data.labels[idx].to(device, non_blocking=True)
                metrics = recipe.train_step(x, y, epoch)
                state["batch"] += 1
                state["step"] += 1
                state["history"].append({"step": state["step"], "epoch": epoch, **metrics})
                progress.update(step_task, advance=1, info=_fmt(metrics))
                if not progress.console.is_terminal and time.monotonic() - last_log > 60:
                    say(f"{cfg.model} epoch {epoch + 1} step {state['batch']}/{batches}: {_fmt(metrics)}")
                    last_log = time.monotonic()
                if flag.stop:
                    t0 = _clock(state, t0)
                    save("interrupted")
                    raise TrainingInterrupted(
                        f"{cfg.model}: interrupted at epoch {epoch}, step {state['step']}; "
                        f"checkpoint saved to {ckpt_path}; continue with --resume")
                if (time.monotonic() - last_save) > cfg.checkpoint_minutes * 60:
                    t0 = _clock(state, t0)
                    save("timer")
                    last_save = time.monotonic()
            recipe.end_epoch()
            _clock(state, t0)
            # The epoch's means come from the history, so a run resumed mid-epoch reports the
            # same means as an uninterrupted one (not those of the steps since the resume).
            epoch_rows = [{k: v for k, v in h.items() if k not in ("step", "epoch")}
                          for h in state["history"] if h["epoch"] == epoch]
            summary = {"epoch": epoch + 1, "seconds": round(state.pop("epoch_seconds", 0.0), 2),
                       "threads": torch.get_num_threads(), **_mean(epoch_rows)}
            if dist.main:
                summary.update(recipe.evaluate(test_data))
            state["epochs"].append(summary)
            state["epoch"], state["batch"] = epoch + 1, 0
            if dist.main:
                _write_grid(recipe, cfg, device, run_dir, epoch + 1)
            save("epoch")
            last_save = time.monotonic()
            progress.update(epoch_task, advance=1)
            say(f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}: " + _fmt({k: v for k, v in summary.items() if k != "epoch"}))

    if dist.main:
        if cfg.epochs == 0 or not (run_dir / "samples" / f"epoch_{cfg.epochs:03d}.png").exists():
            _write_grid(recipe, cfg, device, run_dir, state["epoch"])
        if not ckpt_path.exists():
            save("final")
        return _finish(cfg, mcfg, recipe, state, run_dir, image_shape, num_classes, train_data)
    return {}


def _clock(state: dict, t0: float) -> float:
    """Add the time since t0 to the run's and the epoch's training seconds (both survive a
    resume, being in the checkpoint); returns the new t0."""
    now = time.monotonic()
    state["train_seconds"] += now - t0
    state["epoch_seconds"] = state.get("epoch_seconds", 0.0) + now - t0
    return now


def _ddp_wrapper(dist: Dist, device: torch.device) -> Callable:
    if dist.world <= 1:
        return lambda m: m
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return lambda m: DDP(m, device_ids=ids)


def _load_test(cfg: TrainConfig) -> ImageData:
    try:
        return load_dataset(cfg.dataset, train=False, data_dir=cfg.data_dir).subset(cfg.test_limit)
    except ForensicsError:
        if cfg.dataset.lower() in ("mnist", "fashion-mnist"):
            raise
        # An image folder has no test split of its own: evaluate on (a slice of) the training images.
        return load_dataset(cfg.dataset, train=True, data_dir=cfg.data_dir).subset(cfg.test_limit or 1000)


def _check_compatible(ck: dict, cfg: TrainConfig, mcfg, path: Path) -> None:
    if ck.get("format") != CHECKPOINT_FORMAT or ck.get("model_name") != cfg.model:
        raise ForensicsError(f"{path}: not a {cfg.model} training checkpoint")
    if ck["model_config"] != asdict(mcfg):
        raise ForensicsError(f"{path}: was trained with other model settings; resume with the same preset and options")
    defaults = TrainConfig()
    for key in ("batch_size", "seed", "dataset", "train_limit", "binarize"):
        if ck["train_config"].get(key, getattr(defaults, key)) != getattr(cfg, key):
            raise ForensicsError(f"{path}: --{key.replace('_', '-')} differs from the run being resumed "
                                 f"({ck['train_config'][key]!r} vs {getattr(cfg, key)!r})")


def _write_grid(recipe, cfg: TrainConfig, device: torch.device, run_dir: Path, epoch: int) -> None:
    # Re-seeding the same generator every epoch is the "fixed noise" that makes the GIF show learning.
    images = recipe.sample(cfg.n_samples, _fixed_noise_generator(cfg.seed, device)).cpu()
    visuals.save_grid(images, run_dir / "samples" / f"epoch_{epoch:03d}.png", nrow=_grid_cols(cfg.n_samples), scale=2)


def _grid_cols(n: int) -> int:
    return 10 if n % 10 == 0 else max(1, int(math.ceil(math.sqrt(n))))


def _finish(cfg, mcfg, recipe, state, run_dir, image_shape, num_classes, train_data) -> dict:
    frames = sorted((run_dir / "samples").glob("epoch_*.png"))
    visuals.save_evolution_gif(frames, run_dir / "evolution.gif")
    visuals.save_loss_plot(state["history"], run_dir / "losses.png", title=f"{cfg.model} on {cfg.dataset}")
    visuals.save_d_histograms(state["epochs"], run_dir / "d_histograms.png", title=f"{cfg.model}: D on real and generated")
    atomic_save({"format": CHECKPOINT_FORMAT, "model_name": cfg.model, "model_config": asdict(mcfg),
                 "image_shape": list(image_shape), "num_classes": num_classes, "weights": recipe.weights()},
                run_dir / "model.pt")
    metrics = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "train_images": len(train_data),
        "epochs_done": state["epoch"],
        "steps": state["step"],
        "train_seconds": round(state["train_seconds"], 1),
        "final": state["epochs"][-1] if state["epochs"] else {},
        "per_epoch": state["epochs"],
        "train_config": asdict(cfg),
        "model_config": asdict(mcfg),
        # The threads the epochs trained on (a run resumed only to finish would otherwise record
        # the finishing process's).
        "threads": max((e.get("threads", 0) for e in state["epochs"]), default=0) or torch.get_num_threads(),
    }
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2, default=str) + "\n")
    write_manifest(run_dir / "manifest.json", [run_dir / "model.pt", run_dir / "checkpoint.pt"],
                   kind=f"forensics/{cfg.model}", command=cfg.command or " ".join(sys.argv),
                   data={"dataset": cfg.dataset, "train_images": len(train_data)},
                   metrics=metrics["final"], train_seconds=metrics["train_seconds"])
    return metrics


def _mean(rows: list[dict]) -> dict[str, float]:
    keys = {k for r in rows for k in r}
    return {f"train_{k}": round(sum(r[k] for r in rows if k in r) / max(1, sum(k in r for r in rows)), 5) for k in sorted(keys)}


def _fmt(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                    if not isinstance(v, (list, dict)))  # histograms go to the plot, not the log line
