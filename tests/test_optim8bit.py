"""state_dtype='8bit' in the numpy optimizers and in pyrmsprop.torch: which params
get 8-bit state, every step against the functional API on QuantizedStates (itself
checked against the numpy emulation in test_quantized.py) and Adam against that
emulation directly, state dicts and checkpoints (exact 8-bit round trips, float state
quantized on load, 8-bit state dequantized on load), bad input, NaN gradients."""

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import QuantizedState, _core, reference
from pyrmsprop.optim import Q8_MIN_SIZE

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)

# 64x100 and 4096 elements: 8-bit state; 4095 and 300: float32 (below Q8_MIN_SIZE)
SHAPES = [(64, 100), (300,), (4096,), (4095,)]
SIGNED = {"exp_avg": True, "exp_avg_sq": False, "max_exp_avg_sq": False,
          "square_avg": False, "grad_avg": True, "momentum_buffer": True}
CASES = [("Adam", {}), ("AdamW", {"amsgrad": True}), ("SGD", {"momentum": 0.9}),
         ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
         ("RMSprop", {}), ("RMSprop", {"momentum": 0.5, "centered": True})]
IDS = ["Adam", "AdamW-amsgrad", "SGD-momentum", "SGD-nesterov", "RMSprop",
       "RMSprop-centered-momentum"]


def bits(a):
    if isinstance(a, QuantizedState):
        return np.concatenate([a.codes.reshape(-1).view(np.uint8),
                               a.absmax.view(np.uint8)])
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def names(name, kw):
    if name.startswith("Adam"):
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if kw.get("amsgrad") else [])
    if name == "SGD":
        return ["momentum_buffer"]
    return (["square_avg"] + (["momentum_buffer"] if kw.get("momentum") else [])
            + (["grad_avg"] if kw.get("centered") else []))


def zero_state(name, p):
    if p.size >= Q8_MIN_SIZE:
        return QuantizedState.zeros(p.shape, signed=SIGNED[name])
    return np.zeros(p.shape, np.float32)


def functional_step(name, kw, p, g, st, step, first, mkw):
    """One step of optimizer ``name`` on one param through the functional API."""
    if name.startswith("Adam"):
        pyrmsprop.adam_update(p, g, st["exp_avg"], st["exp_avg_sq"], step=step, lr=1e-2,
                              weight_decay=0.01 if name == "AdamW" else 0.0,
                              decoupled_weight_decay=name == "AdamW",
                              max_exp_avg_sq=st.get("max_exp_avg_sq"), **kw, **mkw)
    elif name == "SGD":
        _core.sgd_update_multi([p], [g], lr=1e-2, momentum_buffers=[st["momentum_buffer"]],
                               first_step=first, **kw, **{k + "s": [v] for k, v in mkw.items()})
    else:
        pyrmsprop.rmsprop_update(p, g, st["square_avg"], lr=1e-2,
                                 momentum_buffer=st.get("momentum_buffer"),
                                 grad_avg=st.get("grad_avg"), **kw, **mkw)


@pytest.mark.parametrize("pdt,master", [(F32, None), (BF16, None), (BF16, "fp32"),
                                        (BF16, "split"), (F16, "kahan")],
                         ids=["float32", "bfloat16", "bfloat16-fp32", "bfloat16-split",
                              "float16-kahan"])
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_optimizer_steps_equal_functional_calls(name, kw, pdt, master):
    """Four steps: params of Q8_MIN_SIZE elements or more keep QuantizedStates (signed
    for first moments and momentum), smaller ones float32 arrays, and every param and
    state equals, bit for bit, the functional calls on states made by hand."""
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s).astype(pdt) for s in SHAPES]
    twin = [p.copy() for p in params]
    opt = getattr(pyrmsprop, name)(params, lr=1e-2, state_dtype="8bit", master=master, **kw)
    extra = {"fp32": "master_param", "split": "param_lo", "kahan": "compensation"}.get(master)
    mine = [{n: zero_state(n, p) for n in names(name, kw)} for p in params]
    for i, p in enumerate(twin):
        if extra:
            mine[i][extra] = (p.astype(np.float32) if extra == "master_param" else
                              np.zeros(p.shape, np.uint16) if extra == "param_lo" else
                              np.zeros(p.shape, pdt))
    for step in range(1, 5):
        grads = [(0.1 * rng.standard_normal(s)).astype(pdt) for s in SHAPES]
        assert opt.step(grads)
        for p, g, st in zip(twin, grads, mine):
            functional_step(name, kw, p, g, st, step, step == 1,
                            {extra: st[extra]} if extra else {})
    for i, (p, q) in enumerate(zip(params, twin)):
        assert np.array_equal(bits(p), bits(q)), i
        for k, v in mine[i].items():
            got = opt.state[i][k]
            assert type(got) is type(v), (i, k)
            if isinstance(v, QuantizedState):
                assert got.signed == SIGNED[k] and got.codes.shape == p.shape
            else:
                assert got.dtype == v.dtype
            assert np.array_equal(bits(got), bits(v)), (i, k)


def test_adam_8bit_equals_the_emulation_on_every_target_and_thread_count():
    """AdamW with 8-bit state, three steps over four params, against
    pyrmsprop.reference on QuantizedStates (the numpy emulation: dequantize, float32
    arithmetic, nearest code), on every SIMD target, with one and two threads.  (The
    params below Q8_MIN_SIZE keep float32 state, which the reference computes in
    float64: they are the first test's.)"""
    rng = np.random.default_rng(8)
    start = [rng.standard_normal(s).astype(F32) for s in SHAPES]
    grads = [[(0.1 * rng.standard_normal(s)).astype(F32) for s in SHAPES] for _ in range(3)]
    want = [p.copy() for p in start]
    st = [{n: zero_state(n, p) for n in ("exp_avg", "exp_avg_sq")} for p in want]
    for t, gs in enumerate(grads, 1):
        for p, g, s in zip(want, gs, st):
            reference.adam_update(p, g, s["exp_avg"], s["exp_avg_sq"], step=t, lr=1e-2,
                                  weight_decay=0.01, decoupled_weight_decay=True)
    for target in pyrmsprop.simd_targets():
        pyrmsprop.set_simd(target)
        for nthreads in (1, 2):
            _core.set_num_threads(nthreads)
            _core.set_thread_threshold(0)
            params = [p.copy() for p in start]
            opt = pyrmsprop.AdamW(params, lr=1e-2, state_dtype="8bit")
            for gs in grads:
                opt.step(gs)
            for i, p in enumerate(params):
                if p.size < Q8_MIN_SIZE:
                    continue
                assert np.array_equal(bits(p), bits(want[i])), (target, nthreads, i)
                for k in ("exp_avg", "exp_avg_sq"):
                    assert np.array_equal(bits(opt.state[i][k]), bits(st[i][k])), (target, k)


def trained(opt_cls=pyrmsprop.AdamW, steps=3, seed=5, **kw):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(F32) for s in SHAPES]
    opt = opt_cls(params, lr=1e-2, **kw)
    for _ in range(steps):
        opt.step([rng.standard_normal(s).astype(F32) for s in SHAPES])
    return params, opt


def test_state_dict_names_and_exact_round_trips(tmp_path):
    """An 8-bit state dict holds '<name>_codes' (uint8) and '<name>_absmax' (float32);
    it and the .npz checkpoint load back bit for bit, and training on from either
    equals training on without the interruption."""
    params, opt = trained(state_dtype="8bit")
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg_codes", "exp_avg_absmax",
                                   "exp_avg_sq_codes", "exp_avg_sq_absmax"}
    assert sd["state"][0]["exp_avg_codes"].dtype == np.uint8
    assert sd["state"][0]["exp_avg_absmax"].shape == (25,)
    assert set(sd["state"][1]) == {"step", "exp_avg", "exp_avg_sq"}    # 300 elements
    assert sd["state"][0]["exp_avg_codes"] is not opt.state[0]["exp_avg"].codes
    opt.save(tmp_path / "o.npz")
    a = pyrmsprop.AdamW([p.copy() for p in params], lr=1e-2, state_dtype="8bit")
    a.load_state_dict(sd)
    b = pyrmsprop.AdamW([p.copy() for p in params], lr=1e-2, state_dtype="8bit")
    b.load(tmp_path / "o.npz")
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s).astype(F32) for s in SHAPES]
    for o in (opt, a, b):
        o.step(grads)
    for o in (a, b):
        for i in range(len(SHAPES)):
            assert np.array_equal(bits(o.param_groups[0]["params"][i]), bits(params[i]))
            for k in ("exp_avg", "exp_avg_sq"):
                assert np.array_equal(bits(o.state[i][k]), bits(opt.state[i][k])), (i, k)


def test_float_state_dicts_quantize_on_load_and_back():
    """A float32 optimizer's state dict loaded into an 8-bit one: its large params'
    state is QuantizedState.from_float of the saved arrays, the small ones' copied; an
    8-bit one loaded into a float32 optimizer: the dequantized values; each keeps its
    own state_dtype; float state of another dtype stays an error (a bfloat16-state
    optimizer refuses the small params' float32 state)."""
    params, f32 = trained()
    q = pyrmsprop.AdamW([p.copy() for p in params], lr=1e-2, state_dtype="8bit")
    q.load_state_dict(f32.state_dict())
    assert q.param_groups[0]["state_dtype"] == "8bit"
    for i, p in enumerate(params):
        for k in ("exp_avg", "exp_avg_sq"):
            saved = f32.state[i][k]
            if p.size >= Q8_MIN_SIZE:
                assert q.state[i][k] == QuantizedState.from_float(saved, signed=SIGNED[k])
            else:
                assert np.array_equal(bits(q.state[i][k]), bits(saved))
    back = pyrmsprop.AdamW([p.copy() for p in params], lr=1e-2)
    back.load_state_dict(q.state_dict())
    assert back.param_groups[0]["state_dtype"] is None
    bf = pyrmsprop.AdamW([p.copy() for p in params], lr=1e-2, state_dtype="bfloat16")
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(300,\) and dtype float32"):
        bf.load_state_dict(q.state_dict())
    for i in range(len(params)):
        for k in ("exp_avg", "exp_avg_sq"):
            v = q.state[i][k]
            values = v.dequantize() if isinstance(v, QuantizedState) else v
            assert back.state[i][k].dtype == F32
            assert np.array_equal(bits(back.state[i][k]), bits(values))


def _unchanged(opt, before):
    after = opt.state_dict()
    for i, st in before["state"].items():
        assert set(after["state"][i]) == set(st)
        for k, v in st.items():
            assert np.array_equal(np.asarray(after["state"][i][k]), np.asarray(v)), (i, k)


BAD_LOADS = [
    ("codes shape", lambda st: st.update(exp_avg_codes=st["exp_avg_codes"][:10]),
     "exp_avg_codes has shape"),
    ("codes dtype", lambda st: st.update(exp_avg_codes=st["exp_avg_codes"].astype(np.int16)),
     "must be uint8"),
    ("absmax shape", lambda st: st.update(exp_avg_absmax=st["exp_avg_absmax"][:3]),
     "exp_avg_absmax has shape"),
    ("absmax dtype", lambda st: st.update(exp_avg_absmax=st["exp_avg_absmax"].astype(np.float64)),
     "exp_avg_absmax must be"),
    ("lone half", lambda st: st.pop("exp_avg_absmax"), "needs both"),
    ("both forms", lambda st: st.update(exp_avg=np.zeros((64, 100), F32)), "both"),
    ("float shape", lambda st: st.update(exp_avg_sq=np.zeros(5, F32)) or
     [st.pop(k) for k in ("exp_avg_sq_codes", "exp_avg_sq_absmax")], "has shape"),
    ("negative second moment", lambda st: st.update(exp_avg_sq=-np.ones((64, 100), F32)) or
     [st.pop(k) for k in ("exp_avg_sq_codes", "exp_avg_sq_absmax")], "non-negative"),
    ("integer state", lambda st: st.update(exp_avg_sq=np.ones((64, 100), np.int32)) or
     [st.pop(k) for k in ("exp_avg_sq_codes", "exp_avg_sq_absmax")], "dtype int32"),
]


@pytest.mark.parametrize("what,edit,words", BAD_LOADS, ids=[b[0] for b in BAD_LOADS])
def test_bad_state_dicts_are_clear_errors_and_change_nothing(what, edit, words):
    _, opt = trained(state_dtype="8bit")
    before = opt.state_dict()
    sd = opt.state_dict()
    edit(sd["state"][0])
    with pytest.raises(ValueError) as e:
        opt.load_state_dict(sd)
    assert words in str(e.value) and "parameter 0" in str(e.value), str(e.value)
    _unchanged(opt, before)


def test_8bit_needs_a_float32_or_16_bit_param_and_not_ema():
    with pytest.raises(TypeError, match=r"params\[0\] of dtype float64"):
        pyrmsprop.Adam([np.zeros(5000)], state_dtype="8bit")
    with pytest.raises(TypeError, match="state_dtype must be"):
        pyrmsprop.EMA([np.zeros(5000, F32)], state_dtype="8bit")
    with pytest.raises(TypeError, match="state_dtype must be"):
        pyrmsprop.Adam([np.zeros(5000, F32)], state_dtype="int8")


def test_quantized_state_for_the_wrong_slot_changes_nothing():
    """A signed QuantizedState as exp_avg_sq (whose map is the unsigned one), in the
    functional API: a clear error naming it, nothing written."""
    p = np.ones(5000, F32)
    g = np.ones(5000, F32)
    m = QuantizedState.zeros(5000, signed=True)
    v = QuantizedState.zeros(5000, signed=True)
    with pytest.raises(ValueError, match="exp_avg_sq"):
        pyrmsprop.adam_update(p, g, m, v, step=1)
    assert np.all(p == 1) and m == QuantizedState.zeros(5000, signed=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradients(bad):
    """skip_nonfinite: the step is refused and nothing changes.  Without it (as torch):
    the element's param goes non-finite at once and its block's state reads back NaN
    (absmax NaN), so the next step spreads NaN over that block of 256 and no further."""
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(8192).astype(F32)
    g = (0.1 * rng.standard_normal(8192)).astype(F32)
    gbad = g.copy()
    gbad[300] = bad
    p = p0.copy()
    opt = pyrmsprop.Adam([p], lr=1e-2, state_dtype="8bit", skip_nonfinite=True)
    assert not opt.step([gbad])
    assert np.array_equal(p, p0) and opt.state[0] == {} and opt.skipped_steps == 1
    assert opt.step([g])
    p = p0.copy()
    opt = pyrmsprop.Adam([p], lr=1e-2, state_dtype="8bit")
    opt.step([gbad])
    assert not np.isfinite(p[300]) and np.isfinite(np.delete(p, 300)).all()
    m = opt.state[0]["exp_avg"].dequantize()
    assert np.isnan(m[256:512]).all() and np.isfinite(np.delete(m, np.s_[256:512])).all()
    opt.step([g])
    assert np.isnan(p[256:512]).all() and np.isfinite(np.delete(p, np.s_[256:512])).all()


# ---- pyrmsprop.torch -------------------------------------------------------------------

def _torch_params(torch, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).to(dtype).requires_grad_() for s in SHAPES]


def _torch_grads(torch, params, gen):
    for p in params:
        p.grad = (0.1 * torch.randn(p.shape, generator=gen)).to(p.dtype)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
@pytest.mark.parametrize("dtype,master", [("float32", None), ("bfloat16", "fp32")],
                         ids=["float32", "bfloat16-fp32"])
def test_torch_drop_ins_equal_the_numpy_optimizers(name, kw, dtype, master, torch):
    """pyrmsprop.torch with state_dtype='8bit' keeps '<name>_codes' (uint8, the
    param's shape) and '<name>_absmax' (float32) for params of 4096 elements or more,
    float32 tensors otherwise, and its params and states equal the numpy optimizer's
    bit for bit."""
    import pyrmsprop.torch as pt
    tdt = getattr(torch, dtype)
    params = _torch_params(torch, tdt)
    npdt = BF16 if dtype == "bfloat16" else F32
    arrays = [p.detach().float().numpy().astype(npdt) for p in params]
    topt = getattr(pt, name)(params, lr=1e-2, state_dtype="8bit", master=master, **kw)
    nopt = getattr(pyrmsprop, name)(arrays, lr=1e-2, state_dtype="8bit", master=master,
                                    **kw)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        _torch_grads(torch, params, gen)
        topt.step()
        nopt.step([p.grad.float().numpy().astype(npdt) for p in params])
    for i, p in enumerate(params):
        assert np.array_equal(p.detach().float().numpy(), arrays[i].astype(F32)), i
        st = topt.state[p]
        for k in names(name, kw):
            ref = nopt.state[i][k]
            if isinstance(ref, QuantizedState):
                assert k not in st and st[k + "_codes"].dtype == torch.uint8
                assert st[k + "_absmax"].dtype == torch.float32
                assert np.array_equal(st[k + "_codes"].numpy(), ref.codes)
                assert np.array_equal(st[k + "_absmax"].numpy().view(np.uint32),
                                      ref.absmax.view(np.uint32))
            else:
                assert st[k].dtype == torch.float32
                assert np.array_equal(st[k].numpy().view(np.uint32), ref.view(np.uint32))


def test_torch_state_dicts_round_trip_and_convert(torch, tmp_path):
    """torch.save/torch.load of an 8-bit state dict loads back bit for bit (bfloat16
    params: codes, absmax and the float32 master keep their dtypes, which torch.optim
    would cast to bfloat16); torch.optim.AdamW's state dict is quantized on load into
    an 8-bit AdamW, and the 8-bit one dequantized into a float32-state AdamW."""
    import pyrmsprop.torch as pt
    gen = torch.Generator().manual_seed(3)
    params = _torch_params(torch, torch.bfloat16)
    opt = pt.AdamW(params, lr=1e-2, state_dtype="8bit", master="fp32")
    for _ in range(2):
        _torch_grads(torch, params, gen)
        opt.step()
    torch.save(opt.state_dict(), tmp_path / "o.pt")
    twin = [p.detach().clone().requires_grad_() for p in params]
    other = pt.AdamW(twin, lr=1e-2, state_dtype="8bit", master="fp32")
    other.load_state_dict(torch.load(tmp_path / "o.pt"))
    for p, q in zip(params, twin):
        a, b = opt.state[p], other.state[q]
        assert set(a) == set(b)
        for k in a:
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert other.state[twin[0]]["master_param"].dtype == torch.float32
    assert other.state[twin[0]]["exp_avg_absmax"].dtype == torch.float32
    for ps in (params, twin):
        g2 = torch.Generator().manual_seed(9)
        _torch_grads(torch, ps, g2)
    opt.step()
    other.step()
    assert all(torch.equal(p, q) for p, q in zip(params, twin))

    w = [p.detach().float().clone().requires_grad_() for p in params]
    ref = torch.optim.AdamW(w, lr=1e-2)
    _torch_grads(torch, w, gen)
    ref.step()
    q8 = pt.AdamW([x.detach().clone().requires_grad_() for x in w], lr=1e-2,
                  state_dtype="8bit")
    q8.load_state_dict(ref.state_dict())
    assert q8.param_groups[0]["state_dtype"] == "8bit"
    big = q8.param_groups[0]["params"][0]
    for k in ("exp_avg", "exp_avg_sq"):
        want = QuantizedState.from_float(ref.state[w[0]][k].numpy(), signed=SIGNED[k])
        assert np.array_equal(q8.state[big][k + "_codes"].numpy(), want.codes)
        assert np.array_equal(q8.state[big][k + "_absmax"].numpy(), want.absmax)
    back = pt.AdamW([x.detach().clone().requires_grad_() for x in w], lr=1e-2)
    back.load_state_dict(q8.state_dict())
    p0 = back.param_groups[0]["params"][0]
    for k in ("exp_avg", "exp_avg_sq"):
        codes = q8.state[big][k + "_codes"].numpy()
        absmax = q8.state[big][k + "_absmax"].numpy()
        want = QuantizedState(codes, absmax, signed=SIGNED[k]).dequantize()
        assert np.array_equal(back.state[p0][k].numpy().view(np.uint32), want.view(np.uint32))


def test_torch_bad_8bit_state_is_named_and_changes_nothing(torch):
    """A loaded 8-bit state whose absmax does not fit its codes: the next step names the
    state and the param, and writes nothing; a negative second moment refuses to load."""
    import pyrmsprop.torch as pt
    params = _torch_params(torch, torch.float32)
    opt = pt.Adam(params, lr=1e-2, state_dtype="8bit")
    gen = torch.Generator().manual_seed(4)
    _torch_grads(torch, params, gen)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["exp_avg_absmax"] = sd["state"][0]["exp_avg_absmax"][:2].clone()
    opt.load_state_dict(sd)
    before = [p.detach().clone() for p in params]
    codes = [opt.state[p]["exp_avg_sq_codes"].clone() for p in params[:1]]
    with pytest.raises(ValueError, match=r"state\['exp_avg'\] of param_groups\[0\]\['params'\]\[0\]"):
        opt.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert torch.equal(opt.state[params[0]]["exp_avg_sq_codes"], codes[0])
    sd = opt.state_dict()
    del sd["state"][0]["exp_avg_sq_codes"], sd["state"][0]["exp_avg_sq_absmax"]
    sd["state"][0]["exp_avg_sq"] = -torch.ones(64, 100)
    kept = {k: v.clone() for k, v in opt.state[params[0]].items()}
    with pytest.raises(ValueError, match="non-negative"):
        opt.load_state_dict(sd)
    assert all(torch.equal(opt.state[params[0]][k], v) for k, v in kept.items())


@pytest.mark.parametrize("state_dtype,master", [("float32", "split"), ("float32", "fp32"),
                                                (None, "kahan")])
def test_torch_load_keeps_master_arrays_in_their_dtypes(torch, state_dtype, master):
    """bfloat16 params: torch.optim's load_state_dict casts every state tensor to
    bfloat16 (int16 low halves, float32 masters and state too); pyrmsprop.torch's keeps
    each in its own dtype, so training on from a loaded state equals training on."""
    import pyrmsprop.torch as pt
    gen = torch.Generator().manual_seed(6)
    params = _torch_params(torch, torch.bfloat16)
    opt = pt.AdamW(params, lr=1e-2, state_dtype=state_dtype, master=master)
    _torch_grads(torch, params, gen)
    opt.step()
    twin = [p.detach().clone().requires_grad_() for p in params]
    other = pt.AdamW(twin, lr=1e-2, state_dtype=state_dtype, master=master)
    other.load_state_dict(opt.state_dict())
    for p, q in zip(params, twin):
        assert {k: v.dtype for k, v in opt.state[p].items()} == \
            {k: v.dtype for k, v in other.state[q].items()}
        q.grad = p.grad.clone()
    opt.step()
    other.step()
    assert all(torch.equal(p, q) for p, q in zip(params, twin))
