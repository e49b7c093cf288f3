"""`forensics score --engine ray` on a real local Ray instance with 2 workers: the same records as
the local engine, in input order, errors included. Skipped where Ray is not installed
(pip install '.[ray]'; CI installs it)."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image
from typer.testing import CliRunner

from detectors.engine import score_paths
from forensics.cli import app

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")


@pytest.fixture(scope="module")
def local_ray():
    os.environ.pop("RAY_ADDRESS", None)  # a local instance, as a user without a cluster gets
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_gives_the_local_records_in_order(local_ray, tiny_bundle, tiny_bundle_dir, mnist_test_frames,
                                                     tmp_path):
    from detectors import ray_engine
    from forensics.inputs import expand_inputs

    for i, frame in enumerate(mnist_test_frames[:9]):
        Image.fromarray(255 - frame).resize((56, 56)).save(tmp_path / f"s{i:02d}.png")
    (tmp_path / "s04b.png").write_bytes(b"broken")  # an error in the middle
    args = [str(tmp_path), str(tmp_path / "missing.png")]  # and a path that does not exist
    local = list(score_paths(args, tiny_bundle, batch_size=4, stability=True, workers=1))
    done = []
    on_ray = list(ray_engine.score_items(expand_inputs(args), tiny_bundle, batch_size=4, stability=True, workers=2,
                                         progress=done.append))
    assert [r["status"] for r in local].count("error") == 2
    assert on_ray == local and sum(done) == len(local)

    out = tmp_path / "ray.json"  # and through the command line, as a user runs it
    r = CliRunner().invoke(app, ["score", *args, "--models", str(tiny_bundle_dir), "--engine", "ray", "--workers", "2",
                                 "--batch-size", "4", "--format", "json", "--output", str(out)])
    assert r.exit_code == 1, r.output  # the two failed inputs
    assert json.loads(out.read_text()) == local
