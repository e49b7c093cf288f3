"""Gated PixelCNN and the PixelCNN autoencoder: causality, conditioning, sampling, loss.

Tiny configs only: the whole file should run in seconds on a busy 2-core CPU.
"""

from __future__ import annotations

import math

import pytest
import torch

from generators.autoencoder import PixelCNNAutoencoder, PixelCNNAutoencoderConfig
from generators.pixelcnn import PixelCNN, PixelCNNConfig, make_pixelcnn, nats_to_bits_per_dim, nll_bits_per_dim


def tiny(**kw) -> PixelCNN:
    torch.manual_seed(0)
    base = dict(image_size=8, channels=8, n_layers=3, kernel_size=3, first_kernel_size=3, head_channels=16)
    return PixelCNN(PixelCNNConfig(**{**base, **kw}))


def strokes(n: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    """Digit-like uint8 images: dark background, one bright vertical bar each."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    for k in range(n):
        col = int(torch.randint(1, size - 2, (1,), generator=g))
        x[k, 0, 1 : size - 1, col : col + 2] = 255
    return x


def input_grad(model: PixelCNN, i: int, j: int, y=None, code=None) -> torch.Tensor:
    """|d (all logits at pixel (i, j)) / d input|, per input pixel: [H, W]."""
    c, s = model.cfg.image_channels, model.cfg.image_size
    xs = (torch.rand(1, c, s, s, dtype=torch.float64) * 2 - 1).requires_grad_()
    logits = model.forward_scaled(xs, y, code)
    logits[..., i, j].sum().backward()
    return xs.grad[0].abs().sum(0)


# ----- 1. causality ---------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["softmax", "bernoulli"])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_depends_only_on_earlier_pixels(head, channels):
    model = tiny(head=head, image_channels=channels, num_classes=10, code_dim=2).double()
    s = model.cfg.image_size
    y, code = torch.tensor([3]), torch.randn(1, 2)
    g = torch.Generator().manual_seed(1)
    positions = [(0, 0), (0, s - 1), (s - 1, 0), (s - 1, s - 1)]
    positions += [tuple(int(v) for v in torch.randint(0, s, (2,), generator=g)) for _ in range(6)]
    order = torch.arange(s * s).view(s, s)  # raster order
    for i, j in positions:
        grad = input_grad(model, i, j, y, code)
        future = order >= i * s + j  # pixel (i, j) itself included, all its channels
        assert grad[future].eq(0).all(), f"pixel ({i},{j}) sees a pixel at or after itself"
        if j > 0:
            assert grad[i, j - 1] > 0, f"pixel ({i},{j}) blind to its left neighbour"
        if i > 0:
            assert grad[i - 1, j] > 0, f"pixel ({i},{j}) blind to the pixel above"


def test_no_blind_spot():
    # 7x7 first layer then 5x5: the vertical stack reaches 3 + 2*3 = 9 rows up and as many
    # columns either side, so one pixel sees the whole 8x8 image before it.
    model = tiny(n_layers=4, kernel_size=5, first_kernel_size=7, num_classes=0).double()
    s = model.cfg.image_size
    grad = input_grad(model, s - 1, s - 1)
    assert grad[0, s - 1] > 0, "bottom-right pixel does not see the top-right corner"
    assert (grad.view(-1)[: s * s - 1] > 0).all(), "bottom-right pixel misses some earlier pixel"
    # The original masked PixelCNN's blind spot: from (7, 0), a path reaches row 6 in one
    # step up (at most 3 columns right) and then only moves left, so it never sees (6, 5).
    grad = input_grad(model, s - 1, 0)
    assert grad[s - 2, 5] > 0 and grad[s - 2, s - 1] > 0


# ----- 2. conditioning ------------------------------------------------------------------------


def test_class_and_code_change_the_output():
    model = tiny(num_classes=10, code_dim=3)
    x = strokes(2)
    code = torch.randn(2, 3)
    base = model(x, torch.tensor([1, 1]), code)
    assert base.shape == (2, 256, 1, 8, 8)
    assert not torch.allclose(base, model(x, torch.tensor([2, 2]), code))
    assert not torch.allclose(base, model(x, torch.tensor([1, 1]), code + 1))
    assert torch.equal(model(x, 1, code), base)  # an int y means "all of this class"


def test_unconditional_use():
    x = strokes(2)
    for model in (tiny(num_classes=0), tiny(num_classes=10)):  # y=None: no class information
        assert model(x).shape == (2, 256, 1, 8, 8)
        assert model.nll(x).shape == (2,)
        assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)
    assert tiny(head="bernoulli", num_classes=0)(x).shape == (2, 1, 8, 8)


def test_rejects_float_images():
    with pytest.raises(TypeError, match="uint8"):
        tiny()(torch.rand(1, 1, 8, 8))


# ----- 3. sampling ----------------------------------------------------------------------------


def test_sampling_is_seeded():
    model = tiny(num_classes=10)
    y = torch.arange(4)
    a = model.sample(4, y=y, generator=torch.Generator().manual_seed(5))
    b = model.sample(4, y=y, generator=torch.Generator().manual_seed(5))
    c = model.sample(4, y=y, generator=torch.Generator().manual_seed(6))
    assert a.dtype == torch.uint8 and a.shape == (4, 1, 8, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("head,channels", [("softmax", 1), ("bernoulli", 1), ("softmax", 3)])
def test_fast_sampling_equals_naive(head, channels):
    # float64: the two methods' logits then differ by ~1e-15, so no draw can flip (see pixelcnn.py).
    model = tiny(head=head, image_channels=channels, num_classes=10, code_dim=2, kernel_size=5, first_kernel_size=5).double()
    y, code = torch.tensor([0, 7, 3]), torch.randn(3, 2)
    threads = torch.get_num_threads()
    fast = model.sample(3, y=y, code=code, generator=torch.Generator().manual_seed(0), method="fast")
    naive = model.sample(3, y=y, code=code, generator=torch.Generator().manual_seed(0), method="naive")
    assert torch.equal(fast, naive)
    assert len(fast.unique()) > 1
    if head == "bernoulli":
        assert set(fast.unique().tolist()) <= {0, 255}
    assert torch.get_num_threads() == threads  # the fast sampler restored the thread count


# ----- 4. loss --------------------------------------------------------------------------------


def test_loss_at_init_and_its_parts():
    x = strokes(4)
    model = tiny()
    loss = model.loss(x)
    assert abs(loss.item() - math.log(256)) < 0.3  # near uniform over 256 grey levels
    assert abs(tiny(head="bernoulli").loss(x).item() - math.log(2)) < 0.1
    lp = model.log_prob_pixels(x)
    assert lp.shape == x.shape and (lp <= 0).all()
    torch.testing.assert_close(lp.flatten(1).sum(1), -model.nll(x))
    torch.testing.assert_close(model.nll(x).mean() / x[0].numel(), loss)
    assert nats_to_bits_per_dim(math.log(2)) == pytest.approx(1.0)
    assert nll_bits_per_dim(torch.tensor([64 * math.log(2)]), (1, 8, 8)).item() == pytest.approx(1.0)


@pytest.mark.parametrize("head", ["softmax", "bernoulli"])
def test_overfits_a_tiny_batch(head, fit_briefly):
    first, last = fit_briefly(tiny(head=head, channels=16), strokes(8), torch.arange(8) % 10)
    assert last < 0.5 * first


# ----- 5. autoencoder -------------------------------------------------------------------------


def tiny_autoencoder(**kw) -> PixelCNNAutoencoder:
    torch.manual_seed(0)
    base = dict(image_size=8, code_dim=4, encoder_channels=4, channels=8, n_layers=2, kernel_size=3,
                first_kernel_size=3, head_channels=16)
    return PixelCNNAutoencoder(PixelCNNAutoencoderConfig(**{**base, **kw}))


def test_autoencoder_shapes_and_sampling():
    ae = tiny_autoencoder()
    x = strokes(3)
    assert ae.encode(x).shape == (3, 4)
    assert ae(x).shape == (3, 256, 1, 8, 8)
    assert ae.log_prob_pixels(x).shape == (3, 1, 8, 8)
    assert ae.nll(x).shape == (3,)
    g = torch.Generator().manual_seed(0)
    assert ae.sample(x=x, generator=g).shape == (3, 1, 8, 8)  # reconstructions
    assert ae.sample(2, generator=g).dtype == torch.uint8  # codes drawn from N(0, I)
    assert ae.sample(code=torch.zeros(5, 4), generator=g).shape == (5, 1, 8, 8)
    assert PixelCNNAutoencoder(PixelCNNAutoencoderConfig(channels=8, n_layers=1)).encode(
        torch.zeros(1, 1, 28, 28, dtype=torch.uint8)).shape == (1, 10)  # the default 28x28 geometry


def test_autoencoder_code_changes_the_output():
    ae = tiny_autoencoder()
    x = strokes(2)
    a = ae.decoder(x, code=torch.zeros(2, 4))
    b = ae.decoder(x, code=torch.ones(2, 4))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(ae(x), ae.decoder(x, code=ae.encode(x)))  # forward = decode own code


def test_autoencoder_learns_a_tiny_batch():
    ae = tiny_autoencoder()
    x = strokes(8)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    first = ae.loss(x).item()
    for _ in range(30):
        loss = ae.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ae.loss(x).item() < 0.5 * first
    assert ae.encoder.net[0].weight.grad.abs().sum() > 0  # the encoder is trained through the code


# ----- 6. the streams architecture (PixelCNN++-style down- and up-sampling) --------------------


def tiny_streams(**kw):
    torch.manual_seed(0)
    base = dict(arch="streams", image_size=8, channels=8, nr_resnet=1)
    return make_pixelcnn(PixelCNNConfig(**{**base, **kw}))


@pytest.mark.parametrize("head,channels", [("softmax", 1), ("bernoulli", 1), ("softmax", 3)])
def test_streams_output_depends_only_on_earlier_pixels(head, channels):
    model = tiny_streams(head=head, image_channels=channels, num_classes=10, code_dim=2).double()
    s = model.cfg.image_size
    order = torch.arange(s * s).view(s, s)
    for i in range(s):
        for j in range(s):
            grad = input_grad(model, i, j, torch.tensor([3]), torch.randn(1, 2))
            assert grad[order >= i * s + j].eq(0).all(), f"pixel ({i},{j}) sees a pixel at or after itself"
            if j > 0:
                assert grad[i, j - 1] > 0, f"pixel ({i},{j}) blind to its left neighbour"
            if i > 0:
                assert grad[i - 1, j] > 0, f"pixel ({i},{j}) blind to the pixel above"


def test_streams_see_the_whole_digit():
    # On the 28x28 frame, the last pixel depends on every pixel of every row above it: the
    # receptive field the gated PixelCNN of 8 layers of 3-wide kernels lacked (it saw ~16 rows
    # up). In its own row it reaches as many columns left as the full-resolution ul stream
    # has layers (PixelCNN++'s known limit), which is enough: a digit's row is a stroke or two.
    model = tiny_streams(image_size=28, nr_resnet=2, num_classes=0).double()
    grad = input_grad(model, 27, 27)
    assert (grad[:27] > 0).all(), "the last pixel misses part of a row above it"
    assert (grad[27, 27 - 6 : 27] > 0).all()
    assert input_grad(model, 27, 0)[0, 27] > 0  # the top-right corner, from the bottom-left


def test_streams_condition_sample_and_learn(fit_briefly):
    model = tiny_streams(num_classes=10)
    x, y = strokes(8), torch.arange(8) % 10
    assert model(x, y).shape == (8, 256, 1, 8, 8)
    assert not torch.allclose(model(x, 1), model(x, 2))
    assert abs(model.loss(x, y).item() - math.log(256)) < 0.3
    double = tiny_streams(num_classes=10, image_size=8).double()
    fast = double.sample(3, y=torch.tensor([0, 7, 3]), generator=torch.Generator().manual_seed(0), method="fast")
    naive = double.sample(3, y=torch.tensor([0, 7, 3]), generator=torch.Generator().manual_seed(0), method="naive")
    assert torch.equal(fast, naive) and len(fast.unique()) > 1
    first, last = fit_briefly(model, x, y)
    assert last < 0.5 * first
    with pytest.raises(ValueError, match="multiple of 4"):
        tiny_streams(image_size=10)
