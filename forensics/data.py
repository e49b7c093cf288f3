"""Training data: MNIST, Fashion-MNIST or any image folder, as tensors.

The data root is resolved as: explicit ``--data-dir`` > ``$FORENSICS_DATA`` > a per-user
cache folder where torchvision may download (for users who are online).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .checkpoint import sha256_file
from .errors import DataMissingError

ENV_VAR = "FORENSICS_DATA"
BUILTIN = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
RAW_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "forensics" / "data"


def resolve_data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Where data sets live: the option, else $FORENSICS_DATA, else the user cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_cache_dir()


@dataclass
class ImageData:
    """Images as uint8 [N, C, H, W] plus integer labels; small enough to hold in memory."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    name: str

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, n: int | None) -> "ImageData":
        if n is None or n >= len(self):
            return self
        return ImageData(self.images[:n], self.labels[:n], self.num_classes, self.name)


def _missing_message(name: str, root: Path, cause: Exception | None) -> str:
    folder = root / BUILTIN[name] / "raw"
    files = "\n".join(f"  {folder / f}" for f in RAW_FILES)
    return (
        f"{name} is not available under {root} and could not be downloaded"
        + (f" ({type(cause).__name__}: {cause})" if cause else "")
        + f".\nExpected these files (uncompressed IDX, or the same names with .gz):\n{files}\n"
        f"Fix: go online once so torchvision can download it, or copy the files there, or "
        f"point --data-dir / ${ENV_VAR} at a folder that holds {BUILTIN[name]}/raw/."
    )


def load_builtin(name: str, train: bool, root: Path, download: bool = True) -> ImageData:
    """MNIST or Fashion-MNIST through torchvision; downloads only if the files are absent."""
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    try:
        ds = cls(root=str(root), train=train, download=False)
    except RuntimeError as first:
        if not download:
            raise DataMissingError(_missing_message(name, root, None)) from first
        try:
            ds = cls(root=str(root), train=train, download=True)
        except Exception as exc:  # no network, permission denied, bad mirror...
            raise DataMissingError(_missing_message(name, root, exc)) from exc
    return ImageData(ds.data.unsqueeze(1).contiguous(), ds.targets.clone(), 10, name)


def load_folder(path: Path, image_size: int = 64, grey: bool = False) -> ImageData:
    """Any torchvision ImageFolder (one sub-folder per class), resized and centre-cropped."""
    from torchvision import datasets, transforms

    if not path.is_dir():
        raise DataMissingError(f"{path}: not a folder of images (expected <class>/<image> files)")
    tf = [transforms.Resize(image_size), transforms.CenterCrop(image_size)]
    if grey:
        tf.append(transforms.Grayscale(1))
    tf.append(transforms.PILToTensor())
    try:
        ds = datasets.ImageFolder(str(path), transform=transforms.Compose(tf))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataMissingError(f"{path}: {exc}") from exc
    images = torch.stack([img if img.shape[0] in (1, 3) else img[:3] for img, _ in ds])
    if images.shape[1] == 1 and not grey:
        images = images.expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(ds.targets)
    return ImageData(images, labels, len(ds.classes), path.name)


def load_dataset(
    name: str,
    train: bool = True,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    image_size: int = 64,
) -> ImageData:
    """The one entry point trainers use: a built-in name or a path to an image folder."""
    if name.lower() in BUILTIN:
        return load_builtin(name.lower(), train, resolve_data_root(data_dir), download)
    return load_folder(Path(name).expanduser(), image_size=image_size)


class Uint8ImageDataset(Dataset):
    """Wraps ImageData for DataLoader/DistributedSampler use."""

    def __init__(self, data: ImageData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return self.data.images[i], self.data.labels[i]


def data_checksums(dataset: str, data_dir: str | None) -> dict[str, str]:
    """SHA-256 of the data set's raw files as found on disk (which train/test data was used)."""
    folder = resolve_data_root(data_dir) / BUILTIN[dataset] / "raw"
    out = {}
    for name in RAW_FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                out[candidate.name] = sha256_file(candidate)
                break
    return out
