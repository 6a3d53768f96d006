"""The benchmark CLI: arguments, the tables, the JSON schema, the plot, torch
absent.  Tiny sizes and repeat counts; no timing is asserted."""

import json
import math
import re
import sys

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import bench

TINY = ["--quick", "--sizes", "1000,5000", "--repeat", "2", "--threads", "1"]


def _run(capsys, argv):
    rc = bench.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _positive_numbers(rec, keys):
    for key in keys:
        assert isinstance(rec[key], (int, float)) and rec[key] > 0 and math.isfinite(rec[key]), \
            (key, rec)


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "abc"], "not a size"),
    (["--sizes", "0"], "whole number >= 1"),
    (["--sizes", "1.5"], "whole number >= 1"),
    (["--sizes", ","], "empty list"),
    (["--threads", "0"], "thread count"),
    (["--threads", "two"], "thread count"),
    (["--simd", "sse9"], "sse9 not supported"),
    (["--rules", "adam,adagrad"], "'adagrad' is not one of"),
    (["--dtypes", "float16"], "not float32 or float64"),
    (["--repeat", "0"], "integer >= 1"),
    (["--sections", "kernels,graphs"], "'graphs' is not one of"),
    (["--busy", "--threshold"], "not allowed with"),
    (["--busy", "--threads", "1"], "give --threads 1,2"),
    (["--no-such-flag"], "unrecognized arguments"),
])
def test_bad_arguments_exit_nonzero_with_a_message(capsys, argv, message):
    rc, out, err = _run(capsys, argv)
    assert rc == 2
    assert message in err
    assert out == ""


def test_argument_parsing():
    args = bench.parse_args(["--sizes", "1e6,64000,6.4e4,1000", "--threads", "1,N,1",
                             "--rules", "ADAM,ema", "--dtypes", "f64", "--simd", "all"])
    assert args.sizes == [1000, 64000, 1_000_000] and args.sizes_given
    assert args.threads == [1, bench._all_threads()] or bench._all_threads() == 1
    assert args.rules == ["adam", "ema"]
    assert args.dtypes == [np.float64]
    auto = ["auto"] if len(pyrmsprop.simd_targets()) > 1 else []
    assert args.simd == pyrmsprop.simd_targets() + auto
    assert bench.parse_args([]).simd == ["auto"]
    assert bench.parse_args(["--simd", "best"]).simd == [pyrmsprop.simd_targets()[-1]]
    quick = bench.parse_args(["--quick"])
    assert quick.sizes == [1000, 64000, 1_000_000] and quick.dtypes == [np.float32]
    assert quick.rules == list(bench.RULES) and quick.sections == list(bench.SECTIONS)
    full = bench.parse_args([])
    assert full.sizes == list(bench.DEFAULT_SIZES) and len(full.dtypes) == 2
    assert bench.parse_args(["--busy"]).rules == ["adam"]
    assert bench.parse_args(["--threshold"]).sizes == list(bench.THRESHOLD_SIZES)
    assert bench.parse_args(["--simd", "baseline"]).simd == ["baseline"]


def test_help_documents_defaults(capsys):
    rc, out, _ = _run(capsys, ["--help"])
    assert rc == 0
    for text in ("--quick", "--json", "--plot", "--busy", "--threshold", "1.6e7", "float64"):
        assert text in out
    # each option's help states its default at most once, and never "None"
    options = {}
    for block in re.split(r"\n  (?=--)", out.split("options:", 1)[1])[1:]:
        name = block.split()[0].lstrip("-")
        options[name] = " ".join(block.split())
    assert {"threads", "simd", "deepspeed", "rules", "dtypes", "quick"} <= set(options)
    for text in options.values():
        assert "(default: None)" not in text, text
        assert text.count("(default:") <= 1, text
    for name, default in [("threads", "1,N"), ("simd", "auto"), ("deepspeed", "auto"),
                          ("rules", "all"), ("dtypes", "both")]:
        assert f"(default: {default}" in options[name], options[name]


def test_sizes_format_and_parse_round_trip():
    for n in (1, 16, 1000, 5000, 64_000, 1_000_000, 16_000_000, 64_000_000, 1234, 262_144):
        assert bench._size(bench.fmt_size(n)) == n
    assert bench.fmt_size(64_000) == "6.4e4"


def test_parameter_list_shapes():
    resnet = bench.resnet18_shapes()
    assert len(resnet) == 62 and sum(math.prod(s) for s in resnet) == 11_689_512
    gpt = bench.transformer_shapes()
    assert len(gpt) == 148 and sum(math.prod(s) for s in gpt) == 42_286_080


def test_numpy_anchors_compute_the_same_update():
    # the self-check the CLI prints: every rule, dtype and SIMD target against
    # the update written by hand with numpy ufuncs
    assert bench.self_check([np.float32, np.float64]) == []
    # and the memory-only kernel moves the bytes it claims to: a0 += a1 etc.
    a = [np.full(100, k, np.float32) for k in range(4)]
    bench._limit(a)()
    assert [float(x[0]) for x in a] == [1.0, 1.0, 3.0, 4.0]


def test_tiny_run_prints_tables_and_writes_json(capsys, tmp_path):
    path = tmp_path / "bench.json"
    rc, out, _ = _run(capsys, TINY + ["--dtypes", "f32,f64", "--lists", "resnet18",
                                      "--json", str(path)])
    assert rc == 0
    for text in ("# pyrmsprop", "cpu ", "simd ", "check     ok", "### float32, 1 thread",
                 "### float64, 1 thread", "| rule", "| Adam", "| SGD-momentum", "% limit",
                 "### Per call", "| adam_update", "| resnet18 |", "pyrmsprop.Adam"):
        assert text in out, text
    doc = json.loads(path.read_text())
    assert doc["schema"] == bench.SCHEMA
    head = doc["header"]
    for key in ("pyrmsprop", "python", "platform", "cpu", "cpus", "loadavg", "simd_in_use",
                "simd_by_rule", "simd_measurement", "simd_available", "simd_compiled", "threads", "thread_mode",
                "thread_threshold", "numpy", "torch", "argv"):
        assert key in head
    assert head["pyrmsprop"] == pyrmsprop.__version__
    torch = head["torch"] is not None
    impls = {"pyrmsprop", "limit", "numpy"} | ({"torch", "torch_foreach"} if torch else set())
    recs = doc["records"]
    for rule in bench.RULES:
        for dtype in ("float32", "float64"):
            for size in (1000, 5000):
                got = {r["impl"] for r in recs
                       if (r["rule"], r["dtype"], r["size"]) == (rule, dtype, size)}
                assert impls <= got, (rule, dtype, size, got)
                assert ("torch_fused" in got) == (torch and rule in ("adam", "sgd"))
    for r in recs:
        assert r["threads"] == 1 and r["repeats"] == 2
        assert (r["simd"] is None) == (r["impl"] not in ("pyrmsprop", "limit"))
        ratios = [k for k in r if k.startswith("ratio_vs_")]
        assert "ratio_vs_limit" in ratios or r["impl"] == "limit"
        assert r["bytes_per_elem"] == bench.BYTES_F32[r["rule"]] * (2 if r["dtype"] ==
                                                                     "float64" else 1)
        _positive_numbers(r, ["median_ns_per_elem", "min_ns_per_elem", "gbps",
                              "pct_of_limit", *ratios])
        assert r["min_ns_per_elem"] <= r["median_ns_per_elem"]
        assert r["gbps"] == pytest.approx(r["bytes_per_elem"] / r["median_ns_per_elem"])
    ours = next(r for r in recs if r["impl"] == "pyrmsprop")
    assert ours["pct_of_limit"] == pytest.approx(100 * ours["ratio_vs_limit"])
    # the table's "limit ns/elem" column is the limit's own median
    for r in (r for r in recs if r["impl"] == "pyrmsprop"):
        limit = next(x for x in recs if x["impl"] == "limit" and
                     (x["rule"], x["dtype"], x["size"]) == (r["rule"], r["dtype"], r["size"]))
        assert r["median_ns_per_elem"] * r["ratio_vs_limit"] == \
            pytest.approx(limit["median_ns_per_elem"])
        table = out.split(f"### {r['dtype']}, 1 thread", 1)[1].split("###", 1)[0]
        row = next(line for line in table.splitlines() if line.startswith(
            f"| {bench.TITLE[r['rule']]} ") and f"| {bench.fmt_size(r['size'])} " in line
            and f" {bench.fmt_num(r['median_ns_per_elem'])} |" in line)
        assert f" {bench.fmt_num(limit['median_ns_per_elem'])} |" in row, row
    calls = doc["per_call"]
    assert {r["size"] for r in calls} == set(bench.PER_CALL_SIZES)
    assert {r["impl"] for r in calls} >= {f"{rule}_update" for rule in bench.RULES}
    for r in calls:
        _positive_numbers(r, ["median_us", "min_us"])
    lists = doc["lists"]
    assert {r["impl"] for r in lists} >= {"pyrmsprop.Adam", "flat array", "adam_update loop"}
    for r in lists:
        assert (r["list"], r["tensors"], r["elements"]) == ("resnet18", 62, 11_689_512)
        _positive_numbers(r, ["median_ms", "min_ms"] + [k for k in r if k.startswith("ratio")])


def test_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib")
    png = tmp_path / "bench.png"
    rc, out, _ = _run(capsys, TINY + ["--sections", "kernels", "--rules", "ema,adam",
                                      "--dtypes", "float32", "--no-torch", "--plot", str(png)])
    assert rc == 0 and f"Plot written to {png}" in out
    data = png.read_bytes()
    assert len(data) > 10_000 and data.startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_without_matplotlib_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, _, err = _run(capsys, ["--plot", str(tmp_path / "x.png")])
    assert rc == 2 and "--plot needs matplotlib" in err
    assert not (tmp_path / "x.png").exists()


def test_runs_without_torch(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)     # `import torch` raises ImportError
    path = tmp_path / "bench.json"
    rc, out, _ = _run(capsys, TINY + ["--dtypes", "float32", "--lists", "resnet18",
                                      "--json", str(path)])
    assert rc == 0
    assert "torch anchors omitted" in out and "torch_fused" not in out
    doc = json.loads(path.read_text())
    assert doc["header"]["torch"] is None
    assert {r["impl"] for r in doc["records"]} == {"pyrmsprop", "limit", "numpy"}
    assert not any(r["impl"].startswith("torch") for r in doc["per_call"] + doc["lists"])


def test_tune_simd_prints_saves_and_restores(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PYRMSPROP_CACHE_DIR", str(tmp_path))
    before = (pyrmsprop.simd_target(), pyrmsprop.simd_by_rule())
    path = tmp_path / "t.json"
    rc, out, _ = _run(capsys, ["--tune-simd", "--no-torch", "--json", str(path)])
    assert rc == 0
    targets = pyrmsprop.simd_targets()
    assert "### SIMD targets" in out and "| rule" in out and str(tmp_path / "simd.json") in out
    doc = json.loads(path.read_text())
    assert set(doc["simd_measurement"]) == {f"{r}/{d}" for r in bench.RULES
                                            for d in ("float32", "float64", "bfloat16",
                                                      "float16")}
    assert all(set(v) == set(targets) for v in doc["simd_measurement"].values())
    assert all(t in targets for per in doc["simd_by_rule"].values() for t in per.values())
    saved = json.loads((tmp_path / "simd.json").read_text())
    assert [m["ns_per_elem"] for m in saved["machines"].values()] == [doc["simd_measurement"]]
    # this process keeps the choice it had: the file is for later imports
    assert (pyrmsprop.simd_target(), pyrmsprop.simd_by_rule()) == before


def test_threshold_and_busy_experiments(capsys, tmp_path):
    path = tmp_path / "t.json"
    rc, out, _ = _run(capsys, ["--threshold", "--sizes", "4096,131072", "--rules", "ema",
                               "--repeat", "1", "--threads", "1,2", "--json", str(path)])
    assert rc == 0 and "faster from" in out and "The threshold in use" in out
    doc = json.loads(path.read_text())
    assert set(doc["crossover"]) == {"ema/float32"}
    assert {(r["size"], r["threads"]) for r in doc["threshold"]} == {
        (4096, 1), (4096, 2), (131072, 1), (131072, 2)}
    for r in doc["threshold"]:
        _positive_numbers(r, ["median_ns_per_elem", "ratio_vs_1_thread"])
    # the threshold is restored after the experiment
    assert bench._core.get_thread_threshold() == doc["header"]["thread_threshold"]

    rc, out, _ = _run(capsys, ["--busy", "--sizes", "1000", "--repeat", "1", "--threads",
                               "1,2", "--sections", "kernels", "--no-torch", "--json", str(path)])
    assert rc == 0 and "busy-loop process" in out
    busy = json.loads(path.read_text())["busy"]
    assert {(r["phase"], r["threads"]) for r in busy} == {
        ("idle", 1), ("idle", 2), ("busy", 1), ("busy", 2)}
    for r in busy:
        _positive_numbers(r, ["median_ns_per_elem", "ratio_vs_1_thread"])


def test_deepspeed_anchor_options(capsys, tmp_path):
    # --quick never loads DeepSpeed (its first use compiles for about a minute)
    path = tmp_path / "q.json"
    rc, out, _ = _run(capsys, TINY + ["--sections", "kernels", "--rules", "adam",
                                      "--json", str(path)])
    assert rc == 0 and "| deepspeed" not in out and "    deepspeed " not in out
    assert json.loads(path.read_text())["header"]["deepspeed"] is None
    # required but impossible without torch: a usage error, nothing run
    rc, _, err = _run(capsys, TINY + ["--no-torch", "--deepspeed", "yes"])
    assert rc == 2 and "--deepspeed yes needs torch" in err
    rc, _, err = _run(capsys, TINY + ["--deepspeed", "maybe"])
    assert rc == 2 and "--deepspeed" in err


def test_noise_is_measured_and_marked(capsys):
    quiet = bench.Impl("a", lambda: None, samples=[1.0, 1.01, 0.99, 1.0, 1.02])
    loud = bench.Impl("b", lambda: None, samples=[1.0, 1.5, 0.7, 2.0, 1.0])
    assert quiet.spread == pytest.approx(0.02, abs=0.011) and not quiet.noisy
    assert loud.spread > bench.NOISY and loud.noisy
    assert bench.Impl("c", lambda: None, samples=[1.0, 9.0]).spread == 0.0   # too few
    assert bench._mark("1.0", quiet) == "1.0"
    assert bench._mark("1.0", quiet, loud) == "1.0" + bench.NOISY_MARK

    def rec(noisy_vs, pct):
        return {"rule": "adam", "dtype": "float32", "size": 1000, "impl": "pyrmsprop",
                "threads": 1, "simd": "baseline", "median_ns_per_elem": 1.0, "gbps": 28.0,
                "pct_of_limit": pct, "ratio_vs_limit": pct / 100, "ratio_vs_numpy": 3.0,
                "noisy": "pyrmsprop" in noisy_vs, "noisy_vs": noisy_vs, "limit_from": "limit"}

    import types
    Args = types.SimpleNamespace(simd=["baseline"])
    clean, noisy_anchor, over = rec([], 90.0), rec(["numpy"], 90.0), rec([], 120.0)
    numpy = {"impl": "numpy", "rule": "adam", "size": 1000}     # makes the numpy column
    rows = bench.kernel_table([clean, numpy], Args).splitlines()[2:]
    assert "(3.00x)" in rows[0] and "?" not in rows[0] and "!" not in rows[0]
    row = bench.kernel_table([noisy_anchor, numpy], Args).splitlines()[2]
    assert "(3.00x) ?" in row and "1.00 ?" not in row      # only the anchor's ratio
    assert "120% !" in bench.kernel_table([over, numpy], Args)
    bench._noise_note([clean, noisy_anchor | {"noisy": True}, over])
    out = capsys.readouterr().out
    assert "1 of 3 timings" in out and "! = faster than the memory-only loop" in out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_settle_waits_for_a_spinning_thread_and_not_for_a_sleeping_one():
    import threading
    import time

    stop = threading.Event()
    sleeper = threading.Thread(target=stop.wait)
    sleeper.start()
    try:
        # sleeping in a futex: state S.  (Other threads, e.g. the pool worker after an
        # earlier test's job, may still spin for a moment: wait for those to sleep.)
        deadline = time.monotonic() + 5.0
        while bench._other_threads_running() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bench._other_threads_running() is False
    finally:
        stop.set()
        sleeper.join()
    # pyrmsprop's pool worker spins for a while after a job before it sleeps
    old = pyrmsprop.get_num_threads()
    pyrmsprop.set_num_threads(2)
    try:
        n = 1 << 22
        arrays = [np.ones(n, np.float32) for _ in range(4)]
        pyrmsprop.adam_update(*arrays, step=1)
        t0 = time.perf_counter()
        bench._settle()
        waited = time.perf_counter() - t0
        # it gives up at its limit; the bound only catches a wait that does not end (a
        # loaded machine can keep this thread off a core for tens of ms: a CI run with
        # the GIL off once measured 0.114 s here, with SETTLE_MAX 0.05)
        assert waited < bench.SETTLE_MAX + 1.0
        if waited < bench.SETTLE_MAX:
            # it returned early: because the worker sleeps
            assert bench._other_threads_running() is False
        else:
            # it gave up at its limit: on a loaded machine (CI's emulator lane) the
            # spinning worker may wait that long for a core; it must still go to sleep
            deadline = time.monotonic() + 5.0
            while bench._other_threads_running() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert bench._other_threads_running() is False
    finally:
        pyrmsprop.set_num_threads(old)


def test_settle_gives_up_when_a_thread_never_sleeps(monkeypatch):
    """A thread that spins for ever (or a /proc that always says R) costs SETTLE_MAX,
    not a hang: _settle polls until its deadline and returns."""
    polls = []
    monkeypatch.setattr(bench, "_other_threads_running", lambda: polls.append(1) or True)
    bench._settle()
    assert polls                # it asked, and returned although the answer stayed "running"


def test_storage_section_rows_and_8bit_anchors(capsys, tmp_path):
    """The storage section: one record per storage row with its bytes per element
    (8-bit state: 1 + 4/256 per state element), and, where bitsandbytes or torchao
    imports, their 8-bit Adams as anchors with a speed ratio in every row."""
    path = tmp_path / "bench.json"
    rc, out, _ = _run(capsys, TINY + ["--sections", "storage", "--json", str(path)])
    assert rc == 0 and "### Adam by storage" in out
    recs = json.loads(path.read_text())["storage"]
    by = {r["impl"]: r for r in recs}
    assert {label for label, *_ in bench.STORAGE_ROWS} <= set(by)
    assert by["float32 / float32 state"]["bytes_per_elem"] == 28
    assert by["float32 / 8-bit state"]["bytes_per_elem"] == round(12 + 4 * (1 + 4 / 256), 2)
    anchors = []
    if bench._TORCH is not None:
        for mod, name in (("bitsandbytes", "bitsandbytes Adam8bit float32"),
                          ("torchao", "torchao AdamW8bit float32")):
            try:
                __import__(mod)
            except Exception:   # (absent or broken here: no anchor)
                continue
            anchors.append(name)
    for name in anchors:
        assert name in by and f"vs {name}" in out
        key = "speed_vs_" + name.replace(" ", "_")
        for label, *_ in bench.STORAGE_ROWS:
            _positive_numbers(by[label], [key])
            assert by[label][key] == pytest.approx(by[name]["median_ns_per_elem"] /
                                                   by[label]["median_ns_per_elem"])
