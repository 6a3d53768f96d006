"""16-bit storage (bfloat16, float16 params and state) and the master modes, bit for
bit against the float32 emulation in pyrmsprop._emulate (via pyrmsprop.reference),
on every SIMD target this machine supports and with 1 and 2 threads; conversions
against ml_dtypes' and numpy's own casts."""

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core, reference

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)

# (param dtype, state dtype) pairs with 16 bits somewhere
PAIRS = [(F32, BF16), (BF16, BF16), (BF16, F32), (F16, F16), (F16, F32)]
MASTERS = [None, "fp32", "split", "kahan", "stochastic"]
OPTIONS = {
    "adam": [{}, {"weight_decay": 0.01}, {"weight_decay": 0.1, "decoupled_weight_decay": True},
             {"amsgrad": True, "maximize": True}],
    "rmsprop": [{}, {"centered": True, "momentum": 0.9, "weight_decay": 0.01},
                {"eps_in_sqrt": True, "maximize": True}],
    "sgd": [{}, {"momentum": 0.9, "nesterov": True},
            {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01, "maximize": True}],
    "ema": [{}],
}
STATE = {"adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
         "rmsprop": ("square_avg", "grad_avg", "momentum_buffer"),
         "sgd": ("momentum_buffer",), "ema": ()}
N = 40003   # two chunks of 32768 (two threads split it), odd: heads and tails on every path


def bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def same_bits(a, b):
    """Equal bits, except that any NaN equals any NaN."""
    with np.errstate(invalid="ignore"):
        x, y = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    nan = np.isnan(x)
    return bool(np.array_equal(nan, np.isnan(y)) and np.array_equal(bits(a)[~nan], bits(b)[~nan]))


def make(rule, pdt, sdt, master, opts, rng, n=N):
    """The arrays and keywords of one update (fresh copies each call)."""
    p32 = rng.standard_normal(n).astype(np.float32)
    arrays = {"param": p32.astype(pdt), "grad": (0.1 * rng.standard_normal(n)).astype(pdt)}
    if rule == "ema":
        arrays = {"avg": rng.standard_normal(n).astype(sdt), "x": arrays["param"]}
    for name in STATE[rule]:
        arrays[name] = np.abs(0.01 * rng.standard_normal(n)).astype(sdt)
    kw = dict(opts)
    if rule == "sgd" or rule == "rmsprop":
        kw.setdefault("lr", 0.01)
    if rule == "ema":
        kw["beta"] = 0.9
    if rule == "adam":
        kw["step"] = 3
        if not kw.get("amsgrad"):
            del arrays["max_exp_avg_sq"]
    if rule == "rmsprop":
        if not kw.get("centered"):
            del arrays["grad_avg"]
        if not kw.get("momentum"):
            del arrays["momentum_buffer"]
    if rule == "sgd" and not kw.get("momentum"):
        del arrays["momentum_buffer"]
    if master == "fp32":
        arrays["master_param"] = p32.copy()
    elif master == "split":
        arrays["param_lo"] = rng.integers(0, 1 << 16, n, dtype=np.uint16)
    elif master == "kahan":
        arrays["compensation"] = (1e-4 * rng.standard_normal(n)).astype(pdt)
    elif master == "stochastic":
        kw["seed"] = 12345
        if rule != "adam":
            kw["step"] = 7
    return arrays, kw


def run(module, rule, arrays, kw):
    fn = getattr(module, f"{rule}_update")
    if rule == "ema":
        return fn(arrays["avg"], arrays["x"], **kw)
    pos = ["param", "grad"] + [s for s in STATE[rule][:2] if rule == "adam" or s == "square_avg"]
    rest = {k: v for k, v in arrays.items() if k not in pos}
    return fn(*(arrays[k] for k in pos), **rest, **kw)


def cases():
    for rule, opts_list in OPTIONS.items():
        for pdt, sdt in PAIRS:
            for master in MASTERS:
                if master is not None and (pdt == F32 or rule == "ema" and master != "stochastic"):
                    continue
                if master == "split" and pdt != BF16:
                    continue
                for k, opts in enumerate(opts_list):
                    if pdt == F32 and rule == "sgd" and not opts.get("momentum"):
                        continue    # no 16-bit array: plain float32 (test_kernels.py)
                    yield pytest.param(rule, pdt, sdt, master, opts,
                                       id=f"{rule}-{pdt}-{sdt}-{master}-{k}")


@pytest.fixture
def threads():
    old_n, old_t = _core.get_num_threads(), _core.get_thread_threshold()
    yield
    _core.set_num_threads(old_n)
    _core.set_thread_threshold(old_t)


@pytest.mark.parametrize("rule,pdt,sdt,master,opts", list(cases()))
def test_bit_exact_on_every_target_and_thread_count(rule, pdt, sdt, master, opts, threads,
                                                    conversions):
    rng = np.random.default_rng(0)
    start, kw = make(rule, pdt, sdt, master, opts, rng)
    expected = {k: v.copy() for k, v in start.items()}
    for step in range(2):       # two updates: the second reads what the first stored
        run(reference, rule, expected, kw)
    for target in pyrmsprop.simd_targets():
        pyrmsprop.set_simd(target)
        for nthreads in (1, 2):
            _core.set_num_threads(nthreads)
            _core.set_thread_threshold(0)
            got = {k: v.copy() for k, v in start.items()}
            for step in range(2):
                run(pyrmsprop, rule, got, kw)
            for k in start:
                assert got[k].dtype == start[k].dtype
                assert same_bits(got[k], expected[k]), (target, nthreads, k)


def test_bfloat16_and_float16_loads_are_exact(conversions):
    """Every 16-bit pattern, loaded and stored in a float32 average (beta = 0)."""
    patterns = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    for dt in (BF16, F16):
        x = patterns.view(dt)
        for target in pyrmsprop.simd_targets():
            pyrmsprop.set_simd(target)
            avg = np.zeros(x.size, np.float32)
            pyrmsprop.ema_update(avg, x, beta=0.0)
            with np.errstate(invalid="ignore"):
                want = np.float32(0) * np.float32(0) + x.astype(np.float32)   # -0 -> +0
            assert same_bits(avg, want), (dt, target)


def _hard_floats():
    """float32 values around every 16-bit rounding boundary: each upper half with low
    halves 0, 1, 0x0fff, 0x1000, 0x1001, 0x7fff, 0x8000, 0x8001, 0xffff, plus random bits."""
    hi = np.arange(1 << 16, dtype=np.uint32) << 16
    lows = np.array([0, 1, 0x0FFF, 0x1000, 0x1001, 0x7FFF, 0x8000, 0x8001, 0xFFFF], np.uint32)
    rng = np.random.default_rng(5)
    u = np.concatenate([(hi[:, None] | lows[None, :]).ravel(),
                        rng.integers(0, 1 << 32, 1 << 18, dtype=np.uint64).astype(np.uint32)])
    return u.view(np.float32)


@pytest.mark.parametrize("dt", [BF16, F16], ids=["bfloat16", "float16"])
def test_rounding_to_nearest_even_matches_the_casts(dt, conversions):
    """A float32 master (lr = 0: param = master rounded) against ml_dtypes' and numpy's
    float32 -> 16-bit casts, ties, subnormals, overflow, Inf and NaN included."""
    x = _hard_floats()
    for target in pyrmsprop.simd_targets():
        pyrmsprop.set_simd(target)
        param = np.zeros(x.size, dt)
        master = x.copy()
        with np.errstate(invalid="ignore", over="ignore"):
            pyrmsprop.sgd_update(param, np.zeros(x.size, dt), lr=0.0, master_param=master)
            # the kernel computes master - 0 * 0 (a signalling NaN comes out quiet)
            want = (x - np.float32(0) * np.float32(0)).astype(dt)
        assert same_bits(master, x)
        assert np.array_equal(bits(param), bits(want)), target   # NaN bits too


def test_conversions_ignore_flush_to_zero(torch):
    """With MXCSR's flush-to-zero and denormals-are-zero bits set (as
    torch.set_flush_denormal(True) does, and libraries built with -ffast-math), the
    16-bit loads and stores give the same bits, hardware conversions or not: float16
    subnormals in and out included.  (The float32 arithmetic itself then flushes
    float32 subnormals, in every library: those values are left out.)  One thread:
    the mode is the calling thread's."""
    pyrmsprop.set_num_threads(1)
    patterns = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    x = _hard_floats()
    normal_x = (x.view(np.uint32) & 0x7F800000) != 0
    keep_in = {BF16: (patterns & 0x7F80) != 0, F16: np.ones(1 << 16, bool)}

    def run():
        out = []
        for dt in (BF16, F16):
            avg = np.zeros(1 << 16, np.float32)
            pyrmsprop.ema_update(avg, patterns.view(dt), beta=0.0)
            param, master = np.zeros(x.size, dt), x.copy()
            with np.errstate(invalid="ignore", over="ignore"):
                pyrmsprop.sgd_update(param, np.zeros(x.size, dt), lr=0.0, master_param=master)
            out += [bits(avg)[keep_in[dt]], bits(param)[normal_x]]
        return out

    ways = ((), _core.hw_conversions(supported=True))
    want = []
    for hw in ways:
        _core.set_hw_conversions(hw)
        want.append(run())
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals (torch.set_flush_denormal)")
    try:
        assert np.float32(1e-40) * np.float32(1) == 0          # the mode is on
        for hw, expected in zip(ways, want):
            _core.set_hw_conversions(hw)
            for a, b in zip(run(), expected):
                assert np.array_equal(a, b), hw
    finally:
        torch.set_flush_denormal(False)
    for a, b in zip(*want):
        assert np.array_equal(a, b)


def test_split_master_rounds_to_nearest_ties_away_and_is_exact():
    x = _hard_floats()
    finite = np.isfinite(x)
    hi = np.zeros(x.size, BF16)
    lo = np.zeros(x.size, np.uint16)
    pyrmsprop.sgd_update(hi, np.zeros(x.size, BF16), lr=0.0, param_lo=lo)   # hi:lo = 0
    assert not bits(hi).any() and not lo.any()
    # store every value through an fp32-free path: a master loaded from hi:lo, lr = 0
    u = x.view(np.uint32)
    hi.view(np.uint16)[...] = (u >> 16).astype(np.uint16)
    lo[...] = (u & 0xFFFF).astype(np.uint16)
    # hi:lo above is the truncating split; read as ties-away halves it is a different
    # float, so compute the master the kernel sees and check one update keeps it exact
    from pyrmsprop import _emulate
    m = _emulate.split_get(hi, lo).copy()
    pyrmsprop.sgd_update(hi, np.zeros(x.size, BF16), lr=0.0, param_lo=lo)
    assert same_bits(_emulate.split_get(hi, lo), m)
    # the value the model sees: m rounded to nearest, ties away from zero
    mf = m[np.isfinite(m)].astype(np.float64)
    seen = hi[np.isfinite(m)].astype(np.float64)
    down = m[np.isfinite(m)].view(np.uint32) & 0xFFFF0000
    ulp = (down + 0x10000).view(np.float32).astype(np.float64) - down.view(np.float32).astype(np.float64)
    assert np.all(np.abs(seen - mf) <= np.abs(ulp) / 2)
    assert finite.any()


def test_split_training_equals_float32_training_bit_for_bit():
    """200 Adam steps: bfloat16 params + param_lo (float32 state) against float32
    params, with the same (bfloat16-valued) gradients: the masters agree exactly."""
    rng = np.random.default_rng(3)
    n = 5000
    p32 = rng.standard_normal(n).astype(np.float32)
    m32, v32 = np.zeros(n, np.float32), np.zeros(n, np.float32)
    hi = p32.astype(BF16)
    lo = np.zeros(n, np.uint16)
    from pyrmsprop import _emulate
    # start from the same master: hi:lo holding p32 exactly
    u = p32.view(np.uint32)
    hi.view(np.uint16)[...] = ((u + 0x8000) >> 16).astype(np.uint16)
    lo[...] = ((u - (hi.view(np.uint16).astype(np.uint32) << 16)) & 0xFFFF).astype(np.uint16)
    assert same_bits(_emulate.split_get(hi, lo), p32)
    m16, v16 = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for step in range(1, 201):
        g = (0.1 * rng.standard_normal(n)).astype(BF16)
        pyrmsprop.adam_update(p32, g.astype(np.float32), m32, v32, step=step, lr=1e-3,
                              weight_decay=0.01, decoupled_weight_decay=True)
        pyrmsprop.adam_update(hi, g, m16, v16, step=step, lr=1e-3, weight_decay=0.01,
                              decoupled_weight_decay=True, param_lo=lo)
    assert same_bits(_emulate.split_get(hi, lo), p32)
    assert same_bits(m16, m32) and same_bits(v16, v32)
    assert not same_bits(hi.astype(np.float32), p32)   # the master holds what bf16 cannot


@pytest.mark.parametrize("dt", [BF16, F16], ids=["bfloat16", "float16"])
def test_stochastic_rounding_is_unbiased(dt):
    """x = 1 + ulp/4 between two 16-bit neighbours: about a quarter of the elements
    round up, and the mean is x (4 standard errors)."""
    n = 1 << 20
    ulp = 2.0**-7 if dt == BF16 else 2.0**-10
    param = np.ones(n, dt)
    grad = np.full(n, -1.0, dt)
    pyrmsprop.sgd_update(param, grad, lr=ulp / 4, seed=99, step=1)
    up = param.astype(np.float64) > 1.0
    assert set(np.unique(param.astype(np.float64))) == {1.0, 1.0 + ulp}
    sigma = ulp * np.sqrt(0.25 * 0.75 / n)
    assert abs(param.astype(np.float64).mean() - (1.0 + ulp / 4)) < 4 * sigma
    assert 0.24 < up.mean() < 0.26
    # subnormal float16: 2^-26 is a quarter of the smallest subnormal, 2^-24
    if dt == F16:
        p = np.zeros(n, F16)
        master_free = np.full(n, -(2.0**-14), F16)   # -2^-14 * lr 2^-12 = 2^-26 step
        pyrmsprop.sgd_update(p, master_free, lr=2.0**-12, seed=5, step=1)
        vals = p.astype(np.float64)
        assert set(np.unique(vals)) == {0.0, 2.0**-24}
        assert abs(vals.mean() - 2.0**-26) < 4 * 2.0**-24 * np.sqrt(0.25 * 0.75 / n)


def test_stochastic_bits_depend_on_seed_step_and_position_only(threads):
    n = 100003
    rng = np.random.default_rng(8)
    p0 = rng.standard_normal(n).astype(BF16)
    g = rng.standard_normal(n).astype(BF16)

    def once(seed, step, nthreads=1, target=None):
        if target:
            pyrmsprop.set_simd(target)
        _core.set_num_threads(nthreads)
        _core.set_thread_threshold(0)
        p = p0.copy()
        pyrmsprop.sgd_update(p, g, lr=1e-3, seed=seed, step=step)
        return bits(p).copy()

    a = once(1, 1)
    for target in pyrmsprop.simd_targets():
        assert np.array_equal(once(1, 1, 2, target), a)
    assert not np.array_equal(once(2, 1), a)
    assert not np.array_equal(once(1, 2), a)
    # the list position is part of the key: tensors 0 and 1 of one call differ
    p, q = p0.copy(), p0.copy()
    _core.sgd_update_multi([p, q], [g, g], lr=1e-3, seed=1, step=1)
    assert np.array_equal(bits(p), a) and not np.array_equal(bits(q), a)


def test_kahan_keeps_small_updates_that_plain_bfloat16_loses():
    n = 4096
    p_plain = np.ones(n, BF16)
    p_kahan = np.ones(n, BF16)
    comp = np.zeros(n, BF16)
    g = np.full(n, -1.0, BF16)
    for _ in range(256):      # 256 steps of 2^-10: +0.25 in all, each below half an ulp
        pyrmsprop.sgd_update(p_plain, g, lr=2.0**-10)
        pyrmsprop.sgd_update(p_kahan, g, lr=2.0**-10, compensation=comp)
    assert np.all(p_plain.astype(np.float32) == 1.0)
    total = p_kahan.astype(np.float32) + comp.astype(np.float32)
    assert np.all(total == 1.25)


def _unchanged(arrays, snapshot):
    return all(np.array_equal(bits(arrays[k]), bits(snapshot[k])) for k in arrays)


BAD = [
    # (param dtype, state dtype, extra keywords, error, words the message names)
    (np.float64, BF16, {}, TypeError, ["exp_avg", "float64", "state must be float64"]),
    (np.float64, np.float32, {}, TypeError, ["exp_avg", "state must be float64"]),
    (F16, BF16, {}, TypeError, ["exp_avg", "float16 or float32"]),
    (F32, F16, {}, TypeError, ["exp_avg", "float32 or bfloat16"]),
    (F32, F32, {"master_param": "f32"}, ValueError, ["master_param", "bfloat16 or float16"]),
    (F32, F32, {"seed": 1}, ValueError, ["seed", "bfloat16 or float16"]),
    (F16, F16, {"param_lo": "u16"}, ValueError, ["param_lo", "bfloat16"]),
    (BF16, BF16, {"master_param": "f64"}, TypeError, ["master_param", "float32"]),
    (BF16, BF16, {"param_lo": "f16"}, TypeError, ["param_lo", "uint16"]),
    (BF16, BF16, {"compensation": "f32"}, TypeError, ["compensation", "bfloat16"]),
    (BF16, BF16, {"master_param": "f32", "seed": 3}, ValueError, ["master_param", "seed"]),
    (BF16, BF16, {"seed": -1}, ValueError, ["seed"]),
    (BF16, BF16, {"seed": 1.5}, TypeError, ["seed"]),
]


@pytest.mark.parametrize("pdt,sdt,extra,err,words", BAD)
def test_bad_storage_is_a_clear_error_and_writes_nothing(pdt, sdt, extra, err, words):
    n = 100
    rng = np.random.default_rng(1)
    arrays = {"param": rng.standard_normal(n).astype(pdt),
              "grad": rng.standard_normal(n).astype(pdt),
              "exp_avg": np.zeros(n, sdt), "exp_avg_sq": np.zeros(n, sdt)}
    kw = {}
    for k, v in extra.items():
        kw[k] = {"f32": np.zeros(n, np.float32), "f64": np.zeros(n), "u16": np.zeros(n, np.uint16),
                 "f16": np.zeros(n, F16)}.get(v, v) if isinstance(v, str) else v
    snap = {k: v.copy() for k, v in arrays.items()}
    with pytest.raises(err) as info:
        pyrmsprop.adam_update(arrays["param"], arrays["grad"], arrays["exp_avg"],
                              arrays["exp_avg_sq"], step=1, **kw)
    for w in words:
        assert w in str(info.value)
    assert _unchanged(arrays, snap)


def test_seed_and_step_go_together():
    p, g = np.zeros(4, BF16), np.zeros(4, BF16)
    with pytest.raises(ValueError, match="seed needs step"):
        pyrmsprop.sgd_update(p, g, lr=0.1, seed=1)
    with pytest.raises(ValueError, match="step is used only with seed"):
        pyrmsprop.sgd_update(p, g, lr=0.1, step=1)
    with pytest.raises(TypeError, match="uint16"):
        pyrmsprop.sgd_update(np.zeros(4, np.uint16), np.zeros(4, np.uint16), lr=0.1)


def test_all_finite_on_16_bit_arrays():
    for dt in (BF16, F16):
        a = np.ones(1000, dt)
        assert _core.all_finite([a])
        for bad in (np.inf, -np.inf, np.nan):
            b = a.copy()
            b[777] = bad
            assert not _core.all_finite([a, b])


# ---- the stateful optimizers and pyrmsprop.torch ------------------------------------

OPT_CASES = [("AdamW", {}), ("Adam", {"amsgrad": True}), ("SGD", {"momentum": 0.9}),
             ("RMSprop", {"centered": True})]


@pytest.mark.parametrize("master", MASTERS)
@pytest.mark.parametrize("name,kw", OPT_CASES, ids=[c[0] for c in OPT_CASES])
@pytest.mark.parametrize("state_dtype", [None, "float32"])
def test_numpy_optimizers_with_state_dtype_and_master(name, kw, master, state_dtype, tmp_path):
    """Five steps of the optimizer equal five functional calls with the arrays it
    keeps; its state dict and checkpoint hold them and load back bit for bit."""
    shapes = [(300,), (17, 9)]
    if master == "stochastic":
        return _check_stochastic_optimizer(name, kw, state_dtype, shapes)
    rng = np.random.default_rng(11)
    params = [rng.standard_normal(s).astype(BF16) for s in shapes]
    twin = [p.copy() for p in params]
    opt = getattr(pyrmsprop, name)(params, lr=1e-2, state_dtype=state_dtype, master=master,
                                   seed=5, **kw)
    sdt = BF16 if state_dtype is None else F32
    extra = {"fp32": "master_param", "split": "param_lo", "kahan": "compensation"}.get(master)
    mine = [dict() for _ in shapes]
    for step in range(1, 6):
        grads = [rng.standard_normal(s).astype(BF16) for s in shapes]
        opt.step(grads)
        for i, (p, g) in enumerate(zip(twin, grads)):
            st = mine[i]
            if extra and extra not in st:
                st[extra] = (p.astype(np.float32) if extra == "master_param" else
                             np.zeros(p.shape, np.uint16) if extra == "param_lo" else
                             np.zeros(p.shape, BF16))
            mkw = {extra: st[extra]} if extra else {}
            _functional_step(name, kw, p, g, st, sdt, step, mkw)
    for p, q in zip(params, twin):
        assert np.array_equal(bits(p), bits(q))
    for i in range(len(shapes)):
        for k, v in mine[i].items():
            assert np.array_equal(bits(opt.state[i][k]), bits(v)), (i, k)
            assert opt.state[i][k].dtype == v.dtype
    sd = opt.state_dict()
    other = getattr(pyrmsprop, name)([p.copy() for p in params], lr=1e-2,
                                     state_dtype=state_dtype, master=master, seed=5, **kw)
    other.load_state_dict(sd)
    path = tmp_path / "opt.npz"
    opt.save(path)
    third = getattr(pyrmsprop, name)([p.copy() for p in params], lr=1e-2,
                                     state_dtype=state_dtype, master=master, seed=5, **kw)
    third.load(path)
    for o in (other, third):
        for i in range(len(shapes)):
            for k, v in opt.state[i].items():
                if isinstance(v, np.ndarray):
                    assert np.array_equal(bits(o.state[i][k]), bits(v)) and o.state[i][k].dtype == v.dtype


def _functional_step(name, kw, p, g, st, sdt, step, mkw):
    z = lambda: np.zeros(p.shape, sdt)  # noqa: E731
    if name.startswith("Adam"):
        for k in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if kw.get("amsgrad") else ()):
            st.setdefault(k, z())
        pyrmsprop.adam_update(p, g, st["exp_avg"], st["exp_avg_sq"], step=step, lr=1e-2,
                              weight_decay=0.01 if name == "AdamW" else 0.0,
                              decoupled_weight_decay=name == "AdamW",
                              max_exp_avg_sq=st.get("max_exp_avg_sq"), **kw, **mkw)
    elif name == "SGD":
        first = "momentum_buffer" not in st
        st.setdefault("momentum_buffer", z())
        _core.sgd_update_multi([p], [g], lr=1e-2, momentum_buffers=[st["momentum_buffer"]],
                               first_step=first, **kw,
                               **{k + "s": [v] for k, v in mkw.items()})
    else:
        st.setdefault("square_avg", z())
        st.setdefault("grad_avg", z())
        pyrmsprop.rmsprop_update(p, g, st["square_avg"], lr=1e-2, grad_avg=st["grad_avg"],
                                 **kw, **mkw)


def _check_stochastic_optimizer(name, kw, state_dtype, shapes):
    """Stochastic rounding (keyed per compiled call by the seed and the call's first
    parameter number): the same steps give the same bits with one thread and with
    two (every chunk a split, threshold 0), another seed different ones."""
    def run(seed, nthreads):
        _core.set_num_threads(nthreads)
        _core.set_thread_threshold(0)
        rng = np.random.default_rng(11)
        params = [rng.standard_normal(s).astype(BF16) for s in shapes]
        opt = getattr(pyrmsprop, name)(params, lr=1e-2, state_dtype=state_dtype,
                                       master="stochastic", seed=seed, **kw)
        for _ in range(5):
            opt.step([rng.standard_normal(s).astype(BF16) for s in shapes])
        return [bits(p).copy() for p in params]
    old, old_t = _core.get_num_threads(), _core.get_thread_threshold()
    try:
        a, b, c = run(5, 1), run(5, 2), run(6, 1)
    finally:
        _core.set_num_threads(old)
        _core.set_thread_threshold(old_t)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_optimizer_storage_options_are_checked_up_front():
    p32 = [np.zeros(4, np.float32)]
    with pytest.raises(ValueError, match=r"master='fp32' needs bfloat16 or float16 params; "
                                         r"params\[0\]"):
        pyrmsprop.Adam(p32, master="fp32")
    with pytest.raises(TypeError, match=r"state_dtype='float16' does not suit params\[0\]"):
        pyrmsprop.Adam([np.zeros(4, BF16)], state_dtype="float16")
    with pytest.raises(ValueError, match="master must be one of"):
        pyrmsprop.SGD([np.zeros(4, BF16)], lr=0.1, master="double")
    with pytest.raises(TypeError, match="state_dtype must be None or one of"):
        pyrmsprop.SGD([np.zeros(4, BF16)], lr=0.1, state_dtype="int8")
    with pytest.raises(ValueError, match="master='split' needs bfloat16"):
        pyrmsprop.RMSprop([np.zeros(4, F16)], master="split")
    opt = pyrmsprop.Adam([np.zeros(4, BF16)])
    with pytest.raises(ValueError, match=r"params\[0\]"):
        opt.add_param_group({"params": [np.zeros(3, np.float64)], "master": "kahan"})
    assert len(opt.param_groups) == 1


def test_ema_of_bfloat16_weights_in_float32():
    rng = np.random.default_rng(2)
    w = [rng.standard_normal(100).astype(BF16)]
    ema = pyrmsprop.EMA(w, beta=0.9, state_dtype="float32")
    want = np.zeros(100, np.float32)
    for _ in range(4):
        w[0][...] = rng.standard_normal(100).astype(BF16)
        ema.update(w)
        reference.ema_update(want, w[0], beta=0.9)
    assert ema.averages[0].dtype == F32 and np.array_equal(bits(ema.averages[0]), bits(want))
    with pytest.raises(TypeError, match="state_dtype='float16' does not suit"):
        pyrmsprop.EMA(w, state_dtype="float16")


def test_torch_split_master_trains_like_float32(torch):
    """pyrmsprop.torch.AdamW on a bfloat16 model with master='split' and float32
    state: its master equals float32 training with the same (bfloat16-valued)
    gradients, bit for bit; its state dict loads into torch.optim.AdamW."""
    import pyrmsprop.torch as pt
    torch.manual_seed(0)
    w16 = torch.randn(257, 33).to(torch.bfloat16).requires_grad_()
    w32 = w16.detach().float().clone().requires_grad_()
    o16 = pt.AdamW([w16], lr=1e-2, state_dtype="float32", master="split")
    o32 = pt.AdamW([w32], lr=1e-2)
    for _ in range(50):
        g = torch.randn(257, 33).to(torch.bfloat16)
        w16.grad, w32.grad = g.clone(), g.float()
        o16.step()
        o32.step()
    from pyrmsprop import _emulate
    lo = o16.state[w16]["param_lo"].numpy().view(np.uint16)
    master = _emulate.split_get(w16.detach().view(torch.int16).numpy().view(np.uint16), lo)
    assert np.array_equal(master.view(np.uint32), w32.detach().numpy().view(np.uint32))
    ref = torch.optim.AdamW([w16.detach().clone().requires_grad_()], lr=1e-2)
    ref.load_state_dict(o16.state_dict())
    assert set(ref.state_dict()["state"][0]) >= {"step", "exp_avg", "exp_avg_sq"}
