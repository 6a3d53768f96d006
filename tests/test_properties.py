"""Property tests (hypothesis): any shape (N-d, 0-d, empty), either dtype and any
valid hyperparameters give, for one update, the oracle's numbers in every array.

Errors are counted as in test_kernels.py: ULPs (of the dtype) of
``|before| + |expected| + rms(expected)``.  Hyperparameters range over their whole
valid intervals, so conditioning is worse than with typical values (e.g. alpha near
0 with ``centered``, where ``s - m*m`` cancels); see MAX_ULPS for what was measured.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyrmsprop
from pyrmsprop import reference

SETTINGS = settings(max_examples=50, deadline=None)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7)
DTYPES = st.sampled_from([np.float32, np.float64])
UNIT = st.floats(0.0, 1.0, exclude_max=True)  # beta, alpha, beta1, beta2: [0, 1)
SCALE = st.sampled_from([1e-3, 1.0, 1e3])      # gradient magnitude
# Measured worst over 3 runs of 2000-3000 examples per rule: float32 33.7 ULPs, float64
# 7.0, both in the parameter where the inputs cancel (SGD nesterov with weight decay:
# g + wd*p, then g + momentum*buf; Adam with step_size = lr / (1 - beta1**t) large);
# every other array <= 5 ULPs (float32) and 0 (float64).  Bounds about 4x above.
MAX_ULPS = {np.dtype(np.float32): 128.0, np.dtype(np.float64): 32.0}


def make_arrays(seed, shape, dtype, names, scale):
    """N(0, 1) params, N(0, scale^2) gradients and the state such gradients leave."""
    rng = np.random.default_rng(seed)
    s = rng.exponential(1.0, shape) * scale**2
    values = {
        "avg": rng.standard_normal(shape),
        "x": rng.standard_normal(shape),
        "param": rng.standard_normal(shape),
        "grad": rng.standard_normal(shape) * scale,
        "square_avg": s,
        "exp_avg_sq": s,
        "grad_avg": np.sqrt(s) * rng.uniform(-0.9, 0.9, shape),
        "exp_avg": np.sqrt(s) * rng.uniform(-0.9, 0.9, shape),
        "max_exp_avg_sq": s * rng.uniform(1.0, 1.3, shape),
        "momentum_buffer": rng.standard_normal(shape) * scale,
    }
    return {k: np.asarray(values[k], dtype=dtype) for k in names}


def check(fn, arrays, positional, kwargs, state):
    """Run `fn` (a name) from pyrmsprop on `arrays` and from the oracle on float64
    copies; every array the update may write matches, the others are untouched."""
    before = {k: a.copy() for k, a in arrays.items()}
    expected = {k: a.astype(np.float64) for k, a in arrays.items()}
    kw = {**kwargs, **{k: arrays[k] for k in state}}
    getattr(pyrmsprop, fn)(*(arrays[k] for k in positional), **kw)
    kw = {**kwargs, **{k: expected[k] for k in state}}
    getattr(reference, fn)(*(expected[k] for k in positional), **kw)
    for k, a in arrays.items():
        assert a.shape == before[k].shape and a.dtype == before[k].dtype
        e = expected[k]
        rms = np.sqrt(np.mean(np.square(e))) if e.size else 0.0
        scale = (np.abs(before[k].astype(np.float64)) + np.abs(e) + rms).astype(a.dtype)
        err = np.abs(a.astype(np.float64) - e) / np.spacing(scale)
        assert not np.any(np.isnan(err)), f"{k}: NaN"
        worst = float(np.max(err, initial=0.0))
        assert worst <= MAX_ULPS[a.dtype], f"{k}: {worst:.1f} ULPs"


@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=st.integers(0, 2**32 - 1), beta=UNIT)
def test_ema(shape, dtype, seed, beta):
    arrays = make_arrays(seed, shape, dtype, ["avg", "x"], 1.0)
    check("ema_update", arrays, ["avg", "x"], {"beta": beta}, [])


@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=st.integers(0, 2**32 - 1), scale=SCALE,
       lr=st.floats(0.0, 1.0), alpha=UNIT, alpha_centered=st.floats(0.5, 1.0, exclude_max=True),
       eps=st.floats(0.0, 1e-2),
       weight_decay=st.floats(0.0, 1.0) | st.just(0.0),
       momentum=st.floats(0.0, 0.99) | st.just(0.0),
       centered=st.booleans(), eps_in_sqrt=st.booleans(), maximize=st.booleans())
def test_rmsprop(shape, dtype, seed, scale, lr, alpha, alpha_centered, eps, weight_decay,
                 momentum, centered, eps_in_sqrt, maximize):
    if centered:  # s - m*m cancels as alpha -> 0 (in any implementation): keep alpha >= 0.5
        alpha = alpha_centered
    state = ["grad_avg"] * centered + ["momentum_buffer"] * (momentum > 0)
    positional = ["param", "grad", "square_avg"]
    arrays = make_arrays(seed, shape, dtype, positional + state, scale)
    check("rmsprop_update", arrays, positional,
          {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
           "momentum": momentum, "centered": centered, "eps_in_sqrt": eps_in_sqrt,
           "maximize": maximize}, state)


@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=st.integers(0, 2**32 - 1), scale=SCALE,
       step=st.integers(1, 10**6), lr=st.floats(0.0, 0.1), beta1=UNIT, beta2=UNIT,
       eps=st.floats(0.0, 1e-2), weight_decay=st.floats(0.0, 1.0) | st.just(0.0),
       decoupled=st.booleans(), amsgrad=st.booleans(), maximize=st.booleans())
def test_adam(shape, dtype, seed, scale, step, lr, beta1, beta2, eps, weight_decay, decoupled,
              amsgrad, maximize):
    state = ["max_exp_avg_sq"] * amsgrad
    positional = ["param", "grad", "exp_avg", "exp_avg_sq"]
    arrays = make_arrays(seed, shape, dtype, positional + state, scale)
    check("adam_update", arrays, positional,
          {"step": step, "lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
           "weight_decay": weight_decay, "decoupled_weight_decay": decoupled,
           "amsgrad": amsgrad, "maximize": maximize}, state)


@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=st.integers(0, 2**32 - 1), scale=SCALE,
       lr=st.floats(0.0, 1.0), momentum=st.floats(0.0, 0.99) | st.just(0.0),
       dampening=st.floats(0.0, 1.0), nesterov=st.booleans(),
       weight_decay=st.floats(0.0, 1.0) | st.just(0.0), maximize=st.booleans())
def test_sgd(shape, dtype, seed, scale, lr, momentum, dampening, nesterov, weight_decay,
             maximize):
    if nesterov:  # nesterov needs momentum > 0 and no dampening
        momentum, dampening = max(momentum, 0.5), 0.0
    state = ["momentum_buffer"] * (momentum > 0)
    arrays = make_arrays(seed, shape, dtype, ["param", "grad"] + state, scale)
    check("sgd_update", arrays, ["param", "grad"],
          {"lr": lr, "momentum": momentum, "dampening": dampening, "nesterov": nesterov,
           "weight_decay": weight_decay, "maximize": maximize}, state)


@SETTINGS
@given(shape=SHAPES, dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_nd_equals_flat(shape, dtype, seed):
    """An N-d array is updated exactly as its flat view."""
    names = ["param", "grad", "exp_avg", "exp_avg_sq"]
    nd = make_arrays(seed, shape, dtype, names, 1.0)
    flat = {k: a.reshape(-1).copy() for k, a in nd.items()}
    for arrays in (nd, flat):
        pyrmsprop.adam_update(*(arrays[k] for k in names), step=7, weight_decay=0.1)
    for k in names:
        assert nd[k].tobytes() == flat[k].tobytes()


def test_reference_is_in_place_in_the_array_dtype():
    """The oracle writes in place, rounding to the array's dtype."""
    p = np.array([1.0, 2.0], np.float32)
    buf = np.zeros(2, np.float32)
    reference.sgd_update(p, np.array([0.1, 0.2], np.float32), lr=1 / 3, momentum=0.5,
                         momentum_buffer=buf)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, np.float32(np.array([1.0, 2.0]) - np.array(
        [np.float32(0.1), np.float32(0.2)], np.float64) / 3))
    np.testing.assert_array_equal(buf, np.array([0.1, 0.2], np.float32))
    with pytest.raises(ValueError, match="momentum_buffer"):
        reference.sgd_update(p, p.copy(), lr=0.1, momentum=0.9)
