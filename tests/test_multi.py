"""The list entry points (pyrmsprop._core.*_multi): one compiled call for a list
of tensors must give the bytes of one single-array call per tensor, on every
SIMD target and thread count; bad lists raise naming the entry ("params[3]")
and modify nothing.  Also SGD's first momentum step and all_finite."""

import itertools
import re
from typing import NamedTuple

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core

# vector tails, empty and 0-d tensors, and one tensor of several thread chunks
SHAPES = [(), (0,), (7,), (3, 5), (0, 4), (64,), (65,), (2, 3, 17), (100_003,), (1,)]
STEPS = 3


class Rule(NamedTuple):
    multi: object
    single: object
    names: tuple     # single-call array arguments, in order (the lists add an "s")
    npos: int        # how many of them are positional
    written: frozenset
    needs: dict      # optional state array -> options -> bool
    options: list    # option sets covering every combination the kernel has


RULES = {
    "ema": Rule(_core.ema_update_multi, pyrmsprop.ema_update, ("avg", "x"), 2,
                frozenset({"avg"}), {}, [{"beta": b} for b in (0.0, 0.9, 0.999)]),
    "rmsprop": Rule(
        _core.rmsprop_update_multi, pyrmsprop.rmsprop_update,
        ("param", "grad", "square_avg", "grad_avg", "momentum_buffer"), 3,
        frozenset({"param", "square_avg", "grad_avg", "momentum_buffer"}),
        {"grad_avg": lambda o: o["centered"], "momentum_buffer": lambda o: o["momentum"] > 0},
        [{"lr": 1e-2, "alpha": 0.9, "eps": 1e-6, "momentum": m, "centered": c,
          "eps_in_sqrt": e, "weight_decay": wd, "maximize": mx}
         for m, c, e, wd, mx in itertools.product((0.0, 0.9), *[(False, True)] * 2,
                                                  (0.0, 0.1), (False, True))]),
    "adam": Rule(
        _core.adam_update_multi, pyrmsprop.adam_update,
        ("param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"), 4,
        frozenset({"param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
        {"max_exp_avg_sq": lambda o: o["amsgrad"]},
        [{"lr": 1e-2, "amsgrad": a, "decoupled_weight_decay": d, "weight_decay": wd,
          "maximize": mx}
         for a, d, wd, mx in itertools.product(*[(False, True)] * 2, (0.0, 0.1),
                                               (False, True))]),
    "sgd": Rule(
        _core.sgd_update_multi, pyrmsprop.sgd_update, ("param", "grad", "momentum_buffer"), 2,
        frozenset({"param", "momentum_buffer"}),
        {"momentum_buffer": lambda o: o["momentum"] > 0},
        [{"lr": 0.1, "momentum": m, "dampening": d, "nesterov": n, "weight_decay": wd,
          "maximize": mx}
         for (m, d, n), wd, mx in itertools.product(
             [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.3, False), (0.9, 0.0, True)],
             (0.0, 0.1), (False, True))]),
}


@pytest.fixture(autouse=True)
def split_everything():
    """Threshold 0: with 2 threads every call is split, even a list of tiny tensors
    (conftest restores the threshold)."""
    _core.set_thread_threshold(0)


def used_names(rule, opts):
    return [n for n in rule.names if n not in rule.needs or rule.needs[n](opts)]


def make_tensors(rule, dtype, shapes, rng):
    """One dict of arrays per tensor (every slot the rule has); state arrays that
    are square averages stay >= 0."""
    tensors = []
    for shape in shapes:
        arrays = {n: rng.standard_normal(shape).astype(dtype) for n in rule.names}
        for n in ("square_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if n in arrays:
                np.abs(arrays[n], out=arrays[n])
                arrays[n] += 1
        if "grad_avg" in arrays:
            arrays["grad_avg"] *= 0.1
        tensors.append(arrays)
    return tensors


def multi_call(rule, tensors, names, **kw):
    lists = [[t[n] for t in tensors] for n in names]
    pos = [lst for n, lst in zip(names, lists) if rule.names.index(n) < rule.npos]
    rule.multi(*pos, **{n + "s": lst for n, lst in zip(names, lists)
                        if rule.names.index(n) >= rule.npos}, **kw)


def single_call(rule, arrays, names, **kw):
    pos = [arrays[n] for n in names if rule.names.index(n) < rule.npos]
    rule.single(*pos, **{n: arrays[n] for n in names if rule.names.index(n) >= rule.npos},
                **kw)


def snapshot(tensors):
    return [{n: a.tobytes() for n, a in t.items()} for t in tensors]


@pytest.mark.parametrize("name", list(RULES))
def test_multi_matches_single_calls(name, dtype, simd, n_threads, rng):
    rule = RULES[name]
    assert pyrmsprop.simd_target() == simd and pyrmsprop.get_num_threads() == n_threads
    start = make_tensors(rule, dtype, SHAPES, rng)
    for opts in rule.options:
        names = used_names(rule, opts)
        ours = [{n: a.copy() for n, a in t.items()} for t in start]
        ref = [{n: a.copy() for n, a in t.items()} for t in start]
        for step in range(1, STEPS + 1):
            kw = {**opts, "step": step} if name == "adam" else opts
            multi_call(rule, ours, names, **kw)
            for arrays in ref:
                single_call(rule, arrays, names, **kw)
        assert snapshot(ours) == snapshot(ref), opts
        changed = [n for n in names if n != "grad" and n != "x"
                   and not np.array_equal(ours[-3][n], start[-3][n])]
        assert changed, "nothing was updated"


def test_threads_and_targets_agree(dtype, rng):
    """Adam and RMSprop over the list: the same bytes on every target and thread count."""
    results = []
    old_simd, old_threads = pyrmsprop.simd_target(), pyrmsprop.get_num_threads()
    try:
        for simd, threads in itertools.product(pyrmsprop.simd_targets(), (1, 2)):
            pyrmsprop.set_simd(simd)
            pyrmsprop.set_num_threads(threads)
            out = []
            for name in ("adam", "rmsprop"):
                rule = RULES[name]
                tensors = make_tensors(rule, dtype, SHAPES, np.random.default_rng(1))
                opts = rule.options[-1]
                kw = {**opts, "step": 2} if name == "adam" else opts
                multi_call(rule, tensors, used_names(rule, opts), **kw)
                out.append(snapshot(tensors))
            results.append(out)
    finally:
        pyrmsprop.set_simd(old_simd)
        pyrmsprop.set_num_threads(old_threads)
    assert all(r == results[0] for r in results[1:])


# --------------------------------------------------------------------------- SGD's first step


@pytest.mark.parametrize("nesterov,dampening", [(False, 0.0), (False, 0.3), (True, 0.0)])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sgd_first_step(nesterov, dampening, maximize, weight_decay, dtype, rng):
    """first_step=True: buf <- g after maximize and weight decay, whatever the buffer
    held and whatever the dampening (torch's first momentum step)."""
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    bufs = [np.full(s, 7.0, dtype) for s in SHAPES]  # stale values: must be ignored
    start = [p.copy() for p in params]
    T = np.dtype(dtype).type
    lr, mu = 0.1, 0.9
    _core.sgd_update_multi(params, grads, lr=lr, momentum=mu, momentum_buffers=bufs,
                           dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
                           maximize=maximize, first_step=True)
    for p0, g, p, buf in zip(start, grads, params, bufs):
        # the kernel's order of operations, in numpy's (unfused) arithmetic of the dtype
        g = -g if maximize else g
        if weight_decay:
            g = g + T(weight_decay) * p0
        assert buf.tobytes() == g.tobytes()
        step = g + T(mu) * g if nesterov else g
        assert p.tobytes() == (p0 - T(lr) * step).tobytes()
    # the next step is an ordinary momentum step
    ref_p, ref_b = [p.copy() for p in params], [b.copy() for b in bufs]
    _core.sgd_update_multi(params, grads, lr=lr, momentum=mu, momentum_buffers=bufs,
                           dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
                           maximize=maximize)
    for p, g, b in zip(ref_p, grads, ref_b):
        pyrmsprop.sgd_update(p, g, lr=lr, momentum=mu, momentum_buffer=b, dampening=dampening,
                             nesterov=nesterov, weight_decay=weight_decay, maximize=maximize)
    assert snapshot([{"p": p, "b": b} for p, b in zip(params, bufs)]) == \
        snapshot([{"p": p, "b": b} for p, b in zip(ref_p, ref_b)])


def test_sgd_first_step_without_momentum_is_plain_sgd(rng):
    p = rng.standard_normal(100)
    g = rng.standard_normal(100)
    ref = p.copy()
    _core.sgd_update_multi([p], [g], lr=0.1, first_step=True)
    pyrmsprop.sgd_update(ref, g, lr=0.1)
    assert p.tobytes() == ref.tobytes()


# --------------------------------------------------------------------------- bad lists

ERR_SHAPES = [(4,), (3, 5), (), (3, 5), (6,)]  # tensors 1 and 3 share a shape
FULL = {"ema": {"beta": 0.9}, "rmsprop": {"momentum": 0.9, "centered": True},
        "adam": {"step": 2, "amsgrad": True}, "sgd": {"lr": 0.1, "momentum": 0.9}}


def error_cases(name):
    """(label, mutate(lists) -> None, exception, regex)."""
    rule = RULES[name]
    lists = [n + "s" for n in rule.names]
    n = len(ERR_SHAPES)
    cases = []
    for k, lst in enumerate(lists):
        t = (k + 2) % n  # entries other than the first, and tensor 0 for one list

        def wrong_shape(ls, lst=lst, t=t):
            ls[lst][t] = np.zeros(ERR_SHAPES[t] + (2,), ls[lst][t].dtype)

        def wrong_dtype(ls, lst=lst, t=t):
            ls[lst][t] = ls[lst][t].astype(np.float64)

        def int_dtype(ls, lst=lst, t=t):
            ls[lst][t] = ls[lst][t].astype(np.int32)

        def not_array(ls, lst=lst, t=t):
            ls[lst][t] = ls[lst][t].tolist()

        def short(ls, lst=lst):
            ls[lst] = ls[lst][:-1]

        def not_list(ls, lst=lst):
            ls[lst] = iter(ls[lst])

        def strided(ls, lst=lst):
            a = ls[lst][4]
            ls[lst][4] = np.zeros(a.size * 2, a.dtype)[::2]

        cases += [
            (f"shape-{lst}", wrong_shape, ValueError,
             rf"{lst}\[{t}\] has shape .* but {lists[0]}\[{t}\]" if k else rf"{lst}\[{t}\]"),
            (f"dtype-{lst}", wrong_dtype, TypeError,
             rf"{lst}\[{t}\] has dtype float64,? but \w+\[0\] has dtype float32"),
            (f"int-{lst}", int_dtype, TypeError,
             rf"{lst}\[{t}\] must have dtype float32, float64, bfloat16 or float16, got int32"),
            (f"notarray-{lst}", not_array, TypeError, rf"{lst}\[{t}\] must be a numpy array"),
            (f"short-{lst}", short, ValueError,
             f"{lst} has {n - 1} arrays but {lists[0]} has {n}" if k else
             f"{lists[1]} has {n} arrays but {lst} has {n - 1}"),
            (f"notlist-{lst}", not_list, TypeError, f"{lst} must be a list of arrays"),
            (f"strided-{lst}", strided, ValueError, rf"{lst}\[4\] is not C-contiguous"),
        ]
        if rule.names[k] in rule.written:
            def readonly(ls, lst=lst, t=t):
                ls[lst][t].flags.writeable = False

            other = lists[(k + 1) % len(lists)]

            def same(ls, lst=lst, other=other):  # another list's entry, another tensor
                ls[lst][1] = ls[other][3]

            def partial(ls, lst=lst):  # written entries 1 and 3 of one list share bytes
                base = np.zeros(20, ls[lst][1].dtype)
                ls[lst][1], ls[lst][3] = base[:15].reshape(3, 5), base[5:].reshape(3, 5)
            cases += [
                (f"readonly-{lst}", readonly, ValueError, rf"{lst}\[{t}\] is read-only"),
                (f"overlap-{lst}-{other}", same, ValueError,
                 rf"({lst}\[1\] and {other}\[3\]|{other}\[3\] and {lst}\[1\]) overlap"),
                (f"partial-{lst}", partial, ValueError,
                 rf"{lst}\[1\] and {lst}\[3\] overlap in memory"),
            ]
    return cases


ERROR_CASES = [pytest.param(name, *case, id=f"{name}-{case[0]}")
               for name in RULES for case in error_cases(name)]


@pytest.mark.parametrize("name,label,mutate,exc,pattern", ERROR_CASES)
def test_bad_lists(name, label, mutate, exc, pattern):
    rule = RULES[name]
    tensors = make_tensors(rule, np.float32, ERR_SHAPES, np.random.default_rng(0))
    lists = {n + "s": [t[n] for t in tensors] for n in rule.names}
    mutate(lists)
    everything = [a for lst in lists.values() if isinstance(lst, list) for a in lst
                  if isinstance(a, np.ndarray)]
    everything += [a for t in tensors for a in t.values()]
    before = [a.tobytes() for a in everything]
    names = list(lists)
    pos = [lists[n] for n in names[:rule.npos]]
    with pytest.raises(exc, match=pattern):
        rule.multi(*pos, **{n: lists[n] for n in names[rule.npos:]}, **FULL[name])
    assert [a.tobytes() for a in everything] == before


def test_missing_state_list_and_bad_hyperparameter(rng):
    p, g, m, v = (rng.standard_normal(5) for _ in range(4))
    before = [a.tobytes() for a in (p, g, m, v)]
    with pytest.raises(ValueError, match="amsgrad=True needs max_exp_avg_sqs"):
        _core.adam_update_multi([p], [g], [m], [v], step=1, amsgrad=True)
    with pytest.raises(ValueError, match="momentum > 0 needs momentum_buffers"):
        _core.sgd_update_multi([p], [g], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="centered=True needs grad_avgs"):
        _core.rmsprop_update_multi([p], [g], [v], centered=True)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        _core.adam_update_multi([p], [g], [m], [v], step=1, lr=-1.0)
    with pytest.raises(TypeError, match="avgs must be a list of arrays, got ndarray"):
        _core.ema_update_multi(p, g, beta=0.9)
    assert [a.tobytes() for a in (p, g, m, v)] == before


def test_shared_read_only_inputs_are_allowed(rng):
    """Two tensors may read the same gradient (only written arrays must not overlap);
    tuples work like lists, and an empty list is a no-op."""
    p = [rng.standard_normal((3, 5)) for _ in range(2)]
    g = rng.standard_normal((3, 5))
    ref = [a.copy() for a in p]
    _core.sgd_update_multi(tuple(p), (g, g), lr=0.1)
    for a in ref:
        pyrmsprop.sgd_update(a, g, lr=0.1)
    assert [a.tobytes() for a in p] == [a.tobytes() for a in ref]
    _core.adam_update_multi([], [], [], [], step=1)


# --------------------------------------------------------------------------- all_finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite(bad, dtype):
    arrays = [np.ones(s, dtype) for s in SHAPES]
    assert _core.all_finite(arrays)
    for t in (0, 2, 6, 8):   # 0-d, vector tail, past the first chunk of the large one
        for pos in {0, arrays[t].size - 1, arrays[t].size // 2}:
            arrays[t].flat[pos] = bad
            assert not _core.all_finite(arrays), (t, pos)
            arrays[t].flat[pos] = 1.0
    big = np.finfo(dtype).max
    assert _core.all_finite([np.array([big, -big, 0.0, -0.0, np.finfo(dtype).tiny / 2], dtype)])


def test_all_finite_mixed_dtypes_and_edges():
    f32, f64 = np.ones(70, np.float32), np.ones(33, np.float64)
    assert _core.all_finite([f32, f64]) and _core.all_finite((f64, f32))
    assert _core.all_finite([]) and _core.all_finite([np.zeros(0, np.float32)])
    f64[-1] = np.nan
    assert not _core.all_finite([f32, f64])
    f64[-1] = 1.0
    f32[-1] = -np.inf
    assert not _core.all_finite([f64, f32])
    ro = np.ones(3)
    ro.flags.writeable = False
    assert _core.all_finite([ro, np.ones(10)[::2].copy()])
    with pytest.raises(TypeError, match="arrays must be a list"):
        _core.all_finite(np.ones(3))
    with pytest.raises(TypeError, match=re.escape("arrays[1]")):
        _core.all_finite([np.ones(3), np.ones(3, np.int64)])
