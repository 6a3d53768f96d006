"""Bad input to the functional API: the exact exception, the argument named in
its message, and every array passed (and every buffer behind it) byte-for-byte
unchanged.  Also the inputs that must work: read-only gradients, empty arrays,
N-d arrays, numpy scalar hyperparameters, boundary values."""

import math
import re
from typing import NamedTuple

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import functional as F

SHAPE = (6, 8)
SIZE = math.prod(SHAPE)


class Spec(NamedTuple):
    fn: object
    arrays: tuple      # array arguments in signature order
    npos: int          # how many of them are positional
    written: frozenset
    optional: dict     # state array -> the option that needs it
    kwargs: dict       # valid hyperparameters that need every state array
    hyper: dict        # hyperparameter -> kind: nonneg | unit | dampening | step


SPECS = {
    "ema": Spec(pyrmsprop.ema_update, ("avg", "x"), 2, frozenset({"avg"}), {},
                {"beta": 0.9}, {"beta": "unit"}),
    "rmsprop": Spec(
        pyrmsprop.rmsprop_update,
        ("param", "grad", "square_avg", "grad_avg", "momentum_buffer"), 3,
        frozenset({"param", "square_avg", "grad_avg", "momentum_buffer"}),
        {"grad_avg": "centered", "momentum_buffer": "momentum"},
        {"lr": 1e-2, "alpha": 0.9, "eps": 1e-8, "weight_decay": 0.1, "momentum": 0.9,
         "centered": True},
        {"lr": "nonneg", "alpha": "unit", "eps": "nonneg", "weight_decay": "nonneg",
         "momentum": "nonneg"}),
    "adam": Spec(
        pyrmsprop.adam_update,
        ("param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"), 4,
        frozenset({"param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
        {"max_exp_avg_sq": "amsgrad"},
        {"step": 3, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
         "weight_decay": 0.1, "amsgrad": True},
        {"step": "step", "lr": "nonneg", "beta1": "unit", "beta2": "unit", "eps": "nonneg",
         "weight_decay": "nonneg"}),
    "sgd": Spec(
        pyrmsprop.sgd_update, ("param", "grad", "momentum_buffer"), 2,
        frozenset({"param", "momentum_buffer"}), {"momentum_buffer": "momentum"},
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.1},
        {"lr": "nonneg", "momentum": "nonneg", "dampening": "dampening",
         "weight_decay": "nonneg"}),
}

WRONG_TYPE = ["3", None, True, 1j, [0.1], np.array([0.1])]
BAD_VALUES = {  # kind -> [(value, exception)]
    "nonneg": [(-1e-3, ValueError), (-np.inf, ValueError), (np.inf, ValueError),
               (np.nan, ValueError)] + [(v, TypeError) for v in WRONG_TYPE],
    "unit": [(-0.1, ValueError), (1.0, ValueError), (1.5, ValueError), (-np.inf, ValueError),
             (np.inf, ValueError), (np.nan, ValueError)] + [(v, TypeError) for v in WRONG_TYPE],
    "dampening": [(-0.1, ValueError), (1.0 + 1e-9, ValueError), (2.0, ValueError),
                  (np.inf, ValueError), (np.nan, ValueError)]
                 + [(v, TypeError) for v in WRONG_TYPE],
    "step": [(0, ValueError), (-1, ValueError), (np.int64(0), ValueError), (2**70, ValueError),
             (1.5, TypeError), (2.0, TypeError), (np.float64(2.0), TypeError),
             (True, TypeError), ("3", TypeError), (None, TypeError), (np.nan, TypeError),
             (np.inf, TypeError)],
}
EDGE_VALUES = {"nonneg": 0.0, "unit": 0.0, "dampening": 1.0, "step": 1}  # valid extremes

SPEC_NAMES = list(SPECS)
PAIRS = [(s, i, j) for s in SPEC_NAMES
         for i, a in enumerate(SPECS[s].arrays) for j, b in enumerate(SPECS[s].arrays)
         if i < j and {a, b} & SPECS[s].written]


def make_arrays(spec, dtype, shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    out = {name: rng.uniform(-1.0, 1.0, shape).astype(dtype) for name in spec.arrays}
    for name in ("square_avg", "exp_avg_sq", "max_exp_avg_sq"):  # keep sqrt real
        if name in out:
            out[name] = rng.uniform(1.0, 2.0, shape).astype(dtype)
    return out


def call(spec, arrays, **overrides):
    pos = [arrays[name] for name in spec.arrays[:spec.npos]]
    kw = {name: arrays[name] for name in spec.arrays[spec.npos:]}
    spec.fn(*pos, **{**spec.kwargs, **kw, **overrides})


def snapshot(arrays):
    """Bytes of every argument and of every ndarray behind a view."""
    out = []
    for obj in arrays.values():
        if isinstance(obj, np.ndarray):
            while isinstance(obj, np.ndarray):
                out.append(obj.tobytes())
                obj = obj.base
        elif hasattr(obj, "numpy"):  # a torch tensor
            out.append(obj.numpy().tobytes())
        else:
            out.append(repr(obj))
    return out


def rejects(spec, arrays, exc, names, what, **overrides):
    """The call raises exactly `exc`, names every one of `names`, and writes nothing."""
    before = snapshot(arrays)
    try:
        call(spec, arrays, **overrides)
    except Exception as e:
        err = e
    else:
        pytest.fail(f"{spec.fn.__name__}: {what}: no error raised")
    assert type(err) is exc, f"{spec.fn.__name__}: {what}: {type(err).__name__}: {err}"
    for name in names:
        assert re.search(rf"\b{name}\b", str(err)), \
            f"{spec.fn.__name__}: {what}: message does not name {name!r}: {err}"
    assert snapshot(arrays) == before, f"{spec.fn.__name__}: {what}: an array was modified"


def replaced(arrays, name, value):
    return {**arrays, name: value}


# --------------------------------------------------------------------------- arrays


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_valid_call_writes_written_arrays_and_accepts_read_only_inputs(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    for name in spec.arrays:
        arrays[name].flags.writeable = name in spec.written
    before = {name: a.tobytes() for name, a in arrays.items()}
    call(spec, arrays)
    for name, a in arrays.items():  # the snapshots above would catch a write
        assert (a.tobytes() != before[name]) == (name in spec.written), name


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_not_an_array(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    for name in spec.arrays:
        bad_values = [arrays[name].tolist(), 1.0, "abc", bytes(SIZE * 8)]
        if name not in spec.optional:
            bad_values.append(None)
        for bad in bad_values:
            rejects(spec, replaced(arrays, name, bad), TypeError, [name],
                    f"{name}={type(bad).__name__}")


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_torch_tensor_is_not_an_array(fn, dtype, torch):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    for name in spec.arrays:
        tensor = torch.tensor(arrays[name])
        rejects(spec, replaced(arrays, name, tensor), TypeError, [name], f"{name}=tensor")


@pytest.mark.parametrize("fn", [s for s in SPEC_NAMES if SPECS[s].optional])
def test_missing_state_array(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    for name, option in spec.optional.items():
        rejects(spec, replaced(arrays, name, None), ValueError, [name],
                f"{option} without {name}")


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_wrong_dtype(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    swapped = np.dtype(dtype).newbyteorder("S")
    for name in spec.arrays:
        for bad in (np.int64, np.float16, np.complex64, np.bool_, np.longdouble, swapped):
            if bad is np.float16 and fn.startswith("ema") and name == "x" and dtype == np.float32:
                continue    # a float32 average of float16 values is allowed (test_storage.py)
            rejects(spec, replaced(arrays, name, arrays[name].astype(bad)), TypeError, [name],
                    f"{name} of dtype {np.dtype(bad).str}")


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_mixed_float_dtypes(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    other = np.float64 if np.dtype(dtype) == np.float32 else np.float32
    for name in spec.arrays:
        rejects(spec, replaced(arrays, name, arrays[name].astype(other)), TypeError, [name],
                f"{name} of dtype {np.dtype(other)}")


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_shape_mismatch(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    rng = np.random.default_rng(1)
    for name in spec.arrays:
        for shape in [(6, 9), (5, 8), (SIZE,), (8, 6), (2, 3, 8), (6, 8, 1), (1, 6, 8), ()]:
            bad = rng.uniform(1.0, 2.0, shape).astype(dtype)
            rejects(spec, replaced(arrays, name, bad), ValueError, [name],
                    f"{name} of shape {shape}")


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_not_c_contiguous(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    rng = np.random.default_rng(2)
    for name in spec.arrays:
        wide = rng.uniform(1.0, 2.0, (SHAPE[0], 2 * SHAPE[1])).astype(dtype)
        views = {
            "step slice": wide[:, ::2],
            "column slice": wide[:, :SHAPE[1]],
            "transpose": rng.uniform(1.0, 2.0, SHAPE[::-1]).astype(dtype).T,
            "Fortran order": np.asfortranarray(arrays[name]),
            "reversed rows": arrays[name].copy()[::-1],
        }
        for what, bad in views.items():
            assert bad.shape == SHAPE and not bad.flags.c_contiguous
            rejects(spec, replaced(arrays, name, bad), ValueError, [name], f"{name}: {what}")


def _misaligned(values, offset):
    """``values`` copied into a view that starts ``offset`` bytes into a buffer (numpy's
    flags.aligned is False when ``offset`` is not a multiple of the item size)."""
    raw = np.zeros(values.nbytes + values.itemsize, np.uint8)
    out = raw[offset:offset + values.nbytes].view(values.dtype).reshape(values.shape)
    out[...] = values
    return out


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_misaligned_array(fn, dtype):
    # Found by the fuzz harness under UBSan: a view at an odd byte offset was accepted,
    # and the kernels then loaded doubles from misaligned addresses.
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    isz = np.dtype(dtype).itemsize
    for name in spec.arrays:
        for offset in range(1, isz):
            bad = _misaligned(arrays[name], offset)
            assert not bad.flags.aligned
            rejects(spec, replaced(arrays, name, bad), ValueError, [name],
                    f"{name} {offset} bytes off")
    # a view offset by whole items is aligned, and works
    good = {name: _misaligned(a, isz) for name, a in arrays.items()}
    want = {name: a.copy() for name, a in arrays.items()}
    call(spec, good)
    call(spec, want)
    for name in spec.arrays:
        np.testing.assert_array_equal(good[name], want[name])


def test_misaligned_in_lists_and_all_finite():
    x = np.ones(5)
    bad = _misaligned(x, 4)
    with pytest.raises(ValueError, match=r"grads\[1\] is not aligned"):
        F.sgd_update_multi([x.copy(), x.copy()], [x.copy(), bad], lr=0.1)
    with pytest.raises(ValueError, match=r"arrays\[0\] is not aligned"):
        F.all_finite([bad])
    with pytest.raises(ValueError, match=r"params\[0\] is not aligned"):
        pyrmsprop.Adam([bad])
    empty = np.zeros(9, np.uint8)[1:1].view(np.float64)      # nothing to load: accepted
    assert F.all_finite([empty])


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_read_only_written_array(fn, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    for name in spec.written:
        bad = arrays[name].copy()
        bad.flags.writeable = False
        rejects(spec, replaced(arrays, name, bad), ValueError, [name], f"read-only {name}")
        view = arrays[name].view()  # a read-only view of a writable array
        view.flags.writeable = False
        rejects(spec, replaced(arrays, name, view), ValueError, [name], f"read-only view {name}")


@pytest.mark.parametrize(("fn", "i", "j"), PAIRS)
def test_overlapping_arrays(fn, i, j, dtype):
    spec = SPECS[fn]
    a, b = spec.arrays[i], spec.arrays[j]
    arrays = make_arrays(spec, dtype)
    buf = np.random.default_rng(3).uniform(1.0, 2.0, 3 * SIZE).astype(dtype)
    cases = {
        "the same array": (arrays[a], arrays[a]),
        "shifted by one element": (buf[:SIZE], buf[1:SIZE + 1]),
        "sharing one element": (buf[:SIZE], buf[SIZE - 1:2 * SIZE - 1]),
        "sharing one element, reversed": (buf[SIZE - 1:2 * SIZE - 1], buf[:SIZE]),
    }
    if b not in spec.written:  # a read-only alias of a written array
        alias = arrays[a].view()
        alias.flags.writeable = False
        cases["a read-only view of it"] = (arrays[a], alias)
    for what, (x, y) in cases.items():
        bad = {**arrays, a: x.reshape(SHAPE), b: y.reshape(SHAPE)}
        rejects(spec, bad, ValueError, [a, b], f"{a} and {b}: {what}")
    # adjacent views of one buffer do not overlap: accepted, and both updated correctly
    x, y = buf[:SIZE].reshape(SHAPE), buf[SIZE:2 * SIZE].reshape(SHAPE)
    expected = {**make_arrays(spec, dtype), a: x.copy(), b: y.copy()}
    call(spec, expected)
    call(spec, {**make_arrays(spec, dtype), a: x, b: y})
    assert x.tobytes() == expected[a].tobytes() and y.tobytes() == expected[b].tobytes()


# --------------------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(("fn", "kw"), [(s, k) for s in SPEC_NAMES for k in SPECS[s].hyper])
def test_bad_hyperparameter(fn, kw, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    for value, exc in BAD_VALUES[spec.hyper[kw]]:
        rejects(spec, arrays, exc, [kw], f"{kw}={value!r}", **{kw: value})


FLAGS = {"rmsprop": ("centered", "eps_in_sqrt", "maximize"),
         "adam": ("decoupled_weight_decay", "amsgrad", "maximize"),
         "sgd": ("nesterov", "maximize")}


@pytest.mark.parametrize(("fn", "flag"), [(s, f) for s in FLAGS for f in FLAGS[s]])
def test_flags_take_bools_only(fn, flag, dtype):
    # a switch given "no", 0/1, None or an array is a TypeError naming it (by
    # truthiness, "no" used to switch it on)
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype)
    for bad in ["no", "", 1, 0, 1.0, None, np.array(True), [True]]:
        rejects(spec, arrays, TypeError, [flag], f"{flag}={bad!r}", **{flag: bad})
    for good in (True, False, np.bool_(True), np.bool_(False)):
        kwargs = {flag: good}
        if flag == "nesterov" and bool(good):
            kwargs["dampening"] = 0.0
        call(spec, make_arrays(spec, dtype), **kwargs)


@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["1e400", "-1e400"])
def test_huge_int_hyperparameter(value):
    spec = SPECS["sgd"]
    rejects(spec, make_arrays(spec, np.float64), ValueError, ["lr"], f"lr={'-' if value < 0 else ''}10**400",
            lr=value)


def test_nesterov_needs_momentum_without_dampening(dtype):
    spec = SPECS["sgd"]
    arrays = make_arrays(spec, dtype)
    for momentum, dampening in [(0.0, 0.0), (0.0, 0.5), (0.9, 0.1), (0.9, 1.0)]:
        rejects(spec, arrays, ValueError, ["nesterov"],
                f"nesterov with momentum={momentum}, dampening={dampening}",
                nesterov=True, momentum=momentum, dampening=dampening)
    rejects(spec, replaced(arrays, "momentum_buffer", None), ValueError, ["nesterov"],
            "nesterov without momentum or buffer", nesterov=True, momentum=0.0, dampening=0.0)
    call(spec, arrays, nesterov=True, dampening=0.0)


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_boundary_hyperparameters_are_accepted(fn, dtype):
    spec = SPECS[fn]
    for kw, kind in spec.hyper.items():
        arrays = make_arrays(spec, dtype)
        call(spec, arrays, **{kw: EDGE_VALUES[kind]})


@pytest.mark.parametrize("fn", SPEC_NAMES)
def test_numpy_scalar_hyperparameters(fn, dtype):
    """np.float32 / np.float64 / np.int64 work and mean exactly their float value."""
    spec = SPECS[fn]
    for to_np in (np.float32, np.float64):
        values = {kw: np.int64(v) if spec.hyper.get(kw) == "step" else to_np(v)
                  for kw, v in spec.kwargs.items() if kw in spec.hyper}
        plain = {kw: int(v) if isinstance(v, np.integer) else float(v) for kw, v in values.items()}
        got, expected = make_arrays(spec, dtype), make_arrays(spec, dtype)
        call(spec, got, **values)
        call(spec, expected, **plain)
        for name in spec.arrays:
            assert got[name].tobytes() == expected[name].tobytes(), (to_np, name)


@pytest.mark.parametrize("fn", SPEC_NAMES)
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 5)])
def test_empty_arrays_are_a_no_op(fn, shape, dtype):
    spec = SPECS[fn]
    arrays = make_arrays(spec, dtype, shape)
    call(spec, arrays)
    assert all(a.shape == shape for a in arrays.values())
    # still validated: a wrong dtype or shape is an error even when empty
    name = spec.arrays[-1]
    rejects(spec, replaced(arrays, name, arrays[name].astype(np.int64)), TypeError, [name],
            "empty int64")
    rejects(spec, replaced(arrays, name, np.zeros((1, *shape), dtype)), ValueError, [name],
            "empty of another shape")


@pytest.mark.parametrize("fn", SPEC_NAMES)
@pytest.mark.parametrize("shape", [(), (1,), (2, 3, 4), (2, 1, 3, 1, 5), (65, 3)])
def test_nd_arrays_match_flat(fn, shape, dtype):
    spec = SPECS[fn]
    nd = make_arrays(spec, dtype, shape)
    flat = {name: a.ravel().copy() for name, a in nd.items()}
    call(spec, nd)
    call(spec, flat)
    for name in spec.arrays:
        assert nd[name].shape == shape
        assert nd[name].tobytes() == flat[name].tobytes(), name
