"""`forensics train-generators`, `train-reader`, `sample` and `interpolate`: thin commands over generators/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.markup import escape

from forensics.errors import EXIT_INTERRUPTED, EXIT_MISSING, CheckpointError, DataMissingError, ForensicsError

from .options import DataDir, Latent, Model, Preset, Seed, Walk, check_device, err, fail, set_threads

DEFAULT_MODELS = (Model.pixelcnn, Model.pixelcnn_bin, Model.dcgan, Model.fcgan)
Run = Annotated[Optional[Path], typer.Option(
    help="Run folder written by train-generators. Default: the generators in the shipped detector bundle "
         "(pixelcnn, dcgan, fcgan).")]


def _recorded_command() -> str:
    # Recorded in manifests as typed, space-joined; runs are reused by comparing this string.
    return " ".join(["forensics", *sys.argv[1:]])


def train_generators(
    model: Annotated[List[Model], typer.Option(
        "--model", "-m", help="Model to train (repeatable). Default: pixelcnn, pixelcnn-bin, dcgan, fcgan.")] = [],
    dataset: Annotated[str, typer.Option(help="mnist, fashion-mnist, or a folder of images (one sub-folder per class).")] = "mnist",
    data_dir: DataDir = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder; each model gets OUT/<model>/.")] = Path("runs/default"),
    preset: Annotated[Preset, typer.Option(help="smoke: tiny models for seconds; full: the real recipe.")] = Preset.full,
    epochs: Annotated[Optional[int], typer.Option(min=0, help="Epochs (0: just write a sample grid of the untrained model). Default: the preset's.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Global batch size (split over torchrun processes). Default: the preset's.")] = None,
    lr: Annotated[Optional[float], typer.Option(min=0.0, help="Learning rate. Default: the preset's.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for weights, data order and noise: same seed, same run.")] = 0,
    device: Annotated[str, typer.Option(help="auto (GPU if present), cpu, cuda, cuda:1, ...")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/<model>/checkpoint.pt.")] = False,
    checkpoint_minutes: Annotated[float, typer.Option(min=0.0, help="Also checkpoint every N minutes within an epoch.")] = 10.0,
    train_limit: Annotated[Optional[int], typer.Option(min=1, help="Use only the first N training images.")] = None,
) -> None:
    """Train the forgers' generators (and the discriminators and likelihoods the detectors use).

    Works the same under `torchrun --nproc_per_node N forensics train-generators ...`."""
    from generators.presets import preset_config
    from generators.train import TrainConfig, TrainingInterrupted, train

    for name in [m.value for m in (model or DEFAULT_MODELS)]:
        try:
            fields = preset_config(preset.value, name)
        except KeyError as exc:
            raise fail(exc.args[0])
        for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("train_limit", train_limit)):
            if value is not None:
                fields[key] = value
        cfg = TrainConfig(model=name, dataset=dataset, data_dir=str(data_dir) if data_dir else None, out=str(out),
                          seed=seed, device=device, checkpoint_minutes=checkpoint_minutes,
                          command=_recorded_command(), **fields)
        try:
            metrics = train(cfg, resume=resume, console=err)
        except TrainingInterrupted as exc:
            raise fail(exc, EXIT_INTERRUPTED)
        except (DataMissingError, CheckpointError) as exc:
            raise fail(exc, EXIT_MISSING)
        except ForensicsError as exc:
            raise fail(exc)
        if metrics:
            err.print(f"[green]{name}[/]: {metrics['epochs_done']} epochs, {metrics['train_seconds']} s; "
                      f"results in {escape(str(out / name))}")


def train_reader(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for model.pt and manifest.json (the shipped reader is detectors/reader_net).")],
    seed: Annotated[int, typer.Option(help="Seed for weights and data order (deterministic on one thread).")] = 0,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs over MNIST train.")] = 3,
    data_dir: DataDir = None,
    train_limit: Annotated[Optional[int], typer.Option(min=1, help="Use only the first N training images.")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Torch CPU threads (1: deterministic, and fastest on a shared machine).")] = 1,
) -> None:
    """Train the digit reader (the `digit` of every record, the features of the quality benchmark) on MNIST train."""
    from detectors.train_reader import train_reader as run

    set_threads(threads)
    try:
        info = run(out, seed=seed, epochs=epochs, data_dir=str(data_dir) if data_dir else None,
                   command=_recorded_command(), train_limit=train_limit, log=err.print)
    except DataMissingError as exc:
        raise fail(exc, EXIT_MISSING)
    err.print(f"test accuracy {info['test_accuracy']:.4f} ({info['scan_test_accuracy']:.4f} as scans) after "
              f"{info['train_seconds']:.0f} s; reader in {escape(str(out))}", highlight=False)


def _generator(model: str, run: Optional[Path], device: str):
    """The trained generator: from RUN/<model>/, or from the shipped bundle when run is None."""
    from detectors.bundle import generator_dir
    from generators.load import load_generator

    try:
        folder = run / model if run is not None else generator_dir(model)
        gen = load_generator(folder, device=device)
    except ForensicsError as exc:
        raise fail(exc, EXIT_MISSING)
    if run is None:
        err.print(f"using the shipped bundle's {model} ({escape(str(folder))}); --run RUN for your own", highlight=False)
    return gen


def sample(
    model: Annotated[Model, typer.Option("--model", "-m", help="The generator to draw from.")] = Model.pixelcnn,
    run: Run = None,
    n: Annotated[int, typer.Option("-n", min=1, help="Number of samples.")] = 64,
    digit: Annotated[Optional[int], typer.Option(min=0, max=9, help="Digit to draw (class-conditional PixelCNN or VAE); default: all digits in turn.")] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="PNG grid to write; or a folder (an existing one, or a path "
                                                        "ending in /) for one 28x28 PNG per sample, named by index "
                                                        "and digit, ready for `forensics score`.")] = "samples.png",
    seed: Seed = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Draw samples from a trained generator into one PNG grid, or one PNG per sample."""
    import torch

    from generators.visuals import save_grid, save_pngs

    check_device(device)
    gen = _generator(model.value, run, device)
    if digit is not None and not gen.conditional:
        raise fail(f"--digit needs a class-conditional model (PixelCNN, VAE); {model.value} is not one")
    images = gen.sample(n, torch.Generator(device=device).manual_seed(seed), digit=digit)
    target = Path(out)
    if out.endswith(("/", "\\")) or target.is_dir():
        digits = ([digit] * n if digit is not None else [i % 10 for i in range(n)]) if gen.conditional else None
        try:
            save_pngs(images, target, digits)
        except OSError as exc:
            raise fail(f"{target}: cannot write ({exc.strerror or exc})")
        err.print(f"wrote {n} {model.value} samples as PNGs to {escape(str(target))}/")
        return
    save_grid(images.cpu(), target, nrow=10 if n % 10 == 0 else None, scale=2)
    err.print(f"wrote {n} {model.value} samples to {escape(str(target))}")


def interpolate(
    model: Annotated[Latent, typer.Option("--model", "-m", help="The model whose latent space to walk: a GAN's noise, the VAE's code, the diffusion model's initial noise.")] = Latent.dcgan,
    run: Run = None,
    mode: Annotated[Walk, typer.Option(help="slerp (spherical), lerp (linear) between two points, or dim (one latent dimension).")] = Walk.slerp,
    steps: Annotated[int, typer.Option(min=2, help="Images in the strip.")] = 10,
    rows: Annotated[int, typer.Option(min=1, help="How many strips (pairs of end points) to draw.")] = 4,
    dim: Annotated[int, typer.Option(min=0, help="Latent dimension to vary with --mode dim.")] = 0,
    span: Annotated[float, typer.Option(help="With --mode dim: vary the dimension from -span to +span.")] = 3.0,
    digit: Annotated[Optional[int], typer.Option(min=0, max=9, help="The VAE's or diffusion model's digit for every strip; default: strip k draws digit k mod 10.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG strip to write.")] = Path("interpolation.png"),
    seed: Annotated[int, typer.Option(help="Seed for the end points.")] = 0,
) -> None:
    """Walk the latent space of a trained GAN, VAE or diffusion model and write the images as strips."""
    import torch

    from generators.interpolate import along_dim, lerp, slerp
    from generators.visuals import save_grid

    net = _generator(model.value, run, "cpu").network
    if model in (Latent.vae, Latent.diffusion):
        conditional = net.cfg.num_classes > 0

        def label(k: int):
            return (digit if digit is not None else k % 10) if conditional else None

        if model is Latent.vae:
            z_dim = net.cfg.latent_dim
            decode = lambda zs, k: net.render(net.latent(zs, label(k)), label(k))  # noqa: E731
        else:  # the diffusion model's initial noise: DDIM with eta = 0 maps it to one image
            shape = (net.cfg.image_channels, net.cfg.image_size, net.cfg.image_size)
            z_dim = shape[0] * shape[1] * shape[2]
            decode = lambda zs, k: net.sample(len(zs), y=label(k), noise=zs.view(-1, *shape))  # noqa: E731
    else:
        if digit is not None:
            raise fail(f"--digit needs the class-conditional VAE or diffusion model; {model.value} is not conditional")
        z_dim = net.cfg.z_dim
        decode = lambda zs, k: net.generate(zs)  # noqa: E731
    if dim >= z_dim:
        raise fail(f"--dim must be 0..{z_dim - 1}")
    g = torch.Generator().manual_seed(seed)
    strips = []
    for k in range(rows):
        z0, z1 = torch.randn(z_dim, generator=g), torch.randn(z_dim, generator=g)
        if mode is Walk.dim:
            zs = along_dim(z0, dim, torch.linspace(-span, span, steps))
        else:
            zs = (slerp if mode is Walk.slerp else lerp)(z0, z1, steps)
        strips.append(decode(zs, k))
    save_grid(torch.cat(strips), out, nrow=steps, scale=2)
    err.print(f"wrote {rows} {mode.value} strips of {steps} {model.value} images to {escape(str(out))}")
