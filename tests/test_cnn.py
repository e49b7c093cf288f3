"""The ScanCNN (detectors/cnn.py): it learns, it is seeded, it round-trips as weights only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detectors.cnn import CNNConfig, ScanCNN, for_inference, load_cnn, save_cnn, train_cnn
from forensics.checkpoint import atomic_save
from forensics.errors import CheckpointError

TINY = CNNConfig(channels=(8, 8, 16), hidden=16, epochs=4, batch_size=32, lr=3e-3)


def _toy(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """"Human" = a vertical stroke, "machine" = the same stroke with speckle beside it."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    col = rng.integers(8, 20, n)
    for i in range(n):
        x[i, 4:24, col[i] : col[i] + 3] = 255
    y = (np.arange(n) % 2).astype(np.int64)
    speckle = (rng.random((n, 28, 28)) < 0.05) & (y[:, None, None] == 1)
    x[speckle] = 200
    return x, y


def test_train_cnn_separates_an_easy_toy_problem():
    from sklearn.metrics import roc_auc_score

    x, y = _toy(256, seed=0)
    model, log = train_cnn(x, y, TINY, seed=0)
    assert len(log["epoch_loss"]) == TINY.epochs and log["train_machine"] == 128
    assert log["epoch_loss"][-1] < log["epoch_loss"][0]
    xt, yt = _toy(128, seed=1)  # fresh images, never trained on
    with torch.no_grad():
        logits = model(torch.as_tensor(xt).unsqueeze(1)).numpy()
    assert roc_auc_score(yt, logits) > 0.95


def test_train_cnn_is_reproducible_with_a_seed():
    x, y = _toy(64)
    a, _ = train_cnn(x, y, TINY, seed=3)
    b, _ = train_cnn(x, y, TINY, seed=3)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("early_pool", [False, True])
def test_save_and_load_give_identical_logits(tmp_path, early_pool):
    torch.manual_seed(0)
    model = ScanCNN(CNNConfig(**{**TINY.__dict__, "early_pool": early_pool})).eval()
    save_cnn(model, tmp_path / "cnn" / "model.pt")
    loaded = load_cnn(tmp_path / "cnn" / "model.pt")
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        plain = model(x)
        assert torch.equal(for_inference(model)(x), loaded(x))  # scoring's layout, bit for bit
        torch.testing.assert_close(loaded(x), plain, rtol=1e-4, atol=1e-4)  # channels-last: rounding only
    assert loaded.cfg == model.cfg


def test_load_cnn_refuses_other_checkpoints_by_name(tmp_path):
    atomic_save({"format": "forensics-train-v1", "weights": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: not a ScanCNN checkpoint"):
        load_cnn(tmp_path / "other.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_train_cnn_on_a_gpu_learns_and_is_reproducible():
    """The GPU path (calibrate --device cuda): same recipe, a CPU model back, a seed repeats it."""
    x, y = _toy(256, seed=0)
    a, log = train_cnn(x, y, TINY, seed=3, device="cuda")
    b, _ = train_cnn(x, y, TINY, seed=3, device="cuda")
    assert next(a.parameters()).device.type == "cpu" and log["epoch_loss"][-1] < log["epoch_loss"][0]
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
