"""The training examples run in fast mode and reach the accuracies the docs state.

Loaded from their paths as in test_examples.py (examples/ is not a package).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if not (EXAMPLES / "train_digits.py").is_file():
    pytest.skip(f"no examples/ next to the tests ({EXAMPLES})", allow_module_level=True)
pytest.importorskip("sklearn", reason="the digits data ship with scikit-learn")


def load(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.fixture(scope="module")
def digits():
    return load("train_digits")


@pytest.fixture(scope="module")
def fast_run(digits, tmp_path_factory):
    """One fast run of the eight trainings, with its PNG if matplotlib is there."""
    out = tmp_path_factory.mktemp("png") / "train_digits.png"
    return digits.main(["--fast", "--out", str(out)])


def test_digits_accuracies(fast_run):
    assert fast_run["epochs"] == 12 and fast_run["batch_size"] == 128
    runs = fast_run["runs"]
    assert len(runs) == 8
    for (name, decay), r in runs.items():
        assert r["test_acc"] >= 0.9, (name, decay)
        assert r["curves"]["train_loss"].shape == (12,)
        assert r["curves"]["train_loss"][-1] < r["curves"]["train_loss"][0]
    for name in ("RMSprop", "Adam", "momentum"):
        for decay in (False, True):
            assert runs[name, decay]["test_acc"] >= 0.94
            assert runs[name, decay]["train_acc"] >= 0.98
    # momentum 0.9 at plain SGD's lr: a much lower training loss after the same epochs
    for decay in (False, True):
        assert runs["momentum", decay]["train_loss"] < 0.2 * runs["SGD", decay]["train_loss"]
    # the schedule lowers the lr from epoch 1 on: slower descent at these learning rates
    for name in ("SGD", "momentum", "RMSprop", "Adam"):
        assert runs[name, True]["train_loss"] > runs[name, False]["train_loss"]


def test_digits_png(fast_run):
    pytest.importorskip("matplotlib", reason="matplotlib is needed to draw the PNGs")
    data = Path(fast_run["png"]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_digits_backward_is_the_gradient(digits):
    """The hand-written backward pass against central differences (float64 copy)."""
    rng = np.random.default_rng(3)
    params = [p.astype(np.float64) for p in digits.init_params(1, n_in=5, n_hidden=7, n_out=4)]
    params[1] += 0.1 * rng.standard_normal(7)  # no ReLU input exactly at 0
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 4, 6)
    _, grads = digits.loss_and_grads(params, x, y)
    for p, g in zip(params, grads, strict=True):
        numeric = np.empty_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + 1e-6
            up = digits.loss_and_grads(params, x, y)[0]
            p[i] = old - 1e-6
            down = digits.loss_and_grads(params, x, y)[0]
            p[i] = old
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_digits_deterministic_and_batch_size(digits):
    data = digits.load_data(5)
    assert [len(a) for a in data] == [1347, 1347, 450, 450]
    np.testing.assert_allclose(data[0].mean(axis=0), 0, atol=1e-5)
    a, _ = digits.train("Adam", True, data, epochs=2, batch_size=64, seed=5)
    b, _ = digits.train("Adam", True, data, epochs=2, batch_size=64, seed=5)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(SystemExit):
        digits.main(["--batch-size", "32", "--no-plot"])


def test_torch_example(torch, tmp_path):
    out = tmp_path / "train_torch.png"
    summary = load("train_torch").main(["--fast", "--out", str(out)])
    assert summary["steps"] == 12 * 11
    ours, theirs = summary["runs"].values()
    # the two Adams follow the same loss curve up to float32 rounding
    assert summary["max_loss_diff"] < 1e-4
    assert summary["max_param_diff"] < 1e-2
    np.testing.assert_allclose(summary["losses"][0], summary["losses"][1], rtol=1e-3)
    for key in ("train_loss", "train_acc", "test_acc"):
        assert ours[key] == pytest.approx(theirs[key], abs=5e-3)
    assert ours["test_acc"] >= 0.94
    if summary["png"] is not None:
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_bf16_example_plain_bfloat16_stalls_and_the_masters_track_float32(tmp_path):
    pytest.importorskip("ml_dtypes", reason="the bfloat16 weights are ml_dtypes arrays")
    summary = load("train_bf16").main(["--fast", "--no-plot"])
    loss = {r["scheme"]: r["train_loss"] for r in summary["rows"]}
    assert loss["bf16"] > 1.1 * loss["float32"]
    for name in ("fp32 master", "split", "kahan", "stochastic"):
        assert abs(loss[name] - loss["float32"]) < 0.02 * loss["float32"], name


def test_8bit_example_tracks_float32(tmp_path):
    """4 epochs of the digits MLP: 8-bit Adam ends within 5% of float32 Adam's training
    loss and 1 point of its accuracies, with 2 + 2*4/256 bytes of state per weight of the
    two matrices (2.11 per param with the float32-state biases); torch's rows too
    when torch is installed."""
    summary = load("train_8bit").main(["--fast", "--no-plot"])
    rows = {r["optimizer"]: r for r in summary["rows"]}
    ref, q8 = rows["numpy pyrmsprop.Adam float32"], rows["numpy pyrmsprop.Adam 8-bit"]
    assert ref["state bytes/param"] == 8
    w = 64 * 512 + 512 * 10
    assert q8["state bytes/param"] == round((w * (2 + 2 * 4 / 256) + 8 * (512 + 10))
                                            / (w + 512 + 10), 3)
    assert abs(q8["train_loss"] - ref["train_loss"]) < 0.05 * ref["train_loss"]
    for key in ("train_acc", "test_acc"):
        assert abs(q8[key] - ref[key]) <= 0.01
    if "pyrmsprop.torch.Adam 8-bit" in rows:
        t8, t32 = rows["pyrmsprop.torch.Adam 8-bit"], rows["torch.optim.Adam float32"]
        assert t8["state bytes/param"] == q8["state bytes/param"]
        assert abs(t8["train_loss"] - t32["train_loss"]) < 0.05 * t32["train_loss"]
