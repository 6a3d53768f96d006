"""8-bit block-wise state (pyrmsprop.QuantizedState): the maps against their
construction (and bitsandbytes' when it is installed), the quantizer against a
search over all 256 entries on every code and every boundary, and whole updates bit
for bit against the float32 emulation (pyrmsprop._emulate, via pyrmsprop.reference)
on every SIMD target and with 1 and 2 threads (conftest.py restores the thread count,
threshold and target after each test)."""

import copy
import pickle

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import QuantizedState, _core, _emulate, reference

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)

N = 40003   # two chunks of 32768 (two threads split it); its last block is partial


def u32(a):
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def same_bits(a, b):
    """Equal bits, except that any NaN equals any NaN."""
    x, y = np.asarray(a), np.asarray(b)
    if x.dtype.kind in "ui":
        return np.array_equal(x, y)
    view = {2: np.uint16, 4: np.uint32}[x.dtype.itemsize]
    nan = np.isnan(x.astype(np.float32))
    return bool(np.array_equal(nan, np.isnan(y.astype(np.float32)))
                and np.array_equal(x.view(view)[~nan], y.view(view)[~nan]))


@pytest.mark.parametrize("signed", [True, False])
def test_maps_are_bitsandbytes_construction(signed):
    m = QuantizedState.map(signed)
    assert np.array_equal(u32(m), u32(_emulate.qmap(signed)))
    assert m.shape == (256,) and np.all(np.diff(m) > 0)
    assert m[_core.Q8_ZERO[signed]] == 0 and m[-1] == 1
    if signed:
        assert np.array_equal(m[:127], -m[128:255][::-1])   # the negatives mirror
    else:
        assert m[0] == 0


@pytest.mark.parametrize("signed", [True, False])
def test_maps_equal_bitsandbytes(signed):
    bnbf = pytest.importorskip("bitsandbytes.functional")   # optional; it imports torch
    assert np.array_equal(u32(QuantizedState.map(signed)),
                          u32(bnbf.create_dynamic_map(signed=signed).numpy()))


@pytest.mark.parametrize("signed", [True, False])
def test_bitsandbytes_codes_read_back_the_same_and_ours_are_the_nearest(signed):
    """Against bitsandbytes' CPU quantize_blockwise/dequantize_blockwise (block 256), on
    values over 11 decades: the same absmax bits; its codes and absmax dequantized by
    us give its values bit for bit; our codes equal its codes except where ours is
    the nearer map entry (or as near, with the lower code): its CPU quantizer is not
    exactly nearest (measured with bitsandbytes 0.50.2 on 1024000 values: 0.15% of the
    signed codes and 0.29% of the unsigned ones differ, by up to 5 codes)."""
    pytest.importorskip("bitsandbytes.functional")   # optional; it imports torch
    import torch
    import bitsandbytes.functional as bnbf
    rng = np.random.default_rng(1)
    blocks = 2000
    x = (rng.standard_normal(256 * blocks)
         * np.repeat(10.0 ** rng.uniform(-8, 3, blocks), 256)).astype(np.float32)
    if not signed:
        x = np.abs(x)
    qmap = bnbf.create_dynamic_map(signed=signed)
    codes, st = bnbf.quantize_blockwise(torch.from_numpy(x), code=qmap, blocksize=256)
    codes, absmax = codes.numpy().copy(), st.absmax.numpy().copy()
    theirs = bnbf.dequantize_blockwise(torch.from_numpy(codes), absmax=torch.from_numpy(absmax),
                                       code=qmap, blocksize=256).numpy()
    assert same_bits(QuantizedState(codes, absmax, signed=signed).dequantize(), theirs)
    ours = QuantizedState.from_float(x, signed=signed)
    assert same_bits(ours.absmax, absmax)
    m = QuantizedState.map(signed)
    normed = (x.reshape(blocks, 256) / absmax[:, None]).reshape(-1)
    d_ours, d_theirs = np.abs(m[ours.codes] - normed), np.abs(m[codes] - normed)
    differ = ours.codes != codes
    assert np.all((d_ours[differ] < d_theirs[differ]) |
                  ((d_ours[differ] == d_theirs[differ]) & (ours.codes[differ] < codes[differ])))
    assert differ.mean() < 0.01


def boundary_values(signed):
    """Every map entry, and the floats within 3 units in the last place of every
    midpoint between two neighbours (where the nearest code changes), and more."""
    m = _emulate.qmap(signed)
    mids = ((m[:-1].astype(np.float64) + m[1:]) / 2).astype(np.float32)
    near = [mids]
    up, down = mids.copy(), mids.copy()
    for _ in range(3):
        up = np.nextafter(up, np.float32(np.inf))
        down = np.nextafter(down, np.float32(-np.inf))
        near += [up, down]
    rng = np.random.default_rng(1)
    lo = -1.0 if signed else 0.0
    extra = [np.float32([0.0, -0.0, 1.0, 1e-30, 1e-8, 2.5e-7, 3e-7]),
             rng.uniform(lo, 1.0, 20000).astype(np.float32),
             (np.sign(rng.uniform(lo, 1.0, 5000)) * 10.0 ** rng.uniform(-8, 0, 5000)).astype(np.float32)]
    if signed:
        extra.append(np.float32([-1.0, -1e-30, -2.5e-7]))
    x = np.concatenate([m] + near + extra)
    x = x[(x >= lo) & (x <= 1.0)]
    if not signed:
        x = np.abs(x)
    return x


@pytest.mark.parametrize("signed", [True, False])
def test_every_code_and_boundary_is_the_nearest_entry(signed):
    x = boundary_values(signed)
    # blocks whose absmax is 1 exactly: the codes are those of x itself
    nb = -(-x.size // 255)
    vals = np.zeros(nb * 256, np.float32)
    vals.reshape(nb, 256)[:, 1:].reshape(-1)[:x.size] = x
    vals.reshape(nb, 256)[:, 0] = 1.0
    q = QuantizedState.from_float(vals, signed=signed)
    assert np.all(q.absmax == 1.0)
    assert np.array_equal(q.codes, _emulate.q8_nearest(vals, signed))


@pytest.mark.parametrize("signed", [True, False])
def test_quantize_matches_the_reference_at_any_scale(signed, rng):
    for scale in (1e-30, 3e-5, 1.0, 7.5, 1e30):
        x = (scale * rng.standard_normal(3 * 256 + 77)).astype(np.float32)
        x[:40] = 0.0                              # a block that is not all zeros
        x[256:512] = 0.0                          # and one that is
        if not signed:
            x = np.abs(x)
        q = QuantizedState.from_float(x, signed=signed)
        codes, absmax = _emulate.q8_quantize(x, signed)
        assert np.array_equal(q.codes, codes) and same_bits(q.absmax, absmax)
        assert q.absmax[1] == 0 and np.all(q.codes[256:512] == _core.Q8_ZERO[signed])
        assert same_bits(q.dequantize(), _emulate.q8_dequantize(codes, absmax, signed))


def test_dequantize_is_map_times_absmax(rng):
    for signed in (True, False):
        codes = rng.integers(0, 256, 1000, dtype=np.uint8)
        absmax = rng.uniform(0, 10, 4).astype(np.float32)
        q = QuantizedState(codes, absmax, signed=signed)
        want = QuantizedState.map(signed)[codes] * np.repeat(absmax, 256)[:1000]
        assert same_bits(q.dequantize(), want)


def test_no_code_has_the_wrong_sign(rng):
    x = (rng.standard_normal(100000) * 10.0 ** rng.uniform(-9, 0, 100000)).astype(np.float32)
    q = QuantizedState.from_float(x, signed=True)
    v = q.dequantize()
    assert not np.any((v > 0) & (x < 0)) and not np.any((v < 0) & (x > 0))


def test_non_finite_values_make_their_block_non_finite():
    x = np.ones(3 * 256, np.float32)
    x[5] = np.nan
    x[300] = np.inf
    q = QuantizedState.from_float(x, signed=True)
    assert np.isnan(q.absmax[0]) and np.isinf(q.absmax[1]) and q.absmax[2] == 1.0
    v = q.dequantize()
    assert np.all(np.isnan(v[:512])) and np.all(v[512:] == 1.0)
    assert np.all(q.codes[:512] == 127)


def test_zeros_and_construction_checks():
    q = QuantizedState.zeros((3, 100), signed=False)
    assert q.codes.shape == (3, 100) and q.absmax.shape == (2,) and q.nbytes == 308
    assert np.all(q.dequantize() == 0) and not q.signed
    r = QuantizedState.from_float(np.linspace(-1, 1, 1000, dtype=np.float32))
    back = pickle.loads(pickle.dumps(r))
    assert type(back) is QuantizedState and back == r and back.codes is not r.codes
    assert copy.deepcopy(r) == r and r.copy() == r and r.copy().absmax is not r.absmax
    with pytest.raises(TypeError, match="codes must be a numpy uint8"):
        QuantizedState(np.zeros(10, np.int8), np.zeros(1, np.float32), signed=True)
    with pytest.raises(TypeError, match="absmax must be a numpy float32"):
        QuantizedState(np.zeros(10, np.uint8), np.zeros(1, np.float64), signed=True)
    with pytest.raises(ValueError, match=r"absmax has shape \(2,\), but 10 codes need \(1,\)"):
        QuantizedState(np.zeros(10, np.uint8), np.zeros(2, np.float32), signed=True)
    with pytest.raises(TypeError, match="signed must be True or False"):
        QuantizedState.zeros(4, signed=1)
    with pytest.raises(ValueError, match="non-negative"):
        QuantizedState.from_float(np.float32([1, -1]), signed=False)


# ---- whole updates ---------------------------------------------------------------------
# (rule, options) and the state arrays each uses; bf16/f16 params with every master mode
RULES = {
    "adam": [{}, {"weight_decay": 0.1, "decoupled_weight_decay": True},
             {"amsgrad": True, "maximize": True, "weight_decay": 0.01}],
    "rmsprop": [{}, {"centered": True, "momentum": 0.9, "weight_decay": 0.01}],
    "sgd": [{"momentum": 0.9}, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}],
    "ema": [{}],
}
SIGNED = {"exp_avg": True, "exp_avg_sq": False, "max_exp_avg_sq": False,
          "square_avg": False, "grad_avg": True, "momentum_buffer": True, "avg": True}


def state_names(rule, kw):
    if rule == "adam":
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if kw.get("amsgrad") else [])
    if rule == "rmsprop":
        return (["square_avg"] + (["grad_avg"] if kw.get("centered") else [])
                + (["momentum_buffer"] if kw.get("momentum") else []))
    if rule == "sgd":
        return ["momentum_buffer"]
    return ["avg"]


def make(rule, pdt, master, opts, n, seed=0):
    rng = np.random.default_rng(seed)
    p32 = rng.standard_normal(n).astype(np.float32)
    kw = dict(opts)
    arrays = {}
    if rule == "ema":
        arrays["x"] = p32.astype(pdt)
        kw["beta"] = 0.9
    else:
        arrays["param"] = p32.astype(pdt)
        arrays["grad"] = (0.1 * rng.standard_normal(n)).astype(pdt)
        kw.setdefault("lr", 0.01)
    for name in state_names(rule, kw):
        # grad_avg**2 below square_avg: centered RMSprop's variance stays positive
        x = ((0.001 if name == "grad_avg" else 0.01) * rng.standard_normal(n)).astype(np.float32)
        arrays[name] = QuantizedState.from_float(x if SIGNED[name] else np.abs(x),
                                                 signed=SIGNED[name])
    if rule == "adam":
        kw["step"] = 3
    if master == "fp32":
        arrays["master_param"] = p32.copy()
    elif master == "split":
        arrays["param_lo"] = rng.integers(0, 1 << 16, n, dtype=np.uint16)
    elif master == "kahan":
        arrays["compensation"] = (1e-4 * rng.standard_normal(n)).astype(pdt)
    elif master == "stochastic":
        kw["seed"] = 99
        kw.setdefault("step", 5)
    return arrays, kw


def fresh(arrays):
    return {k: v.copy() for k, v in arrays.items()}


def run(module, rule, arrays, kw):
    fn = getattr(module, f"{rule}_update")
    if rule == "ema":
        return fn(arrays["avg"], arrays["x"], **kw)
    lead = {"adam": ["exp_avg", "exp_avg_sq"], "rmsprop": ["square_avg"], "sgd": []}[rule]
    rest = {k: v for k, v in arrays.items() if k not in ["param", "grad"] + lead}
    return fn(arrays["param"], arrays["grad"], *(arrays[k] for k in lead), **rest, **kw)


def flat(arrays):
    out = {}
    for k, v in arrays.items():
        if isinstance(v, QuantizedState):
            out[k + ".codes"], out[k + ".absmax"] = v.codes, v.absmax
        else:
            out[k] = v
    return out


def cases():
    for rule, opts_list in RULES.items():
        for pdt in (F32, BF16, F16):
            for master in (None, "fp32", "split", "kahan", "stochastic"):
                if master is not None and (pdt == F32 or rule == "ema"):
                    continue
                if master == "split" and pdt != BF16:
                    continue
                for k, opts in enumerate(opts_list):
                    yield pytest.param(rule, pdt, master, opts, id=f"{rule}-{pdt}-{master}-{k}")


@pytest.mark.parametrize("rule,pdt,master,opts", list(cases()))
def test_updates_bit_exact_on_every_target_and_thread_count(rule, pdt, master, opts):
    start, kw = make(rule, pdt, master, opts, N)
    expected = fresh(start)
    for _ in range(2):          # the second update reads what the first quantized
        run(reference, rule, expected, kw)
    want = flat(expected)
    for target in pyrmsprop.simd_targets():
        pyrmsprop.set_simd(target)
        for nthreads in (1, 2):
            _core.set_num_threads(nthreads)
            _core.set_thread_threshold(0)
            got = fresh(start)
            for _ in range(2):
                run(pyrmsprop, rule, got, kw)
            for k, v in flat(got).items():
                assert same_bits(v, want[k]), (target, nthreads, k)


@pytest.mark.parametrize("n", [1, 255, 256, 257, 511, 513, 4096 + 5])
def test_short_and_odd_lengths(n):
    start, kw = make("adam", F32, None, {"amsgrad": True}, n, seed=n)
    expected = fresh(start)
    run(reference, "adam", expected, kw)
    for target in pyrmsprop.simd_targets():
        pyrmsprop.set_simd(target)
        got = fresh(start)
        run(pyrmsprop, "adam", got, kw)
        for k, v in flat(got).items():
            assert same_bits(v, flat(expected)[k]), (target, k)


def test_multi_tensor_equals_one_at_a_time():
    _core.set_num_threads(2)
    _core.set_thread_threshold(0)
    parts = [make("adam", F32, None, {}, n, seed=n) for n in (300, 40003, 1, 70000)]
    kw = parts[0][1]
    single = [fresh(a) for a, _ in parts]
    for a in single:
        run(pyrmsprop, "adam", a, kw)
    lists = [fresh(a) for a, _ in parts]
    pyrmsprop.functional.adam_update_multi(
        [a["param"] for a in lists], [a["grad"] for a in lists],
        [a["exp_avg"] for a in lists], [a["exp_avg_sq"] for a in lists], **kw)
    for a, b in zip(single, lists):
        for k, v in flat(a).items():
            assert same_bits(v, flat(b)[k]), k


def test_float32_state_and_8bit_state_agree_closely():
    """Not bit for bit (8 bits lose precision): 20 steps of 8-bit Adam stay within a
    few percent of the float32 run's update."""
    rng = np.random.default_rng(3)
    n = 8192
    p32, p8 = [np.float32(rng.standard_normal(n))] * 2
    p32, p8 = p32.copy(), p8.copy()
    m32, v32 = np.zeros(n, np.float32), np.zeros(n, np.float32)
    m8, v8 = QuantizedState.zeros(n, signed=True), QuantizedState.zeros(n, signed=False)
    start = p32.copy()
    for step in range(1, 21):
        g = np.float32(rng.standard_normal(n))
        pyrmsprop.adam_update(p32, g, m32, v32, step=step, lr=1e-3)
        pyrmsprop.adam_update(p8, g, m8, v8, step=step, lr=1e-3)
    d32, d8 = p32 - start, p8 - start
    assert np.linalg.norm(d8 - d32) / np.linalg.norm(d32) < 0.05


# ---- bad input ---------------------------------------------------------------------------
def _adam_arrays(n=1000):
    rng = np.random.default_rng(0)
    return (rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32),
            QuantizedState.from_float(rng.standard_normal(n).astype(np.float32), signed=True),
            QuantizedState.from_float(np.abs(rng.standard_normal(n)).astype(np.float32),
                                      signed=False))


BAD = [
    ("wrong map", lambda p, g, m, v: (p, g, v, m), {}, ValueError,
     "exp_avg must be a QuantizedState with signed=True"),
    ("mixed", lambda p, g, m, v: (p, g, m, np.zeros_like(p)), {}, TypeError,
     "all state arrays share one dtype"),
    ("float64 params", lambda p, g, m, v: (p.astype(np.float64), g.astype(np.float64), m, v), {},
     TypeError, "whose state must be float64"),
    ("raw codes", lambda p, g, m, v: (p, g, m.codes, v), {}, TypeError, "got uint8"),
    ("param", lambda p, g, m, v: (m, g, m, v), {}, TypeError,
     "param cannot be a QuantizedState"),
    ("no arrays", lambda p, g, m, v: (p, g, m, QuantizedState.__new__(QuantizedState)), {},
     TypeError, "exp_avg_sq.codes must be a uint8 array"),
    ("short codes", lambda p, g, m, v: (p[:999], g[:999], m, v), {}, ValueError,
     r"exp_avg.codes has shape \(1000,\) but param has shape \(999,\)"),
]


@pytest.mark.parametrize("name,args,kw,err,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_clear_error_and_writes_nothing(name, args, kw, err, words):
    p, g, m, v = _adam_arrays()
    before = [x.copy() for x in (p, g, m.codes, m.absmax, v.codes, v.absmax)]
    with pytest.raises(err, match=words):
        pyrmsprop.adam_update(*args(p, g, m, v), step=1, **kw)
    for x, y in zip(before, (p, g, m.codes, m.absmax, v.codes, v.absmax)):
        assert np.array_equal(x, y)


def test_absmax_checked_at_update_time():
    p, g, m, v = _adam_arrays()
    bad = QuantizedState(v.codes, v.absmax, signed=False)
    # the arrays are read-only attributes; the base class's __init__ swaps them
    _core._QState.__init__(bad, v.codes, np.zeros(3, np.float32), False)
    before = p.copy()
    with pytest.raises(ValueError, match=r"exp_avg_sq.absmax has shape \(3,\), but 1000 "
                                         r"elements need \(4,\)"):
        pyrmsprop.adam_update(p, g, m, bad, step=1)
    _core._QState.__init__(bad, v.codes, np.zeros(4, np.float64), False)
    with pytest.raises(TypeError, match=r"exp_avg_sq\.absmax must have dtype float32"):
        pyrmsprop.adam_update(p, g, m, bad, step=1)
    ro = v.absmax.copy()
    ro.setflags(write=False)
    _core._QState.__init__(bad, v.codes, ro, False)
    with pytest.raises(ValueError, match=r"exp_avg_sq\.absmax is read-only"):
        pyrmsprop.adam_update(p, g, m, bad, step=1)
    assert np.array_equal(p, before)


def test_overlapping_codes_are_refused():
    p, g, m, v = _adam_arrays()
    alias = QuantizedState(m.codes, v.absmax, signed=False)
    with pytest.raises(ValueError, match="overlap in memory"):
        pyrmsprop.adam_update(p, g, m, alias, step=1)
