"""The stateful optimizers and EMA (pyrmsprop.optim) on a real network: an MLP
trained on scikit-learn's digits (1797 8x8 images, shipped inside the package).

Parity with torch.optim: the numpy MLP computes each step's gradients once, and
the SAME arrays go to pyrmsprop's optimizer and to torch.optim (foreach=False)
holding the same initial weights, so every difference is the optimizers' own
rounding.  After every step each parameter (and state array) must be within a few
ULPs of the largest magnitude that array has held; `pytest -s` prints the worst
figures per optimizer.  Then: LR schedules, state_dict and .npz checkpoints
(bit-exact resume, atomic writes, mismatches rejected with nothing changed),
skip_nonfinite, bad inputs, and EMA against a float64 reference.
"""

import functools
import itertools
import os

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import schedules

STEPS = 120          # > 4 epochs of 28 mini-batches of 64
BATCH = 64
# Bound on |ours - torch| / ulp(peak), every step, for parameters and state arrays.
# torch fuses `add_(x, alpha=a)` into an FMA and we round twice (-ffp-contract=off,
# for bit-identical SIMD targets), so a step may differ by half an ULP; those
# differences random-walk along the trajectory (worst measured: 10.5 ULPs, SGD with
# dampening on the 10-element output bias, whose updates are as large as its values).
MAX_ULPS = 16
RESULTS = []


# --------------------------------------------------------------------------- the network


@functools.cache
def digits(dtype):
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    return (X / 16.0).astype(dtype), np.eye(10, dtype=dtype)[y]


@functools.cache
def _epoch_order(epoch, n):
    return np.random.default_rng(epoch).permutation(n)


def batch(k, dtype):
    """Mini-batch k (0-based), reshuffled every epoch."""
    X, Y = digits(dtype)
    per_epoch = len(X) // BATCH
    idx = _epoch_order(k // per_epoch, len(X))[(k % per_epoch) * BATCH:][:BATCH]
    return X[idx], Y[idx]


def init_params(dtype, seed=0, hidden=32):
    """[W1, W2, b1, b2, s]: weights first, then biases and a 0-d logit scale
    (so that two param groups split them)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((64, hidden)) / 8).astype(dtype),
            (rng.standard_normal((hidden, 10)) / np.sqrt(hidden)).astype(dtype),
            (rng.standard_normal(hidden) * 0.1).astype(dtype),
            np.zeros(10, dtype), np.array(1.0, dtype)]


def loss_and_grads(params, X, Y):
    """Mean softmax cross-entropy of s * (tanh(X W1 + b1) W2 + b2), and its gradients."""
    W1, W2, b1, b2, s = params
    h = np.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    logits = s * z
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    prob = e / e.sum(axis=1, keepdims=True)
    loss = -np.mean(np.sum(Y * (logits - np.log(e.sum(axis=1, keepdims=True))), axis=1))
    dlogits = (prob - Y) / X.dtype.type(len(X))
    dz = s * dlogits
    da = (dz @ W2.T) * (1 - h * h)
    grads = [X.T @ da, h.T @ dz, da.sum(axis=0), dz.sum(axis=0),
             np.array(np.sum(dlogits * z), X.dtype)]
    return float(loss), grads


def full_loss(params):
    X, Y = digits(params[0].dtype.type)
    return loss_and_grads(params, X, Y)[0]


def train(opt, params, steps, start=0):
    for k in range(start, start + steps):
        _, grads = loss_and_grads(params, *batch(k, params[0].dtype.type))
        opt.step(grads)


def test_gradients_match_finite_differences():
    params = init_params(np.float64, seed=3)
    X, Y = batch(0, np.float64)
    _, grads = loss_and_grads(params, X, Y)
    rng = np.random.default_rng(0)
    for p, g in zip(params, grads):
        assert g.shape == p.shape and g.dtype == p.dtype
        for pos in rng.integers(0, p.size, 5):
            old = p.flat[pos]
            p.flat[pos] = old + 1e-6
            up = loss_and_grads(params, X, Y)[0]
            p.flat[pos] = old - 1e-6
            down = loss_and_grads(params, X, Y)[0]
            p.flat[pos] = old
            assert abs((up - down) / 2e-6 - g.flat[pos]) < 1e-7


# --------------------------------------------------------------------------- parity with torch

LR = {"SGD": 0.1, "RMSprop": 1e-3, "Adam": 3e-3, "AdamW": 3e-3}
CASES = (
    [("SGD", {"momentum": m, "dampening": d, "nesterov": n, "weight_decay": wd, "maximize": mx})
     for (m, d, n), wd, mx in itertools.product(
         [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.1, False), (0.9, 0.0, True)],
         (0.0, 1e-3), (False, True))]
    + [("RMSprop", {"momentum": m, "centered": c, "weight_decay": wd, "maximize": mx})
       for m, c, wd, mx in itertools.product((0.0, 0.9), (False, True), (0.0, 1e-3),
                                             (False, True))]
    + [("Adam", {"amsgrad": a, "weight_decay": wd, "maximize": mx})
       for a, wd, mx in itertools.product((False, True), (0.0, 1e-2), (False, True))]
    + [("AdamW", {"amsgrad": a, "maximize": mx, **wd})
       for a, wd, mx in itertools.product((False, True), ({}, {"weight_decay": 0.0},
                                                          {"weight_decay": 0.1}),
                                          (False, True))]
)


def _case_id(name, opts):
    short = {"weight_decay": "wd", "momentum": "mom", "dampening": "damp"}
    flags = [k if v is True else f"{short.get(k, k)}{v}" for k, v in opts.items() if v]
    wd = [] if name != "AdamW" or "weight_decay" in opts else ["wd_default"]
    return "-".join([name] + flags + wd + [f"{ngroups(opts)}groups"])


def ngroups(opts):
    """Two param groups for every option set with maximize, one without."""
    return 2 if opts["maximize"] else 1


def groups_of(params, lr, count, **extra):
    """One group of everything, or weights / (biases, scale) with half the lr and,
    when given, no weight decay for the second group."""
    if count == 1:
        return [{"params": params, **extra}]
    second = {"lr": lr / 2}
    if "weight_decay" in extra:
        second["weight_decay"] = 0.0
    return [{"params": params[:2], **extra}, {"params": params[2:], **second}]


class Worst:
    """Largest |ours - torch| / ulp(peak) seen per array, peak = largest magnitude
    the array has held (on either side) up to that step."""

    def __init__(self):
        self.peak, self.params, self.state = {}, 0.0, 0.0

    def add(self, key, ours, theirs, is_param):
        if ours.size == 0:
            return
        peak = max(self.peak.get(key, 0.0), float(np.abs(ours).max()),
                   float(np.abs(theirs).max()))
        self.peak[key] = peak
        diff = float(np.abs(ours.astype(np.float64) - theirs).max())
        ulps = diff / float(np.spacing(ours.dtype.type(peak))) if diff else 0.0
        if is_param:
            self.params = max(self.params, ulps)
        else:
            self.state = max(self.state, ulps)


def compare(worst, opt, params, topt, tparams):
    for i, (p, tp) in enumerate(zip(params, tparams)):
        worst.add(("p", i), p, tp.detach().numpy(), True)
        for key, a in opt.state[i].items():
            if isinstance(a, np.ndarray):
                worst.add((key, i), a, topt.state[tp][key].numpy(), False)


@pytest.fixture(scope="module", autouse=True)
def parity_summary():
    yield
    if RESULTS:
        print("\nworst difference from torch.optim (same gradients), in ULPs of the peak "
              f"magnitude each array held, over {STEPS} steps:")
        print(f"  {'optimizer':9} {'dtype':8} {'cases':>5} {'params':>7} {'state':>7}")
        for key in sorted({r[:2] for r in RESULTS}):
            rows = [r for r in RESULTS if r[:2] == key]
            print(f"  {key[0]:9} {key[1]:8} {len(rows):5d} {max(r[2] for r in rows):7.2f} "
                  f"{max(r[3] for r in rows):7.2f}")


def torch_twin(torch, name, params, groups):
    tparams = [torch.nn.Parameter(torch.tensor(p)) for p in params]
    where = {id(p): t for p, t in zip(params, tparams)}
    tgroups = [{**g, "params": [where[id(p)] for p in g["params"]]} for g in groups]
    return tparams, tgroups


@pytest.mark.parametrize("name,opts", CASES, ids=[_case_id(*c) for c in CASES])
def test_training_matches_torch_optim(name, opts, dtype, torch):
    params = init_params(dtype)
    groups = groups_of(params, LR[name], ngroups(opts))
    tparams, tgroups = torch_twin(torch, name, params, groups)
    opt = getattr(pyrmsprop, name)(groups, lr=LR[name], **opts)
    topt = getattr(torch.optim, name)(tgroups, lr=LR[name], foreach=False, **opts)
    worst = Worst()
    start = full_loss(params)
    for k in range(STEPS):
        _, grads = loss_and_grads(params, *batch(k, dtype))
        if opts.get("maximize"):  # maximize the negated loss: still a descent
            grads = [np.asarray(-g) for g in grads]
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        assert opt.step(grads) is True
        topt.step()
        compare(worst, opt, params, topt, tparams)
    RESULTS.append((name, np.dtype(dtype).name, worst.params, worst.state))
    print(f"{_case_id(name, opts)} {np.dtype(dtype).name}: "
          f"params {worst.params:.2f} ULPs, state {worst.state:.2f} ULPs")
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS
    assert full_loss(params) < 0.5 * start  # it really trained


def test_schedule_matches_lambda_lr(dtype, torch):
    """lr as a callable step -> lr (step 1-based) is torch's LambdaLR on base lr 1.0:
    lr_lambda(epoch) = schedule(epoch + 1), stepped after every optimizer step."""
    cases = [
        ("Adam", {"amsgrad": True, "weight_decay": 1e-2},
         [schedules.Warmup(schedules.ExponentialDecay(3e-3, 0.98), warmup_steps=10),
          schedules.InverseTimeDecay(1e-3, 1.0, steps_per_epoch=28)]),
        ("SGD", {"momentum": 0.9, "nesterov": True},
         [schedules.PiecewiseConstant([40, 80], [0.1, 0.05, 0.01]),
          schedules.InverseSqrtDecay(0.1)]),
        ("RMSprop", {"momentum": 0.5, "centered": True},
         [schedules.Warmup(1e-3, warmup_steps=20), schedules.ExponentialDecay(1e-3, 0.99)]),
    ]
    for name, opts, scheds in cases:
        params = init_params(dtype, seed=1)
        groups = [{"params": params[:2], "lr": scheds[0]},
                  {"params": params[2:], "lr": scheds[1]}]
        tparams, tgroups = torch_twin(torch, name, params, groups)
        for g in tgroups:
            g["lr"] = 1.0
        opt = getattr(pyrmsprop, name)(groups, **opts)
        topt = getattr(torch.optim, name)(tgroups, foreach=False, **opts)
        sched = torch.optim.lr_scheduler.LambdaLR(
            topt, [lambda e, s=s: s(e + 1) for s in scheds])
        worst = Worst()
        for k in range(STEPS):
            assert [g["lr"] for g in topt.param_groups] == [s(k + 1) for s in scheds]
            _, grads = loss_and_grads(params, *batch(k, dtype))
            for tp, g in zip(tparams, grads):
                tp.grad = torch.from_numpy(g.copy())
            opt.step(grads)
            topt.step()
            sched.step()
            compare(worst, opt, params, topt, tparams)
        print(f"schedule {name} {np.dtype(dtype).name}: params {worst.params:.2f} ULPs, "
              f"state {worst.state:.2f} ULPs")
        assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS


# --------------------------------------------------------------------------- checkpoints

RICH = {  # every state array each optimizer has, and two groups
    "SGD": {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3},
    "RMSprop": {"lr": 1e-3, "momentum": 0.9, "centered": True, "weight_decay": 1e-3},
    "Adam": {"lr": 3e-3, "amsgrad": True, "weight_decay": 1e-2},
    "AdamW": {"lr": schedules.ExponentialDecay(3e-3, 0.99), "amsgrad": True},
}


def make(name, params, **kw):
    opts = {**RICH[name], **kw}
    lr = opts.pop("lr")
    return getattr(pyrmsprop, name)(
        [{"params": params[:2]}, {"params": params[2:], "lr": 1e-3}], lr=lr, **opts)


def canonical(sd):
    """A state_dict with arrays as (dtype, shape, bytes): == is bit-exact equality."""
    return ({i: {k: (v.dtype.str, v.shape, v.tobytes()) if isinstance(v, np.ndarray) else v
                 for k, v in st.items()} for i, st in sd["state"].items()},
            sd["param_groups"])


def snapshot(opt, params):
    return canonical(opt.state_dict()), [p.tobytes() for p in params]


@pytest.mark.parametrize("via", ["state_dict", "npz"])
@pytest.mark.parametrize("name", list(RICH))
def test_resume_is_bit_identical(name, via, dtype, tmp_path):
    params = init_params(dtype)
    opt = make(name, params)
    train(opt, params, 30)
    sd = opt.state_dict()
    saved = [p.copy() for p in params]
    if via == "npz":
        opt.save(tmp_path / "ckpt.npz")
    train(opt, params, 30, start=30)  # uninterrupted; must not touch sd
    assert canonical(sd) != canonical(opt.state_dict())

    resumed = make(name, saved)
    if via == "npz":
        resumed.load(tmp_path / "ckpt.npz")
    else:
        resumed.load_state_dict(sd)
    assert canonical(resumed.state_dict()) == canonical(sd)
    for st in sd["state"].values():  # the loaded state is a copy
        for v in st.values():
            if isinstance(v, np.ndarray):
                v[...] = np.nan
    train(resumed, saved, 30, start=30)
    assert snapshot(resumed, saved) == snapshot(opt, params)
    assert os.listdir(tmp_path) == (["ckpt.npz"] if via == "npz" else [])


def test_state_dict_layout():
    params = init_params(np.float32)
    opt = make("Adam", params)
    assert opt.state_dict()["state"] == {}
    train(opt, params, 2)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3, 4]]
    assert [g["lr"] for g in sd["param_groups"]] == [3e-3, 1e-3]
    assert set(sd["state"]) == set(range(5))
    assert all(set(st) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"} and
               st["step"] == 2 for st in sd["state"].values())
    assert sd["state"][4]["exp_avg"].shape == () and sd["state"][4]["exp_avg"].dtype == np.float32


def crash_savez(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a zip")
    raise KeyboardInterrupt  # even a BaseException must not leave a temporary file


def crash_replace(src, dst):
    raise OSError("simulated crash before the rename")


@pytest.mark.parametrize("target,crash", [("numpy.savez", crash_savez),
                                          ("os.replace", crash_replace)])
def test_crash_mid_save_keeps_previous_checkpoint(target, crash, tmp_path, monkeypatch):
    params = init_params(np.float64)
    opt = make("Adam", params)
    train(opt, params, 5)
    path = tmp_path / "ckpt.npz"
    opt.save(path)
    before, sd = path.read_bytes(), canonical(opt.state_dict())
    train(opt, params, 5, start=5)
    monkeypatch.setattr(target, crash)
    with pytest.raises((KeyboardInterrupt, OSError)):
        opt.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"] and path.read_bytes() == before
    other = make("Adam", init_params(np.float64))
    other.load(path)
    assert canonical(other.state_dict()) == sd
    ema = pyrmsprop.EMA(params)
    ema.update(params)
    monkeypatch.setattr(target, crash)
    with pytest.raises((KeyboardInterrupt, OSError)):
        ema.save(path)
    assert os.listdir(tmp_path) == ["ckpt.npz"] and path.read_bytes() == before


def train_any(opt, params):
    rng = np.random.default_rng(0)
    for _ in range(2):
        opt.step([rng.standard_normal(p.shape).astype(p.dtype) for p in params])


def _edit(where, key, value=None):
    """Set (or, without a value, delete) a key of parameter 2's state or of group 1."""
    def mutate(sd, dtype):
        d = sd["state"][2] if where == "state" else sd["param_groups"][1]
        if value is None:
            del d[key]
        else:
            d[key] = value
    return mutate


def _other_params(change):
    """Replace the state_dict by one of the same optimizer over other parameters."""
    def mutate(sd, dtype):
        params = change(init_params(dtype))
        opt = make("Adam", params)
        train_any(opt, params)
        sd.clear()
        sd.update(opt.state_dict())
    return mutate


def _flip(p):
    return [a.astype(np.float64 if a.dtype == np.float32 else np.float32) for a in p]


MISMATCHES = {  # name -> (mutate(state_dict, dtype), regex of the error)
    "missing-state-array": (_edit("state", "exp_avg_sq"), r"state of parameter 2 has keys"),
    "extra-state-array": (_edit("state", "momentum_buffer", np.zeros(32)),
                          r"state of parameter 2 has keys"),
    "missing-step": (_edit("state", "step"), r"state of parameter 2 has keys"),
    "bad-step": (_edit("state", "step", -1), r"step must be an integer >= 0"),
    "fractional-step": (_edit("state", "step", 1.5), r"step must be an integer >= 0"),
    "missing-group-key": (_edit("group", "eps"),
                          r"param group 1 of state_dict: missing \['eps'\]"),
    "unknown-group-key": (_edit("group", "momentum", 0.9), r"unknown \['momentum'\]"),
    "bad-hyperparameter": (_edit("group", "lr", -1.0), r"lr must be >= 0"),
    "bad-betas": (_edit("group", "betas", (0.9,)), r"betas must be a pair"),
    "state-shape": (_edit("state", "exp_avg", np.zeros(31)),
                    r"state 'exp_avg' of parameter 2 has shape \(31,\)"),
    "state-index": (lambda sd, dt: sd["state"].update({7: sd["state"][0]}),
                    r"state for parameter 7, the optimizer has 5"),
    "group-params": (lambda sd, dt: sd["param_groups"][1].update(params=[2, 3]),
                     r"group 1 of state_dict holds parameters \[2, 3\], expected \[2, 3, 4\]"),
    "missing-top-key": (lambda sd, dt: sd.pop("state"), r"keys 'state' and 'param_groups'"),
    "group-count": (lambda sd, dt: sd["param_groups"].pop(),
                    r"state_dict has 1 param groups, the optimizer has 2"),
    "param-count": (_other_params(lambda p: p[:4]), r"holds parameters \[2, 3\]"),
    "param-shape": (_other_params(lambda p: [*p[:2], np.zeros(31, p[2].dtype), *p[3:]]),
                    r"parameter 2 has shape \(31,\).*the parameter \(32,\)"),
    "param-dtype": (_other_params(_flip), r"has shape .* and dtype float"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_load_mismatch_changes_nothing(case, dtype):
    params = init_params(dtype)
    opt = make("Adam", params)
    train_any(opt, params)
    donor_params = [p.copy() for p in params]
    donor = make("Adam", donor_params)
    train_any(donor, donor_params)
    bad = donor.state_dict()
    mutate, pattern = MISMATCHES[case]
    mutate(bad, dtype)
    before = snapshot(opt, params)
    with pytest.raises((ValueError, TypeError), match=pattern):
        opt.load_state_dict(bad)
    assert snapshot(opt, params) == before


def test_load_wrong_kind_or_file_changes_nothing(tmp_path):
    params = init_params(np.float32)
    adam, rms = make("Adam", params), make("RMSprop", [p.copy() for p in params])
    train_any(adam, params)
    train_any(rms, [p for g in rms.param_groups for p in g["params"]])
    rms.save(tmp_path / "rms.npz")
    before = snapshot(adam, params)
    with pytest.raises(ValueError, match="holds 'RMSprop' state, not 'Adam'"):
        adam.load(tmp_path / "rms.npz")
    with pytest.raises(ValueError, match=r"missing .* unknown"):
        adam.load_state_dict(rms.state_dict())
    pyrmsprop.EMA(params).save(tmp_path / "ema.npz")
    with pytest.raises(ValueError, match="holds 'EMA' state, not 'Adam'"):
        adam.load(tmp_path / "ema.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="is not a pyrmsprop checkpoint"):
        adam.load(tmp_path / "plain.npz")
    # a file from an optimizer over other parameters
    small = pyrmsprop.Adam([np.zeros(3, np.float32)])
    small.step([np.ones(3, np.float32)])
    small.save(tmp_path / "small.npz")
    with pytest.raises(ValueError, match="state_dict has 1 param groups"):
        adam.load(tmp_path / "small.npz")
    assert snapshot(adam, params) == before


# --------------------------------------------------------------------------- skip_nonfinite


@pytest.mark.parametrize("name", list(RICH))
def test_skip_nonfinite(name, dtype):
    params, ref_params = init_params(dtype), init_params(dtype)
    opt, ref = make(name, params, skip_nonfinite=True), make(name, ref_params)
    X, Y = batch(0, dtype)
    _, grads = loss_and_grads(params, X, Y)
    grads[3][4] = np.nan  # the very first step: no state may be allocated either
    assert opt.step(grads) is False and opt.skipped_steps == 1 and opt.state_dict()["state"] == {}
    for k, bad in enumerate([np.inf, -np.inf, np.nan], start=2):
        train(opt, params, 3, start=3 * k)
        train(ref, ref_params, 3, start=3 * k)
        _, grads = loss_and_grads(params, X, Y)
        grads[2 * k % 5].flat[-1] = bad
        before = snapshot(opt, params)
        assert opt.step(grads) is False and opt.skipped_steps == k
        assert snapshot(opt, params) == before
    train(opt, params, 3, start=20)
    train(ref, ref_params, 3, start=20)
    assert snapshot(opt, params) == snapshot(ref, ref_params)
    assert ref.skipped_steps == 0
    # without the option a NaN gradient is applied
    _, grads = loss_and_grads(ref_params, X, Y)
    grads[0][0, 0] = np.nan
    assert ref.step(grads) is True and np.isnan(ref_params[0][0, 0])


# --------------------------------------------------------------------------- bad input


def _ro():
    a = np.zeros(3)
    a.flags.writeable = False
    return a


_BASE = np.zeros(10)
CONSTRUCTOR_ERRORS = [
    (lambda: pyrmsprop.SGD([np.zeros(3)], lr=-0.1), ValueError, "lr must be >= 0"),
    (lambda: pyrmsprop.Adam([np.zeros(3)], lr=np.nan), ValueError, "lr must be finite"),
    (lambda: pyrmsprop.Adam([np.zeros(3)], betas=(0.9, 1.0)), ValueError,
     r"beta2 must be in \[0, 1\)"),
    (lambda: pyrmsprop.Adam([np.zeros(3)], betas=(-0.1, 0.9)), ValueError,
     r"beta1 must be in \[0, 1\)"),
    (lambda: pyrmsprop.Adam([np.zeros(3)], betas=(0.9,)), TypeError, "betas must be a pair"),
    (lambda: pyrmsprop.AdamW([np.zeros(3)], betas=0.9), TypeError, "betas must be a pair"),
    (lambda: pyrmsprop.Adam([{"params": [np.zeros(3)], "betas": (0.9, 0.9, 0.9)}]), TypeError,
     "betas must be a pair"),
    (lambda: pyrmsprop.RMSprop([np.zeros(3)], alpha=1.0), ValueError, "alpha"),
    (lambda: pyrmsprop.RMSprop([np.zeros(3)], eps=-1e-8), ValueError, "eps"),
    (lambda: pyrmsprop.SGD([np.zeros(3)], momentum=-0.9), ValueError, "momentum"),
    (lambda: pyrmsprop.SGD([np.zeros(3)], momentum=0.9, dampening=1.5), ValueError,
     "dampening"),
    (lambda: pyrmsprop.SGD([np.zeros(3)], nesterov=True), ValueError, "nesterov"),
    (lambda: pyrmsprop.AdamW([np.zeros(3)], weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda: pyrmsprop.SGD([{"params": [np.zeros(3)], "betas": (0.9, 0.99)}]), ValueError,
     r"unknown hyperparameter\(s\) \['betas'\] for SGD"),
    (lambda: pyrmsprop.Adam([{"params": [np.zeros(3)]}, {"params": [np.zeros(2)], "lr": -1}]),
     ValueError, "lr must be >= 0"),
    (lambda: pyrmsprop.Adam([{"lr": 0.1}]), TypeError, "'params' list"),
    (lambda: pyrmsprop.Adam([{"params": []}]), ValueError, "at least one array"),
    (lambda: pyrmsprop.Adam([]), ValueError, "params is empty"),
    (lambda: pyrmsprop.Adam(np.zeros(3)), TypeError, "not a single array"),
    (lambda: pyrmsprop.Adam([np.zeros(3), [1.0, 2.0]]), TypeError,
     r"params\[1\] must be a numpy array"),
    (lambda: pyrmsprop.Adam([np.zeros(3, np.int64)]), TypeError,
     "float32, float64, bfloat16 or float16"),
    (lambda: pyrmsprop.Adam([np.zeros((4, 4))[:, ::2]]), ValueError, "not C-contiguous"),
    (lambda: pyrmsprop.Adam([np.zeros(2), _ro()]), ValueError, r"params\[1\] is read-only"),
    (lambda: pyrmsprop.SGD([_BASE[:6], np.zeros(2), _BASE[5:]]), ValueError,
     r"params\[0\] and params\[2\] share memory"),
    (lambda: pyrmsprop.SGD([{"params": [_BASE]}, {"params": [_BASE[9:]]}]), ValueError,
     r"params\[0\] and params\[1\] share memory"),
    (lambda: pyrmsprop.EMA([np.zeros(3)], beta=1.0), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: pyrmsprop.EMA([np.zeros(3), "x"]), TypeError, r"params\[1\] must be a numpy array"),
]


@pytest.mark.parametrize("factory,exc,pattern", CONSTRUCTOR_ERRORS,
                         ids=[f"{i}-{c[2][:30]}" for i, c in enumerate(CONSTRUCTOR_ERRORS)])
def test_constructor_errors(factory, exc, pattern):
    with pytest.raises(exc, match=pattern):
        factory()


def test_add_param_group_error_changes_nothing():
    params = init_params(np.float32)
    opt = make("Adam", params)
    train_any(opt, params)
    before = (snapshot(opt, params), len(opt.param_groups))
    with pytest.raises(ValueError, match=r"params\[(1|5)\] and params\[(5|1)\] share memory"):
        opt.add_param_group({"params": [params[1][0]]})  # a view of W2
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.add_param_group({"params": [np.zeros(3, np.float32)], "lr": -1.0})
    assert (snapshot(opt, params), len(opt.param_groups)) == before
    opt.add_param_group({"params": [np.zeros(3, np.float32)], "lr": 0.5})
    opt.step([np.ones(p.shape, p.dtype) for p in params] + [np.ones(3, np.float32)])
    assert [st["step"] for st in opt.state] == [3] * 5 + [1]


def _step_errors(params):
    """(grads, exc, regex): every bad one sits in the second group (parameters 2..4)."""
    good = [np.ones_like(p) for p in params]

    def bad(i, value):
        return good[:i] + [value] + good[i + 1:]

    T = params[0].dtype.type
    other = np.float64 if T is np.float32 else np.float32
    return [
        (good[:4], ValueError, "grads has 4 arrays but the optimizer has 5 parameters"),
        (good + [good[0]], ValueError, "grads has 6 arrays"),
        (bad(3, np.ones(11, T)), ValueError, r"grads\[3\] has shape \(11,\) but params\[3\]"),
        (bad(4, np.ones(1, T)), ValueError, r"grads\[4\] has shape \(1,\) but params\[4\]"),
        (bad(2, np.ones(32, other)), TypeError, r"grads\[2\] has dtype"),
        (bad(3, np.ones(10, np.int32)), TypeError, r"grads\[3\] must have dtype"),
        (bad(3, [1.0] * 10), TypeError, r"grads\[3\] must be a numpy array"),
        (bad(2, np.ones(64, T)[::2]), ValueError, r"grads\[2\] is not C-contiguous"),
        (bad(3, params[3]), ValueError, r"(params|grads)\[3\] and (grads|params)\[3\] overlap"),
    ]


@pytest.mark.parametrize("two_groups", [False, True], ids=["1group", "2groups"])
@pytest.mark.parametrize("skip_nonfinite", [False, True])
@pytest.mark.parametrize("name", list(RICH))
def test_step_errors_change_nothing(name, skip_nonfinite, two_groups, dtype):
    params = init_params(dtype)
    if two_groups:
        opt = make(name, params, skip_nonfinite=skip_nonfinite)
    else:
        opt = getattr(pyrmsprop, name)(params, **RICH[name], skip_nonfinite=skip_nonfinite)
    for trained in (False, True):  # on the first step (no state yet) and later
        for grads, exc, pattern in _step_errors(params):
            before = snapshot(opt, params)
            with pytest.raises(exc, match=pattern):
                opt.step(grads)
            assert snapshot(opt, params) == before
        if not trained:
            assert opt.state_dict()["state"] == {}
            train_any(opt, params)
    assert opt.skipped_steps == 0


def test_schedule_error_changes_nothing():
    params = init_params(np.float32)
    opt = pyrmsprop.Adam([{"params": params[:2]},
                          {"params": params[2:], "lr": lambda t: 1e-3 if t < 3 else -1.0}])
    train_any(opt, params)
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.step([np.ones_like(p) for p in params])
    assert snapshot(opt, params) == before


# --------------------------------------------------------------------------- EMA


@pytest.mark.parametrize("beta", [0.9, 0.99])
@pytest.mark.parametrize("bias_correction", [True, False])
def test_ema_matches_float64_reference(beta, bias_correction, dtype, tmp_path):
    params = init_params(dtype)
    opt = make("Adam", params)
    ema = pyrmsprop.EMA(params, beta=beta, bias_correction=bias_correction)
    assert all(not a.any() for a in ema.average())
    ref = [np.zeros(p.shape) for p in params]
    tol = 2e-5 if dtype is np.float32 else 1e-12
    for t in range(1, 41):
        train(opt, params, 1, start=t)
        ema.update(params)
        ref = [beta * r + (1 - beta) * p.astype(np.float64) for r, p in zip(ref, params)]
        expected = [r / (1 - beta**t) if bias_correction else r for r in ref]
        for a, e in zip(ema.average(), expected):
            assert a.dtype == dtype and a.shape == e.shape
            assert np.abs(a - e).max(initial=0) <= tol * np.abs(e).max(initial=0)
    assert ema.num_updates == 40
    out = [np.full_like(p, np.nan) for p in params]
    ema.copy_to(out)
    assert [o.tobytes() for o in out] == [a.tobytes() for a in ema.average()]

    # state_dict and .npz round trips, then both go on identically
    sd = ema.state_dict()
    twin, twin2 = pyrmsprop.EMA(params, beta=0.5), pyrmsprop.EMA(params)
    twin.load_state_dict(sd)
    ema.save(tmp_path / "ema.npz")
    twin2.load(tmp_path / "ema.npz")
    for other in (twin, twin2):
        assert (other.beta, other.bias_correction, other.num_updates) == (beta, bias_correction,
                                                                         40)
    train(opt, params, 1, start=41)
    for e in (ema, twin, twin2):
        e.update(params)
    assert [a.tobytes() for a in twin.average()] == [a.tobytes() for a in ema.average()]
    assert [a.tobytes() for a in twin2.average()] == [a.tobytes() for a in ema.average()]


def test_ema_bad_input_changes_nothing(tmp_path):
    params = init_params(np.float32)
    ema = pyrmsprop.EMA(params, beta=0.9)
    ema.update(params)
    before = ema.state_dict()

    def same():
        now = ema.state_dict()
        return (now["num_updates"] == before["num_updates"] and
                [a.tobytes() for a in now["averages"]] ==
                [a.tobytes() for a in before["averages"]])

    short = params[:4]
    wrong = params[:2] + [np.zeros(7, np.float32)] + params[3:]
    f64 = [p.astype(np.float64) for p in params]
    with pytest.raises(ValueError, match=r"params\[2\] has shape \(7,\) but averages\[2\]"):
        ema.update(wrong)
    with pytest.raises(ValueError, match="has 4 arrays"):
        ema.update(short)
    with pytest.raises(TypeError, match=r"params\[0\] has dtype float64"):
        ema.update(f64)
    out = [np.zeros_like(p) for p in params]
    out[3].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[3\] is read-only"):
        ema.copy_to(out)
    with pytest.raises(ValueError, match=r"params\[2\] must be an array of shape"):
        ema.copy_to(wrong)
    with pytest.raises(ValueError, match="params has 4 arrays"):
        ema.copy_to(short)
    assert all(not o.any() for o in out)
    for bad, pattern in [
            ({**before, "averages": before["averages"][:4]}, "state_dict has 4 averages"),
            ({**before, "averages": [a.astype(np.float64) for a in before["averages"]]},
             r"averages\[0\] has shape .* and dtype float64"),
            ({**before, "num_updates": -1}, "num_updates must be an integer"),
            ({**before, "beta": 1.0}, r"beta must be in \[0, 1\)"),
            ({k: v for k, v in before.items() if k != "beta"}, "must be a dict with keys")]:
        with pytest.raises(ValueError, match=pattern):
            ema.load_state_dict(bad)
    opt = pyrmsprop.SGD(params)
    opt.save(tmp_path / "sgd.npz")
    with pytest.raises(ValueError, match="holds 'SGD' state, not 'EMA'"):
        ema.load(tmp_path / "sgd.npz")
    assert same()


# --------------------------------------------------------------------------- options changed mid-training


def test_sgd_momentum_switched_on_mid_training_matches_torch(dtype, torch):
    """torch.optim.SGD starts a momentum buffer (buf = g) on the first step that has
    momentum, whenever that is; so do we."""
    params = init_params(dtype)
    tparams, tgroups = torch_twin(torch, "SGD", params, [{"params": params}])
    opt = pyrmsprop.SGD(params, lr=0.05)
    topt = torch.optim.SGD(tgroups, lr=0.05, foreach=False)
    worst = Worst()
    for k in range(40):
        if k == 10:
            opt.param_groups[0]["momentum"] = topt.param_groups[0]["momentum"] = 0.9
        if k == 30:   # and off again: the buffer is kept but not used
            opt.param_groups[0]["momentum"] = topt.param_groups[0]["momentum"] = 0.0
        _, grads = loss_and_grads(params, *batch(k, dtype))
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        opt.step(grads)
        topt.step()
        compare(worst, opt, params, topt, tparams)
        if k == 9:
            assert all("momentum_buffer" not in st for st in opt.state)
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS
    # a state whose buffer outlived its option still round-trips
    twin = pyrmsprop.SGD([p.copy() for p in params], lr=0.05)
    twin.load_state_dict(opt.state_dict())
    assert canonical(twin.state_dict()) == canonical(opt.state_dict())


@pytest.mark.parametrize("name,option,value,new", [
    ("Adam", "amsgrad", True, "max_exp_avg_sq"),
    ("RMSprop", "centered", True, "grad_avg"),
    ("RMSprop", "momentum", 0.9, "momentum_buffer"),
])
def test_option_switched_on_mid_training(name, option, value, new, dtype):
    """The state an option needs starts at zero on the step the option is switched
    on: the same numbers as the functional update with a zero state array."""
    params = init_params(dtype)
    opt = getattr(pyrmsprop, name)(params, lr=1e-3)
    train(opt, params, 5)
    assert all(new not in st for st in opt.state)
    ref_state = [{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
                 for st in opt.state]
    ref = [p.copy() for p in params]
    opt.param_groups[0][option] = value
    _, grads = loss_and_grads(params, *batch(5, dtype))
    assert opt.step(grads) is True
    for p, g, st in zip(ref, grads, ref_state):
        st[new] = np.zeros_like(p)
        if name == "Adam":
            pyrmsprop.adam_update(p, g, st["exp_avg"], st["exp_avg_sq"], step=6,
                                  lr=opt.param_groups[0]["lr"], amsgrad=True,
                                  max_exp_avg_sq=st["max_exp_avg_sq"])
        else:
            group = opt.param_groups[0]
            pyrmsprop.rmsprop_update(p, g, st["square_avg"], lr=group["lr"],
                                     momentum=group["momentum"],
                                     momentum_buffer=st.get("momentum_buffer"),
                                     centered=group["centered"], grad_avg=st.get("grad_avg"))
    for p, r, st, rst in zip(params, ref, opt.state, ref_state):
        assert p.tobytes() == r.tobytes()
        assert st[new].tobytes() == rst[new].tobytes() and st["step"] == 6


def test_save_accepts_numpy_scalar_hyperparameters(tmp_path):
    params = init_params(np.float32)
    opt = pyrmsprop.Adam(params, lr=np.float32(1e-3), betas=(np.float32(0.9), np.float64(0.999)),
                         weight_decay=np.float64(1e-4))
    train(opt, params, 3)
    opt.save(tmp_path / "adam.npz")
    twin = pyrmsprop.Adam([p.copy() for p in params])
    twin.load(tmp_path / "adam.npz")
    group = twin.param_groups[0]
    assert group["lr"] == float(np.float32(1e-3)) and group["betas"] == (float(np.float32(0.9)),
                                                                         0.999)
    assert group["weight_decay"] == 1e-4
    assert [st["exp_avg"].tobytes() for st in twin.state] == \
        [st["exp_avg"].tobytes() for st in opt.state]


def test_ema_reads_read_only_params():
    """EMA only reads the parameters: read-only arrays (or views that share memory)
    are fine; its averages are its own writable arrays."""
    params = init_params(np.float64)
    views = []
    for p in params:
        v = p.view()
        v.flags.writeable = False
        views.append(v)
    ema = pyrmsprop.EMA(views, beta=0.5)
    ema.update(views)
    ema.update(views)
    for a, p in zip(ema.average(), params):   # a constant series averages to itself
        assert np.allclose(a, p, rtol=1e-15, atol=0)


@pytest.mark.parametrize("via", ["step", "load_state_dict"])
def test_state_arrays_share_one_aligned_buffer(via):
    """Per state name and dtype, one buffer (huge pages for a real model's state):
    views that start where their parameters start within a 64-byte line, and never
    overlap."""
    params = init_params(np.float32) + [np.ones(3), np.ones((2, 5))]   # + float64 ones
    opt = pyrmsprop.Adam(params, amsgrad=True)
    opt.step([np.ones_like(p) for p in params])
    if via == "load_state_dict":
        twin = pyrmsprop.Adam([p.copy() for p in params], amsgrad=True)
        twin.load_state_dict(opt.state_dict())
        assert canonical(twin.state_dict()) == canonical(opt.state_dict())
        opt = twin
    for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        arrays = [st[name] for st in opt.state]
        for dt in (np.float32, np.float64):
            mine = [a for a in arrays if a.dtype == dt]
            assert len({id(a.base) for a in mine}) == 1 and mine[0].base is not None
            starts = sorted((a.__array_interface__["data"][0], a.nbytes) for a in mine)
            own = [q for g in opt.param_groups for q in g["params"]]   # opt's own params
            like = [q for q, a in zip(own, arrays) if a.dtype == dt]
            assert [a.__array_interface__["data"][0] % 64 for a in mine] == \
                [p.__array_interface__["data"][0] % 64 for p in like]
            assert all(s0 + n0 <= s1 for (s0, n0), (s1, _) in itertools.pairwise(starts))
        assert all(a.flags.c_contiguous and a.flags.writeable for a in arrays)
    ema = pyrmsprop.EMA(params)
    assert len({id(a.base) for a in ema.averages}) == 2   # one per dtype


# ------------------------------------------------- lists that mix dtypes; one array for a list


def _mixed_params():
    rng = np.random.default_rng(7)
    return [rng.standard_normal(s).astype(dt) for s, dt in
            [((6, 5), np.float32), ((5,), np.float64), ((3, 4), np.float64), ((4,), np.float32)]]


def test_ema_over_mixed_dtypes_matches_float64_reference(tmp_path):
    """The README's optimizer example: one EMA over float32 and float64 arrays."""
    params = _mixed_params()
    ema = pyrmsprop.EMA(params, beta=0.9)
    opt = pyrmsprop.Adam(params, lr=0.05)
    ref = [np.zeros(p.shape) for p in params]
    for t in range(1, 31):
        opt.step([np.sin(p.astype(np.float64) * t).astype(p.dtype) for p in params])
        ema.update(params)
        ref = [0.9 * r + 0.1 * p.astype(np.float64) for r, p in zip(ref, params)]
    for a, p, r in zip(ema.average(), params, ref):
        assert a.dtype == p.dtype and a.shape == p.shape
        tol = 2e-5 if p.dtype == np.float32 else 1e-12
        e = r / (1 - 0.9**30)
        assert np.abs(a - e).max() <= tol * np.abs(e).max()
    out = [np.zeros_like(p) for p in params]
    ema.copy_to(out)
    assert [o.tobytes() for o in out] == [a.tobytes() for a in ema.average()]
    sd = ema.state_dict()
    assert [a.dtype for a in sd["averages"]] == [p.dtype for p in params]
    twin, twin2 = pyrmsprop.EMA(params), pyrmsprop.EMA(params)
    twin.load_state_dict(sd)
    ema.save(tmp_path / "mixed.npz")
    twin2.load(tmp_path / "mixed.npz")
    for e in (ema, twin, twin2):
        e.update(params)
    assert [a.tobytes() for a in twin.average()] == [a.tobytes() for a in ema.average()]
    assert [a.tobytes() for a in twin2.average()] == [a.tobytes() for a in ema.average()]


def test_ema_over_mixed_dtypes_checks_every_dtype_before_writing():
    params = _mixed_params()
    ema = pyrmsprop.EMA(params, beta=0.9)
    ema.update(params)
    before = [a.tobytes() for a in ema.averages]
    bad_last = params[:3] + [np.zeros(4, np.float64)]          # float32 average, float64 param
    with pytest.raises(TypeError, match=r"params\[3\] has dtype float64, but the EMA was made "
                                        r"for dtype float32") as info:
        ema.update(bad_last)
    assert "call" not in str(info.value)
    bad_shape = params[:3] + [np.zeros(5, np.float32)]        # the second dtype's call is bad
    with pytest.raises(ValueError, match=r"params\[3\] has shape \(5,\) but averages\[3\]"):
        ema.update(bad_shape)
    assert [a.tobytes() for a in ema.averages] == before and ema.num_updates == 1


def test_a_single_array_for_a_list_is_a_clear_type_error():
    params = _mixed_params()
    opt = pyrmsprop.SGD(params, lr=0.1)
    ema = pyrmsprop.EMA(params)
    before = [p.tobytes() for p in params]
    for call, name in [(lambda: opt.step(np.ones(3)), "grads"),
                       (lambda: ema.update(np.ones(3)), "params"),
                       (lambda: ema.copy_to(np.ones(3)), "params"),
                       (lambda: opt.step(5), "grads")]:
        with pytest.raises(TypeError, match=rf"{name} must be a list of arrays") as info:
            call()
        assert "has 3 arrays" not in str(info.value)
    with pytest.raises(TypeError, match="params must be a list of arrays, not a single array"):
        pyrmsprop.EMA(np.ones(3))
    assert [p.tobytes() for p in params] == before


def test_step_names_a_gradient_of_the_wrong_dtype_without_speaking_of_calls():
    params = _mixed_params()
    opt = pyrmsprop.Adam(params)
    grads = [np.ones_like(p) for p in params]
    grads[1] = grads[1].astype(np.float32)
    with pytest.raises(TypeError, match=r"grads\[1\] has dtype float32 but params\[1\] has "
                                        r"dtype float64") as info:
        opt.step(grads)
    assert "call" not in str(info.value)


def test_state_and_averages_share_their_parameters_offset_in_a_cache_line():
    """State arrays and EMA averages start where their parameter starts within a
    64-byte line (aligned for aligned params, 16 bytes past for numpy's large
    arrays), so one peeled head aligns every array of a call; they share one buffer
    per name and dtype, never each other's memory."""
    def at(n, dtype, off):
        buf = np.empty(n + 64, dtype)
        k = (-buf.__array_interface__["data"][0] % 64 + off) // np.dtype(dtype).itemsize
        return buf[k:k + n]

    params = [at(5000, np.float32, 16), at(300, np.float32, 0), at(4099, np.float32, 48),
              at(2000, np.float64, 8), at(70_000, np.float64, 0), np.zeros(0, np.float32)]
    for p in params:
        p[...] = 1.0
    opt = pyrmsprop.Adam(params, lr=1e-3)
    opt.step([np.full_like(p, 0.5) for p in params])
    ema = pyrmsprop.EMA(params)

    def addr(a):
        return a.__array_interface__["data"][0]

    for i, p in enumerate(params):
        arrays = [opt.state[i]["exp_avg"], opt.state[i]["exp_avg_sq"], ema.averages[i]]
        for a in arrays:
            assert a.shape == p.shape and a.dtype == p.dtype
            if p.size:
                assert addr(a) % 64 == addr(p) % 64, (i, addr(a) % 64, addr(p) % 64)
    for name in ("exp_avg", "exp_avg_sq"):
        spans = sorted((addr(st[name]), addr(st[name]) + st[name].nbytes) for st in opt.state
                       if st[name].size)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    # and the numbers: one Adam step from zero state moves each param by lr (sign of g)
    for p in params:
        assert np.allclose(p, 1.0 - 1e-3, rtol=0, atol=1e-6)
