"""``python -m pyrmsprop.bench``: how fast the kernels are, next to the anchors
that matter, all timed in one run.

Sections (``--sections``, default all of them):

kernels
    Per rule (EMA, RMSprop, Adam, SGD-momentum), dtype and size: the median
    ns/element of the functional API, GB/s from the bytes each update must move
    (each element read + written, float32: EMA 12, RMSprop 20, Adam 28, SGD-momentum 20 B/elem;
    float64 twice that), and the same figures for every anchor:

    ``limit``          ``pyrmsprop._core.memory_only_update`` over as many arrays
                       (2, 3, 3, 4): the same loads and stores with one add per
                       store, through the kernels' thread layout, cache-line
                       peeling, blocks and prefetches; in each repetition the
                       fastest of a run on the same arrays, one on 64-byte-aligned
                       copies that start 1 KiB apart in their 4 KiB pages and one
                       on the same arrays without the prefetches (the median over
                       repetitions); "% of limit" = limit time /
                       pyrmsprop time (above 100% would mean the limit is wrong:
                       marked "!")
    ``numpy``          the update written by hand with numpy ufuncs (``out=`` into
                       preallocated scratch arrays, no temporaries)
    ``torch``          ``torch.optim`` single-tensor (``foreach=False``); for EMA,
                       ``Tensor.lerp_``
    ``torch_foreach``  ``torch.optim`` with ``foreach=True``; EMA:
                       ``torch._foreach_lerp_``
    ``torch_fused``    ``fused=True`` where torch has it on the CPU (Adam, SGD)
    ``deepspeed``      Adam float32 only: ``deepspeed.ops.adam.DeepSpeedCPUAdam``
                       when deepspeed is installed (``--deepspeed``; also in lists)

    Anchor cells read "ns/elem (Nx)": N = anchor time / pyrmsprop time.
per-call
    Microseconds per call at 1, 16 and 1000 float32 elements: the functional API
    (validation included) against ``torch.optim.Adam`` (single, foreach, fused)
    and ``torch.optim.RMSprop(foreach=True)`` stepping one tensor.
lists
    Whole Adam steps over parameter lists shaped like resnet18 (62 tensors,
    11.7M elements) and a 12-layer transformer (d_model 512, vocab 8192, 148
    tensors, 42.3M elements): ``pyrmsprop.Adam(params).step(grads)``, the same
    over views of one buffer (the list machinery alone, without the cost of
    separate 4 KiB-page allocations), on one flat array of equal total size, a
    Python loop of ``adam_update``, and
    ``torch.optim.Adam`` foreach and fused over the same (shared-memory) tensors.
storage
    Adam at the largest size over every storage combination (float32, bfloat16 and
    float16 params; float32, 16-bit and 8-bit state; the master modes): ns/element,
    bytes per element, % of the memory-only loop over the same arrays and elements/s
    against float32 Adam; anchors ``torch.optim.Adam(fused=True)`` in float32 and
    bfloat16 and, when installed, the 8-bit CPU Adams of bitsandbytes
    (``bnb.optim.Adam8bit``) and torchao (``torchao.optim.AdamW8bit``,
    weight_decay=0: Adam) on float32 params.

A figure whose repetitions spread by more than 10% (interquartile range / median),
or a ratio built on one, is marked "?": not to be trusted (another process competed
for the CPUs or memory); the header warns when the load average is high.

Every section runs for each thread count (``--threads``, default ``1,N``, N
all threads; torch gets the same count) and the kernels section for each SIMD
target (``--simd``).  Implementations are interleaved in a new random order in every
repetition, so drift on a noisy machine hits all alike, and the median is
reported.  With more than one thread, each sample waits until the other threads
of the process sleep (torch's OpenMP worker spins for a while after every parallel
region, and pyrmsprop's pool worker after every job, on the core the next sample
needs) and makes one untimed call: every implementation is timed back to back
with itself.  Two experiments replace the sections:

``--busy``       1 vs N threads with and without a busy-loop process pinned to
                 another core (a 2-thread call must not cost more than 1.2x the
                 1-thread call when the other core is busy)
``--threshold``  1 vs N threads over sizes 2**12 .. 2**23 with splitting forced,
                 and the size from which N threads win (the serial threshold)

JSON (``--json PATH``), schema ``pyrmsprop.bench/1``::

    {"schema": "pyrmsprop.bench/1",
     "header": {"pyrmsprop", "python", "platform", "cpu", "cpus", "loadavg" (1, 5, 15 min
                at the start; "loadavg_end" at the end), "simd_in_use",
                "simd_available", "simd_compiled", "threads", "thread_mode",
                "thread_threshold", "numpy", "torch" (null if absent), "deepspeed" (null if not
                benchmarked), "argv"},
     "records":   [{"rule", "dtype", "size", "impl", "threads", "simd" (null for
                    anchors), "median_ns_per_elem", "min_ns_per_elem", "gbps",
                    "bytes_per_elem", "pct_of_limit", "repeats", "spread" (interquartile
                    range / median of the repeats), "noisy" (spread > 10%), "limit_from"
                    (always "limit": in each repetition the faster memory-only run), "noisy_vs"
                    (names of the noisy figures this record is compared with),
                    "ratio_vs_<other impl>": other time / this time, ...}],
     "per_call":  [{"impl", "rule", "dtype", "size", "threads", "median_us", "min_us",
                    "spread", "noisy"}],
     "lists":     [{"list", "tensors", "elements", "dtype", "impl", "threads",
                    "median_ms", "min_ms", "spread", "noisy", "ratio_vs_<other impl>", ...}],
     "busy":      [{"phase": "idle"|"busy", "case", "size", "split", "impl", "threads",
                    "median_ns_per_elem", "ratio_vs_1_thread"}],
     "threshold": [{"rule", "dtype", "size", "threads", "median_ns_per_elem",
                    "ratio_vs_1_thread"}],
     "crossover": {"<rule>/<dtype>": smallest size from which N threads win, or null}}

Run ``python -m pyrmsprop.bench --help`` for the flags.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import pyrmsprop
from pyrmsprop import _core, _simd

SCHEMA = "pyrmsprop.bench/1"
RULES = ("ema", "rmsprop", "adam", "sgd")
TITLE = {"ema": "EMA", "rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD-momentum"}
BYTES_F32 = {"ema": 12, "rmsprop": 20, "adam": 28, "sgd": 20}
STATE_ARRAYS = {"ema": 0, "rmsprop": 1, "adam": 2, "sgd": 1}   # besides param/avg and grad/x
HP = {
    "ema": {"beta": 0.999},
    "rmsprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "sgd": {"lr": 1e-2, "momentum": 0.9},
}
ANCHORS = ("numpy", "torch", "torch_foreach", "torch_fused", "deepspeed")
DEFAULT_SIZES = (1_000, 64_000, 1_000_000, 16_000_000, 64_000_000)
QUICK_SIZES = (1_000, 64_000, 1_000_000)
F64_MAX_DEFAULT = 16_000_000
PER_CALL_SIZES = (1, 16, 1000)
THRESHOLD_SIZES = tuple(2**k for k in range(12, 24))
LISTS = ("resnet18", "transformer")
SECTIONS = ("kernels", "per-call", "lists", "storage")
NOISY = 0.10        # a figure whose repeats spread more (IQR / median) is not trusted
NOISY_MARK = " ?"
BUSY_LOAD = 0.5     # load average per CPU above which the header warns
DTYPES = {"float32": np.float32, "f32": np.float32, "float64": np.float64, "f64": np.float64}


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------

@dataclass
class Impl:
    """One thing to time: ``fn()`` runs one update; ``simd``/``threads`` are
    switched to before each sample when set."""
    name: str
    fn: Callable[[], object]
    simd: str | None = None
    threads: int | None = None
    number: int = 1
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range of the samples / their median (0 with fewer than 3)."""
        if len(self.samples) < 3:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return (q3 - q1) / self.median

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY


def _mark(text: str, *impls: Impl) -> str:
    """``text`` with NOISY_MARK appended when a figure it rests on is noisy."""
    return text + NOISY_MARK if any(im.noisy for im in impls) else text


@dataclass
class Budget:
    sample: float      # seconds one sample (``number`` calls) should last at least
    group: float       # seconds all repetitions of one group should take at most
    min_repeat: int
    max_repeat: int
    repeat: int | None  # exact count from --repeat


_TORCH = None
_DEEPSPEED = None   # DeepSpeedCPUAdam when deepspeed is installed (--deepspeed auto|yes|no)


def _set_threads(n: int) -> None:
    pyrmsprop.set_num_threads(n)
    if _TORCH is not None:
        _TORCH.set_num_threads(n)


def _use_simd(name: str) -> None:
    """'auto': each rule on the target this run measured fastest; else one target."""
    if name == "auto":
        _simd.use_measured()
    else:
        _core.set_simd(name)


def _activate(im: Impl) -> None:
    if im.simd is not None:
        _use_simd(im.simd)
    if im.threads is not None:
        _set_threads(im.threads)


def _clock(fn: Callable[[], object], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


SETTLE_MAX = 0.05   # seconds: the longest wait for the process's other threads to sleep


def _other_threads_running() -> bool | None:
    """Whether a thread of this process other than the caller is running (Linux:
    state R in /proc/self/task/*/stat); None where that cannot be read."""
    me = str(threading.get_native_id())
    try:
        tids = os.listdir("/proc/self/task")
        for tid in tids:
            if tid == me:
                continue
            try:
                with open(f"/proc/self/task/{tid}/stat", "rb") as fh:
                    stat = fh.read()
            except FileNotFoundError:          # the thread ended meanwhile
                continue
            if stat[stat.rindex(b")") + 2:][:1] == b"R":
                return True
    except OSError:
        return None
    return False


def _settle() -> None:
    """Wait until every other thread of the process sleeps (at most SETTLE_MAX s).

    After its parallel region torch's OpenMP worker spins on the other core for a
    while (about 1.5 ms here), and so does pyrmsprop's pool worker after a job:
    a sample that starts then shares a core with the previous implementation's
    spinner.  Where /proc cannot tell, a fixed 5 ms sleep."""
    deadline = time.perf_counter() + SETTLE_MAX
    while True:
        running = _other_threads_running()
        if running is None:
            time.sleep(0.005)
            return
        if not running or time.perf_counter() > deadline:
            return
        time.sleep(0.0002)


def measure(impls: list[Impl], budget: Budget) -> int:
    """Warm up and calibrate each implementation, then time them interleaved (a
    new random order in each repetition); returns the repetitions run."""
    estimate = []
    for im in impls:
        _activate(im)
        im.fn()                                 # first touch, lazily created state
        t = _clock(im.fn, 1)
        if t < 1e-3:
            t = _clock(im.fn, max(1, int(1e-3 / max(t, 1e-8))))
        im.number = max(1, int(budget.sample / max(t, 1e-9)))
        im.samples = []
        estimate.append(im.number * t)
    reps = budget.repeat or min(budget.max_repeat,
                                max(budget.min_repeat, int(budget.group / sum(estimate))))
    enabled = gc.isenabled()
    gc.disable()
    # A new random order every repetition, so drift hits all alike.  What ran just
    # before a sample must not matter: with more than one thread, each sample
    # waits until the previous implementation's threads sleep (_settle), then
    # makes one untimed call (which wakes its own threads) before the timed ones,
    # so every implementation is timed back to back with itself.
    order = np.random.default_rng(len(impls))
    threaded = pyrmsprop.get_num_threads() > 1 or any((im.threads or 1) > 1 for im in impls)
    try:
        for _ in range(reps):
            for k in order.permutation(len(impls)):
                im = impls[k]
                _activate(im)
                if threaded:
                    _settle()
                    im.fn()
                im.samples.append(_clock(im.fn, im.number))
    finally:
        if enabled:
            gc.enable()
    return reps


# ---------------------------------------------------------------------------
# the updates: ours, the memory-only limit, numpy by hand, torch
# ---------------------------------------------------------------------------

def _arrays(rule: str, dtype, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """param (or avg), grad (or x), then the rule's zeroed state arrays.  Gradients
    are small and positive so that the memory-only loop's sums stay finite."""
    p = rng.random(n, dtype=dtype)
    g = rng.random(n, dtype=dtype)
    g *= 1e-3
    g += 1e-4
    return [p, g] + [np.zeros(n, dtype) for _ in range(STATE_ARRAYS[rule])]


def _ours(rule: str, arrays: list[np.ndarray]) -> Callable[[], None]:
    hp = HP[rule]
    if rule == "ema":
        avg, x = arrays
        return lambda: pyrmsprop.ema_update(avg, x, **hp)
    if rule == "rmsprop":
        p, g, s = arrays
        return lambda: pyrmsprop.rmsprop_update(p, g, s, **hp)
    if rule == "sgd":
        p, g, buf = arrays
        return lambda: pyrmsprop.sgd_update(p, g, momentum_buffer=buf, **hp)
    p, g, m, v = arrays
    steps = itertools.count(1)
    return lambda: pyrmsprop.adam_update(p, g, m, v, step=next(steps), **hp)


def _fastest(first: Impl, *others: Impl) -> Impl:
    """The limit as one Impl: in each repetition the fastest of these runs of the
    memory-only loop (timed interleaved with the rest, so their samples pair up)."""
    return Impl("limit", first.fn, simd=first.simd, number=first.number,
                samples=[min(t) for t in zip(first.samples, *(o.samples for o in others))])


def _limit(arrays: list[np.ndarray], prefetch: bool = True) -> Callable[[], None]:
    return lambda: _core.memory_only_update(*arrays, prefetch=prefetch)


def _aligned_copy(a: np.ndarray, k: int = 0) -> np.ndarray:
    """A copy of ``a`` that starts on a 64-byte boundary, ``k`` KiB (mod 4) into a
    4 KiB page: the arrays of a call, numbered k = 0, 1, ..., then never start at
    the same offset in their pages (where they do, as numpy's and torch's large
    arrays do, a load can wait on an older store to another array at the same
    offset, which the core mistakes for the same address)."""
    buf = np.empty(a.size + 8192 // a.itemsize, a.dtype)
    skip = ((1024 * (k % 4) - buf.__array_interface__["data"][0]) % 4096) // a.itemsize
    out = buf[skip:skip + a.size]
    out[...] = a
    return out


def _numpy(rule: str, arrays: list[np.ndarray]) -> Callable[[], None]:
    """The update written with numpy ufuncs, into a scratch array (no temporaries)."""
    hp = HP[rule]
    t = np.empty_like(arrays[0])
    if rule == "ema":
        avg, x = arrays
        beta = hp["beta"]

        def ema():
            np.multiply(x, 1.0 - beta, out=t)
            np.multiply(avg, beta, out=avg)
            np.add(avg, t, out=avg)
        return ema
    if rule == "rmsprop":
        p, g, s = arrays
        lr, alpha, eps = hp["lr"], hp["alpha"], hp["eps"]

        def rmsprop():
            np.multiply(s, alpha, out=s)
            np.multiply(g, g, out=t)
            np.multiply(t, 1.0 - alpha, out=t)
            np.add(s, t, out=s)
            np.sqrt(s, out=t)
            np.add(t, eps, out=t)
            np.divide(g, t, out=t)
            np.multiply(t, lr, out=t)
            np.subtract(p, t, out=p)
        return rmsprop
    if rule == "sgd":
        p, g, buf = arrays
        lr, mom = hp["lr"], hp["momentum"]

        def sgd():
            np.multiply(buf, mom, out=buf)
            np.add(buf, g, out=buf)
            np.multiply(buf, lr, out=t)
            np.subtract(p, t, out=p)
        return sgd
    p, g, m, v = arrays
    lr, b1, b2, eps = hp["lr"], hp["beta1"], hp["beta2"], hp["eps"]
    steps = itertools.count(1)

    def adam():
        step = next(steps)
        np.subtract(g, m, out=t)
        np.multiply(t, 1.0 - b1, out=t)
        np.add(m, t, out=m)
        np.multiply(v, b2, out=v)
        np.multiply(g, g, out=t)
        np.multiply(t, 1.0 - b2, out=t)
        np.add(v, t, out=v)
        np.sqrt(v, out=t)
        np.divide(t, math.sqrt(1.0 - b2**step), out=t)
        np.add(t, eps, out=t)
        np.divide(m, t, out=t)
        np.multiply(t, lr / (1.0 - b1**step), out=t)
        np.subtract(p, t, out=p)
    return adam


_TORCH_OPT = {"rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD"}
_TORCH_VARIANTS = {"torch": {"foreach": False}, "torch_foreach": {"foreach": True},
                   "torch_fused": {"fused": True}}


def _torch_kwargs(rule: str) -> dict:
    hp = HP[rule]
    if rule == "adam":
        return {"lr": hp["lr"], "betas": (hp["beta1"], hp["beta2"]), "eps": hp["eps"]}
    return dict(hp)


def _has_fused(torch, rule: str) -> bool:
    import inspect
    return "fused" in inspect.signature(getattr(torch.optim, _TORCH_OPT[rule])).parameters


def _torch(rule: str, arrays: list[np.ndarray]) -> dict[str, Callable[[], object]]:
    """torch anchors on copies of ``arrays``' param and grad in tensors torch allocates
    (as a torch user's are: on 64-byte boundaries); torch keeps its own state."""
    torch = _TORCH
    if torch is None:
        return {}
    p, g = torch.from_numpy(arrays[0]).clone(), torch.from_numpy(arrays[1]).clone()
    if rule == "ema":
        w = 1.0 - HP["ema"]["beta"]
        return {"torch": lambda: p.lerp_(g, w),
                "torch_foreach": lambda: torch._foreach_lerp_([p], [g], w)}
    p.grad = g
    cls = getattr(torch.optim, _TORCH_OPT[rule])
    out = {}
    for name, kw in _TORCH_VARIANTS.items():
        if "fused" in kw and not _has_fused(torch, rule):
            continue
        out[name] = cls([p], **_torch_kwargs(rule), **kw).step
    if rule == "adam" and _DEEPSPEED is not None and p.dtype == torch.float32:
        # (float32 only: its CPU Adam refuses float64 parameters with float32 state)
        out["deepspeed"] = _deepspeed_step([p])
    return out


def _deepspeed_step(tensors):
    """DeepSpeed's CPU Adam (its own AVX C++ kernel, OpenMP threads from torch's
    runtime, so torch.set_num_threads sets them) over ``tensors`` (with .grad)."""
    hp = HP["adam"]
    return _DEEPSPEED(tensors, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                      weight_decay=0.0, adamw_mode=False).step


# ---------------------------------------------------------------------------
# parameter lists
# ---------------------------------------------------------------------------

def resnet18_shapes() -> list[tuple[int, ...]]:
    """torchvision's resnet18 parameters: convs (no bias), batch-norm weight and
    bias, the 1000-class fc; 62 tensors, 11,689,512 elements."""
    shapes: list[tuple[int, ...]] = [(64, 3, 7, 7), (64,), (64,)]
    cin = 64
    for cout in (64, 128, 256, 512):
        for block in range(2):
            shapes += [(cout, cin, 3, 3), (cout,), (cout,), (cout, cout, 3, 3), (cout,), (cout,)]
            if block == 0 and cin != cout:
                shapes += [(cout, cin, 1, 1), (cout,), (cout,)]
            cin = cout
    return shapes + [(1000, 512), (1000,)]


def transformer_shapes(layers: int = 12, d: int = 512, vocab: int = 8192,
                       ctx: int = 512) -> list[tuple[int, ...]]:
    """A GPT-style decoder: token and position embeddings, per layer two
    layernorms, qkv and output projections and a 4x MLP (weights and biases),
    a final layernorm; 148 tensors, 42.3M elements with the defaults."""
    shapes: list[tuple[int, ...]] = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,),
                   (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return shapes + [(d,), (d,)]


def _views(flat: np.ndarray, shapes) -> list[np.ndarray]:
    """``flat`` cut into consecutive views of the given shapes."""
    out, start = [], 0
    for shape in shapes:
        n = math.prod(shape)
        out.append(flat[start:start + n].reshape(shape))
        start += n
    return out


def _list_impls(shapes, dtype, rng) -> tuple[list[Impl], list[np.ndarray]]:
    params = [rng.random(s, dtype=dtype) for s in shapes]
    grads = [rng.random(s, dtype=dtype) * dtype(1e-3) for s in shapes]
    total = sum(p.size for p in params)
    flat_p, flat_g = rng.random(total, dtype=dtype), rng.random(total, dtype=dtype) * dtype(1e-3)
    hp = HP["adam"]
    impls = []
    loop_state = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    steps = itertools.count(1)

    def loop():
        step = next(steps)
        for p, g, (m, v) in zip(params, grads, loop_state):
            pyrmsprop.adam_update(p, g, m, v, step=step, **hp)

    adam = getattr(pyrmsprop, "Adam", None)
    if adam is not None:
        opt, flat = adam(params, **_torch_kwargs("adam")), adam([flat_p], **_torch_kwargs("adam"))
        # the same list as views of one buffer each for params and grads (as a
        # flattening framework lays them out): the list machinery alone, with the
        # memory layout of the flat array (huge pages for numpy's big allocations)
        one_p, one_g = _views(flat_p.copy(), shapes), _views(flat_g.copy(), shapes)
        one = adam(one_p, **_torch_kwargs("adam"))
        impls += [Impl("pyrmsprop.Adam", lambda: opt.step(grads)),
                  Impl("pyrmsprop.Adam, one buffer", lambda: one.step(one_g)),
                  Impl("flat array", lambda: flat.step([flat_g]))]
    else:
        fm, fv = np.zeros_like(flat_p), np.zeros_like(flat_p)
        fsteps = itertools.count(1)
        impls.append(Impl("flat array", lambda: pyrmsprop.adam_update(
            flat_p, flat_g, fm, fv, step=next(fsteps), **hp)))
    impls.append(Impl("adam_update loop", loop))
    if _TORCH is not None:
        tensors = [_TORCH.from_numpy(p).clone() for p in params]   # torch-allocated
        for t, g in zip(tensors, grads):
            t.grad = _TORCH.from_numpy(g).clone()
        for name in ("torch_foreach", "torch_fused"):
            impls.append(Impl(name, _TORCH.optim.Adam(tensors, **_torch_kwargs("adam"),
                                                      **_TORCH_VARIANTS[name]).step))
        if _DEEPSPEED is not None:
            impls.append(Impl("deepspeed", _deepspeed_step(tensors)))
    return impls, params


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------

def fmt_size(n: int) -> str:
    if n < 1000:
        return str(n)
    e = math.floor(math.log10(n))
    mant = n / 10**e
    return f"{mant:g}e{e}" if round(mant, 1) * 10**e == n else str(n)


def fmt_num(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table, columns padded; the first ``left`` columns left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join(("-" * (w + 2)) if i < left else ("-" * (w + 1) + ":")
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule] + [line(r) for r in rows])


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)


def _noise_note(records: list[dict]) -> None:
    """Say how many figures are not to be trusted (their repeats spread too much)."""
    noisy = [r for r in records if r.get("noisy")]
    if noisy:
        print(f"\n{NOISY_MARK.strip()} = not to be trusted: the repeats of this figure, or of "
              f"one it is compared with, spread by more than {NOISY:.0%} (interquartile range "
              f"/ median); {len(noisy)} of {len(records)} timings here. Other processes are "
              f"competing for the CPUs or memory: rerun on a quiet machine.")
    over = [r for r in records if r.get("pct_of_limit", 0) > 100 and not r.get("noisy_vs")
            and r["impl"] == "pyrmsprop"]
    if over:
        print(f"! = faster than the memory-only loop with quiet repeats ({len(over)} figures): "
              f"that loop is not the fastest way to move these bytes, so it is no limit.")


def _ratios(rec: dict, times: dict[str, float], me: str) -> None:
    for other, t in times.items():
        if other != me:
            rec[f"ratio_vs_{other}"] = t / times[me]


# ---------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------

def self_check(dtypes) -> list[str]:
    """One update of every rule, pyrmsprop against the numpy anchor, on every
    supported SIMD target; returns the failures."""
    bad = []
    current = _simd.snapshot()
    rng = np.random.default_rng(0)
    for dtype, rule, target in itertools.product(dtypes, RULES, _core.simd_targets()):
        a = _arrays(rule, dtype, 1037, rng)
        for s in a[2:]:
            s += rng.random(s.size, dtype=dtype)
        b = [x.copy() for x in a]
        _core.set_simd(target)
        _ours(rule, a)()
        _numpy(rule, b)()
        tol = 1e-5 if dtype == np.float32 else 1e-12
        for x, y in zip(a, b):
            if not np.allclose(x, y, rtol=tol, atol=tol):
                bad.append(f"{rule} {np.dtype(dtype).name} {target}: "
                           f"max |diff| {np.max(np.abs(x - y)):.3g}")
                break
    _simd.restore(current)
    return bad


def run_kernels(args, out: dict) -> None:
    rng = np.random.default_rng(1)
    for dtype in args.dtypes:
        dname = np.dtype(dtype).name
        sizes = args.sizes if args.sizes_given or dtype == np.float32 else \
            [n for n in args.sizes if n <= F64_MAX_DEFAULT]
        recs = []
        for n, rule in itertools.product(sizes, args.rules):
            _progress(f"kernels: {TITLE[rule]} {dname} {fmt_size(n)}")
            arrays = _arrays(rule, dtype, n, rng)
            impls = []
            aligned = [_aligned_copy(a, k) for k, a in enumerate(arrays)]
            for target in args.simd:
                impls += [Impl("pyrmsprop", _ours(rule, arrays), simd=target),
                          Impl("limit", _limit(arrays), simd=target),
                          Impl("limit_aligned", _limit(aligned), simd=target),
                          Impl("limit_nopf", _limit(arrays, prefetch=False), simd=target)]
            impls.append(Impl("numpy", _numpy(rule, arrays)))
            impls += [Impl(k, f) for k, f in _torch(rule, arrays).items()]
            nbytes = BYTES_F32[rule] * np.dtype(dtype).itemsize // 4
            for threads in args.threads:
                _set_threads(threads)
                reps = measure(impls, args.budget)
                anchors = {im.name: im for im in impls if im.simd is None}
                # the limit: in each repetition the fastest of the memory-only loop on
                # these arrays, on aligned copies (same thread layout, peeling and
                # prefetches as the kernels) and without prefetches: the best this
                # memory moved those bytes
                limits: dict[str | None, Impl] = {}
                for target in args.simd:
                    same, copies, nopf = (next(im for im in impls if im.name == name
                                               and im.simd == target)
                                          for name in ("limit", "limit_aligned", "limit_nopf"))
                    limits[target] = _fastest(same, copies, nopf)
                for im in impls:
                    if im.name in ("limit_aligned", "limit_nopf"):
                        continue
                    limit = limits.get(im.simd, limits[args.simd[0]])
                    if im.name == "limit":      # the record of the limit: the best of all
                        im = limit
                    me = "limit" if im is limit else im.name
                    times = {**{k: a.median for k, a in anchors.items()},
                             "limit": limit.median}
                    times[me] = im.median
                    compared = [im, limit, *anchors.values()]
                    rec = {"rule": rule, "dtype": dname, "size": n,
                           "impl": me,
                           "threads": threads, "simd": im.simd,
                           "median_ns_per_elem": im.median * 1e9 / n,
                           "min_ns_per_elem": im.best * 1e9 / n,
                           "gbps": nbytes * n / im.median / 1e9, "bytes_per_elem": nbytes,
                           "pct_of_limit": 100 * limit.median / im.median, "repeats": reps,
                           "spread": im.spread, "noisy": im.noisy,
                           "limit_from": "limit",
                           "noisy_vs": sorted({c.name for c in compared if c.noisy})}
                    _ratios(rec, times, me)
                    recs.append(rec)
            del arrays, aligned, impls
            if n >= 1_000_000:      # free torch's state now (gc.collect is slow with torch)
                gc.collect()
        out["records"] += recs
        _progress("")
        for threads in args.threads:
            print(f"\n### {dname}, {threads} thread{'s' * (threads > 1)}: ns/element "
                  f"(median), GB/s, % of the memory-only limit\n")
            print(kernel_table([r for r in recs if r["threads"] == threads], args))
    print("\nAnchor cells: the anchor's ns/element and (Nx) = anchor time / pyrmsprop time."
          "\nGB/s counts the bytes the update must move (read + written), for every column."
          "\nlimit = in each repetition the fastest of three runs of pyrmsprop._core.memory_only_update, the "
          "same loads and stores\nwith one add per store, through the kernels' own thread "
          "layout, cache-line peeling,\nblocks and prefetches: on the same arrays, on "
          "64-byte-aligned copies 1 KiB apart in their\n4 KiB pages, and on the same arrays "
          "without prefetches. pyrmsprop's arrays are "
          "numpy's (np.random, np.zeros: 16 bytes past a cache line\nwhen large); torch's "
          "and DeepSpeed's are torch's (aligned).\nWith more than one thread every sample "
          "starts once the process's other threads sleep (torch's\nOpenMP worker spins for "
          "a while after each parallel region), after one untimed call.")
    _noise_note(out["records"])


def kernel_table(recs: list[dict], args) -> str:
    have = [a for a in ANCHORS if any(r["impl"] == a for r in recs)]
    rows = []
    ours = [r for r in recs if r["impl"] == "pyrmsprop"]
    for r in sorted(ours, key=lambda r: (RULES.index(r["rule"]), r["size"])):
        row = [TITLE[r["rule"]], fmt_size(r["size"])] + ([r["simd"]] if len(args.simd) > 1
                                                         else [])
        bad = set(r["noisy_vs"])
        mine = NOISY_MARK if r["noisy"] else ""
        pct = f"{r['pct_of_limit']:.0f}%"
        if r["pct_of_limit"] > 100 and not bad:
            pct += " !"        # a kernel beating the memory-only loop: the limit is wrong
        row += [fmt_num(r["median_ns_per_elem"]) + mine, fmt_num(r["gbps"]) + mine,
                pct + (NOISY_MARK if bad & {"pyrmsprop", r["limit_from"]} else ""),
                fmt_num(r["median_ns_per_elem"] * r["ratio_vs_limit"])
                + (NOISY_MARK if r["limit_from"] in bad else "")]
        for a in have:
            key = f"ratio_vs_{a}"
            row.append(f"{fmt_num(r['median_ns_per_elem'] * r[key])} ({r[key]:.2f}x)"
                       + (NOISY_MARK if bad & {"pyrmsprop", a} else "") if key in r else "-")
        rows.append(row)
    headers = (["rule", "size"] + (["simd"] if len(args.simd) > 1 else [])
               + ["ns/elem", "GB/s", "% limit", "limit ns/elem"] + have)
    return table(headers, rows, left=3 if len(args.simd) > 1 else 2)


# Adam's storage combinations: (label, param, state, master); bytes per element from
# the itemsizes: param and exp_avg/exp_avg_sq read and written, grad read, the
# master/low halves/compensation read and written
STORAGE_ROWS = (
    ("float32 / float32 state", "float32", "float32", None),
    ("float32 / bfloat16 state", "float32", "bfloat16", None),
    ("bfloat16 / bfloat16 state", "bfloat16", "bfloat16", None),
    ("bfloat16 / float32 state", "bfloat16", "float32", None),
    ("bfloat16 + fp32 master / float32 state", "bfloat16", "float32", "fp32"),
    ("bfloat16 + split / float32 state", "bfloat16", "float32", "split"),
    ("bfloat16 + kahan / bfloat16 state", "bfloat16", "bfloat16", "kahan"),
    ("bfloat16 stochastic / bfloat16 state", "bfloat16", "bfloat16", "stochastic"),
    ("float16 / float16 state", "float16", "float16", None),
    ("float16 / float32 state", "float16", "float32", None),
    ("float32 / 8-bit state", "float32", "8bit", None),
    ("bfloat16 / 8-bit state", "bfloat16", "8bit", None),
)
# bytes per element; 8-bit state also moves its absmax, 4 bytes per 256 elements
_ITEM = {"float32": 4, "bfloat16": 2, "float16": 2, "8bit": 1 + 4 / 256}


def _storage_array(values: np.ndarray, dtype: str, signed: bool = True):
    """values (float32) in storage dtype, as the kernels take it; bfloat16 as a
    uint16 array of the top halves (rounded to nearest), wrapped: no ml_dtypes needed;
    8bit as a QuantizedState (signed or not)."""
    if dtype == "8bit":
        return pyrmsprop.QuantizedState.from_float(values, signed=signed)
    if dtype == "bfloat16":
        u = values.view(np.uint32)
        return _core.bf16_bits(((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16))
    return values.astype(dtype)


def _raw(a):
    return a.bits if type(a).__name__ == "_BF16Bits" else a


def _q8_anchors(torch, p32: np.ndarray, g32: np.ndarray) -> dict[str, Callable[[], object]]:
    """The 8-bit CPU Adams of bitsandbytes and torchao (AdamW8bit with weight_decay=0:
    Adam) on float32 tensors torch allocates, those that import: {name: step}."""
    hp = HP["adam"]
    kw = dict(lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
    makers = {}
    # (their imports print notes about GPU libraries they cannot load here)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            import bitsandbytes as bnb
            makers["bitsandbytes Adam8bit float32"] = lambda ps: bnb.optim.Adam8bit(ps, **kw)
        except Exception:   # (absent, or broken on this machine: no anchor)
            pass
        try:
            from torchao.optim import AdamW8bit
            makers["torchao AdamW8bit float32"] = lambda ps: AdamW8bit(ps, weight_decay=0.0,
                                                                       **kw)
        except Exception:
            pass
    out = {}
    for name, make in makers.items():
        tp = torch.from_numpy(p32).clone()
        tp.grad = torch.from_numpy(g32).clone()
        out[name] = make([tp]).step
    return out


def _vs(name: str) -> str:
    """An anchor's short name in column headers and record keys ("torch fused Adam
    float32" -> "fused Adam float32")."""
    return name[6:] if name.startswith("torch ") else name


def run_storage(args, out: dict) -> None:
    """Adam over every storage combination at the largest size: ns/element, bytes per
    element, % of the memory-only loop over the same arrays, elements/s against
    float32 Adam, and torch's fused Adam in float32 and bfloat16."""
    n = max(args.sizes)
    rng = np.random.default_rng(4)
    p32 = rng.random(n, dtype=np.float32)
    # gradients in [1e-2, 0.11): their squares stay in float16's range (smaller ones
    # underflow a float16 exp_avg_sq to zero, and the params overflow to Inf and NaN
    # within the repetitions: a row timing NaN handling instead of Adam)
    g32 = rng.random(n, dtype=np.float32) * np.float32(0.1) + np.float32(1e-2)
    impls, info = [], {}
    for label, pdt, sdt, master in STORAGE_ROWS:
        _progress(f"storage: {label} {fmt_size(n)}")
        p, g = _storage_array(p32, pdt), _storage_array(g32, pdt)
        m, v = (_storage_array(np.zeros(n, np.float32), sdt, signed) for signed in (True, False))
        # the memory-only loop takes 8-bit state as signed arrays: the same bytes
        mt, vt = (m, v) if sdt != "8bit" else (m, _storage_array(np.zeros(n, np.float32), sdt))
        kw = dict(HP["adam"])
        extra = None
        if master == "fp32":
            extra = kw["master_param"] = p32.copy()
        elif master == "split":
            extra = kw["param_lo"] = np.zeros(n, np.uint16)
        elif master == "kahan":
            extra = kw["compensation"] = _storage_array(np.zeros(n, np.float32), pdt)
        elif master == "stochastic":
            kw["seed"] = 1
        steps = itertools.count(1)
        fn = (lambda p=p, g=g, m=m, v=v, kw=kw, steps=steps:
              pyrmsprop.adam_update(p, g, m, v, step=next(steps), **kw))
        limits = [(lambda p=p, g=g, m=mt, v=vt, extra=extra, pf=pf:
                   _core.memory_only_update(p, g, m, v, extra=extra, prefetch=pf))
                  for pf in (True, False)]
        nbytes = round(3 * _ITEM[pdt] + 4 * _ITEM[sdt] + (
            2 * (4 if master == "fp32" else 2) if master in ("fp32", "split", "kahan") else 0), 2)
        impls += [Impl(label, fn), Impl(label + " limit", limits[0]),
                  Impl(label + " limit nopf", limits[1])]
        info[label] = nbytes
    if _TORCH is not None:
        torch = _TORCH
        for dt in (torch.float32, torch.bfloat16):
            tp = torch.from_numpy(p32).to(dt)
            tp.grad = torch.from_numpy(g32).to(dt)
            opt = torch.optim.Adam([tp], **_torch_kwargs("adam"), fused=True)
            impls.append(Impl(f"torch fused Adam {str(dt)[6:]}", opt.step))
        impls += [Impl(name, fn) for name, fn in _q8_anchors(torch, p32, g32).items()]
    rows_of = {label for label, *_ in STORAGE_ROWS}
    anchors = [im.name for im in impls
               if im.name not in rows_of and not im.name.endswith((" limit", " limit nopf"))]
    recs = []
    for threads in args.threads:
        _set_threads(threads)
        measure(impls, args.budget)
        by = {im.name: im for im in impls}
        f32 = by[STORAGE_ROWS[0][0]].median
        for label, *_ in STORAGE_ROWS:
            im, lim = by[label], _fastest(by[label + " limit"], by[label + " limit nopf"])
            recs.append({"impl": label, "size": n, "threads": threads,
                         "median_ns_per_elem": im.median * 1e9 / n,
                         "bytes_per_elem": info[label],
                         "limit_ns_per_elem": lim.median * 1e9 / n,
                         "pct_of_limit": 100 * lim.median / im.median,
                         "speed_vs_float32": f32 / im.median,
                         **{f"speed_vs_{_vs(k).replace(' ', '_')}": by[k].median / im.median
                            for k in anchors},
                         "noisy": im.noisy or lim.noisy})
        for k in anchors:
            recs.append({"impl": k, "size": n, "threads": threads,
                         "median_ns_per_elem": by[k].median * 1e9 / n,
                         "speed_vs_float32": f32 / by[k].median, "noisy": by[k].noisy})
    _progress("")
    out["storage"] = recs
    for threads in args.threads:
        rows = []
        for r in (r for r in recs if r["threads"] == threads):
            mark = NOISY_MARK if r["noisy"] else ""
            rows.append([r["impl"], fmt_num(r["median_ns_per_elem"]) + mark,
                         str(r.get("bytes_per_elem", "-")),
                         f"{r['pct_of_limit']:.0f}%" if "pct_of_limit" in r else "-",
                         f"{r['speed_vs_float32']:.2f}x"]
                        + [f"{r[key]:.2f}x" if key in r else "-"
                           for key in (f"speed_vs_{_vs(k).replace(' ', '_')}" for k in anchors)])
        print(f"\n### Adam by storage, {fmt_size(n)} elements, {threads} "
              f"thread{'s' * (threads > 1)}: ns/element (median)\n")
        print(table(["storage (param / state)", "ns/elem", "B/elem", "% limit",
                     "elem/s vs f32"] + [f"vs {_vs(k)}" for k in anchors], rows))
    print("\n% limit: the memory-only loop over the same arrays (pyrmsprop._core."
          "memory_only_update with extra=; per repetition the faster of a run with and "
          "one without prefetches) / the update.  elem/s vs f32 and vs an anchor: "
          "that row's time / this row's (above 1: this row is faster).")


def run_per_call(args, out: dict) -> None:
    rng = np.random.default_rng(2)
    recs = []
    for n in PER_CALL_SIZES:
        _progress(f"per-call: {n} elements")
        rule_of = {}
        impls = []
        for rule in RULES:
            impls.append(Impl(f"{rule}_update", _ours(rule, _arrays(rule, np.float32, n, rng))))
            rule_of[impls[-1].name] = rule
        if _TORCH is not None:
            for name, fn in _torch("adam", _arrays("adam", np.float32, n, rng)).items():
                label = ("DeepSpeed CPU Adam" if name == "deepspeed"
                         else f"torch Adam {name[6:] or 'single'}")
                impls.append(Impl(label, fn))
                rule_of[impls[-1].name] = "adam"
            impls.append(Impl("torch RMSprop foreach", _torch(
                "rmsprop", _arrays("rmsprop", np.float32, n, rng))["torch_foreach"]))
            rule_of[impls[-1].name] = "rmsprop"
        for threads in args.threads:
            _set_threads(threads)
            measure(impls, args.budget)
            recs += [{"impl": im.name, "rule": rule_of[im.name], "dtype": "float32", "size": n,
                      "threads": threads, "median_us": im.median * 1e6, "min_us": im.best * 1e6,
                      "spread": im.spread, "noisy": im.noisy}
                     for im in impls]
    _progress("")
    out["per_call"] += recs
    names = list(dict.fromkeys(r["impl"] for r in recs))
    cols = [(n, t) for t in args.threads for n in PER_CALL_SIZES]
    lookup = {(r["impl"], r["size"], r["threads"]):
              fmt_num(r["median_us"]) + (NOISY_MARK if r["noisy"] else "") for r in recs}
    print("\n### Per call, float32: microseconds (median), functional API incl. validation\n")
    print(table(["implementation"] + [f"n={n}, {t}T" for n, t in cols],
                [[name] + [lookup[name, n, t] for n, t in cols] for name in names]))
    _noise_note(recs)


def run_lists(args, out: dict) -> None:
    rng = np.random.default_rng(3)
    shapes = {"resnet18": resnet18_shapes(), "transformer": transformer_shapes()}
    rows = []
    for name in args.lists:
        _progress(f"lists: {name}")
        impls, params = _list_impls(shapes[name], np.float32, rng)
        total = sum(p.size for p in params)
        for threads in args.threads:
            _set_threads(threads)
            measure(impls, args.budget)
            times = {im.name: im.median for im in impls}
            for im in impls:
                rec = {"list": name, "tensors": len(params), "elements": total,
                       "dtype": "float32", "impl": im.name, "threads": threads,
                       "median_ms": im.median * 1e3, "min_ms": im.best * 1e3,
                       "spread": im.spread, "noisy": im.noisy}
                _ratios(rec, times, im.name)
                out["lists"].append(rec)
            main_impl = impls[0]
            row = [name, str(threads), str(len(params)), f"{total / 1e6:.1f}M"]
            for im in impls:
                cell = fmt_num(im.median * 1e3)
                if im is not main_impl:
                    cell += f" ({im.median / main_impl.median:.2f}x)"
                row.append(_mark(cell, im, main_impl))
            rows.append((tuple(im.name for im in impls), row))
        del impls, params
        gc.collect()
    _progress("")
    for names in dict.fromkeys(n for n, _ in rows):
        print(f"\n### Adam step over a parameter list, float32: ms/step (median); "
              f"(Nx) = time / {names[0]} time\n")
        print(table(["list", "threads", "tensors", "elements"] + list(names),
                    [r for n, r in rows if n == names]))
    _noise_note(out["lists"])


def run_busy(args, out: dict) -> None:
    """1 vs N threads, idle and with a busy loop pinned to another core."""
    n_hi = max(args.threads)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    rng = np.random.default_rng(4)
    cases = []
    for n in args.sizes:
        arrays = _arrays("adam", np.float32, n, rng)
        cases.append((f"adam_update {fmt_size(n)}", n, _ours("adam", arrays),
                      _torch("adam", arrays).get("torch_fused")))
    if "lists" in args.sections:
        impls, params = _list_impls(resnet18_shapes(), np.float32, rng)
        by = {im.name: im.fn for im in impls}
        cases.append(("resnet18 list", sum(p.size for p in params),
                      by.get("pyrmsprop.Adam", by["adam_update loop"]), by.get("torch_fused")))
    rows = []
    for phase in ("idle", "busy"):
        proc = None
        if phase == "busy":
            proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            if len(cpus) >= 2:
                os.sched_setaffinity(proc.pid, {cpus[-1]})
            time.sleep(0.3)
        try:
            for case, n, ours, fused in cases:
                _progress(f"busy: {phase} {case}")
                impls = [Impl("pyrmsprop", ours, threads=t) for t in (1, n_hi)]
                if fused is not None:
                    impls += [Impl("torch_fused", fused, threads=t) for t in (1, n_hi)]
                measure(impls, args.budget)
                split = n >= _core.split_elements("adam", "float32")
                row = [phase, case, "yes" if split else "no"]
                for one, many in zip(impls[::2], impls[1::2]):
                    for im in (one, many):
                        out["busy"].append({
                            "phase": phase, "case": case, "size": n, "split": split,
                            "impl": im.name,
                            "threads": im.threads, "median_ns_per_elem": im.median * 1e9 / n,
                            "ratio_vs_1_thread": im.median / one.median})
                    row += [fmt_num(one.median * 1e9 / n), fmt_num(many.median * 1e9 / n),
                            f"{many.median / one.median:.2f}"]
                rows.append(row)
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
    _progress("")
    pin = f"pinned to CPU {cpus[-1]}" if len(cpus) >= 2 else "not pinned (one CPU)"
    print(f"\n### 1 vs {n_hi} threads, float32 Adam: ns/element (median); busy = a "
          f"busy-loop process {pin}\n")
    heads = ["phase", "case", "split", "pyrmsprop 1T", f"{n_hi}T", f"{n_hi}T/1T"]
    if _TORCH is not None:
        heads += ["torch fused 1T", f"{n_hi}T", f"{n_hi}T/1T"]
    print(table(heads, [r + ["-"] * (len(heads) - len(r)) for r in rows], left=3))
    print(f"\nsplit: pyrmsprop splits float32 Adam calls of at least "
          f"{_core.split_elements('adam', 'float32')} elements; below that 1T and {n_hi}T run "
          f"the same serial code, so their ratio shows the noise.")


def run_threshold(args, out: dict) -> None:
    """1 vs N threads with splitting forced at every size; the crossover."""
    n_hi = max(args.threads)
    rng = np.random.default_rng(5)
    old = _core.get_thread_threshold()
    _core.set_thread_threshold(0)
    try:
        for dtype, rule in itertools.product(args.dtypes, args.rules):
            dname = np.dtype(dtype).name
            rows, wins = [], []
            for n in args.sizes:
                _progress(f"threshold: {rule} {dname} {fmt_size(n)}")
                fn = _ours(rule, _arrays(rule, dtype, n, rng))
                one, many = Impl("pyrmsprop", fn, threads=1), Impl("pyrmsprop", fn, threads=n_hi)
                measure([one, many], args.budget)
                ratio = many.median / one.median
                for im in (one, many):
                    out["threshold"].append({
                        "rule": rule, "dtype": dname, "size": n, "threads": im.threads,
                        "median_ns_per_elem": im.median * 1e9 / n,
                        "ratio_vs_1_thread": im.median / one.median})
                rows.append([str(n), fmt_num(one.median * 1e9 / n),
                             fmt_num(many.median * 1e9 / n), f"{ratio:.2f}"])
                wins.append(ratio < 1.0)
            cross = next((n for k, n in enumerate(args.sizes) if all(wins[k:])), None)
            out["crossover"][f"{rule}/{dname}"] = cross
            _core.set_thread_threshold(old)
            in_use = _core.split_elements(rule, dname)
            _core.set_thread_threshold(0)
            _progress("")
            print(f"\n### {TITLE[rule]} {dname}, splitting forced: 1 vs {n_hi} threads, "
                  f"ns/element\n")
            print(table(["size", "1T", f"{n_hi}T", f"{n_hi}T/1T"], rows))
            print(f"\n{n_hi} threads faster from: "
                  f"{cross if cross is not None else 'never (in these sizes)'} elements; "
                  f"pyrmsprop splits {TITLE[rule]} {dname} from {in_use} elements")
    finally:
        _core.set_thread_threshold(old)
    print(f"\nThe threshold in use: {old} float32-EMA elements, i.e. each rule and dtype "
          f"splits from {old} / (its cost per element relative to float32 EMA) elements. "
          f"Calls here run back to back, so the worker is awake; in a training loop it "
          f"may be asleep and a split call pays its wake-up, hence the margin.")


def plot(path: str, records: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = list(dict.fromkeys(r["dtype"] for r in records))
    rules = list(dict.fromkeys(r["rule"] for r in records))
    fig, axes = plt.subplots(len(dtypes), len(rules), squeeze=False, sharex=True,
                             figsize=(4.2 * len(rules), 3.4 * len(dtypes)))
    styles = ["-", ":", "-.", "--"]
    series = list(dict.fromkeys((r["impl"], r["simd"]) for r in records if r["impl"] != "limit"))
    color = {key: f"C{k % 10}" for k, key in enumerate(series)}
    threads = sorted({r["threads"] for r in records})
    for (i, dt), (j, rule) in itertools.product(enumerate(dtypes), enumerate(rules)):
        ax = axes[i][j]
        sel = [r for r in records if r["dtype"] == dt and r["rule"] == rule]
        for impl, simd, th in dict.fromkeys((r["impl"], r["simd"], r["threads"]) for r in sel):
            pts = sorted((r["size"], r["gbps"]) for r in sel
                         if (r["impl"], r["simd"], r["threads"]) == (impl, simd, th))
            style = styles[threads.index(th) % len(styles)]
            if impl == "limit":
                kw = {"color": "black", "linestyle": "--" if th == threads[0] else ":",
                      "linewidth": 2}
            else:
                kw = {"color": color[impl, simd], "linestyle": style, "marker": "o",
                      "markersize": 3}
            simd_tag = f" [{simd}]" if simd and len({s for _, s in series if s}) > 1 else ""
            ax.plot(*zip(*pts), label=f"{impl}{simd_tag}, {th}T", **kw)
        ax.set_xscale("log")
        ax.set_title(f"{TITLE[rule]} {dt}")
        ax.set_xlabel("elements")
        ax.set_ylabel("GB/s (bytes the update must move)")
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="center right", fontsize=7)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def _all_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _csv(parse):
    def convert(text: str) -> list:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        return list(dict.fromkeys(parse(s) for s in items))
    return convert


def _size(text: str) -> int:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if not (x >= 1 and x == int(x)):
        raise argparse.ArgumentTypeError(f"a size must be a whole number >= 1: {text!r}")
    return int(x)


def _thread_count(text: str) -> int:
    if text.upper() in ("N", "ALL"):
        return _all_threads()
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"a thread count is 1..256 or N: {text!r}")
    return int(text)


def _choice(options):
    def parse(text: str) -> str:
        key = text.lower()
        if key not in options:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(options)}")
        return key
    return parse


def _dtype(text: str):
    if text.lower() not in DTYPES:
        raise argparse.ArgumentTypeError(f"{text!r} is not float32 or float64")
    return DTYPES[text.lower()]


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1: {text!r}")
    return int(text)


def parse_args(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m pyrmsprop.bench",
        description="Benchmark pyrmsprop's kernels against numpy, torch.optim and the "
                    "memory-bandwidth limit (a memory-only kernel moving the same bytes).",
        epilog="Defaults: float32 sizes 1e3,6.4e4,1e6,1.6e7,6.4e7; float64 the same sizes up "
               "to 1.6e7 (6.4e7 float64 Adam alone is 2 GB of arrays plus torch's state, and "
               "slow) unless --sizes is given, which applies to both dtypes. Repetitions scale "
               "with size (5..15, about 4 s per size and thread count; --quick 3..7, 0.4 s). "
               "The JSON schema is in the module docstring (pydoc pyrmsprop.bench).")
    ap.add_argument("--quick", action="store_true",
                    help="under 30 s: float32, sizes 1e3,6.4e4,1e6, fewer repetitions; every "
                         "rule, anchor and section")
    ap.add_argument("--sizes", type=_csv(_size), default=None,
                    help="comma list of element counts, e.g. 1e3,64000,1.6e7 (default: see below)")
    ap.add_argument("--threads", type=_csv(_thread_count), default="1,N",
                    help="comma list of thread counts; N = all threads (default: 1,N)")
    ap.add_argument("--simd", default="auto",
                    help="'auto' (each rule on the target measured fastest at the start, as "
                         "pyrmsprop.set_simd('auto') does), 'best' (the widest target for "
                         "all), 'all' (every target this CPU supports, and auto) or a comma "
                         f"list of targets ({', '.join(_core.simd_targets())}, auto) "
                         "(default: auto)")
    ap.add_argument("--rules", type=_csv(_choice(RULES)), default=None,
                    help=f"comma list of {', '.join(RULES)} (default: all; --busy: adam)")
    ap.add_argument("--dtypes", type=_csv(_dtype), default=None,
                    help="comma list of float32, float64 (default: both; --quick, --busy, "
                         "--threshold: float32)")
    ap.add_argument("--repeat", type=_positive, default=None,
                    help="repetitions per measurement (default: scaled by size)")
    ap.add_argument("--sections", type=_csv(_choice(SECTIONS)), default=list(SECTIONS),
                    help=f"comma list of {', '.join(SECTIONS)} (default: all)")
    ap.add_argument("--lists", type=_csv(_choice(LISTS)), default=list(LISTS),
                    help=f"parameter lists for the lists section: {', '.join(LISTS)} (default: all)")
    ap.add_argument("--no-torch", action="store_true", help="omit the torch anchors")
    ap.add_argument("--deepspeed", choices=("auto", "yes", "no"), default="auto",
                    help="DeepSpeed's CPU Adam as an anchor (Adam kernels and lists): auto = "
                         "when deepspeed is installed, except with --quick (its first use "
                         "compiles it, about a minute); yes = required (default: auto)")
    ap.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    ap.add_argument("--plot", metavar="PATH",
                    help="write a PNG of GB/s vs size per implementation (needs matplotlib)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--busy", action="store_true",
                      help="experiment: 1 vs N threads, idle and with a busy-loop process "
                           "pinned to another core (Adam, and a resnet18-shaped list)")
    mode.add_argument("--threshold", "--threads-threshold", action="store_true",
                      help="experiment: 1 vs N threads with splitting forced over sizes "
                           "2**12..2**23; prints the crossover")
    mode.add_argument("--tune-simd", action="store_true",
                      help="measure every rule and dtype on every SIMD target (as "
                           "pyrmsprop.set_simd('auto') does), print it, and save it: later "
                           "imports on this CPU run each rule on its fastest target")
    args = ap.parse_args(argv)

    args.sizes_given = args.sizes is not None
    if args.sizes is None:
        args.sizes = list(THRESHOLD_SIZES if args.threshold else
                          QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.sizes.sort()
    if isinstance(args.threads, str):
        args.threads = _csv(_thread_count)(args.threads)
    if args.rules is None:
        args.rules = ["adam"] if args.busy else list(RULES)
    if args.dtypes is None:
        args.dtypes = [np.float32] if (args.quick or args.busy or args.threshold) else \
            [np.float32, np.float64]
    supported = _core.simd_targets()
    key = args.simd.strip().lower()
    if key == "all":
        args.simd = supported + (["auto"] if len(supported) > 1 else [])
    elif key == "best":
        args.simd = [_core.best_simd_target()]
    else:
        args.simd = list(dict.fromkeys(s.strip().lower() for s in key.split(",") if s.strip()))
        bad = [s for s in args.simd if s not in supported + ["auto"]]
        if bad or not args.simd:
            ap.error(f"--simd: {', '.join(bad) or repr(key)} not supported here; "
                     f"choose from auto, all, best, {', '.join(supported)}")
    if (args.busy or args.threshold) and max(args.threads) < 2:
        ap.error("--busy and --threshold compare 1 thread with more: give --threads 1,2")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            ap.error("--plot needs matplotlib, which is not installed "
                     "(pip install matplotlib)")
        if args.busy or args.threshold or "kernels" not in args.sections:
            ap.error("--plot draws the kernels section; it cannot be combined with "
                     "--busy/--threshold or a --sections list without kernels")
    args.budget = (Budget(0.002, 0.4, 3, 7, args.repeat) if args.quick
                   else Budget(0.005, 4.0, 5, 15, args.repeat))
    return args


def _load_torch(no_torch: bool):
    if no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def _load_deepspeed(args, torch):
    """DeepSpeedCPUAdam, built and tried once on a small tensor, or None."""
    want = args.deepspeed
    if want == "no" or (want == "auto" and args.quick) or torch is None:
        if want == "yes":
            raise SystemExit("--deepspeed yes needs torch (and not --no-torch)")
        return None
    try:
        import importlib.util
        if want == "auto" and importlib.util.find_spec("deepspeed") is None:
            return None
        _progress("loading DeepSpeed's CPU Adam (the first use compiles it)")
        import logging
        logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
        from deepspeed.ops.adam import DeepSpeedCPUAdam
        t = torch.nn.Parameter(torch.ones(64))
        t.grad = torch.ones(64)
        DeepSpeedCPUAdam([t], lr=1e-3, adamw_mode=False).step()
        return DeepSpeedCPUAdam
    except Exception as exc:   # an optional anchor: say why it is missing, go on
        if want == "yes":
            raise SystemExit(f"--deepspeed yes: DeepSpeed's CPU Adam failed: {exc}") from exc
        print(f"    (deepspeed anchor omitted: {type(exc).__name__}: {exc})")
        return None
    finally:
        _progress("")


def _deepspeed_version():
    try:
        from importlib.metadata import version
        return version("deepspeed")
    except Exception:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(argv, torch) -> dict:
    return {
        "pyrmsprop": pyrmsprop.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": _all_threads(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "simd_in_use": pyrmsprop.simd_target(),
        "simd_by_rule": pyrmsprop.simd_by_rule(),
        "simd_measurement": _simd.simd_measurement(),
        "simd_available": _core.simd_targets(),
        "simd_compiled": _core.compiled_targets(),
        "threads": pyrmsprop.get_num_threads(),
        "thread_mode": _core.thread_mode(),
        "thread_threshold": _core.get_thread_threshold(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "deepspeed": _deepspeed_version() if _DEEPSPEED is not None else None,
        "argv": list(argv),
    }


def _by_rule_text(by_rule: dict) -> str:
    """'EMA avx512, RMSprop avx2, ...' (float32/float64 when they differ)."""
    parts = []
    for rule, per in by_rule.items():
        f32, f64 = per["float32"], per["float64"]
        parts.append(f"{TITLE[rule]} {f32 if f32 == f64 else f32 + '/' + f64}")
    return ", ".join(parts)


def run_tune_simd(out: dict) -> None:
    """--tune-simd: measure, save, print the measurement and the choice."""
    pyrmsprop.set_simd("auto", save=True)
    m = _simd.simd_measurement()["ns_per_elem"]
    targets = _core.simd_targets()
    chosen = pyrmsprop.simd_by_rule()
    rows = []
    for key, times in m.items():
        rule, dtype = key.split("/")
        rows.append([TITLE[rule], dtype] + [fmt_num(times[t]) for t in targets]
                    + [chosen[rule][dtype]])
    print(f"\n### SIMD targets: ns/element, {_simd.ELEMS} elements per array (in cache), "
          f"1 thread, fastest of {_simd.ROUNDS}\n")
    print(table(["rule", "dtype", *targets, "chosen"], rows, left=2))
    print(f"\nchosen = the widest target within {_simd.MARGIN:.0%} of the fastest. "
          f"Saved to {_simd.saved_path()}:\nlater imports on this CPU start with it "
          f"(pyrmsprop.simd_target() == 'auto'); PYRMSPROP_SIMD overrides it.")
    out["simd_measurement"] = m
    out["simd_by_rule"] = chosen


def print_header(h: dict, args) -> None:
    torch = (f"{h['torch']} ({_TORCH.get_num_threads()} threads by default)"
             if h["torch"] else "not installed or --no-torch: torch anchors omitted")
    print(f"# pyrmsprop {h['pyrmsprop']} benchmark\n")
    print(f"    command   python -m pyrmsprop.bench {' '.join(h['argv'])}".rstrip())
    load = f"; load average {h['loadavg'][0]:.2f} at start" if h["loadavg"] else ""
    print(f"    cpu       {h['cpu']} ({h['cpus']} CPUs available{load}), {h['platform']}")
    if h["loadavg"] and h["loadavg"][0] > BUSY_LOAD * h["cpus"]:
        print(f"    WARNING   the machine is busy (load {h['loadavg'][0]:.2f} on {h['cpus']} "
              f"CPUs): timings will be noisy; figures whose repeats spread are marked"
              f"{NOISY_MARK}")
    print(f"    simd      {h['simd_in_use']} in use; supported here: "
          f"{', '.join(h['simd_available'])}; compiled: {', '.join(h['simd_compiled'])}; "
          f"benchmarked: {', '.join(args.simd)}")
    if "auto" in args.simd:
        print(f"    auto      {_by_rule_text(h['simd_by_rule'])} (each rule on the target "
              f"measured fastest in cache at the start of this run)")
    print(f"    threads   {h['threads']} ({h['thread_mode']}; serial below "
          f"{h['thread_threshold']} float32-EMA elements, float32 Adam below "
          f"{_core.split_elements('adam', 'float32')}); benchmarked: "
          f"{', '.join(map(str, args.threads))}")
    print(f"    python    {h['python']}, numpy {h['numpy']}, torch {torch}")
    if h.get("deepspeed"):
        print(f"    deepspeed {h['deepspeed']} (DeepSpeedCPUAdam, adamw_mode=False, threads "
              f"from torch's OpenMP runtime)")


def main(argv=None) -> int:
    global _TORCH, _DEEPSPEED
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    _TORCH = _load_torch(args.no_torch)
    try:
        _DEEPSPEED = _load_deepspeed(args, _TORCH)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    saved = (_simd.snapshot(), pyrmsprop.get_num_threads(),
             _TORCH.get_num_threads() if _TORCH is not None else None)
    if "auto" in args.simd and not args.tune_simd:
        pyrmsprop.set_simd("auto")
    out = {"schema": SCHEMA, "header": header(argv, _TORCH), "records": [], "per_call": [],
           "lists": [], "busy": [], "threshold": [], "crossover": {}}
    print_header(out["header"], args)
    base = "auto" if "auto" in args.simd else args.simd[-1]
    try:
        bad = self_check(args.dtypes)
        print(f"    check     {'FAILED: ' + '; '.join(bad) if bad else 'ok'} "
              f"(one update of every rule = numpy by hand, every SIMD target)")
        if bad:
            return 1
        _use_simd(base)
        if args.tune_simd:
            run_tune_simd(out)
        elif args.busy:
            run_busy(args, out)
        elif args.threshold:
            run_threshold(args, out)
        else:
            for name, run in (("kernels", run_kernels), ("per-call", run_per_call),
                              ("lists", run_lists), ("storage", run_storage)):
                if name in args.sections:
                    _use_simd(base)     # the other sections run on the run's own choice
                    run(args, out)
    finally:
        _simd.restore(saved[0])
        pyrmsprop.set_num_threads(saved[1])
        if _TORCH is not None:
            _TORCH.set_num_threads(saved[2])
    if hasattr(os, "getloadavg"):
        out["header"]["loadavg_end"] = list(os.getloadavg())
        print(f"\nLoad average at the end: {out['header']['loadavg_end'][0]:.2f} "
              f"(other processes share these {out['header']['cpus']} CPUs)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"\nJSON written to {args.json}")
    if args.plot:
        plot(args.plot, out["records"])
        print(f"Plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
