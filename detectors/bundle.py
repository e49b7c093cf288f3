"""The detector's model bundle: one folder with everything scoring needs, checksummed.

    BUNDLE/pixelcnn/model.pt     weights copied from a train-generators run folder
    BUNDLE/dcgan/model.pt
    BUNDLE/fcgan/model.pt
    BUNDLE/vae/model.pt          forgers calibration learned from, not scored with (optional)
    BUNDLE/diffusion/model.pt
    BUNDLE/cnn/model.pt          the ScanCNN trained by calibration (detectors.cnn)
    BUNDLE/font_cnn/model.pt     the FontCNN, the same network trained on font forgeries
    BUNDLE/combiner.json         the fitted combiner: scaler, logistic regression, Platt map
    BUNDLE/human_reference.json  each signal's distribution on human calibration images
    BUNDLE/stability.json        how far a re-scan moved p_machine on calibration images
    BUNDLE/thresholds.json       the verdict thresholds calibration fitted (older bundles: 0.8 / 0.2)
    BUNDLE/page_evidence.json    the page model (forensics.page_lr; `forensics calibrate-pages`; optional)
    BUNDLE/ablation.json, ablation.md   held-out metrics of every signal and the ensemble
    BUNDLE/manifest.json         SHA-256 of every file, training commands, data checksums, metrics

The combiner is stored as plain numbers, never pickled: a bundle may come from anywhere,
and unpickling an sklearn object runs whatever code the file names. Rebuilding the
predictor from its arrays takes a dozen lines and loads nothing executable.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.checkpoint import atomic_write_text, read_manifest, sha256_file, write_manifest
from forensics.errors import CheckpointError, ForensicsError
from forensics.page_lr import PAGE_EVIDENCE_FILE, PageModel

from .cnn import load_cnn, save_cnn
from .signals import ALL_SIGNALS, FRAME, DetectorModels

MODEL_NAMES = ("pixelcnn", "dcgan", "fcgan")  # the generators whose signals score a scan, from a run folder
# Generators calibration draws forgeries from but scoring never runs: optional in a run folder
# and in a bundle (older bundles have none); a bundle carries them so it can be rebuilt from itself
# and so `forensics sample` can draw every family the detector learned.
FORGER_NAMES = ("vae", "diffusion")
CNN_NAMES = ("cnn", "font_cnn")  # the detector's own CNNs, trained by calibration
BUNDLE_MODELS = (*MODEL_NAMES, *CNN_NAMES)
COMBINER_FILE = "combiner.json"
REFERENCE_FILE = "human_reference.json"
STABILITY_FILE = "stability.json"
FAMILIAR_NAME = "familiar_cnn"  # the familiarity CNN: known inputs vs things that are not digits (optional)
FAMILIARITY_FILE = "familiarity.json"
FAMILIARITY_FORMAT = "forensics-familiarity-v1"
ABLATION_FILES = ("ablation.json", "ablation.md")
MANIFEST_FILE = "manifest.json"
BUNDLE_KIND = "forensics/detector-bundle"
COMBINER_FORMAT = "forensics-combiner-v1"
REFERENCE_FORMAT = "forensics-human-reference-v1"
STABILITY_FORMAT = "forensics-stability-v1"
THRESHOLDS_FILE = "thresholds.json"
THRESHOLDS_FORMAT = "forensics-thresholds-v1"
DEFAULT_T_MACHINE = 0.8  # a bundle without thresholds.json: likelihood ratio 4 at the 50/50 prior
DEFAULT_T_HUMAN = 0.2
DEFAULT_BUNDLE = Path(__file__).parent / "bundle"
Z_CLIP = 20.0  # standardised signals are clipped here: one absurd value must not give inf/nan

BUILD_HINT = (
    "Build one with:\n"
    "  forensics train-generators -m pixelcnn -m dcgan -m fcgan --out runs/default\n"
    "  forensics calibrate --run runs/default --out {path}\n"
    "or point --models at an existing bundle folder."
)


# --------------------------------------------------------------------------- the combiner


@dataclass
class Combiner:
    """standardise -> logistic regression -> Platt calibration, as plain arrays.

    p_machine = sigmoid(a * (coef . z + intercept) + b), z = clip((x - mean) / scale).
    Platt rather than isotonic: two numbers, monotone and smooth, so nearby inputs get
    nearby probabilities and no flat steps tie unrelated images.
    """

    signals: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    platt_a: float
    platt_b: float
    info: dict = field(default_factory=dict)  # how it was fitted (counts, chosen signal set, ...)

    def matrix(self, signals: dict[str, np.ndarray]) -> np.ndarray:
        """The combiner's inputs [B, k] in its own signal order, float64."""
        return np.stack([np.asarray(signals[name], dtype=np.float64) for name in self.signals], axis=1)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return np.clip(np.nan_to_num(z, nan=0.0, posinf=Z_CLIP, neginf=-Z_CLIP), -Z_CLIP, Z_CLIP)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """coef_j * z_j [B, k]: how far each signal pushes towards machine (>0) or human (<0),
        relative to the average calibration image."""
        return self.standardise(x) * self.coef

    def decision(self, x: np.ndarray) -> np.ndarray:
        # Column by column in a fixed order, so a row's result never depends on the others.
        parts = self.contributions(x)
        total = np.full(parts.shape[0], self.intercept, dtype=np.float64)
        for j in range(parts.shape[1]):
            total = total + parts[:, j]
        return total

    def log_lr(self, x: np.ndarray) -> np.ndarray:
        """Natural-log likelihood ratio, machine over human: the calibrated log-odds, fitted at a
        50/50 prior (detectors.evidence)."""
        return self.platt_a * self.decision(x) + self.platt_b

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """p_machine [B] for inputs [B, k]."""
        t = self.platt_a * self.decision(x) + self.platt_b
        return 1.0 / (1.0 + np.exp(-np.clip(t, -500, 500)))

    def to_dict(self) -> dict:
        return {
            "format": COMBINER_FORMAT,
            "signals": list(self.signals),
            "scaler": {"mean": self.mean.tolist(), "scale": self.scale.tolist()},
            "logistic_regression": {"coef": self.coef.tolist(), "intercept": float(self.intercept)},
            "calibration": {"method": "platt", "a": float(self.platt_a), "b": float(self.platt_b)},
            "info": self.info,
        }

    def to_json(self) -> str:
        # json writes floats with repr(), which reads back to the identical double.
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: Any, source: str = COMBINER_FILE) -> "Combiner":
        try:
            if d.get("format") != COMBINER_FORMAT:
                raise ValueError(f"format is {d.get('format')!r}, expected {COMBINER_FORMAT!r}")
            signals = [str(s) for s in d["signals"]]
            unknown = sorted(set(signals) - set(ALL_SIGNALS))
            if unknown or not signals:
                raise ValueError(f"unknown signals {unknown}" if unknown else "no signals")
            arrays = [np.asarray(v, dtype=np.float64) for v in
                      (d["scaler"]["mean"], d["scaler"]["scale"], d["logistic_regression"]["coef"])]
            if any(a.shape != (len(signals),) for a in arrays):
                raise ValueError("scaler and coefficients must have one number per signal")
            cal = d["calibration"]
            if cal.get("method") != "platt":
                raise ValueError(f"calibration method {cal.get('method')!r} is not supported")
            scalars = [float(d["logistic_regression"]["intercept"]), float(cal["a"]), float(cal["b"])]
            if not all(np.isfinite(a).all() for a in arrays) or not all(map(math.isfinite, scalars)):
                raise ValueError("non-finite parameters")
            if (arrays[1] <= 0).any():
                raise ValueError("scaler scales must be positive")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: not a valid combiner ({type(exc).__name__}: {exc})") from None
        return cls(signals, arrays[0], arrays[1], arrays[2], scalars[0], scalars[1], scalars[2], dict(d.get("info") or {}))

    @classmethod
    def from_json(cls, text: str, source: str = COMBINER_FILE) -> "Combiner":
        try:
            d = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(d, source)


def _parse(text: str, fmt: str) -> dict:
    """A bundle JSON file's object, checked to be of format ``fmt`` (ValueError if not)."""
    d = json.loads(text)
    if not isinstance(d, dict) or d.get("format") != fmt:
        raise ValueError(f"format is {d.get('format') if isinstance(d, dict) else None!r}, expected {fmt!r}")
    return d


# --------------------------------------------------------------------------- human reference


@dataclass
class HumanReference:
    """Per signal, the 0th..100th percentiles of its value on human calibration images."""

    quantiles: dict[str, np.ndarray]
    counts: dict[str, int]

    LEVELS = np.linspace(0.0, 100.0, 101)

    @classmethod
    def fit(cls, signals: dict[str, np.ndarray]) -> "HumanReference":
        q = {name: np.percentile(np.asarray(v, dtype=np.float64), cls.LEVELS) for name, v in signals.items()}
        return cls(q, {name: int(len(v)) for name, v in signals.items()})

    def percentile(self, name: str, values: np.ndarray) -> np.ndarray:
        """Share of human calibration images (0..100) whose signal is below ``values``."""
        q, levels = self.quantiles[name], self.LEVELS
        v = np.asarray(values, dtype=np.float64)
        between = np.interp(v, q, levels, left=0.0, right=100.0)
        first, last = np.searchsorted(q, v, "left"), np.searchsorted(q, v, "right") - 1
        # A value equal to a flat run of quantiles (a signal with ties) gets the run's middle.
        tied = (last >= first)
        middle = (levels[np.clip(first, 0, 100)] + levels[np.clip(last, 0, 100)]) / 2
        return np.where(tied, middle, between)

    def to_json(self) -> str:
        return json.dumps({
            "format": REFERENCE_FORMAT,
            "levels": self.LEVELS.tolist(),
            "signals": {n: {"quantiles": q.tolist(), "count": self.counts[n]} for n, q in self.quantiles.items()},
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = REFERENCE_FILE) -> "HumanReference":
        try:
            d = _parse(text, REFERENCE_FORMAT)
            q, counts = {}, {}
            for name, entry in d["signals"].items():
                values = np.asarray(entry["quantiles"], dtype=np.float64)
                if values.shape != cls.LEVELS.shape or not np.isfinite(values).all() or (np.diff(values) < 0).any():
                    raise ValueError(f"{name}: expected {len(cls.LEVELS)} finite increasing quantiles")
                q[name], counts[name] = values, int(entry["count"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: not a valid human reference ({type(exc).__name__}: {exc})") from None
        return cls(q, counts)


# --------------------------------------------------------------------------- stability bound


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


@dataclass
class StabilityBound:
    """How far a re-scan (detectors.printscan.rescans) moved p_machine towards the other side on
    calibration images, in logits: a high quantile of max over re-scans (logit p' - logit p) for
    human verdicts (``toward_machine``) and of (logit p - logit p') for machine verdicts
    (``toward_human``). A verdict farther than that from its threshold is not re-scanned under
    Stability.near; ``info`` says how the bounds were measured and what they missed on held-out images."""

    toward_machine: float
    toward_human: float
    info: dict = field(default_factory=dict)

    def could_flip(self, p: np.ndarray, t_machine: float, t_human: float) -> np.ndarray:
        """Boolean [B]: a re-scan could change this verdict (within the bound of its threshold).
        An uncertain verdict never needs one: a re-scan cannot make it anything but uncertain."""
        z = logit(p)
        machine, human = p >= t_machine, p <= t_human
        return ((machine & (z - logit(t_machine) < self.toward_human))
                | (human & (logit(t_human) - z < self.toward_machine)))

    def to_json(self) -> str:
        return json.dumps({"format": STABILITY_FORMAT, "toward_machine_logits": float(self.toward_machine),
                           "toward_human_logits": float(self.toward_human), "info": self.info}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = STABILITY_FILE) -> "StabilityBound":
        try:
            d = _parse(text, STABILITY_FORMAT)
            bounds = [float(d["toward_machine_logits"]), float(d["toward_human_logits"])]
            if not all(math.isfinite(b) and b >= 0 for b in bounds):
                raise ValueError(f"bounds must be finite numbers >= 0, got {bounds}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: not a valid stability bound ({type(exc).__name__}: {exc})") from None
        return cls(*bounds, dict(d.get("info") or {}))


# --------------------------------------------------------------------------- verdict thresholds


@dataclass(frozen=True)
class Thresholds:
    """p_machine >= t_machine: ``machine``; <= t_human: ``human``; between: ``uncertain``. A bundle
    carries the ones calibration fitted (thresholds.json, with ``info`` saying how); options override."""

    t_machine: float = DEFAULT_T_MACHINE
    t_human: float = DEFAULT_T_HUMAN
    info: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        if not 0.0 <= self.t_human < self.t_machine <= 1.0:
            raise ValueError(f"need 0 <= t_human < t_machine <= 1, got t_human={self.t_human}, "
                             f"t_machine={self.t_machine}")

    def to_dict(self) -> dict[str, float]:
        return {"t_machine": float(self.t_machine), "t_human": float(self.t_human)}

    def verdict(self, p: np.ndarray) -> np.ndarray:
        return np.where(p >= self.t_machine, "machine", np.where(p <= self.t_human, "human", "uncertain"))

    def to_json(self) -> str:
        return json.dumps({"format": THRESHOLDS_FORMAT, **self.to_dict(), "info": self.info}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = THRESHOLDS_FILE) -> "Thresholds":
        try:
            d = _parse(text, THRESHOLDS_FORMAT)
            values = [float(d["t_machine"]), float(d["t_human"])]
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"thresholds must be finite, got {values}")
            return cls(*values, dict(d.get("info") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: not valid verdict thresholds ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- familiarity


@dataclass
class Familiarity:
    """When an input is unlike everything the bundle knows (issue 21, item 4): the familiarity
    CNN's logit (unknown > 0, detectors.outliers) above ``threshold`` makes the verdict
    ``uncertain`` with reason ``unfamiliar``, never ``machine`` on novelty alone. The threshold
    is a high quantile of the logit on human calibration images under every capture, which the
    CNN never trained on; ``info`` records it and the share of each source it calls unfamiliar."""

    threshold: float
    info: dict = field(default_factory=dict)

    def unfamiliar(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64) > self.threshold

    def to_json(self) -> str:
        return json.dumps({"format": FAMILIARITY_FORMAT, "threshold_logit": float(self.threshold),
                           "info": self.info}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = FAMILIARITY_FILE) -> "Familiarity":
        try:
            d = _parse(text, FAMILIARITY_FORMAT)
            threshold = float(d["threshold_logit"])
            if not math.isfinite(threshold):
                raise ValueError(f"threshold must be finite, got {threshold}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: not a valid familiarity threshold ({type(exc).__name__}: {exc})") from None
        return cls(threshold, dict(d.get("info") or {}))


# --------------------------------------------------------------------------- loading


@dataclass
class Bundle:
    path: Path
    models: DetectorModels
    combiner: Combiner
    reference: HumanReference
    manifest: dict
    reader: Any  # detectors.reader.FeatureNet: the package's digit reader, not part of the bundle
    stability: StabilityBound | None = None  # None (older bundles): Stability.near re-scans every verdict
    familiarity: Familiarity | None = None  # None (older bundles): no input is called unfamiliar
    thresholds: Thresholds = Thresholds()  # the default verdict thresholds: thresholds.json, or 0.8 / 0.2
    page_model: PageModel | None = None  # None (older bundles): any machine box makes a page machine

    def page_model_meta(self) -> dict | None:
        """The page model as reports carry it (report_meta's ``page_model``)."""
        return None if self.page_model is None else self.page_model.to_dict()


def load_models(folder: str | Path, device: str = "cpu") -> DetectorModels:
    """The models from FOLDER/<name>/model.pt, weights only: a run folder gives the three
    generators (no CNNs), a bundle also its ScanCNN and FontCNN."""
    from generators.load import load_generator

    folder = Path(folder)
    # CheckpointError if missing or unsafe; inference only, no optimiser or recipe is built.
    loaded = {name: load_generator(folder / name, device=device).network for name in MODEL_NAMES}
    pixelcnn = loaded["pixelcnn"].eval()
    cfg = pixelcnn.cfg
    if cfg.image_channels != 1 or cfg.image_size != FRAME:
        raise CheckpointError(f"{folder / 'pixelcnn'}: models {cfg.image_channels}x{cfg.image_size}x{cfg.image_size} "
                              f"images; the detector needs 1x{FRAME}x{FRAME} digits")
    for name in ("dcgan", "fcgan"):
        if tuple(loaded[name].image_shape) != (1, FRAME, FRAME):
            raise CheckpointError(f"{folder / name}: models {loaded[name].image_shape} images, not 1x{FRAME}x{FRAME}")
    cnns = {name: load_cnn(folder / name / "model.pt", device) if (folder / name / "model.pt").exists() else None
            for name in (*CNN_NAMES, FAMILIAR_NAME)}
    return DetectorModels(pixelcnn, loaded["dcgan"], loaded["fcgan"], **cnns)


def load_bundle(path: str | Path | None = None, device: str = "cpu") -> Bundle:
    """Verify every file of a bundle against its manifest, then load it (CheckpointError if not)."""
    path = Path(path) if path is not None else DEFAULT_BUNDLE
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        what = "does not exist" if not path.exists() else f"has no {MANIFEST_FILE} (not a bundle, or an unfinished one)"
        raise CheckpointError(f"no detector bundle at {path}: the folder {what}.\n" + BUILD_HINT.format(path=path))
    manifest = read_manifest(manifest_path, verify=True)  # checks combiner.json, human_reference.json, ...
    if manifest.get("kind") != BUNDLE_KIND:
        raise CheckpointError(f"{manifest_path}: not a detector bundle manifest (kind {manifest.get('kind')!r})")
    listed = manifest.get("files", {})
    for name in (COMBINER_FILE, REFERENCE_FILE):
        if name not in listed:
            raise CheckpointError(f"{manifest_path}: does not list {name}, so it cannot be verified")
    _verify_model_files(path, manifest)
    _verify_model_files(path, manifest, names=bundle_forgers(manifest))  # not loaded to score, but part of it
    combiner = Combiner.from_json(_read(path / COMBINER_FILE), str(path / COMBINER_FILE))
    reference = HumanReference.from_json(_read(path / REFERENCE_FILE), str(path / REFERENCE_FILE))
    missing = sorted(set(ALL_SIGNALS) - set(reference.quantiles))
    if missing:
        raise CheckpointError(f"{path / REFERENCE_FILE}: no reference for signals {missing}")
    stability = (StabilityBound.from_json(_read(path / STABILITY_FILE), str(path / STABILITY_FILE))
                 if STABILITY_FILE in listed else None)
    thresholds = (Thresholds.from_json(_read(path / THRESHOLDS_FILE), str(path / THRESHOLDS_FILE))
                  if THRESHOLDS_FILE in listed else Thresholds())
    familiarity = None
    if FAMILIARITY_FILE in listed:
        if f"{FAMILIAR_NAME}/model.pt" not in manifest.get("model_files", {}):
            raise CheckpointError(f"{manifest_path}: lists {FAMILIARITY_FILE} but not {FAMILIAR_NAME}/model.pt")
        _verify_model_files(path, manifest, names=(FAMILIAR_NAME,))
        familiarity = Familiarity.from_json(_read(path / FAMILIARITY_FILE), str(path / FAMILIARITY_FILE))
    page_model = None
    if PAGE_EVIDENCE_FILE in listed:
        try:
            page_model = PageModel.from_dict(json.loads(_read(path / PAGE_EVIDENCE_FILE)), str(path / PAGE_EVIDENCE_FILE))
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
    from .reader import load_reader

    # The digit reader ships with the package, not in a bundle: it reads digits and knows nothing
    # of machines, so every bundle, shipped or calibrated, uses the same one.
    models = load_models(path, device)
    if familiarity is None:
        models.familiar_cnn = None  # a model.pt the manifest does not vouch for is not used
    return Bundle(path, models, combiner, reference, manifest, load_reader(), stability, familiarity, thresholds,
                  page_model)


def bundle_forgers(manifest: dict) -> tuple[str, ...]:
    """The FORGER_NAMES a bundle's manifest lists."""
    listed = manifest.get("model_files", {})
    return tuple(name for name in FORGER_NAMES if f"{name}/model.pt" in listed)


def generator_dir(name: str, path: str | Path | None = None) -> Path:
    """BUNDLE/<name>/, one of the bundle's generators (MODEL_NAMES and the forgers it carries),
    checked against the bundle's manifest: `forensics sample` and `interpolate` draw from it
    when no run folder is given."""
    path = Path(path) if path is not None else DEFAULT_BUNDLE
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise CheckpointError(f"no detector bundle at {path} (no {MANIFEST_FILE})")
    manifest = read_manifest(manifest_path, verify=False)
    held = (*MODEL_NAMES, *bundle_forgers(manifest))
    if name not in held:
        raise CheckpointError(f"the detector bundle holds {', '.join(held)}, not {name}; "
                              f"train one with forensics train-generators -m {name} and pass --run")
    _verify_model_files(path, manifest, names=(name,))
    return path / name


def load_forgers(folder: str | Path, device: str = "cpu", names: tuple[str, ...] = FORGER_NAMES) -> dict:
    """name -> generators.load.Generator for each of ``names`` with a FOLDER/<name>/model.pt
    (weights only). A bundle's are verified against its manifest first."""
    from generators.load import load_generator

    folder = Path(folder)
    present = tuple(n for n in names if (folder / n / "model.pt").is_file())
    if (folder / MANIFEST_FILE).is_file():
        manifest = read_manifest(folder / MANIFEST_FILE, verify=False)
        if manifest.get("kind") == BUNDLE_KIND:
            present = tuple(n for n in present if n in bundle_forgers(manifest))
            _verify_model_files(folder, manifest, names=present)
    return {n: load_generator(folder / n, device=device) for n in present}


def _verify_model_files(path: Path, manifest: dict, names: tuple[str, ...] = BUNDLE_MODELS) -> None:
    # write_manifest keys its "files" by base name, and all three models are "model.pt",
    # so their checksums travel under "model_files", keyed by path inside the bundle.
    entries = manifest.get("model_files", {})
    for name in names:
        rel = f"{name}/model.pt"
        f = path / rel
        if rel not in entries:
            raise CheckpointError(f"{path / MANIFEST_FILE}: does not list {rel}, so it cannot be verified")
        if not f.is_file():
            raise CheckpointError(f"{f}: listed in {MANIFEST_FILE} but missing")
        if sha256_file(f) != entries[rel].get("sha256"):
            raise CheckpointError(f"{f}: checksum does not match {MANIFEST_FILE}: the file was changed or damaged")


def _read(f: Path) -> str:
    try:
        return f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{f}: unreadable ({exc})") from None


# --------------------------------------------------------------------------- describing


def describe_bundle(bundle: "Bundle | None") -> dict | None:
    """Path, version and verdict scope of a bundle, from its manifest: what reports print about it.

    Bundles carry no version number of their own; their identity is their content, so the
    ``version`` shown is the creation date plus the first 12 hex digits of the SHA-256 of
    the bundle's ``combiner.json`` (as listed in the verified manifest).
    """
    if bundle is None:
        return None
    manifest = getattr(bundle, "manifest", None) or {}
    files = manifest.get("files") or {}
    digest = (files.get("combiner.json") or {}).get("sha256") or ""
    if not digest:  # fall back on every checksum the manifest lists
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest() if files else ""
    created = manifest.get("created")
    metrics = manifest.get("metrics") or {}
    heldout = (metrics.get("heldout_ensemble") or {}).get("all_generators") or {}
    return {
        "path": str(getattr(bundle, "path", "")),
        "created": created,
        "id": digest[:12] or None,
        "version": " ".join(x for x in (created, digest[:12]) if x) or None,
        "manifest_version": manifest.get("manifest_version"),
        "signals": list(getattr(getattr(bundle, "combiner", None), "signals", []) or []),
        "heldout_auroc": heldout.get("auroc"),
        # What the verdicts are worth, from the calibration's held-out half: the share of each
        # known source flagged at 1% of human scans flagged, and of a source left out of it.
        "caught_at_1pct_fpr": _caught(metrics.get("heldout_ensemble"), skip="all_generators"),
        "caught_when_left_out": _caught(metrics.get("leave_one_generator_out")),
    }


def _caught(per_source: Any, skip: str = "") -> dict[str, float]:
    """TPR at 1% FPR per source, from a manifest's metrics."""
    if not isinstance(per_source, dict):
        return {}
    return {str(s): float(m["tpr_at_1pct_fpr"]) for s, m in per_source.items()
            if s != skip and isinstance(m, dict) and isinstance(m.get("tpr_at_1pct_fpr"), (int, float))}


# --------------------------------------------------------------------------- writing


def write_bundle(out: str | Path, run_dir: str | Path, cnns: dict, combiner: Combiner, reference: HumanReference,
                 ablation_json: str, ablation_md: str, stability: StabilityBound | None = None,
                 familiarity: Familiarity | None = None, forgers: tuple[str, ...] = (),
                 thresholds: Thresholds | None = None, **info: Any) -> Path:
    """Copy the run's models (MODEL_NAMES and ``forgers``) into OUT, save the CNNs (``cnns[name]``
    for each of CNN_NAMES, and FAMILIAR_NAME with ``familiarity``: a model, or the path of a
    model.pt to copy as it is) beside them and write the bundle's files, the manifest last.

    The old manifest goes first, so a bundle interrupted half-way fails to load with
    "no manifest" instead of mixing old and new files.
    """
    out, run_dir = Path(out), Path(run_dir)
    if out.resolve() == run_dir.resolve():
        raise ForensicsError(f"--out {out} is the run folder itself; choose another folder for the bundle")
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    model_files = {}
    for name in (FAMILIAR_NAME, *FORGER_NAMES):  # an old bundle's, unless written again below
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (*BUNDLE_MODELS, *forgers, *((FAMILIAR_NAME,) if familiarity is not None else ())):
        target = out / name / "model.pt"
        target.parent.mkdir(parents=True, exist_ok=True)
        source = cnns[name] if name in (*CNN_NAMES, FAMILIAR_NAME) else run_dir / name / "model.pt"
        if isinstance(source, Path):
            tmp = target.with_name(".model.pt.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
        else:
            save_cnn(source, target)
        model_files[f"{name}/model.pt"] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
    atomic_write_text(out / COMBINER_FILE, combiner.to_json())
    atomic_write_text(out / REFERENCE_FILE, reference.to_json())
    atomic_write_text(out / ABLATION_FILES[0], ablation_json)
    atomic_write_text(out / ABLATION_FILES[1], ablation_md)
    files = [out / COMBINER_FILE, out / REFERENCE_FILE, *(out / f for f in ABLATION_FILES)]
    (out / PAGE_EVIDENCE_FILE).unlink(missing_ok=True)  # fitted on the old models: `calibrate-pages` again
    for name, part in ((STABILITY_FILE, stability), (FAMILIARITY_FILE, familiarity), (THRESHOLDS_FILE, thresholds)):
        (out / name).unlink(missing_ok=True)
        if part is not None:
            atomic_write_text(out / name, part.to_json())
            files.append(out / name)
    write_manifest(out / MANIFEST_FILE, files, kind=BUNDLE_KIND, model_files=model_files, **info)
    return out
