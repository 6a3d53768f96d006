"""The compiled kernels against the float64 oracle in pyrmsprop.reference, and
bit-identical results on every SIMD target and thread count.

Accuracy: every rule x option set x dtype x size, over many steps.  Each step the
oracle gets float64 copies of the kernel's arrays as they were before the step, so
the states stay in step and each step's rounding error is measured alone (instead of
two float32 trajectories drifting apart).  The error of each written array is counted
in units in the last place (ULPs, of the array's dtype) of ``|before| + |after|``,
which bounds every term of the update (``p_new - p_old``, ``m_new - m_old`` ...).
Where the inputs of a step cancel (g + wd*p, g - m, g + momentum*buf) the rounding
error is relative to the inputs (N(0, 1) gradients), not to the result, so the scale
also holds the array's root mean square.  The C code computes in the array's dtype; a
handful of roundings per element gives a few ULPs: see MAX_ULPS for the measured worst
cases and the bounds.
"""

import inspect
import itertools
from typing import NamedTuple

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core, reference


class Rule(NamedTuple):
    positional: tuple  # array arguments passed positionally, in order
    optional: dict     # state array -> the option (keyword) that needs it
    hyper: dict        # fixed hyperparameters, deliberately not the defaults
    options: list      # option sets to test


def _product(**choices):
    keys = list(choices)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*choices.values())]


SGD_MOMENTUM = [{"momentum": 0.0}, {"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.3},
                {"momentum": 0.9, "nesterov": True}]
RULES = {
    "ema": Rule(("avg", "x"), {}, {}, _product(beta=[0.0, 0.9, 0.999])),
    "rmsprop": Rule(
        ("param", "grad", "square_avg"),
        {"grad_avg": "centered", "momentum_buffer": "momentum"},
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-3},
        _product(maximize=[False, True], weight_decay=[0.0, 0.1], centered=[False, True],
                 momentum=[0.0, 0.9], eps_in_sqrt=[False, True])),
    "adam": Rule(
        ("param", "grad", "exp_avg", "exp_avg_sq"), {"max_exp_avg_sq": "amsgrad"},
        {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-4},
        _product(maximize=[False, True], weight_decay=[0.0, 0.1],
                 decoupled_weight_decay=[False, True], amsgrad=[False, True])),
    "sgd": Rule(
        ("param", "grad"), {"momentum_buffer": "momentum"}, {"lr": 0.05},
        [{**m, **o} for m in SGD_MOMENTUM
         for o in _product(maximize=[False, True], weight_decay=[0.0, 0.1])]),
}


def _case_id(rule, opts):
    shown = [f"{k}{'' if v is True else v}" for k, v in opts.items() if v or k == "beta"]
    return "-".join([rule, *shown]) if shown else f"{rule}-plain"


CASES = [pytest.param(rule, opts, id=_case_id(rule, opts))
         for rule, spec in RULES.items() for opts in spec.options]

# Worst errors measured over all cases, sizes and steps, four seeds: float32 5.8 ULPs
# (centered RMSprop's momentum buffer: g / sqrt(s - m*m) amplifies the rounding of s
# and m), everything else <= 3.1; float64 1.0 (the oracle's order of operations is not
# the kernels').  The bounds are about 3x and 4x above.
MAX_ULPS = {np.dtype(np.float32): 16.0, np.dtype(np.float64): 4.0}

THRESHOLD = _core.get_thread_threshold()
SIZES = [0, 1, 7, 15, 16, 17, 63, 64, 65, 1000, 100_003, 2 * THRESHOLD + 17]


def steps_for(n):
    return 40 if n <= 1000 else 4 if n <= 100_003 else 2


def input_name(rule):
    return "x" if rule == "ema" else "grad"


def needed_arrays(rule, opts):
    spec = RULES[rule]
    return list(spec.positional) + [a for a, opt in spec.optional.items() if opts.get(opt)]


def make_arrays(rule, opts, n, dtype, rng):
    """Parameters ~ N(0, 1) and plausible state (what a few hundred steps of
    N(0, 1) gradients leave), as arrays of `dtype`."""
    s = rng.exponential(1.0, n)
    values = {
        "avg": rng.standard_normal(n),
        "x": rng.standard_normal(n),
        "param": rng.standard_normal(n),
        "grad": rng.standard_normal(n),
        "square_avg": s,
        "grad_avg": np.sqrt(s) * rng.uniform(-0.9, 0.9, n),  # keeps s - m*m > 0
        "momentum_buffer": rng.standard_normal(n),
        "exp_avg": 0.3 * rng.standard_normal(n),
        "exp_avg_sq": s,
        "max_exp_avg_sq": s * rng.uniform(1.0, 1.3, n),
    }
    return {k: values[k].astype(dtype) for k in needed_arrays(rule, opts)}


def call(module, rule, arrays, opts, step):
    """Apply `rule` from `module` (pyrmsprop or pyrmsprop.reference) in place."""
    spec = RULES[rule]
    kwargs = {**spec.hyper, **opts}
    kwargs.update({a: arrays[a] for a, opt in spec.optional.items() if opts.get(opt)})
    if rule == "adam":
        kwargs["step"] = step
    getattr(module, f"{rule}_update")(*(arrays[a] for a in spec.positional), **kwargs)


def ulps(actual, expected, before):
    """|actual - expected| in ULPs (of actual's dtype) of |before| + |expected| + the
    root mean square of `expected` (see the module docstring)."""
    rms = np.sqrt(np.mean(np.square(expected))) if expected.size else 0.0
    scale = (np.abs(before.astype(np.float64)) + np.abs(expected) + rms).astype(actual.dtype)
    err = np.abs(actual.astype(np.float64) - expected)
    return float(np.max(err / np.spacing(scale), initial=0.0))


def step_errors(rule, opts, arrays, step):
    """One step of the kernel on `arrays` and of the oracle on float64 copies of
    them; returns the error in ULPs of each written array."""
    before = {k: a.copy() for k, a in arrays.items()}
    expected = {k: a.astype(np.float64) for k, a in arrays.items()}
    call(pyrmsprop, rule, arrays, opts, step)
    call(reference, rule, expected, opts, step)
    x = input_name(rule)
    assert arrays[x].tobytes() == before[x].tobytes(), f"{x} was modified"
    return {k: ulps(arrays[k], expected[k], before[k]) for k in arrays if k != x}


@pytest.mark.parametrize("rule, opts", CASES)
def test_matches_reference(rule, opts, dtype, rng):
    worst = {}
    for n in SIZES:
        arrays = make_arrays(rule, opts, n, dtype, rng)
        for step in range(1, steps_for(n) + 1):
            arrays[input_name(rule)][...] = rng.standard_normal(n)
            for k, e in step_errors(rule, opts, arrays, step).items():
                if e > worst.get(k, (0.0,))[0]:
                    worst[k] = (e, n, step)
    for k, (e, n, step) in worst.items():
        assert e <= MAX_ULPS[np.dtype(dtype)], f"{k}: {e:.2f} ULPs at n={n}, step {step}"


@pytest.mark.parametrize("rule", RULES)
def test_default_hyperparameters_match_reference(rule, dtype, rng):
    """The defaults are the oracle's (same signature), and those values are applied."""
    assert (inspect.signature(getattr(reference, f"{rule}_update"))
            == inspect.signature(getattr(pyrmsprop, f"{rule}_update")))
    required = {"ema": {"beta": 0.9}, "sgd": {"lr": 0.1}}.get(rule, {})
    arrays = make_arrays(rule, {}, 1000, dtype, rng)
    for step in range(1, 6):
        arrays[input_name(rule)][...] = rng.standard_normal(1000)
        before = {k: a.copy() for k, a in arrays.items()}
        expected = {k: a.astype(np.float64) for k, a in arrays.items()}
        kw = {**required, **({"step": step} if rule == "adam" else {})}
        pos = RULES[rule].positional
        getattr(pyrmsprop, f"{rule}_update")(*(arrays[a] for a in pos), **kw)
        getattr(reference, f"{rule}_update")(*(expected[a] for a in pos), **kw)
        for k in pos[2:] + pos[:1]:
            assert ulps(arrays[k], expected[k], before[k]) <= MAX_ULPS[np.dtype(dtype)], k


@pytest.mark.parametrize("rule, opts", CASES)
def test_bit_identical_across_targets_and_threads(rule, opts, dtype, rng):
    """Every supported SIMD target, 1 and 2 threads, with the threshold at 0 so that
    arrays of several chunks really are split: byte-identical results."""
    _core.set_thread_threshold(0)
    n = 3 * _core.chunk_elements() + 5
    init = make_arrays(rule, opts, n, dtype, rng)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    results = {}
    for target, threads in itertools.product(pyrmsprop.simd_targets(), (1, 2)):
        pyrmsprop.set_simd(target)
        pyrmsprop.set_num_threads(threads)
        arrays = {k: a.copy() for k, a in init.items()}
        for step, g in enumerate(grads, 1):
            arrays[input_name(rule)] = g
            call(pyrmsprop, rule, arrays, opts, step)
        results[target, threads] = arrays
    (key0, first), *others = results.items()
    for key, arrays in others:
        for k, a in arrays.items():
            assert a.tobytes() == first[k].tobytes(), f"{k}: {key} differs from {key0}"


HALVING = {"ema": {"beta": 0.5},  # hyperparameters that halve every state per zero step
           "rmsprop": {"alpha": 0.5, "momentum": 0.5},
           "adam": {"beta1": 0.5, "beta2": 0.5},
           "sgd": {"momentum": 0.5}}
SPECIAL_CASES = [("ema", {}), ("rmsprop", {"centered": True}), ("rmsprop", {"eps_in_sqrt": True}),
                 ("adam", {"amsgrad": True}), ("sgd", {"nesterov": True})]


def assert_matches(actual, expected, before, dtype, what):
    """NaN and +-inf exactly where the oracle has them, finite values within MAX_ULPS."""
    fin = np.isfinite(expected)
    assert np.array_equal(actual[~fin], expected[~fin].astype(dtype), equal_nan=True), what
    err = ulps(actual[fin], expected[fin], before[fin])
    assert err <= MAX_ULPS[np.dtype(dtype)], f"{what}: {err:.2f} ULPs"


@pytest.mark.parametrize("rule, opts", [pytest.param(r, o, id=f"{r}-{'-'.join(o)}")
                                        for r, o in SPECIAL_CASES])
def test_special_values(rule, opts, dtype, rng):
    """States that start just above the subnormal range and get zero gradients halve
    through the subnormals (never flushed to zero; float32 ones reach zero).  Then, with
    eps=0, a step whose gradient is zero (0/0 where the state is zero), NaN, +-inf or
    N(0, 1), and two ordinary steps.  Every step matches the oracle (NaN and inf in the
    same places), and every target and thread count gives the same bytes.

    eps=0 only comes after the decay: while a float32 state rounds to zero, the float64
    oracle still divides by a tiny positive number where the kernel computes 0/0."""
    _core.set_thread_threshold(0)
    opts = {**HALVING[rule], **opts}
    n = 2 * _core.chunk_elements() + 37
    x = input_name(rule)
    init = make_arrays(rule, opts, n, dtype, rng)
    tiny = np.finfo(dtype).tiny
    for k in init:
        if k not in ("param", x):
            init[k] *= tiny * 2**20
    if "grad_avg" in init:  # else s - m*m, with s rounded to few bits, may turn negative
        init["grad_avg"][...] = 0.0
    grads = [np.zeros(n, dtype)] * 60 + [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    idx = rng.permutation(n)
    grads[60][idx[: n // 2]] = 0.0
    grads[60][idx[-30:-20]], grads[60][idx[-20:-10]], grads[60][idx[-10:]] = np.nan, np.inf, -np.inf
    no_eps = {**opts, **({"eps": 0.0} if rule in ("rmsprop", "adam") else {})}
    results = {}
    subnormal_seen = False
    for target, threads in itertools.product(pyrmsprop.simd_targets(), (1, 2)):
        pyrmsprop.set_simd(target)
        pyrmsprop.set_num_threads(threads)
        arrays = {k: a.copy() for k, a in init.items()}
        for step, g in enumerate(grads, 1):
            arrays[x] = g
            kw = opts if step <= 60 else no_eps
            if results:  # the oracle only along the first path; the others must be equal
                call(pyrmsprop, rule, arrays, kw, step)
                continue
            before = {k: a.copy() for k, a in arrays.items()}
            expected = {k: a.astype(np.float64) for k, a in arrays.items()}
            with np.errstate(all="ignore"):
                call(reference, rule, expected, kw, step)
                call(pyrmsprop, rule, arrays, kw, step)
            for k, a in arrays.items():
                if k != x:
                    assert_matches(a, expected[k], before[k], dtype, f"{k}, step {step}")
                    subnormal_seen |= bool(np.any((a != 0) & (np.abs(a) < tiny)))
        results[target, threads] = arrays
    assert subnormal_seen
    (key0, first), *others = results.items()
    for key, arrays in others:
        for k, a in arrays.items():
            assert a.tobytes() == first[k].tobytes(), f"{k}: {key} differs from {key0}"


@pytest.mark.parametrize("rule", RULES)
def test_empty_and_nd_arrays(rule, dtype, rng):
    """Empty arrays are a no-op; N-d and 0-d arrays update elementwise as flat ones."""
    opts = RULES[rule].options[-1]
    for shape in [(0,), (3, 0, 2), (), (4, 5, 6)]:
        n = int(np.prod(shape))
        flat = make_arrays(rule, opts, n, dtype, rng)
        arrays = {k: a.reshape(shape) for k, a in flat.items()}
        expected = {k: a.copy() for k, a in flat.items()}
        call(pyrmsprop, rule, arrays, opts, 3)
        call(pyrmsprop, rule, expected, opts, 3)
        for k in flat:
            assert arrays[k].shape == shape
            assert arrays[k].tobytes() == expected[k].tobytes()


def _adam_divisor_case(beta2, step, vmax):
    """Adam arrays whose update is p = -(g / d) with d = sqrt(vmax) / sqrt(bc2) and
    g = that quotient computed by numpy: p is -1 exactly where the kernel's quotient
    is the correctly rounded one, and another number where it is off by a unit in
    the last place (g / d then rounds away from 1)."""
    dtype = vmax.dtype.type
    c = dtype((1.0 - beta2 ** step) ** 0.5)          # as the binding computes it
    g = np.sqrt(vmax) / c                            # IEEE square root and division
    n = len(vmax)
    arrays = dict(param=np.zeros(n, dtype), grad=g, exp_avg=np.zeros(n, dtype),
                  exp_avg_sq=np.zeros(n, dtype), max_exp_avg_sq=vmax)
    kw = dict(step=step, lr=1.0, beta1=0.0, beta2=beta2, eps=0.0, amsgrad=True)
    return arrays, kw


def _bits(lo, hi, stride=1):
    return np.arange(lo, hi, stride, dtype=np.uint32).view(np.float32)


@pytest.mark.parametrize("beta2, step", [(0.999, 2), (0.999, 7), (0.999, 1000), (0.99, 3),
                                         (0.5, 2), (1 - 2.0 ** -40, 2)])
def test_adam_bias_correction_division_is_exact(beta2, step):
    """sqrt(v) / sqrt(bc2) is a division on every target: where the kernels multiply
    by the reciprocal and correct with FMAs (prm_divc_* in csrc/prm_storage.h), every
    float32 significand of sqrt(v) (both exponent parities; every 7th for all but the
    first divisor), the square roots of the
    subnormal and of the largest float32s, and 2^18 float64s of each kind give the
    bits of an IEEE division (v below 1 - beta2 of g*g, so amsgrad keeps v)."""
    # every significand for one divisor, every 7th for the others (the run under
    # emulation on aarch64 stays short)
    s = _bits(0x3F800000, 0x40800000, 1 if (beta2, step) == (0.999, 2) else 7)  # sqrt(v) in [1, 4)
    f32 = [(s.astype(np.float64) ** 2).astype(np.float32)]     # v with those roots
    f32 = np.array_split(f32[0], 4) + [_bits(1, 0x00800000, 61),            # subnormal v
                                       _bits(0x7F000000, 0x7F800000, 61)]   # huge v
    rng = np.random.default_rng(step)
    f64 = np.concatenate([1 + 3 * rng.random(1 << 18),
                          rng.integers(1, 1 << 52, 1 << 12).astype(np.uint64).view(np.float64),
                          2.0 ** 1022 * (1 + rng.random(1 << 12))])
    for vmax in f32 + [f64]:
        arrays, kw = _adam_divisor_case(beta2, step, vmax)
        for target in pyrmsprop.simd_targets():
            pyrmsprop.set_simd(target)
            got = {k: a.copy() for k, a in arrays.items()}
            pyrmsprop.adam_update(got["param"], got["grad"], got["exp_avg"], got["exp_avg_sq"],
                                  max_exp_avg_sq=got["max_exp_avg_sq"], **kw)
            bad = np.flatnonzero(got["param"] != -1)
            assert bad.size == 0, (target, vmax.dtype, vmax[bad[:3]], got["param"][bad[:3]])
            assert np.array_equal(got["max_exp_avg_sq"], vmax)


@pytest.mark.parametrize("prefetch", [True, False])
@pytest.mark.parametrize("state", ["float32", "bfloat16"])
def test_memory_only_loop_adds_as_documented(prefetch, state):
    """The benchmark's limit, with and without prefetches, on every target (whole
    vectors and a tail): a0 += a1; float32 state of float32 params += a1; 16-bit
    state keeps its bits."""
    sdt = np.float32 if state == "float32" else pytest.importorskip("ml_dtypes").bfloat16
    n = 40003
    rng = np.random.default_rng(3)
    a1 = rng.standard_normal(n).astype(np.float32)
    for target in pyrmsprop.simd_targets():
        pyrmsprop.set_simd(target)
        a0 = rng.standard_normal(n).astype(np.float32)
        a2 = rng.standard_normal(n).astype(np.float32).astype(sdt)
        a3 = a2.copy()
        e0 = a0 + a1
        e2 = a2 + a1 if state == "float32" else a2.copy()
        _core.memory_only_update(a0, a1, a2, a3, prefetch=prefetch)
        np.testing.assert_array_equal(a0, e0, err_msg=target)
        for got in (a2, a3):
            np.testing.assert_array_equal(got.view(f"u{got.itemsize}"),
                                          e2.view(f"u{e2.itemsize}"), err_msg=target)
