"""Parity with torch.optim: RMSprop, Adam, AdamW and SGD, every option combination
torch has, its single-tensor, foreach and (where it exists) fused paths.

Both sides get the same random gradients for 200 steps on 10_000 elements.  torch
fuses multiply-adds and uses its own vectorized sqrt, so the numbers agree to
rounding, not bit for bit.  The criterion (issue 2): after 200 steps, the
difference in each array (the parameter and every state array), divided by the
largest magnitude that array has held, is within 2e-5 (float32) or 1e-12 (float64).

Only the end state is held to it, as the issue says: in the first steps RMSprop's
g / sqrt(mean g*g) is O(1) whatever the size of g, so an element whose gradient
nearly cancels its weight-decay term (g + wd * p, which torch rounds once with an
FMA and -ffp-contract=off rounds twice) carries that cancellation's relative error
into an O(1) value.  Measured: float32, RMSprop wd=0.05, momentum, centered,
seed 0, step 1: momentum_buffer off by 5e-5 of its peak (torch is 3e-5 off exact
float64 there too); the state forgets it and the end state agrees to ~1e-7.  The
worst difference at any step is printed next to the final one.

Each case prints one line; `pytest -s tests/test_torch.py` ends with a summary per
optimizer and dtype (worst over options and paths), in relative terms and in ULPs.
"""

import itertools

import numpy as np
import pytest

import pyrmsprop

N = 10_000
STEPS = 200
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}
RESULTS = []  # one dict per case, summarized when the module ends
COLUMNS = {  # result key -> (heading, format)
    "rel": ("|diff|/peak", "11.2e"),
    "peak_ulp": ("ULPs of peak", "12.1f"),
    "any_step": ("any step", "9.2e"),
    "ulp99": ("elementwise ULPs p99", "20.1f"),
    "ulp": ("max", "8.2g"),
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread_and_summary(torch):
    """torch's thread pool gains nothing at 10_000 elements and, on a busy 2-core
    machine, made these tests 6x slower; elementwise results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    if not RESULTS:
        return
    print(f"\nworst difference from torch.optim after {STEPS} steps, over all options and paths")
    print(f"  {'optimizer':9} {'dtype':8} {'cases':>5} "
          + " ".join(f"{head:>{fmt.split('.')[0]}}" for head, fmt in COLUMNS.values()))
    for key in sorted({(r["optimizer"], r["dtype"]) for r in RESULTS}):
        rows = [r for r in RESULTS if (r["optimizer"], r["dtype"]) == key]
        print(f"  {key[0]:9} {key[1]:8} {len(rows):5d} "
              + " ".join(f"{max(r[k] for r in rows):{fmt}}" for k, (_, fmt) in COLUMNS.items()))


def _ids(opts):
    short = {"weight_decay": "wd", "momentum": "mom", "dampening": "damp"}
    return "-".join(k if v is True else f"{short.get(k, k)}_default" if v is None
                    else f"{short.get(k, k)}{v}" for k, v in opts.items()
                    if v or v is None) or "plain"


def run_parity(torch, name, dtype, path, opts, make_torch, ours_step, state_names, *,
               steps=STEPS, seed=0):
    """Drive torch's optimizer and `ours_step` with the same gradients; check every
    array against TOL relative to the largest magnitude it has held."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(N).astype(dt)
    scale = 10.0 ** rng.uniform(-3.0, 1.0, N)  # gradients spanning four decades
    tparam = torch.tensor(param)
    kind = {"single": {"foreach": False}, "foreach": {"foreach": True},
            "fused": {"fused": True}}[path]
    opt = make_torch([tparam], **kind)
    state = {key: np.zeros_like(param) for key in state_names}
    names = ["param", *state_names]
    peak = dict.fromkeys(names, 0.0)
    rel = dict.fromkeys(names, 0.0)       # |ours - torch| / peak, this step
    any_step = dict.fromkeys(names, 0.0)  # the same, worst over all steps
    ulp = dict.fromkeys(names, 0.0)       # |ours - torch| / spacing(the value), elementwise
    ulp99 = dict.fromkeys(names, 0.0)     # its 99th percentile
    for t in range(1, steps + 1):
        g = (rng.standard_normal(N) * scale).astype(dt)
        tparam.grad = torch.tensor(g)
        opt.step()
        ours_step(param, g, state, t)
        theirs = {"param": tparam.numpy(), **{k: opt.state[tparam][k].numpy() for k in state_names}}
        for key, a in {"param": param, **state}.items():
            b = theirs[key]
            diff = np.abs(a - b)
            peak[key] = max(peak[key], float(np.abs(a).max()), float(np.abs(b).max()))
            assert np.isfinite(peak[key]), (key, t)
            rel[key] = float(diff.max()) / peak[key] if peak[key] else 0.0
            any_step[key] = max(any_step[key], rel[key])
            if t % 20 == 0:
                ulps = diff / np.spacing(np.maximum(np.abs(a), np.abs(b)))
                ulp[key] = max(ulp[key], float(ulps.max()))
                ulp99[key] = max(ulp99[key], float(np.quantile(ulps, 0.99)))
    worst = max(names, key=rel.get)
    result = {"optimizer": name, "dtype": dt.name, "path": path, "opts": _ids(opts),
              "rel": rel[worst], "array": worst,
              "peak_ulp": max(rel[k] * peak[k] / float(np.spacing(dt.type(peak[k])))
                              for k in names),
              "any_step": max(any_step.values()),
              "ulp": max(ulp.values()), "ulp99": max(ulp99.values())}
    RESULTS.append(result)
    print(f"\n{name} {dt.name} {path} {result['opts']} ({pyrmsprop.simd_target()}): after "
          f"{steps} steps |diff|/peak {rel[worst]:.2e} ({worst}) = {result['peak_ulp']:.1f} "
          f"ULPs of the peak; at any step {result['any_step']:.2e}; elementwise ULPs p99 "
          f"{result['ulp99']:.1f}, max {result['ulp']:.2g}")
    for key in names:
        assert rel[key] <= TOL[dt], (key, rel[key], TOL[dt])
    return result


# --------------------------------------------------------------------------- RMSprop

RMSPROP_HP = {"lr": 5e-3, "alpha": 0.95, "eps": 1e-6}
RMSPROP = [{"weight_decay": wd, "momentum": m, "centered": c, "maximize": mx}
           for wd, m, c, mx in itertools.product((0.0, 0.1), (0.0, 0.9), (False, True),
                                                 (False, True))]


def rmsprop_case(torch, dtype, path, opts, **kw):
    def ours(p, g, s, t):
        pyrmsprop.rmsprop_update(p, g, s["square_avg"], **RMSPROP_HP, **opts,
                                 grad_avg=s.get("grad_avg"),
                                 momentum_buffer=s.get("momentum_buffer"))

    states = (["square_avg"] + ["grad_avg"] * opts["centered"]
              + ["momentum_buffer"] * (opts["momentum"] > 0))
    return run_parity(torch, "RMSprop", dtype, path, opts,
                      lambda ps, **k: torch.optim.RMSprop(ps, **RMSPROP_HP, **opts, **k),
                      ours, states, **kw)


@pytest.mark.parametrize("path", ["single", "foreach"])
@pytest.mark.parametrize("opts", RMSPROP, ids=_ids)
def test_rmsprop(opts, path, dtype, torch):
    rmsprop_case(torch, dtype, path, opts)


# --------------------------------------------------------------------------- Adam, AdamW

ADAM_HP = {"lr": 2e-3, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7}
ADAM = [{"weight_decay": wd, "amsgrad": a, "maximize": mx}
        for wd, a, mx in itertools.product((0.0, 0.05), (False, True), (False, True))]
ADAMW = [{"weight_decay": wd, "amsgrad": a, "maximize": mx}
         for wd, a, mx in itertools.product((None, 0.0, 0.1), (False, True), (False, True))]


def adam_case(torch, dtype, path, opts, decoupled, **kw):
    hp = {"lr": ADAM_HP["lr"], "betas": (ADAM_HP["beta1"], ADAM_HP["beta2"]),
          "eps": ADAM_HP["eps"]}
    torch_opts = {k: v for k, v in opts.items() if v is not None}  # None: torch's default
    weight_decay = opts["weight_decay"]
    if weight_decay is None:
        weight_decay = 1e-2
        assert torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"] == weight_decay

    def ours(p, g, s, t):
        pyrmsprop.adam_update(p, g, s["exp_avg"], s["exp_avg_sq"], step=t, **ADAM_HP,
                              weight_decay=weight_decay, decoupled_weight_decay=decoupled,
                              amsgrad=opts["amsgrad"], maximize=opts["maximize"],
                              max_exp_avg_sq=s.get("max_exp_avg_sq"))

    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    states = ["exp_avg", "exp_avg_sq"] + ["max_exp_avg_sq"] * opts["amsgrad"]
    return run_parity(torch, cls.__name__, dtype, path, opts,
                      lambda ps, **k: cls(ps, **hp, **torch_opts, **k), ours, states, **kw)


@pytest.mark.parametrize("path", ["single", "foreach", "fused"])
@pytest.mark.parametrize("opts", ADAM, ids=_ids)
def test_adam(opts, path, dtype, torch):
    adam_case(torch, dtype, path, opts, decoupled=False)


@pytest.mark.parametrize("path", ["single", "foreach", "fused"])
@pytest.mark.parametrize("opts", ADAMW, ids=_ids)
def test_adamw(opts, path, dtype, torch):
    adam_case(torch, dtype, path, opts, decoupled=True)


# --------------------------------------------------------------------------- SGD

SGD_LR = 1e-2
SGD = [{"momentum": m, "dampening": d, "nesterov": n, "weight_decay": wd, "maximize": mx}
       for (m, d, n), wd, mx in itertools.product(
           [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.3, False), (0.9, 0.0, True)],
           (0.0, 0.1), (False, True))]


def sgd_case(torch, dtype, path, opts, **kw):
    def ours(p, g, s, t):
        # torch's first momentum step copies g (after maximize and weight decay) into
        # the buffer: a zero buffer updated with dampening 0 holds exactly that.
        pyrmsprop.sgd_update(p, g, lr=SGD_LR, **{**opts, "dampening": opts["dampening"] * (t > 1)},
                             momentum_buffer=s.get("momentum_buffer"))

    states = ["momentum_buffer"] * (opts["momentum"] > 0)
    return run_parity(torch, "SGD", dtype, path, opts,
                      lambda ps, **k: torch.optim.SGD(ps, lr=SGD_LR, **opts, **k),
                      ours, states, **kw)


@pytest.mark.parametrize("path", ["single", "foreach"])
@pytest.mark.parametrize("opts", SGD, ids=_ids)
def test_sgd(opts, path, dtype, torch):
    sgd_case(torch, dtype, path, opts)


# --------------------------------------------------------------------------- every SIMD target


def test_every_simd_target_matches_torch(simd, dtype, torch):
    """The richest option set of each rule, on each kernel build this CPU runs."""
    assert pyrmsprop.simd_target() == simd
    all_on = {"weight_decay": 0.1, "maximize": True}
    rmsprop_case(torch, dtype, "single", {**all_on, "momentum": 0.9, "centered": True})
    adam_case(torch, dtype, "single", {**all_on, "amsgrad": True}, decoupled=False)
    adam_case(torch, dtype, "fused", {**all_on, "amsgrad": True}, decoupled=True)
    sgd_case(torch, dtype, "single",
             {**all_on, "momentum": 0.9, "dampening": 0.0, "nesterov": True})
    sgd_case(torch, dtype, "fused",
             {**all_on, "momentum": 0.9, "dampening": 0.3, "nesterov": False})
