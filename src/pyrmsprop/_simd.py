"""Which SIMD target each update runs on.

``set_simd(name)`` runs every rule on one target.  ``set_simd("auto")`` measures
every rule and dtype on every target this CPU supports, in cache, and runs each on
the fastest: the widest vectors are not always the fastest (on a Sapphire
Rapids-class Xeon, AVX2 ran Adam, RMSprop and SGD 3-8% faster than AVX-512 in
cache, EMA 3% slower).  A lower target is chosen only when it is faster than the
best one by more than ``MARGIN``, and of lower targets within MARGIN of each other
the wider.  ``set_simd("auto", save=True)`` (or
``python -m pyrmsprop.bench --tune-simd``) also saves the choice, and later imports
on the same CPU start with it.  Every target gives bit-identical results, so the
choice changes speed only.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import warnings
from pathlib import Path

import numpy as np

from pyrmsprop import _core
from pyrmsprop._version import __version__

ARRAYS = _core._RULE_ARRAYS   # the arrays each rule's timing takes
RULES = tuple(ARRAYS)         # ema, rmsprop, adam, sgd
DTYPES = ("float32", "float64", "bfloat16", "float16")   # the params' (state alike)
ELEMS = 16384      # per array: every rule's arrays fit in a core's L2
ROUNDS = 3         # timings per rule, dtype and target; the fastest counts
WARM = 1e-3        # seconds a target runs untimed before each timing ...
TIMED = 2e-3       # ... and timed: AVX-512 code changes the core's clock for a
                   # while, so short samples of one target take the other's speed
MARGIN = 0.03      # a lower target must be this much faster than the best one
SCHEMA = "pyrmsprop.simd/1"

_lock = threading.Lock()
_mode = "best"     # "best" (every rule on the best target), "target" (set_simd(name)),
                   # "auto" (measured now) or "saved" (a saved measurement)
_measured: dict[str, dict[str, float]] = {}


def measure(rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """ns/element of every rule and dtype on every supported target, in cache, one
    thread: ``{"adam/float32": {"baseline": 0.60, "avx2": 0.50, "avx512": 0.53},
    ...}``, the fastest of ``rounds`` timings, the targets in a new order every
    round.  Takes about a second with three targets."""
    targets = _core.simd_targets()
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    for rule in RULES:
        for dtype in DTYPES:
            arrays = _arrays(rng, ARRAYS[rule], dtype)
            once = min(_core.time_on(targets[-1], rule, arrays, 1) for _ in range(3))
            warm = max(1, int(WARM / max(once, 1e-7)))
            calls = max(1, int(TIMED / max(once, 1e-7)))
            best = dict.fromkeys(targets, float("inf"))
            for k in range(rounds):
                for target in targets[k % len(targets):] + targets[:k % len(targets)]:
                    _core.time_on(target, rule, arrays, warm)
                    t = _core.time_on(target, rule, arrays, calls) / (calls * ELEMS)
                    best[target] = min(best[target], t)
            out[f"{rule}/{dtype}"] = {t: v * 1e9 for t, v in best.items()}
    return out


def _arrays(rng: np.random.Generator, count: int, dtype: str) -> list:
    """``count`` arrays of ELEMS elements, 64-byte aligned, array k starting k KiB
    into a 4 KiB page: where two arrays' addresses agree in their low 12 bits, a
    load can wait on a store to the other (the core compares only those bits at
    first), which would make the choice depend on where malloc put the arrays.
    bfloat16 arrays are uint16 arrays of float32s' top halves, wrapped
    (_core.bf16_bits): no ml_dtypes needed."""
    bf16 = dtype == "bfloat16"
    store = np.dtype(np.uint16 if bf16 else dtype)
    out = []
    for k in range(count):
        buf = np.empty(ELEMS + 8192 // store.itemsize, store)
        skip = ((1024 * (k % 4) - buf.ctypes.data) % 4096) // store.itemsize
        a = buf[skip:skip + ELEMS]
        values = rng.uniform(0.5, 1.0, ELEMS)
        if bf16:
            a[...] = (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
            out.append(_core.bf16_bits(a))
        else:
            a[...] = values
            out.append(a)
    return out


def choose(measured: dict[str, dict[str, float]]) -> dict[str, str]:
    """The target for each "rule/dtype": the widest one whose time is within
    MARGIN of the fastest (so the best supported target unless another beats it
    by more than that, and of two lower targets alike the wider)."""
    order = _core.simd_targets()             # lowest first
    out = {}
    for key, times in measured.items():
        fastest = min(times.values())
        out[key] = [t for t in order if times[t] <= fastest * (1.0 + MARGIN)][-1]
    return out


def _apply(mode: str, measured: dict[str, dict[str, float]]) -> None:
    global _mode, _measured
    with _lock:
        _core.set_simd(_core.best_simd_target())
        for key, target in choose(measured).items():
            rule, dtype = key.split("/")
            _core.set_rule_target(rule, dtype, target)
        _mode, _measured = mode, measured


def set_simd(name: str, *, save: bool = False) -> None:
    """Run every update on SIMD target ``name``: 'baseline', 'avx2' or 'avx512' on
    x86-64; 'neon' on ARM64, where 'baseline' is an alias of it.  ``'auto'``
    measures each rule and dtype on every target this CPU supports (about half a
    second) and runs each on the fastest (see :func:`simd_by_rule`); with
    ``save=True`` it also writes that measurement to :func:`saved_path`, and later
    imports on the same CPU start with it.  Every target gives bit-identical
    results.  A name this build lacks (a target of another architecture included)
    or this CPU does not support raises ``ValueError``.  Safe from any thread: an
    update already running finishes on the target it started with, and later
    calls use the new one.
    """
    global _mode
    if not isinstance(save, bool):
        raise TypeError(f"save must be a bool, got {type(save).__name__}")
    if isinstance(name, str) and name.strip().lower() == "auto":
        measured = measure()
        if save:
            _save(measured)
        _apply("auto", measured)
        return
    if save:
        raise ValueError("save=True goes with set_simd('auto'): only a measurement is saved")
    with _lock:
        _core.set_simd(name)
        _mode = "target"


def use_measured() -> None:
    """Run each rule on the target the last measurement chose (as set_simd('auto')
    did, without measuring again); the best target for all if none was made."""
    if _measured:
        _apply(_mode if _mode in ("auto", "saved") else "auto", _measured)
    else:
        set_simd(_core.best_simd_target())


def snapshot() -> tuple:
    """The whole choice, for restore()."""
    with _lock:
        return (_mode, _measured, _core.simd_target(),
                {(r, d): _core.rule_target(r, d) for r in RULES for d in DTYPES})


def restore(state: tuple) -> None:
    global _mode, _measured
    mode, measured, target, by_rule = state
    with _lock:
        _core.set_simd(target)
        for (r, d), t in by_rule.items():
            _core.set_rule_target(r, d, t)
        _mode, _measured = mode, measured


def simd_target() -> str:
    """'auto' when each rule runs on the target measured fastest (set_simd('auto')
    or a saved measurement), else the one target every rule runs on: 'baseline',
    'avx2', 'avx512' or 'neon'."""
    if _mode in ("auto", "saved") and all(
            _core.rule_target(*key.split("/")) == target
            for key, target in choose(_measured).items()):
        return "auto"
    return _core.simd_target()     # (also after a direct _core.set_simd)


def simd_by_rule() -> dict[str, dict[str, str]]:
    """The target each rule and dtype runs on, e.g. ``{"adam": {"float32": "avx2",
    "float64": "avx2"}, ...}``."""
    return {rule: {dtype: _core.rule_target(rule, dtype) for dtype in DTYPES}
            for rule in RULES}


def simd_measurement() -> dict:
    """How the targets were chosen: ``{"mode": "best" | "target" | "auto" | "saved",
    "ns_per_elem": {...}}`` (the measurement behind 'auto'/'saved', else {})."""
    return {"mode": _mode, "ns_per_elem": {k: dict(v) for k, v in _measured.items()}}


# ---- the saved measurement -----------------------------------------------------

def saved_path() -> Path:
    """Where ``set_simd('auto', save=True)`` writes: ``$PYRMSPROP_CACHE_DIR/simd.json``,
    else ``$XDG_CACHE_HOME/pyrmsprop/simd.json``, else ``~/.cache/pyrmsprop/simd.json``
    (``%LOCALAPPDATA%\\pyrmsprop\\simd.json`` on Windows)."""
    if os.environ.get("PYRMSPROP_CACHE_DIR"):
        return Path(os.environ["PYRMSPROP_CACHE_DIR"]) / "simd.json"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "pyrmsprop" / "simd.json"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pyrmsprop" / "simd.json"


def _machine_key() -> str:
    """What a saved measurement is valid for: this CPU, OS, build and version."""
    return " | ".join([_core.cpu_name() or platform.machine(), platform.system(),
                       ",".join(_core.simd_targets()), _core.compiler(), __version__])


def _save(measured: dict[str, dict[str, float]]) -> None:
    path = saved_path()
    try:
        entries = json.loads(path.read_text()).get("machines", {})
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError, AttributeError):
        entries = {}
    entries[_machine_key()] = {"ns_per_elem": measured}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA, "machines": entries}, indent=1))
    os.replace(tmp, path)


def _load() -> dict[str, dict[str, float]] | None:
    """This machine's saved measurement, or None (none saved, or the file is bad:
    then a warning says so and the best target is used)."""
    path = saved_path()
    try:
        text = path.read_text()
    except OSError:
        return None
    targets = set(_core.simd_targets())
    try:
        doc = json.loads(text)
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"schema is not {SCHEMA!r}")
        entry = doc["machines"].get(_machine_key())
        if entry is None:
            return None
        measured = entry["ns_per_elem"]
        want = {f"{r}/{d}" for r in RULES for d in DTYPES}
        if set(measured) != want or any(
                set(v) != targets or not all(isinstance(x, (int, float)) and x > 0
                                             for x in v.values())
                for v in measured.values()):
            raise ValueError("its entry for this machine is incomplete")
        return {k: {t: float(x) for t, x in v.items()} for k, v in measured.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(f"pyrmsprop: ignoring the saved SIMD measurement {path} ({exc}); "
                      f"rerun `python -m pyrmsprop.bench --tune-simd` to replace it",
                      RuntimeWarning, stacklevel=3)
        return None


def init() -> None:
    """At import: PYRMSPROP_SIMD (a target, or 'auto' to measure now), else this
    machine's saved measurement, else the best target for every rule."""
    global _mode
    _core.set_simd(_core.best_simd_target())
    wanted = os.environ.get("PYRMSPROP_SIMD", "").strip()
    if wanted:
        try:
            set_simd(wanted)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"PYRMSPROP_SIMD={wanted!r}: {exc}") from None
        return
    saved = _load() if len(_core.simd_targets()) > 1 else None
    if saved is not None:
        _apply("saved", saved)
