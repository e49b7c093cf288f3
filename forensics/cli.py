"""The `forensics` command line: a thin layer over functions the tests call directly."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import EXIT_MISSING, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, CheckpointError

app = typer.Typer(
    help="Tell human handwriting from machine-made characters in scanned forms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"forensics {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Exit codes: 0 all inputs processed; 1 some inputs failed (the rest were processed);
    2 bad usage or nothing to process; 3 data, checkpoint or model missing; 130 interrupted."""


@app.command()
def preprocess(
    scans: List[str] = typer.Argument(..., help="Scan files, folders (searched recursively) or glob patterns."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the 28x28 PNGs the models will see."),
) -> None:
    """Bring scans to the MNIST frame (28x28, ink bright, centred) and write them as PNGs."""
    from .preprocess import preprocess_to_folder

    ok, failed = preprocess_to_folder(scans, out, console=err)
    if ok + failed == 0:
        err.print("[red]error:[/] no input files found")
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _fail(exc: Exception, code: int) -> "typer.Exit":
    err.print(f"[red]error:[/] {escape(str(exc))}")
    return typer.Exit(code)


def _check_device(name: str) -> None:
    """A --device the models can load on, or a usage error saying why (a CUDA name on a
    machine without CUDA otherwise surfaces as 'not a readable checkpoint')."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise _fail(ValueError(f"--device {name!r}: {exc}"), EXIT_USAGE) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise _fail(ValueError(f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu"), EXIT_USAGE)


def _bundle(models: Optional[Path], device: str = "cpu"):
    """The detector bundle for score and report (the shipped one when models is None)."""
    from detectors.bundle import load_bundle

    _check_device(device)
    try:
        return load_bundle(models, device=device)
    except CheckpointError as exc:
        raise _fail(exc, EXIT_MISSING)


@app.command("train-generators")
def train_generators(
    model: List[str] = typer.Option(
        [], "--model", "-m",
        help="Model to train (repeatable): pixelcnn, pixelcnn-bin, autoencoder, dcgan, fcgan. "
             "Default: pixelcnn, pixelcnn-bin, dcgan, fcgan."),
    dataset: str = typer.Option("mnist", help="mnist, fashion-mnist, or a folder of images (one sub-folder per class)."),
    data_dir: Optional[Path] = typer.Option(None, help="Data root (default: $FORENSICS_DATA, else a user cache folder)."),
    out: Path = typer.Option(Path("runs/default"), "--out", "-o", help="Run folder; each model gets OUT/<model>/."),
    preset: str = typer.Option("full", help="smoke: tiny models for seconds; full: the real recipe."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (0: just write a sample grid of the untrained model). Default: the preset's."),
    batch_size: Optional[int] = typer.Option(None, help="Global batch size (split over torchrun processes). Default: the preset's."),
    lr: Optional[float] = typer.Option(None, help="Learning rate. Default: the preset's."),
    seed: int = typer.Option(0, help="Seed for weights, data order and noise: same seed, same run."),
    device: str = typer.Option("auto", help="auto (GPU if present), cpu, cuda, cuda:1, ..."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/<model>/checkpoint.pt."),
    checkpoint_minutes: float = typer.Option(10.0, help="Also checkpoint every N minutes within an epoch."),
    train_limit: Optional[int] = typer.Option(None, help="Use only the first N training images."),
) -> None:
    """Train the forgers' generators (and the discriminators and likelihoods the detectors use).

    Works the same under `torchrun --nproc_per_node N forensics train-generators ...`."""
    import sys

    from generators.presets import preset_config
    from generators.train import DEFAULT_MODELS, MODELS, TrainConfig, TrainingInterrupted, train

    from .errors import EXIT_INTERRUPTED, EXIT_MISSING, CheckpointError, DataMissingError, ForensicsError

    models = model or list(DEFAULT_MODELS)
    bad = [m for m in models if m not in MODELS]
    if bad:
        raise _fail(ValueError(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODELS)}"), EXIT_USAGE)
    for name in models:
        try:
            fields = preset_config(preset, name)
        except KeyError as exc:
            raise _fail(ValueError(exc.args[0]), EXIT_USAGE)
        for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("train_limit", train_limit)):
            if value is not None:
                fields[key] = value
        cfg = TrainConfig(model=name, dataset=dataset, data_dir=str(data_dir) if data_dir else None, out=str(out),
                          seed=seed, device=device, checkpoint_minutes=checkpoint_minutes,
                          command=" ".join(["forensics", *sys.argv[1:]]), **fields)
        try:
            metrics = train(cfg, resume=resume, console=err)
        except TrainingInterrupted as exc:
            raise _fail(exc, EXIT_INTERRUPTED)
        except (DataMissingError, CheckpointError) as exc:
            raise _fail(exc, EXIT_MISSING)
        except ForensicsError as exc:
            raise _fail(exc, EXIT_USAGE)
        if metrics:
            err.print(f"[green]{name}[/]: {metrics['epochs_done']} epochs, {metrics['train_seconds']} s; "
                      f"results in {escape(str(out / name))}")


def _load_model(run: Path, name: str, device: str):
    from generators.train import load_weights

    from .errors import EXIT_MISSING, ForensicsError

    try:
        return load_weights(run / name, device=device)
    except ForensicsError as exc:
        raise _fail(exc, EXIT_MISSING)


@app.command()
def sample(
    model: str = typer.Option("pixelcnn", "--model", "-m", help="pixelcnn, pixelcnn-bin, autoencoder, dcgan or fcgan."),
    run: Path = typer.Option(Path("runs/default"), help="Run folder written by train-generators."),
    n: int = typer.Option(64, "-n", help="Number of samples."),
    digit: Optional[int] = typer.Option(None, help="Class to draw (class-conditional PixelCNN only); default: all digits in turn."),
    out: Path = typer.Option(Path("samples.png"), "--out", "-o", help="PNG grid to write."),
    seed: int = typer.Option(0, help="Seed: same seed, same samples."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
) -> None:
    """Draw samples from a trained generator into one PNG grid."""
    import torch

    from generators.visuals import save_grid

    _check_device(device)
    recipe = _load_model(run, model, device)
    g = torch.Generator(device=device).manual_seed(seed)
    if digit is not None:
        if model not in ("pixelcnn", "pixelcnn-bin") or not recipe.conditional:
            raise _fail(ValueError(f"--digit needs a class-conditional PixelCNN; {model} is not one"), EXIT_USAGE)
        if not 0 <= digit < recipe.model.cfg.num_classes:
            raise _fail(ValueError(f"--digit must be 0..{recipe.model.cfg.num_classes - 1}"), EXIT_USAGE)
        recipe.model.eval()
        y = torch.full((n,), digit, dtype=torch.long, device=device)
        images = recipe.model.sample(n, y=y, generator=g)
    else:
        images = recipe.sample(n, g)
    save_grid(images.cpu(), out, nrow=10 if n % 10 == 0 else None, scale=2)
    err.print(f"wrote {n} {model} samples to {escape(str(out))}")


@app.command()
def interpolate(
    model: str = typer.Option("dcgan", "--model", "-m", help="dcgan or fcgan."),
    run: Path = typer.Option(Path("runs/default"), help="Run folder written by train-generators."),
    mode: str = typer.Option("slerp", help="slerp (spherical), lerp (linear) between two points, or dim (one latent dimension)."),
    steps: int = typer.Option(10, help="Images in the strip."),
    rows: int = typer.Option(4, help="How many strips (pairs of end points) to draw."),
    dim: int = typer.Option(0, help="Latent dimension to vary with --mode dim."),
    span: float = typer.Option(3.0, help="With --mode dim: vary the dimension from -span to +span."),
    out: Path = typer.Option(Path("interpolation.png"), "--out", "-o", help="PNG strip to write."),
    seed: int = typer.Option(0, help="Seed for the end points."),
) -> None:
    """Walk the latent space of a trained GAN and write the images as strips."""
    import torch

    from generators.interpolate import along_dim, lerp, slerp
    from generators.visuals import save_grid

    if model not in ("dcgan", "fcgan"):
        raise _fail(ValueError("interpolate works on the GANs: --model dcgan or fcgan"), EXIT_USAGE)
    if mode not in ("slerp", "lerp", "dim"):
        raise _fail(ValueError("--mode must be slerp, lerp or dim"), EXIT_USAGE)
    gan = _load_model(run, model, "cpu").gan
    g = torch.Generator().manual_seed(seed)
    z_dim = gan.cfg.z_dim
    if not 0 <= dim < z_dim:
        raise _fail(ValueError(f"--dim must be 0..{z_dim - 1}"), EXIT_USAGE)
    strips = []
    for _ in range(rows):
        z0, z1 = torch.randn(z_dim, generator=g), torch.randn(z_dim, generator=g)
        if mode == "dim":
            zs = along_dim(z0, dim, torch.linspace(-span, span, steps))
        else:
            zs = (slerp if mode == "slerp" else lerp)(z0, z1, steps)
        strips.append(gan.generate(zs))
    save_grid(torch.cat(strips), out, nrow=steps, scale=2)
    err.print(f"wrote {rows} {mode} strips of {steps} {model} images to {escape(str(out))}")
from . import cli_detect  # noqa: E402,F401  (registers score, calibrate, evaluate)
from . import cli_report  # noqa: E402,F401  (registers report)
