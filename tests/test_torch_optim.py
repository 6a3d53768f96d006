"""pyrmsprop.torch (the torch.optim drop-ins) on a real network: an MLP
(nn.Sequential) trained on scikit-learn's digits, against torch.optim (foreach=False).

Each step computes the gradients once, on the model driven by pyrmsprop.torch,
and copies them into the .grad of the torch.optim twin, so every difference is
the optimizers' own rounding and does not grow through the loss.  Parameters and
state arrays are measured in ULPs of the largest magnitude each has held (torch
fuses `add_(x, alpha=a)` into an FMA, the kernels round twice, so a step may
differ by half an ULP and the differences random-walk); `pytest -s` prints the
worst figures per optimizer and dtype.  Then: state dicts both ways, zero_grad,
closures, add_param_group, param groups, LR schedulers, errors naming the
parameter, and `import pyrmsprop` not importing torch.
"""

import copy
import functools
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

STEPS = 120          # > 4 epochs of 28 mini-batches of 64
BATCH = 64
MAX_ULPS = 16        # |ours - torch| / ulp(peak), every step, params and state (worst seen: 6)
LR = {"SGD": 0.1, "RMSprop": 1e-3, "Adam": 3e-3, "AdamW": 3e-3}
RESULTS = []         # (optimizer, dtype, worst params ULPs, worst state ULPs)


@pytest.fixture(scope="module")
def pt(torch):
    """pyrmsprop.torch, imported only once torch is known to be there; one torch
    thread (a 64x32 MLP gains nothing from more) and the summary at the end."""
    import pyrmsprop.torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield pyrmsprop.torch
    torch.set_num_threads(threads)
    if RESULTS:
        print(f"\nworst difference from torch.optim (same gradients), in ULPs of the peak "
              f"magnitude each array held, over {STEPS} steps:")
        print(f"  {'optimizer':9} {'dtype':8} {'cases':>5} {'params':>7} {'state':>7}")
        for key in sorted({r[:2] for r in RESULTS}):
            rows = [r for r in RESULTS if r[:2] == key]
            print(f"  {key[0]:9} {key[1]:8} {len(rows):5d} {max(r[2] for r in rows):7.2f} "
                  f"{max(r[3] for r in rows):7.2f}")


# --------------------------------------------------------------------------- the network


@functools.cache
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    return X / 16.0, y


def batch(torch, k, dtype):
    """Mini-batch k (0-based) as tensors, reshuffled every epoch."""
    X, y = digits()
    per_epoch = len(X) // BATCH
    order = np.random.default_rng(k // per_epoch).permutation(len(X))
    idx = order[(k % per_epoch) * BATCH:][:BATCH]
    return torch.from_numpy(X[idx].astype(dtype)), torch.from_numpy(y[idx])


def mlp(torch, dtype, seed=0):
    """64 -> 32 -> 10 with tanh; torch's default initialization, seeded without
    touching the global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(),
                                    torch.nn.Linear(32, 10))
    return model.to(getattr(torch, np.dtype(dtype).name))


def loss_of(torch, model, k, dtype, maximize=False):
    x, y = batch(torch, k, dtype)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    return -loss if maximize else loss  # maximizing the negated loss still trains


def backward_and_share(torch, models, opts, k, dtype, maximize=False):
    """Gradients of mini-batch k on models[0], copied into the other models' .grad."""
    for opt in opts:
        opt.zero_grad()
    loss = loss_of(torch, models[0], k, dtype, maximize)
    loss.backward()
    for model in models[1:]:
        for p, q in zip(models[0].parameters(), model.parameters(), strict=True):
            q.grad = None if p.grad is None else p.grad.clone()
    return loss


class Worst:
    """Largest |ours - theirs| / ulp(peak) seen per array, peak = the largest
    magnitude the array has held (on either side) up to that step."""

    def __init__(self):
        self.peak, self.params, self.state = {}, 0.0, 0.0

    def ulps(self, key, a, b):
        a, b = a.detach().numpy(), b.detach().numpy()
        peak = max(self.peak.get(key, 0.0), float(np.abs(a).max()), float(np.abs(b).max()))
        self.peak[key] = peak
        diff = float(np.abs(a.astype(np.float64) - b).max())
        return diff / float(np.spacing(a.dtype.type(peak))) if diff else 0.0

    def add(self, ours, theirs, params, tparams):
        for i, (p, q) in enumerate(zip(params, tparams, strict=True)):
            self.params = max(self.params, self.ulps(("p", i), p, q))
            for key, a in ours.state.get(p, {}).items():
                if key != "step":
                    self.state = max(self.state, self.ulps((key, i), a, theirs.state[q][key]))


def same_state_layout(torch, ours, theirs, params, tparams):
    """The same state keys per parameter, and 'step' the same 0-d tensor."""
    for p, q in zip(params, tparams, strict=True):
        mine, yours = ours.state.get(p, {}), theirs.state.get(q, {})
        assert mine.keys() == yours.keys()
        if "step" in mine:
            assert isinstance(mine["step"], torch.Tensor)
            assert (mine["step"].dtype, mine["step"].shape) == (yours["step"].dtype, ())
            assert mine["step"].item() == yours["step"].item()


# --------------------------------------------------------------------------- parity

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
    return "-".join([name, *flags, *wd])


def groups_of(model, lr, two):
    """One group, or two: weights, and biases with half the lr."""
    if not two:
        return model.parameters()
    named = list(model.named_parameters())
    return [{"params": [p for name, p in named if name.endswith("weight")]},
            {"params": [p for name, p in named if name.endswith("bias")], "lr": lr / 2}]


def twins(torch, pt, name, dtype, opts, two_groups=False):
    """(models, optimizers): pyrmsprop.torch's and torch.optim's, equal weights."""
    models = [mlp(torch, dtype), mlp(torch, dtype)]
    ours, theirs = (getattr(mod, name)(groups_of(m, LR[name], two_groups), lr=LR[name], **opts,
                                       **kw)
                    for mod, m, kw in ((pt, models[0], {}),
                                       (torch.optim, models[1], {"foreach": False})))
    return models, (ours, theirs)


def params_of(*models):
    return [list(m.parameters()) for m in models]


@pytest.mark.parametrize("name,opts", CASES, ids=[
    _case_id(*c) + ("-2groups" if c[1]["maximize"] else "") for c in CASES])
def test_training_matches_torch_optim(name, opts, dtype, torch, pt):
    models, (ours, theirs) = twins(torch, pt, name, dtype, opts, two_groups=opts["maximize"])
    assert len(ours.param_groups) == (2 if opts["maximize"] else 1)
    worst = Worst()
    with torch.no_grad():
        start = sum(loss_of(torch, models[0], k, dtype).item() for k in range(28))
    for k in range(STEPS):
        backward_and_share(torch, models, (ours, theirs), k, dtype, opts["maximize"])
        assert ours.step() is None and theirs.step() is None
        worst.add(ours, theirs, *params_of(*models))
    same_state_layout(torch, ours, theirs, *params_of(*models))
    RESULTS.append((name, np.dtype(dtype).name, worst.params, worst.state))
    print(f"{_case_id(name, opts)} {len(ours.param_groups)} groups {np.dtype(dtype).name}: "
          f"params {worst.params:.2f} ULPs, state {worst.state:.2f} ULPs")
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS
    with torch.no_grad():
        end = sum(loss_of(torch, models[0], k, dtype).item() for k in range(28))
    assert end < 0.5 * start  # it really trained


# --------------------------------------------------------------------------- state dicts

INTERCHANGE = [("Adam", {}), ("Adam", {"amsgrad": True, "weight_decay": 1e-2}),
               ("AdamW", {"amsgrad": True}), ("RMSprop", {"momentum": 0.9, "centered": True}),
               ("SGD", {"momentum": 0.9, "nesterov": True})]


@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
@pytest.mark.parametrize("name,opts", INTERCHANGE, ids=[_case_id(*c) for c in INTERCHANGE])
def test_state_dict_interchange(name, opts, direction, dtype, torch, pt):
    """Train 40 steps with one implementation, load its state dict into the other
    (on a copy of the model), continue both 60 steps on the same gradients: they
    stay within MAX_ULPS, while a fresh optimizer drifts far away."""
    src_mod, dst_mod = (torch.optim, pt) if direction == "torch_to_ours" else (pt, torch.optim)
    extra = {torch.optim: {"foreach": False}, pt: {}}
    model = mlp(torch, dtype)
    src = getattr(src_mod, name)(model.parameters(), lr=LR[name], **opts, **extra[src_mod])
    for k in range(40):
        backward_and_share(torch, [model], [src], k, dtype)
        src.step()
    saved = copy.deepcopy(src.state_dict())  # state_dict() holds the live state tensors
    keys = {"SGD": {"momentum_buffer"},
            "RMSprop": {"step", "square_avg", "momentum_buffer", "grad_avg"},
            "Adam": {"step", "exp_avg", "exp_avg_sq",
                     *["max_exp_avg_sq"] * opts.get("amsgrad", False)}}
    for st in saved["state"].values():
        assert st.keys() == keys["Adam" if name == "AdamW" else name]
        if "step" in st:
            assert st["step"].dtype == torch.float32 and st["step"].shape == ()
            assert st["step"].item() == 40.0

    models = [model, copy.deepcopy(model), copy.deepcopy(model)]
    dst, fresh = (getattr(dst_mod, name)(m.parameters(), lr=LR[name], **opts, **extra[dst_mod])
                  for m in models[1:])
    dst.load_state_dict(saved)
    same_state_layout(torch, src, dst, *params_of(*models[:2]))
    worst, drift = Worst(), Worst()
    for k in range(40, 100):
        backward_and_share(torch, models, (src, dst, fresh), k, dtype)
        for opt in (src, dst, fresh):
            opt.step()
        worst.add(src, dst, *params_of(*models[:2]))
        drift.add(src, fresh, *params_of(models[0], models[2]))
    same_state_layout(torch, src, dst, *params_of(*models[:2]))
    print(f"{_case_id(name, opts)} {direction} {np.dtype(dtype).name}: "
          f"params {worst.params:.2f} ULPs, "
          f"state {worst.state:.2f} ULPs; without the state {drift.params:.3g} ULPs")
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS
    assert drift.params > 1000 * MAX_ULPS


def test_loaded_state_of_wrong_shape_is_rejected_at_step(torch, pt):
    """torch's load_state_dict checks counts, not shapes: step() names the array
    and changes nothing."""
    model = mlp(torch, np.float32)
    opt = pt.Adam(model.parameters(), lr=1e-3)
    backward_and_share(torch, [model], [opt], 0, np.float32)
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    saved["state"][3]["exp_avg"] = torch.zeros(11)
    opt.load_state_dict(saved)
    before = copy.deepcopy((list(model.parameters()), opt.state_dict()))
    backward_and_share(torch, [model], [opt], 1, np.float32)
    with pytest.raises(ValueError, match=r"state\['exp_avg'\] of param_groups\[0\]\['params'\]\[3\] "
                                         r"has shape \(11,\)"):
        opt.step()
    for a, b in zip(model.parameters(), before[0]):
        assert torch.equal(a, b)
    for i, st in opt.state_dict()["state"].items():
        for key, v in st.items():
            assert torch.equal(v, before[1]["state"][i][key]), (i, key)


# --------------------------------------------------------------------------- the Optimizer API


def test_zero_grad_and_missing_gradients(dtype, torch, pt):
    """zero_grad (to None and to zeros) as torch's; parameters without a gradient
    are skipped and get no state, as with torch.optim."""
    models, (ours, theirs) = twins(torch, pt, "Adam", dtype, {"amsgrad": True})
    params, tparams = params_of(*models)
    for opt in (ours, theirs):
        opt.zero_grad(set_to_none=False)
    assert all(p.grad is None for p in params + tparams)  # no grads yet: nothing to zero
    worst = Worst()
    for k in range(30):
        backward_and_share(torch, models, (ours, theirs), k, dtype)
        if k < 10:  # the output layer frozen for the first steps
            for p in params[2:] + tparams[2:]:
                p.grad = None
        ours.step()
        theirs.step()
        if k == 9:
            assert [p in ours.state for p in params] == [p in theirs.state for p in tparams] \
                == [True, True, False, False]
        worst.add(ours, theirs, params, tparams)
    for opt in (ours, theirs):
        opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in params + tparams)
    before = [p.clone() for p in params]
    ours.step()  # zero gradients still step (Adam's momentum moves on)
    theirs.step()
    worst.add(ours, theirs, params, tparams)
    same_state_layout(torch, ours, theirs, params, tparams)
    assert not any(torch.equal(a, b) for a, b in zip(params, before))
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS
    ours.zero_grad()
    assert all(p.grad is None for p in params)
    before = copy.deepcopy((params, ours.state_dict()))
    assert ours.step() is None  # no gradients: nothing changes
    assert all(torch.equal(a, b) for a, b in zip(params, before[0]))
    assert [st["step"].item() for st in ours.state_dict()["state"].values()] == [31, 31, 21, 21]


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_step_with_closure(name, torch, pt):
    """step(closure) runs the closure once, with grad enabled, and returns its
    loss; the update uses the gradients it computed."""
    dtype = np.float64
    opts = {"SGD": {"momentum": 0.9}, "RMSprop": {"centered": True}}.get(name, {})
    models, (ours, theirs) = twins(torch, pt, name, dtype, opts)
    worst, calls = Worst(), []

    for k in range(30):
        def closure(k=k):
            calls.append(torch.is_grad_enabled())
            ours.zero_grad()
            loss = loss_of(torch, models[0], k, dtype)
            loss.backward()
            return loss

        def copy_grads():  # torch's closure: the same gradients
            for p, q in zip(models[0].parameters(), models[1].parameters()):
                q.grad = p.grad.clone()
            return "theirs"

        with torch.no_grad():
            expected = loss_of(torch, models[0], k, dtype)
            loss = ours.step(closure)
        assert isinstance(loss, torch.Tensor) and loss.item() == expected.item()
        assert theirs.step(copy_grads) == "theirs"
        worst.add(ours, theirs, *params_of(*models))
    assert calls == [True] * 30
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS


WITH_STATE = [("SGD", {"momentum": 0.9, "nesterov": True}),
             ("RMSprop", {"momentum": 0.5, "centered": True}),
             ("Adam", {"amsgrad": True}), ("AdamW", {"weight_decay": 0.05})]


@pytest.mark.parametrize("name,opts", WITH_STATE, ids=[n for n, _ in WITH_STATE])
def test_add_param_group(name, opts, dtype, torch, pt):
    """Start with the first layer; after 10 steps add the second layer as a group
    with its own lr and option; both sides stay together."""
    models = [mlp(torch, dtype), mlp(torch, dtype)]
    ours = getattr(pt, name)(models[0][0].parameters(), lr=LR[name], **opts)
    theirs = getattr(torch.optim, name)(models[1][0].parameters(), lr=LR[name], **opts,
                                        foreach=False)
    head = [p.clone() for p in models[0][2].parameters()]
    worst = Worst()
    for k in range(50):
        if k == 10:
            assert all(torch.equal(a, b) for a, b in zip(models[0][2].parameters(), head))
            extra = {"lr": LR[name] / 3, "weight_decay": 1e-3}
            ours.add_param_group({"params": models[0][2].parameters(), **extra})
            theirs.add_param_group({"params": models[1][2].parameters(), **extra})
            assert ours.param_groups[1].keys() == theirs.param_groups[1].keys() | (
                {"eps_in_sqrt"} if name == "RMSprop" else set()) | {
                "state_dtype", "master", "seed"}
        backward_and_share(torch, models, (ours, theirs), k, dtype)
        ours.step()
        theirs.step()
        worst.add(ours, theirs, *params_of(*models))
    assert [g["lr"] for g in ours.param_groups] == [LR[name], LR[name] / 3]
    assert not any(torch.equal(a, b) for a, b in zip(models[0][2].parameters(), head))
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS


SCHEDULERS = {
    "StepLR": lambda sched, opt: sched.StepLR(opt, step_size=25, gamma=0.5),
    "LambdaLR": lambda sched, opt: sched.LambdaLR(opt, [lambda e: 1 / (1 + 0.05 * e),
                                                        lambda e: 0.99 ** e]),
    "CosineAnnealingLR": lambda sched, opt: sched.CosineAnnealingLR(opt, T_max=150,
                                                                    eta_min=1e-4),
}


@pytest.mark.parametrize("name,opts", WITH_STATE, ids=[n for n, _ in WITH_STATE])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_lr_schedulers(scheduler, name, opts, torch, pt):
    """torch.optim.lr_scheduler drives both optimizers' two groups (different lr)
    identically: the same lr every step, and the same trajectory."""
    dtype = np.float32
    models, (ours, theirs) = twins(torch, pt, name, dtype, opts, two_groups=True)
    scheds = [SCHEDULERS[scheduler](torch.optim.lr_scheduler, o) for o in (ours, theirs)]
    worst, lrs = Worst(), set()
    for k in range(100):
        backward_and_share(torch, models, (ours, theirs), k, dtype)
        ours.step()
        theirs.step()
        for s in scheds:
            s.step()
        assert scheds[0].get_last_lr() == scheds[1].get_last_lr()
        assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in theirs.param_groups]
        lrs.add(tuple(scheds[0].get_last_lr()))
        worst.add(ours, theirs, *params_of(*models))
    assert len(lrs) > 3 and all(a != b for a, b in lrs)  # it scheduled, two groups apart
    assert worst.params <= MAX_ULPS and worst.state <= MAX_ULPS


# --------------------------------------------------------------------------- errors


BAD_PARAMS = {  # make(torch) -> a parameter the kernels cannot update; (error, words)
    "meta": (lambda t: t.zeros(3, device="meta"), ValueError, "on meta"),
    "complex64": (lambda t: t.zeros(3, dtype=t.complex64), TypeError, "complex64"),
    "complex128": (lambda t: t.zeros(3, dtype=t.complex128), TypeError, "complex128"),
    "non_contiguous": (lambda t: t.zeros(4, 3).t(), ValueError, "not contiguous"),
    "sparse": (lambda t: t.zeros(3).to_sparse(), ValueError, "layout torch.sparse_coo"),
}


@pytest.mark.parametrize("bad", BAD_PARAMS)
@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_bad_parameter_is_named(name, bad, torch, pt):
    make, error, words = BAD_PARAMS[bad]
    good = torch.nn.Parameter(torch.zeros(3))
    param = torch.nn.Parameter(make(torch))
    cls = getattr(pt, name)
    with pytest.raises(error, match=rf"param_groups\[0\]\['params'\]\[1\] .*{words}"):
        cls([good, param], lr=0.1)
    opt = cls([good], lr=0.1)
    with pytest.raises(error, match=rf"param_groups\[1\]\['params'\]\[0\] .*{words}"):
        opt.add_param_group({"params": [param]})
    assert len(opt.param_groups) == 1   # the refused group was not kept
    opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))]})   # a good one still goes in
    assert len(opt.param_groups) == 2


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_sparse_gradient_is_named_and_nothing_changes(name, torch, pt):
    model = mlp(torch, np.float32)
    opts = {"SGD": {"momentum": 0.9}, "RMSprop": {"momentum": 0.9}}.get(name, {})
    opt = getattr(pt, name)(model.parameters(), lr=0.1, **opts)
    for k in range(3):
        backward_and_share(torch, [model], [opt], k, np.float32)
        opt.step()
    backward_and_share(torch, [model], [opt], 3, np.float32)
    model[2].weight.grad = model[2].weight.grad.to_sparse()
    before = copy.deepcopy((list(model.parameters()), opt.state_dict()))
    with pytest.raises(ValueError, match=r"gradient of param_groups\[0\]\['params'\]\[2\] "
                                         r"is sparse"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before[0]))
    for i, st in opt.state_dict()["state"].items():
        for key, v in st.items():
            assert torch.equal(v, before[1]["state"][i][key]), (i, key)


def test_parameter_converted_after_construction_is_named_at_step(torch, pt):
    """model.double() after the optimizer built float32 state: step() names the
    parameter and changes nothing (float64 params need float64 state)."""
    model = mlp(torch, np.float32)
    opt = pt.Adam(model.parameters(), lr=0.1)
    backward_and_share(torch, [model], [opt], 0, np.float32)
    opt.step()
    backward_and_share(torch, [model], [opt], 1, np.float32)
    model[2].double()  # its parameters and their gradients
    before = copy.deepcopy((list(model.parameters()), opt.state_dict()))
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[2\] has dtype "
                                        r"float64, whose state must be float64"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before[0]))
    for i, st in opt.state_dict()["state"].items():
        for key, v in st.items():
            assert torch.equal(v, before[1]["state"][i][key]), (i, key)


@pytest.mark.parametrize("name,flag", [("SGD", "differentiable"), ("RMSprop", "capturable"),
                                       ("RMSprop", "differentiable"), ("Adam", "capturable"),
                                       ("Adam", "differentiable"), ("AdamW", "capturable"),
                                       ("AdamW", "differentiable")])
def test_capturable_and_differentiable_are_rejected(name, flag, torch, pt):
    params = [torch.nn.Parameter(torch.zeros(3))]
    getattr(torch.optim, name)(params, lr=0.1, **{flag: True})  # torch accepts it
    with pytest.raises(ValueError, match=f"{flag}=True is not supported"):
        getattr(pt, name)(params, lr=0.1, **{flag: True})
    getattr(pt, name)(params, lr=0.1, **{flag: False})


BAD_HYPER = [  # (optimizer, kwargs, argument named in our message); torch rejects these too
    ("SGD", {"lr": -1.0}, "lr"), ("SGD", {"lr": 0.1, "momentum": -0.5}, "momentum"),
    ("SGD", {"lr": 0.1, "weight_decay": -1e-3}, "weight_decay"),
    ("SGD", {"lr": 0.1, "nesterov": True}, "nesterov"),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "nesterov"),
    ("RMSprop", {"lr": -1e-3}, "lr"), ("RMSprop", {"alpha": -0.1}, "alpha"),
    ("RMSprop", {"eps": -1e-8}, "eps"), ("RMSprop", {"momentum": -0.9}, "momentum"),
    ("RMSprop", {"weight_decay": -1.0}, "weight_decay"),
    ("Adam", {"lr": -1e-3}, "lr"), ("Adam", {"lr": float("nan")}, "lr"),
    ("Adam", {"eps": -1e-8}, "eps"), ("Adam", {"betas": (1.0, 0.999)}, "beta1"),
    ("Adam", {"betas": (0.9, -0.1)}, "beta2"), ("Adam", {"weight_decay": -1e-2}, "weight_decay"),
    ("AdamW", {"lr": -1e-3}, "lr"), ("AdamW", {"betas": (0.9, 1.0)}, "beta2"),
    ("AdamW", {"weight_decay": -0.1}, "weight_decay"),
]
STRICTER = [  # torch accepts these; the kernels' ranges (ALGORITHMS.md) do not
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 1.5}, "dampening"),
    ("RMSprop", {"alpha": 1.0}, "alpha"),
]


@pytest.mark.parametrize(
    "name,kwargs,arg,torch_rejects",
    [(*c, True) for c in BAD_HYPER] + [(*c, False) for c in STRICTER],
    ids=[f"{n}-" + "-".join(f"{k}={v}" for k, v in kw.items())
         for n, kw, _ in BAD_HYPER + STRICTER])
def test_bad_hyperparameters_rejected_at_construction(name, kwargs, arg, torch_rejects, torch,
                                                      pt):
    params = [torch.nn.Parameter(torch.zeros(3))]
    if torch_rejects:
        with pytest.raises(ValueError):
            getattr(torch.optim, name)(params, **kwargs)
    with pytest.raises(ValueError, match=arg):
        getattr(pt, name)(params, **kwargs)


def test_import_pyrmsprop_does_not_import_torch():
    code = "import pyrmsprop, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   cwd=os.path.dirname(os.path.abspath(__file__)))   # not the checkout's root


@pytest.mark.parametrize("name,key", [("Adam", "exp_avg_sq"), ("RMSprop", "square_avg"),
                                      ("SGD", "momentum_buffer")])
def test_bad_loaded_state_is_named_and_nothing_changes(name, key, torch, pt):
    """torch.optim's load_state_dict does not check state shapes; the step does, and
    names the parameter by its place in param_groups, not in one compiled call."""
    ws = [torch.nn.Parameter(torch.full((n,), 1.0)) for n in (3, 4, 5)]
    opt = getattr(pt, name)([{"params": ws[:1]}, {"params": ws[1:]}], lr=0.1,
                            **({"momentum": 0.9} if name == "SGD" else {}))
    for w in ws:
        w.grad = torch.ones_like(w)
    opt.step()
    sd = opt.state_dict()
    sd["state"][2][key] = torch.zeros(7)
    opt.load_state_dict(sd)
    before = [w.detach().clone() for w in ws]
    with pytest.raises(ValueError, match=rf"state\['{key}'\] of param_groups\[1\]\['params'\]\[1\] "
                                         r"has shape \(7,\)"):
        opt.step()
    assert all(torch.equal(w, b) for w, b in zip(ws, before))
