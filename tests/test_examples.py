"""The examples run in fast mode, their numbers hold, their PNGs are written.

examples/ is not a package: each example is loaded from its path, with
examples/ on sys.path while it loads (for its ``_common`` helper).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if not (EXAMPLES / "elongated_bowl.py").is_file():
    pytest.skip(f"no examples/ next to the tests ({EXAMPLES})", allow_module_level=True)


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
def bowl():
    return load("elongated_bowl")


@pytest.fixture(scope="module")
def ema():
    return load("ema_bias_correction")


def test_elongated_bowl_numbers(bowl, monkeypatch):
    monkeypatch.setenv("PYRMSPROP_EXAMPLES_FAST", "1")
    summary = bowl.main(["--no-plot"])
    assert summary["steps"] == 150 and summary["png"] is None
    m = summary["methods"]
    gd, mom, rms, adam = (m[k] for k in ("gradient descent", "momentum", "RMSprop", "Adam"))

    # GD in closed form: W_t = -4 * (1 - 0.036)^t, b_t = 0.8 * (1 - 0.036 * 50)^t
    t = np.arange(151)
    closed = 0.5 * ((-4.0 * 0.964**t) ** 2 + 50 * (0.8 * (-0.8) ** t) ** 2)
    assert gd["steps_to_1e-3"] == int(np.argmax(closed < 1e-3)) == 123
    assert gd["b_path_length"] == pytest.approx(0.8 * 1.8 * (1 - 0.8**150) / 0.2, rel=1e-12)

    # adaptive methods reach the minimum first and stay there
    for other in (rms, adam):
        assert other["steps_to_1e-3"] < gd["steps_to_1e-3"]
        assert other["settled_at"] < gd["settled_at"]
    # RMSprop damps the steep direction: b goes down without crossing 0 (path length = |b0|)
    assert rms["b_path_length"] == pytest.approx(0.8, rel=1e-6)
    # momentum averages out GD's zig-zag in b and reaches the minimum sooner
    assert mom["b_path_length"] < 0.7 * gd["b_path_length"]
    assert mom["steps_to_1e-3"] < gd["steps_to_1e-3"]
    assert all(r["final_loss"] < 1e-3 for r in m.values())


def test_elongated_bowl_paths_are_the_rules(bowl):
    """The paths the example draws follow ALGORITHMS.md, recomputed here in plain numpy."""
    steps, curv = 120, bowl.CURVATURE

    def reference(method, lr):
        p, a, b = bowl.START.copy(), np.zeros(2), np.zeros(2)
        path = [p.copy()]
        for t in range(1, steps + 1):
            g = curv * p
            if method == "gradient descent":
                p = p - lr * g
            elif method == "momentum":
                a = 0.9 * a + 0.1 * g
                p = p - lr * a
            elif method == "RMSprop":
                a = 0.99 * a + 0.01 * g * g
                p = p - lr * g / (np.sqrt(a) + 1e-8)
            else:
                a = 0.9 * a + 0.1 * g
                b = 0.999 * b + 0.001 * g * g
                d = np.sqrt(b) / np.sqrt(1 - 0.999**t) + 1e-8
                p = p - lr / (1 - 0.9**t) * a / d
            path.append(p)
        return np.array(path)

    for method, (lr, _) in bowl.METHODS.items():
        path = bowl.run(method, lr, steps)
        assert path.shape == (steps + 1, 2)
        np.testing.assert_allclose(path, reference(method, lr), rtol=1e-10, atol=1e-12,
                                   err_msg=method)


def test_ema_bias_correction_numbers(ema, capsys):
    summary = ema.main(["--fast", "--no-plot"])
    assert summary["days"] == 120 and summary["early_days"] == 10
    rows = summary["betas"]
    for beta in (0.9, 0.98):
        r = rows[beta]
        # the start-up dip: uncorrected averages start near 0, far below ~35 F
        assert r["early_mae_uncorrected"] > 15
        assert r["early_mae_corrected"] < 3
        assert r["early_mae_corrected"] < r["early_mae_uncorrected"] / 8
    # beta = 0.5 forgets its zero start within days: the correction matters little
    assert rows[0.5]["early_mae_uncorrected"] < 3 * rows[0.5]["early_mae_corrected"]
    # beta = 0.98 lags the season: the largest error after the start
    assert rows[0.98]["mae_after_early"] > max(rows[0.9]["mae_after_early"],
                                               rows[0.5]["mae_after_early"])
    assert "0.98" in capsys.readouterr().out


def test_ema_is_the_recursion(ema):
    _, theta = ema.temperatures(50)
    for beta in ema.BETAS:
        raw, corrected = ema.smooth(theta, beta)
        v, expect = 0.0, []
        for x in theta:
            v = beta * v + (1 - beta) * x
            expect.append(v)
        np.testing.assert_allclose(raw, expect, rtol=1e-14)
        np.testing.assert_allclose(corrected, np.array(expect) / (1 - beta ** np.arange(1, 51)),
                                   rtol=1e-14)
        # the corrected first value is the first measurement itself
        assert corrected[0] == pytest.approx(theta[0], rel=1e-15)


@pytest.mark.parametrize("name", ["elongated_bowl", "ema_bias_correction"])
def test_png_written(name, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is needed to draw the PNGs")
    out = tmp_path / "sub" / f"{name}.png"
    summary = load(name).main(["--fast", "--out", str(out)])
    assert summary["png"] == str(out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["elongated_bowl", "ema_bias_correction"])
def test_without_matplotlib(name, tmp_path, monkeypatch, capsys):
    for module in ("matplotlib", "matplotlib.figure"):  # None makes the import fail
        monkeypatch.setitem(sys.modules, module, None)
    out = tmp_path / "x.png"
    summary = load(name).main(["--fast", "--out", str(out)])
    assert summary["png"] is None and not out.exists()
    assert "plot skipped" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["elongated_bowl", "ema_bias_correction"])
def test_a_trial_run_leaves_the_committed_figures_alone(name, tmp_path, monkeypatch, capsys):
    """Without --out or --update-docs the PNG goes to a scratch folder, never docs/images/."""
    pytest.importorskip("matplotlib", reason="matplotlib is needed to draw the PNGs")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)        # re-read TMPDIR
    committed = EXAMPLES.parent / "docs" / "images" / f"{name}.png"
    before = committed.read_bytes() if committed.exists() else None
    summary = load(name).main(["--fast"])
    assert Path(summary["png"]) == tmp_path / "pyrmsprop-examples" / f"{name}.png"
    assert Path(summary["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (committed.read_bytes() if committed.exists() else None) == before


def test_update_docs_is_refused_with_fast(capsys):
    with pytest.raises(SystemExit) as info:
        load("elongated_bowl").main(["--fast", "--update-docs"])
    assert info.value.code == 2
    assert "--update-docs" in capsys.readouterr().err


def test_update_docs_targets_the_committed_figure():
    load("elongated_bowl")
    common = sys.modules["_common"]          # the helper the example imported
    args = common.parse(common.make_parser("x", "elongated_bowl.png"), ["--update-docs"])
    assert args.out == EXAMPLES.parent / "docs" / "images" / "elongated_bowl.png"
    args = common.parse(common.make_parser("x", "elongated_bowl.png"), [])
    assert EXAMPLES.parent not in args.out.parents
