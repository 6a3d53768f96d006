"""tools/trajectory_hashes.py, the cross-architecture check (tools/ci/aarch64.sh compares
its output on x86-64 and under qemu on aarch64): on this machine every SIMD target gives
the same hashes, and the hashes see a one-ulp change of any array."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

import pyrmsprop

_PATH = pathlib.Path(__file__).resolve().parents[1] / "tools" / "trajectory_hashes.py"
if not _PATH.exists():
    pytest.skip(f"{_PATH} is not in this tree", allow_module_level=True)
_spec = importlib.util.spec_from_file_location("trajectory_hashes", _PATH)
th = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(th)

# small enough to be fast (the full run is aarch64.sh's); 1100 elements still take
# vector bodies, tails and, with the threshold at 0, two threads
SIZES = (1, 17, 1100)


@pytest.fixture(scope="module")
def result():
    return th.all_targets(sizes=SIZES, steps=6)


def test_every_target_agrees(result):
    assert result["targets"] == pyrmsprop.simd_targets()
    assert result["cases"] == len(th.case_names(SIZES)) == (
        (len(th.VARIANTS) * 2 + len(th.Q8_VARIANTS)) * 4 * 2)
    assert sorted(result["hashes"]) == sorted(th.case_names(SIZES))
    assert result["disagree"] == {}


def test_cases_differ_from_each_other(result):
    # a broken runner (nothing updated, every case the same arrays) would agree too;
    # results do not depend on the thread count, so the 1- and 2-thread cases are equal
    hashes = result["hashes"]
    for case, h in hashes.items():
        assert h == hashes[case.replace("/t2", "/t1")]
    assert len(set(hashes.values())) == len(hashes) // 2


def test_trajectory_moves_the_arrays():
    arrays = th.run_case(pyrmsprop, "adam", dict(lr=1e-2, amsgrad=True), "float32", (17,),
                         False, steps=3)
    start = th.uniform(0, 17, "float32")
    assert len(arrays) == 4
    assert not np.array_equal(arrays[0], start)
    assert all(np.any(a != 0) for a in arrays[1:])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_ulp_anywhere_changes_the_hash(dtype):
    arrays = th.run_case(pyrmsprop, "rmsprop", dict(lr=1e-2, momentum=0.9), dtype,
                         (1, 17), True, steps=3)
    base = th.hash_arrays(arrays)
    assert th.hash_arrays([a.copy() for a in arrays]) == base
    for k in range(len(arrays)):
        for i in (0, arrays[k].size - 1):
            changed = [a.copy() for a in arrays]
            changed[k][i] = np.nextafter(changed[k][i], np.inf, dtype=changed[k].dtype)
            assert th.hash_arrays(changed) != base, (k, i)
    # the same bytes in another dtype or split differently are another hash
    assert th.hash_arrays([arrays[0].view(np.uint8)] + arrays[1:]) != base


def test_uniform_is_exact_and_fixed():
    for dtype in ("float32", "float64"):
        u = th.uniform(3, 10000, dtype)
        assert u.dtype == dtype and u.min() >= -1 and u.max() < 1
        assert np.array_equal(u, th.uniform(3, 10000, dtype))
        assert not np.array_equal(u, th.uniform(4, 10000, dtype))
    # pinned: the values are a fixed function of the seed on every platform and numpy
    assert th.uniform(0, 3, "float64").tolist() == [
        0.6000498669773358, 0.8272320922472176, 0.00814940256146568]
    assert th.uniform(0, 3, "float32").tolist() == [
        0.6000498533248901, 0.8272320032119751, 0.008149385452270508]
    assert th.hash_arrays([th.uniform(7, 5, "float64"), th.uniform(7, 5, "float32")]) == (
        "4128ee92f4c8e43f0bd2ef9bef56c661056b6f149e611d3d2ebb07279f4a6ab2")


def test_compare_reports_a_difference(tmp_path, capsys):
    a = {"machine": "x86_64", "targets": ["baseline", "avx2"], "disagree": {},
         "hashes": {"c1": "00", "c2": "11"}}
    b = dict(a, machine="aarch64", targets=["neon"])
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    assert th.main(["--compare", str(pa), str(pb)]) == 0
    assert "agree: 2 cases" in capsys.readouterr().out
    pb.write_text(json.dumps(dict(b, hashes={"c1": "00", "c2": "12"})))
    assert th.main(["--compare", str(pa), str(pb)]) == 1
    assert "DISAGREE on 1 of 2" in capsys.readouterr().out
    pb.write_text(json.dumps(dict(b, hashes={"c1": "00"})))       # a missing case
    assert th.main(["--compare", str(pa), str(pb)]) == 1
    # a file whose own targets disagreed fails the comparison too
    pb.write_text(json.dumps(dict(b, disagree={"c2": {"neon": "11", "other": "13"}})))
    assert th.main(["--compare", str(pa), str(pb)]) == 1


def test_targets_disagreeing_fails(monkeypatch, capsys):
    # a target whose kernel changes one case must make the script exit 1
    real = th.target_hashes

    def fake(pr, *args, **kw):
        out = real(pr, *args, **kw)
        if pr.simd_target() == pr.simd_targets()[-1]:
            out["ema/float32/n1/t1"] = "f" * 64
        return out

    monkeypatch.setattr(th, "target_hashes", fake)
    res = th.all_targets(sizes=(1,), steps=2)
    if len(res["targets"]) == 1:
        assert res["disagree"] == {}      # one target (aarch64): nothing to disagree with
        return
    assert list(res["disagree"]) == ["ema/float32/n1/t1"]
