"""Speed, in one run on one machine: scoring end to end vs the models alone, PixelCNN sampling
naive vs fast, training throughput (plain, channels_last, torch.compile), and the memory of
scoring 1,000 vs 10,000 scans.

1. scoring: N PNG scans (MNIST test digits, dark ink on white, 84x84) in a temporary folder
   go through detectors.engine.score_paths (the `forensics score` path, stability off):
   reading, decoding, preprocessing, models, records. The same images, already
   preprocessed (the frames the records carry), then go through detectors.score.p_machine
   alone. The ratio of the two times is the price of everything that is not the models
   (target <= 2).
2. PixelCNN sampling of the bundle's PixelCNN, fast (cached) vs naive (one full forward per
   pixel, timed on the first rows and extrapolated; sampling_speed below).
3. training: images/s of one training step of each model with its `full` preset
   (generators/presets.py: batch size and model config), built as generators.train builds
   it, plain vs channels_last vs torch.compile (which needs a C++ compiler on CPU; a failure
   is recorded as "unavailable: <reason>"). GAN images/s counts real images: each step also
   generates as many fakes and updates both networks.
4. costs: milliseconds per image of each step of scoring on one thread (each model on
   fixed chunks as scoring runs it, the PixelCNN's 10 class passes, zlib, the reader,
   preprocessing a PNG scan, making the 4 re-scans) and each one's share of the default
   signals' time: a signal costing more than a fifth must earn it in the ablation.
5. memory: score_paths over 1,000 and over 10,000 scans, each in a fresh child process; the
   child's peak RSS (its VmHWM, the kernel's high-water mark) shows whether memory grows
   with the input count.

    FORENSICS_DATA=/path/to/data python -m benchmarks.speed            # full (~20 min on one thread)
    FORENSICS_DATA=/path/to/data python -m benchmarks.speed --quick    # smoke sizes

Writes OUT/speed.json. Everything runs torch on one thread.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


import numpy as np

from benchmarks.common import (main, ROOT, Timer, log, machine_info, run_sampled, set_threads,
                               write_result, write_scans)

NAME = "speed"
TRAIN_MODELS = ("dcgan", "fcgan", "pixelcnn")
VARIANTS = ("plain", "channels_last", "compile")
SIZES = {
    "full": {"score_n": 1000, "batch_size": 256, "sample_n": 64, "naive_rows": 2,
             "train_steps": {"dcgan": 30, "fcgan": 30, "pixelcnn": 8}, "compile": True,
             "memory_sizes": (1000, 10000), "memory_batch_size": 256},
    # Quick: smoke sizes. The memory runs use batch 8 so that they still stream several batches.
    "quick": {"score_n": 24, "batch_size": 256, "sample_n": 8, "naive_rows": 1,
              "train_steps": {"dcgan": 3, "fcgan": 3, "pixelcnn": 1}, "compile": False,
              "memory_sizes": (16, 48), "memory_batch_size": 8},
}
RATIO_TARGET = 2.0


# --------------------------------------------------------------------------- 1. scoring


def scoring(bundle, folder: Path, batch_size: int) -> dict:
    """End to end vs models alone, timed alternately one batch of files at a time, so that
    other processes' load on a shared machine hits both timings alike."""
    from detectors import signals
    from detectors.engine import score_paths
    from detectors.score import p_machine

    files = [str(f) for f in sorted(folder.glob("*.png"))]
    # Warm-up on a few frames, so neither timing pays for first-call allocations.
    warm = list(score_paths(files[:8], bundle, batch_size=8, stability=False))
    p_machine(np.array([r["preprocessed"] for r in warm], dtype=np.uint8), bundle)

    e2e = forward = models_inside = 0.0
    n_records = n_ok = 0
    same = True
    for i in range(0, len(files), batch_size):
        with Timer(signals, "compute_signals") as models:
            t = time.perf_counter()
            records = list(score_paths(files[i : i + batch_size], bundle, batch_size=batch_size, stability=False))
            e2e += time.perf_counter() - t
        models_inside += models.seconds
        ok = [r for r in records if r["status"] == "ok"]
        frames = np.array([r["preprocessed"] for r in ok], dtype=np.uint8)
        t = time.perf_counter()
        p = p_machine(frames, bundle)
        forward += time.perf_counter() - t
        same = same and bool(np.array_equal(p, np.array([r["p_machine"] for r in ok])))
        n_records += len(records)
        n_ok += len(ok)
    return {
        "n": n_records,
        "scored": n_ok,
        "batch_size": batch_size,
        "stability": False,
        "method": "score_paths on one batch of PNG files, then p_machine on that batch's preprocessed frames, "
                  "alternating batch by batch; times summed",
        "end_to_end_seconds": round(e2e, 3),
        "end_to_end_chars_per_second": round(n_ok / e2e, 2),
        "models_inside_end_to_end_seconds": round(models_inside, 3),
        "forward_seconds": round(forward, 3),
        "forward_chars_per_second": round(n_ok / forward, 2),
        "ratio_end_to_end_to_forward": round(e2e / forward, 3),
        "ratio_target": RATIO_TARGET,
        "meets_target": e2e / forward <= RATIO_TARGET,
        "p_machine_identical": same,  # the two paths give bit-identical scores
    }


# --------------------------------------------------------------------------- 2. sampling


# Naive sampling runs the full network once per pixel (H*W forwards), so on a small CPU it
# takes tens of minutes for 64 digits; naive_rows=k times only the first k rows and
# extrapolates linearly (every naive step is the same full forward), labelled as such in
# the JSON. The direct identity check then covers those k rows.
#
# A second check covers every pixel at the cost of one forward pass ("teacher forced"): run
# the network once on the fast sample and redraw every pixel from those logits with the same
# uniforms. Logits at pixel i depend only on pixels before i, which are the same as when the
# naive sampler drew pixel i, and are computed by the same full-size forward pass (direct
# convolutions never mix other positions into an output), so if every redrawn pixel equals
# the fast sample, the naive sampler would have drawn exactly that image.


def sampling_speed(model, n: int = 64, naive_rows: int = 2, seed: int = 0) -> dict:
    """Time fast vs naive sampling of ``model`` (any weights) and check they draw the same images.

    Naive sampling is timed on the first ``naive_rows`` rows (0 = all) and extrapolated.
    """
    import platform

    import torch

    model = model.eval()
    cfg = model.cfg
    dtype = next(model.parameters()).dtype
    y = torch.arange(n) % cfg.num_classes if cfg.num_classes else None
    height = cfg.image_size
    rows = height if naive_rows <= 0 else min(naive_rows, height)

    t = time.perf_counter()
    fast = model.sample(n, y=y, generator=torch.Generator().manual_seed(seed), method="fast")
    fast_s = time.perf_counter() - t

    # The same uniforms sample() draws; the private helper lets naive stop after `rows` rows.
    u = torch.rand(fast.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    t = time.perf_counter()
    with torch.no_grad():
        naive = model._sample_naive(u, model.condition(y, None, n), rows=rows)
    naive_measured_s = time.perf_counter() - t
    naive_s = naive_measured_s * height / rows

    differ = (fast[:, :, :rows] != naive[:, :, :rows]).flatten(1).any(1)
    with torch.no_grad():
        redrawn = model._draw(model(fast, y), u)
    forced_differ = int((redrawn != fast).sum())
    return {
        "config": vars(cfg),
        "n_images": n,
        "dtype": str(dtype).replace("torch.", ""),
        "torch_threads": torch.get_num_threads(),  # naive runs on these
        "fast_threads": 1,  # the fast sampler pins itself to one thread on CPU (see pixelcnn.py)
        "cpu": platform.processor() or platform.machine(),
        "fast_seconds": round(fast_s, 3),
        "naive_rows_timed": rows,
        "naive_seconds_measured": round(naive_measured_s, 3),
        "naive_seconds": round(naive_s, 3),
        "naive_seconds_extrapolated": rows < height,
        "speedup": round(naive_s / fast_s, 1),
        "identical": not bool(differ.any()),
        "identical_checked_rows": rows,
        "images_differing": int(differ.sum()),
        "teacher_forced_identical": forced_differ == 0,  # every pixel of every image
        "teacher_forced_pixels_differing": forced_differ,
    }


def sampling(bundle, n: int, naive_rows: int, seed: int) -> dict:
    import copy

    import torch


    model = bundle.models.pixelcnn
    out = sampling_speed(model, n=n, naive_rows=naive_rows, seed=seed)
    out["model"] = "the bundle's PixelCNN"
    # The fast and naive samplers compute the same logits up to float rounding, so in float32 a
    # draw can flip when a uniform lies within ~1e-7 of a CDF step. The same teacher-forced check
    # in float64 separates that from a real difference.
    m64 = copy.deepcopy(model).double().eval()
    y = torch.arange(n) % m64.cfg.num_classes if m64.cfg.num_classes else None
    fast = m64.sample(n, y=y, generator=torch.Generator().manual_seed(seed), method="fast")
    u = torch.rand(fast.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        redrawn = m64._draw(m64(fast, y), u)
    out["teacher_forced_pixels_differing_float64"] = int((redrawn != fast).sum())
    out["pixels_total"] = int(fast.numel())
    return out


# --------------------------------------------------------------------------- 3. training


def _recipe(name: str, variant: str, seed: int):
    import torch

    from generators.presets import preset_config
    from generators.train import TrainConfig, build_recipe

    torch.manual_seed(seed)
    cfg = TrainConfig(model=name, device="cpu", amp=False, seed=seed, **preset_config("full", name))
    wrap = (lambda m: torch.compile(m)) if variant == "compile" else (lambda m: m)
    _, recipe = build_recipe(cfg, (1, 28, 28), 10, torch.device("cpu"), wrap)
    if variant == "channels_last":
        modules = [recipe.gan.G, recipe.gan.D] if hasattr(recipe, "gan") else [recipe.model]
        for m in modules:
            m.to(memory_format=torch.channels_last)
    return cfg, recipe


def train_throughput(name: str, variant: str, steps: int, images, labels, seed: int) -> dict:
    import torch

    if variant == "compile":
        torch._dynamo.reset()
    cfg, recipe = _recipe(name, variant, seed)
    b = cfg.batch_size
    x, y = images[:b], labels[:b]
    if variant == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    warmup = 2 if variant == "compile" else 1  # compile: the first steps compile (and may recompile)
    t = time.perf_counter()
    for _ in range(warmup):
        recipe.train_step(x, y, 0)
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        recipe.train_step(x, y, 0)
    s = time.perf_counter() - t
    out = {"batch_size": b, "steps_timed": steps, "seconds": round(s, 3),
           "images_per_second": round(b * steps / s, 1), "warmup_steps": warmup, "warmup_seconds": round(warm_s, 2)}
    if variant == "compile":
        out["compile_seconds_approx"] = round(max(0.0, warm_s - warmup * s / steps), 2)
    return out


def training(steps: dict[str, int], with_compile: bool, seed: int) -> dict:
    import torch

    from forensics.data import load_dataset

    data = load_dataset("mnist", train=True)
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:256]
    images, labels = data.images[perm], data.labels[perm]
    out: dict = {"preset": "full", "note": "images/s of recipe.train_step on one fixed batch of real MNIST digits"}
    for name in TRAIN_MODELS:
        row = {}
        for variant in VARIANTS:
            if variant == "compile" and not with_compile:
                row[variant] = "skipped (quick mode or --no-compile: compiling takes minutes on CPU)"
                continue
            try:
                row[variant] = train_throughput(name, variant, steps[name], images, labels, seed)
            except Exception as exc:  # torch.compile without a working compiler, etc.
                row[variant] = f"unavailable: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
            log(f"speed: training {name} {variant}: "
                f"{row[variant]['images_per_second'] if isinstance(row[variant], dict) else row[variant]}"
                f"{' images/s' if isinstance(row[variant], dict) else ''}")
        plain = row.get("plain")
        for variant in VARIANTS[1:]:
            if isinstance(plain, dict) and isinstance(row.get(variant), dict):
                row[variant]["speedup_vs_plain"] = round(row[variant]["images_per_second"] / plain["images_per_second"], 2)
        out[name] = row
    if with_compile:
        import torch._dynamo

        torch._dynamo.reset()
    return out


# --------------------------------------------------------------------------- 4. memory


def costs(bundle, folder: Path, n: int = 256) -> dict:
    """ms per image of each step of scoring, one thread, median of 3 timings."""
    import torch

    from detectors import printscan
    from detectors.reader import read_digits
    from detectors.signals import CHUNK, chunked, class_log_probs, compressed_bpd
    from forensics.preprocess import preprocess_file

    files = sorted(folder.glob("*.png"))[:n]
    frames = np.stack([preprocess_file(f) for f in files])
    x = torch.from_numpy(frames[:, None]).contiguous()
    m = bundle.models
    steps = {
        "preprocess (PNG scan -> frame)": lambda: [preprocess_file(f) for f in files],
        "dcgan discriminator": lambda: chunked(m.dcgan.discriminate, x, m.device),
        "fcgan discriminator": lambda: chunked(m.fcgan.discriminate, x, m.device),
        "ScanCNN": lambda: chunked(m.cnn, x, m.device),
        "FontCNN": lambda: chunked(m.font_cnn, x, m.device),
        "zlib (compressed_bpd)": lambda: compressed_bpd(x),
        "digit reader": lambda: read_digits(bundle.reader, frames),
        "PixelCNN, 10 class passes (its 5 signals)": lambda: class_log_probs(m.pixelcnn, x),
        "4 re-scans made (before their models)": lambda: [printscan.rescans(f) for f in frames[: n // 4]],
    }
    out = {}
    with torch.no_grad():
        for name, fn in steps.items():
            fn()  # warm-up
            times = []
            for _ in range(3):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            k = n // 4 if name.startswith("4 re-scans") else n
            out[name] = round(1e3 * sorted(times)[1] / k, 4)
    used = set(bundle.combiner.signals)
    fast = sum(out[k] for k in ("dcgan discriminator", "fcgan discriminator", "ScanCNN", "FontCNN",
                                "zlib (compressed_bpd)"))
    return {"ms_per_image": out, "chunk": CHUNK, "n": n, "combiner_signals": sorted(used),
            "pixelcnn_to_other_signals": round(out["PixelCNN, 10 class passes (its 5 signals)"] / fast, 2)}


def _memory_child(folder: str, k: int, batch_size: int) -> None:
    """(In a child process.) Score the first k scans of folder, print one JSON line of figures."""
    from benchmarks.common import proc_status_mb
    from detectors.bundle import DEFAULT_BUNDLE, load_bundle
    from detectors.engine import score_paths

    set_threads()
    bundle = load_bundle(DEFAULT_BUNDLE)
    files = sorted(Path(folder).glob("*.png"))[:k]
    loaded = proc_status_mb()
    t = time.perf_counter()
    count = ok = 0
    for rec in score_paths([str(f) for f in files], bundle, batch_size=batch_size, stability=False):
        count += 1
        ok += rec["status"] == "ok"
    s = time.perf_counter() - t
    print(json.dumps({"records": count, "ok": ok, "seconds": s, "rss_after_bundle_mb": loaded["VmRSS"],
                      "peak_rss_before_scoring_mb": loaded["VmHWM"], "peak_rss_mb": proc_status_mb()["VmHWM"]}))


def memory(folder: Path, sizes: tuple[int, ...], batch_size: int) -> dict:
    rows = []
    for k in sizes:
        cmd = [sys.executable, "-m", "benchmarks.speed", "--memory-child", str(folder), str(k), str(batch_size)]
        r = run_sampled(cmd, cwd=ROOT)
        if r["returncode"] != 0:
            raise RuntimeError(f"memory child for {k} scans failed (exit {r['returncode']}): {r['stderr_tail']}")
        child = json.loads(r["stdout"].strip().splitlines()[-1])
        rows.append({"scans": k, "records": child["records"], "ok": child["ok"],
                     "peak_rss_mb": round(child["peak_rss_mb"], 1),  # the child's own VmHWM at the end
                     "rss_after_bundle_load_mb": round(child["rss_after_bundle_mb"], 1),
                     "growth_while_scoring_mb": round(child["peak_rss_mb"] - child["peak_rss_before_scoring_mb"], 1),
                     "scoring_seconds": round(child["seconds"], 2),
                     "chars_per_second": round(child["records"] / child["seconds"], 2),
                     "process_seconds": round(r["seconds"], 2)})
        log(f"speed: memory {k} scans: peak RSS {rows[-1]['peak_rss_mb']:.0f} MB")
    small, large = rows[0], rows[-1]
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    flat_limit = max(50.0, 0.1 * small["peak_rss_mb"])
    return {"batch_size": batch_size, "stability": False, "runs": rows,
            "peak_growth_mb": round(growth, 1),
            "scans_ratio": round(large["scans"] / small["scans"], 1),
            "flat": growth <= flat_limit,
            "flat_criterion": f"peak RSS grows by <= max(50 MB, 10% of the smaller run's peak) = {flat_limit:.0f} MB"}


# --------------------------------------------------------------------------- run


def run(quick: bool, out_dir: Path, seed: int = 0, **sizes) -> dict:
    """All four parts; ``sizes`` overrides entries of SIZES (e.g. score_n=200, memory_sizes=(100, 300))."""
    from detectors.bundle import DEFAULT_BUNDLE, load_bundle

    set_threads()
    t0 = time.perf_counter()
    size = {**SIZES["quick" if quick else "full"], **sizes}
    unknown = set(sizes) - set(SIZES["full"])
    if unknown:
        raise ValueError(f"unknown sizes {sorted(unknown)}; choose from {sorted(SIZES['full'])}")
    bundle = load_bundle(DEFAULT_BUNDLE)
    result: dict = {"benchmark": NAME, "quick": quick, "seed": seed, "sizes": size, "sizes_overridden": sorted(sizes),
                    "bundle": str(DEFAULT_BUNDLE), "machine": machine_info()}
    with tempfile.TemporaryDirectory(prefix="forensics-speed-") as tmp:
        folder = Path(tmp) / "scans"
        write_scans(folder, size["score_n"])
        t = time.perf_counter()
        result["scoring"] = scoring(bundle, folder, size["batch_size"])
        log(f"speed: scoring {result['scoring']['end_to_end_chars_per_second']} chars/s end to end, "
            f"{result['scoring']['forward_chars_per_second']} models alone, ratio "
            f"{result['scoring']['ratio_end_to_end_to_forward']} ({time.perf_counter() - t:.0f} s)")
        t = time.perf_counter()
        result["pixelcnn_sampling"] = sampling(bundle, size["sample_n"], size["naive_rows"], seed)
        log(f"speed: PixelCNN sampling fast {result['pixelcnn_sampling']['fast_seconds']} s vs naive "
            f"{result['pixelcnn_sampling']['naive_seconds']} s ({time.perf_counter() - t:.0f} s)")
        result["costs"] = costs(bundle, folder, min(256, size["score_n"]))
        result["training"] = training(size["train_steps"], size["compile"], seed)
        mem_folder = Path(tmp) / "memory"
        write_scans(mem_folder, max(size["memory_sizes"]))
        result["memory"] = memory(mem_folder, size["memory_sizes"], size["memory_batch_size"])
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_result(out_dir, NAME, result)
    return result


def _cost_lines(c: dict | None) -> list[str]:
    if not c:
        return []
    return [f"| step of scoring (one thread, chunks of {c['chunk']}) | ms per image |", "|---|---:|",
            *[f"| {k} | {v:.3f} |" for k, v in c["ms_per_image"].items()], "",
            f"The PixelCNN's class passes cost {c['pixelcnn_to_other_signals']:g}x the other signals' models "
            f"together; the bundle's combiner uses {', '.join(c['combiner_signals'])}.", ""]


def markdown(result: dict) -> str:
    sc, sa, tr, me = result["scoring"], result["pixelcnn_sampling"], result["training"], result["memory"]
    cfg = sa["config"]
    lines = [
        f"One CPU thread, {result['machine']['cpu_count']} cores shared with other work (1-min load average "
        f"{result['machine']['load_average_1min']} at the end){'; quick mode: smoke-test sizes' if result['quick'] else ''}.",
        "",
        f"| scoring {sc['scored']} scans, stability off | seconds | chars/s |",
        "|---|---:|---:|",
        f"| end to end (`score_paths` over PNG files: read, preprocess, models, records) | {sc['end_to_end_seconds']:.1f} | {sc['end_to_end_chars_per_second']:.1f} |",
        f"| models alone (`p_machine` on the preprocessed frames) | {sc['forward_seconds']:.1f} | {sc['forward_chars_per_second']:.1f} |",
        f"| **ratio end to end / models** (target <= {sc['ratio_target']:g}) | **{sc['ratio_end_to_end_to_forward']:.2f}** | |",
        "",
        "(Timed alternately, one batch of files end to end, then the same frames through the models alone.)",
        "",
        f"PixelCNN sampling ({sa['model']}: {cfg['channels']} channels, {cfg['n_layers']} blocks), {sa['n_images']} images: "
        f"fast {sa['fast_seconds']:.2f} s, naive {sa['naive_seconds']:.1f} s"
        f"{' (extrapolated from ' + str(sa['naive_rows_timed']) + ' rows)' if sa['naive_seconds_extrapolated'] else ''}, "
        f"{sa['speedup']:g}x. Same images: naive and fast agree on every pixel of the {sa['naive_rows_timed']} "
        f"rows timed ({sa['images_differing']} images differ); redrawn from one forward pass of the fast samples "
        f"(every pixel), {sa['teacher_forced_pixels_differing']} of {sa['pixels_total']:,} pixels differ in float32 "
        f"and {sa['teacher_forced_pixels_differing_float64']} in float64 (float32 rounding can flip a draw that "
        f"lies within ~1e-7 of a CDF step).",
        "",
        *_cost_lines(result.get("costs")),
        "| training, `full` preset (images/s) | batch | plain | channels_last | torch.compile |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in TRAIN_MODELS:
        row = tr[name]
        cells = []
        for v in VARIANTS:
            c = row[v]
            if isinstance(c, dict):
                extra = f" ({c['speedup_vs_plain']:.2f}x)" if "speedup_vs_plain" in c else ""
                cells.append(f"{c['images_per_second']:.1f}{extra}")
            else:
                cells.append(c.split(":")[0] if c.startswith("unavailable") else c.split(" (")[0])
        batch = next((row[v]["batch_size"] for v in VARIANTS if isinstance(row[v], dict)), "-")
        lines.append(f"| {name} | {batch} | " + " | ".join(cells) + " |")
    compile_notes = [f"{n}: {tr[n]['compile']}" for n in TRAIN_MODELS if isinstance(tr[n]["compile"], str)
                     and tr[n]["compile"].startswith("unavailable")]
    if compile_notes:
        lines += ["", "torch.compile " + "; ".join(compile_notes)]
    lines += ["", f"| memory (`score_paths`, batch {me['batch_size']}, child process) | peak RSS MB | growth while scoring MB | chars/s |",
              "|---|---:|---:|---:|"]
    for r in me["runs"]:
        lines.append(f"| {r['scans']:,} scans | {r['peak_rss_mb']:.0f} | {r['growth_while_scoring_mb']:.0f} | {r['chars_per_second']:.1f} |")
    lines += ["", f"Memory is {'flat' if me['flat'] else '**not flat**'}: {me['scans_ratio']:g}x the scans, "
                  f"{me['peak_growth_mb']:+.0f} MB peak ({me['flat_criterion']})."]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        _memory_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(run, markdown, __doc__, options=(
            (("--score-n",), {"type": int, "help": f"scans for part 1 (default {SIZES['full']['score_n']})"}),
            (("--memory-sizes",), {"type": lambda v: tuple(int(x) for x in v.split(",")),
                                   "help": "comma-separated scan counts for part 4"}),
            (("--no-compile",), {"dest": "compile", "action": "store_false", "default": None,
                                 "help": "skip torch.compile in part 3"}),))
