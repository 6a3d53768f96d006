"""The binding never indexes a Python list it does not own (issue 10).

Each list argument of the ``*_multi`` forms and ``all_finite`` is snapshotted into a
tuple once, and only the snapshot is read: a list subclass whose ``__len__`` /
``__getitem__`` / ``__iter__`` lie or mutate lists, a hyperparameter whose
``__float__`` / ``__index__`` mutates them, or another thread changing a list while
the GIL is released cannot make the binding read past a list's end (before the fix,
each reproducer below crashed the interpreter: a NULL or out-of-bounds read of the
list's item array, or a heap overflow from a length of ``(2**64 + 4) // 5``).
None where a list is required is a TypeError naming it (it used to leave the slot
empty, and the kernel read through a NULL pointer).  The thread settings take ints
only: no bool, nothing negative, nothing past ``2**63 - 1`` (no OverflowError, no
wraparound).

Every crash reproducer runs in a subprocess, so a segfault fails its test instead of
killing pytest.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core
from pyrmsprop import functional as F

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pyrmsprop.__file__)))


def run_child(code: str, tmp_path, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter importing this same pyrmsprop; its output,
    or a failure with the exit status (a negative one: the signal that killed it)."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    prelude = "import numpy as np\nimport pyrmsprop\nfrom pyrmsprop import functional as F\n"
    r = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=timeout, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, (f"child exited with {r.returncode}\nstdout:\n{r.stdout}\n"
                               f"stderr:\n{r.stderr[-3000:]}")
    return r.stdout.strip()


# One call per form, with the list arguments as ``{lists}`` placeholders (by name).
CALLS = {
    "ema": ("F.ema_update_multi({avgs}, {xs}, beta=0.5)", ("avgs", "xs")),
    "rmsprop": ("F.rmsprop_update_multi({params}, {grads}, {square_avgs}, lr=0.1, "
                "momentum=0.9, momentum_buffers={momentum_buffers}, centered=True, "
                "grad_avgs={grad_avgs})",
                ("params", "grads", "square_avgs", "grad_avgs", "momentum_buffers")),
    "adam": ("F.adam_update_multi({params}, {grads}, {exp_avgs}, {exp_avg_sqs}, step=1, "
             "amsgrad=True, max_exp_avg_sqs={max_exp_avg_sqs})",
             ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs")),
    "sgd": ("F.sgd_update_multi({params}, {grads}, lr=0.1, momentum=0.9, "
            "momentum_buffers={momentum_buffers})", ("params", "grads", "momentum_buffers")),
}


def _call(rule, **override):
    template, names = CALLS[rule]
    return template.format(**{n: override.get(n, f"L[{n!r}]") for n in names}), names


_SETUP = """
N = 3
L = {{n: [np.zeros(4) for _ in range(N)] for n in {names!r}}}
"""

_REPORT = """
try:
    {call}
except (TypeError, ValueError) as exc:
    print("raised", type(exc).__name__, exc)
else:
    print("ok")
"""


def _script(rule, body, **override):
    call, names = _call(rule, **override)
    return _SETUP.format(names=names) + textwrap.dedent(body) + _REPORT.format(call=call)


@pytest.mark.parametrize("rule", list(CALLS))
def test_getitem_that_clears_another_list(rule, tmp_path):
    # The first list's __getitem__ empties the second (an exact list, whose length
    # was already checked): the binding used to read the second's freed item array.
    first, second = CALLS[rule][1][:2]
    out = run_child(_script(rule, f"""
        class Evil(list):
            def __getitem__(self, i):
                L[{second!r}].clear()
                return list.__getitem__(self, i)
        L[{first!r}] = Evil(L[{first!r}])
        """), tmp_path)
    assert out == "ok" or out.startswith("raised ValueError"), out


@pytest.mark.parametrize("rule", list(CALLS))
def test_len_that_clears_an_earlier_list(rule, tmp_path):
    # The second list's __len__ empties the first after the first's length was taken.
    first, second = CALLS[rule][1][:2]
    out = run_child(_script(rule, f"""
        class Evil(list):
            def __len__(self):
                L[{first!r}].clear()
                return N
        L[{second!r}] = Evil(L[{second!r}])
        """), tmp_path)
    assert out == "ok" or out.startswith("raised ValueError"), out


@pytest.mark.parametrize("rule", list(CALLS))
def test_lying_length_cannot_overflow_the_slot_count(rule, tmp_path):
    # (2**64 + 4) // 5 tensors: times 5 slots it wraps to 4, so the binding allocated
    # 4 slots and wrote past them (a heap overflow) for a list that claims that length
    # and returns an array for every index.
    out = run_child(_script(rule, """
        class Liar(list):
            def __len__(self):
                return (2**64 + 4) // 5
            def __getitem__(self, i):
                return np.zeros(4)
        L = {k: Liar(v) for k, v in L.items()}
        """), tmp_path)
    assert out == "ok", out


def test_all_finite_list_cleared_by_another_thread(tmp_path):
    # all_finite releases the GIL for each array; another thread emptying the list
    # then made the next arrays[t] read a NULL item array.
    out = run_child("""
        import threading, time
        arrays = [np.zeros(1 << 16) for _ in range(200)]
        lst = list(arrays)
        done = threading.Event()
        def mutate():
            for _ in range(40):
                time.sleep(0.004)
                lst.clear()
                time.sleep(0.001)
                lst.extend(arrays)
            done.set()
        th = threading.Thread(target=mutate)
        th.start()
        calls = 0
        while not done.is_set():
            assert F.all_finite(lst) is True
            calls += 1
        th.join()
        print("ok", calls > 0)
        """, tmp_path)
    assert out == "ok True", out


def test_all_finite_subclass_that_mutates_itself(tmp_path):
    out = run_child("""
        class Evil(list):
            def __len__(self):
                return 10**6
            def __getitem__(self, i):
                self.clear()
                return np.zeros(3)
        bad = np.zeros(3); bad[1] = np.nan
        print(F.all_finite(Evil([np.zeros(3), bad])), F.all_finite(Evil([np.zeros(3)])))
        """, tmp_path)
    assert out == "False True", out


@pytest.mark.parametrize("rule", list(CALLS))
def test_hyperparameter_that_mutates_the_lists(rule, tmp_path):
    # __float__ / __index__ run before the lists are read (and did before the fix
    # too); whatever they do to the lists, the call sees one consistent snapshot.
    hyper = {"ema": "beta", "rmsprop": "lr", "adam": "lr", "sgd": "lr"}[rule]
    call, names = _call(rule)
    call = call.replace(f"{hyper}=0.5" if rule == "ema" else f"{hyper}=0.1",
                        f"{hyper}=Sneaky()") if rule != "adam" else call.replace(
                            "step=1", "step=Step(), lr=Sneaky()")
    assert "Sneaky()" in call
    out = run_child(_SETUP.format(names=names) + textwrap.dedent(f"""
        import numbers
        class Sneaky:
            def __float__(self):
                L[{names[1]!r}].clear()
                return 0.5
        numbers.Real.register(Sneaky)
        class Step:
            def __index__(self):
                L[{names[0]!r}].pop()
                return 1
        """) + _REPORT.format(call=call), tmp_path)
    assert out.startswith("raised ValueError") and "has" in out, out


@pytest.mark.parametrize("rule", list(CALLS))
def test_none_for_a_required_list_is_a_type_error(rule, tmp_path):
    # A required list given as None was skipped, and the kernel read its NULL slot.
    names = CALLS[rule][1]
    required = names[:2] if rule == "sgd" else names
    for name in required:
        out = run_child(_script(rule, "", **{name: "None"}), tmp_path)
        if name in ("grad_avgs", "momentum_buffers", "max_exp_avg_sqs"):
            assert out.startswith("raised ValueError") and name in out, out   # _needs
        else:
            assert out == f"raised TypeError {name} must be a list of arrays, got NoneType", out


def test_none_in_process():
    a = [np.zeros(3)]
    with pytest.raises(TypeError, match=r"^xs must be a list of arrays, got NoneType"):
        F.ema_update_multi(a, None, beta=0.5)
    with pytest.raises(TypeError, match=r"^avgs must be a list of arrays, got NoneType"):
        F.ema_update_multi(None, a, beta=0.5)
    with pytest.raises(TypeError, match=r"^grads must be a list"):
        F.sgd_update_multi(a, None, lr=0.1, _validate_only=True)
    with pytest.raises(TypeError, match=r"^square_avgs must be a list"):
        F.rmsprop_update_multi(a, a, None)
    with pytest.raises(TypeError, match=r"^arrays must be a list"):
        F.all_finite(None)
    # a check-only call may leave the state lists out (the optimizers' first check)
    F.rmsprop_update_multi(a, [np.zeros(3)], None, _validate_only=True)
    F.adam_update_multi(a, [np.zeros(3)], None, None, step=1, _validate_only=True)
    assert a[0].tolist() == [0.0, 0.0, 0.0]


def test_snapshot_keeps_arrays_alive_and_tuples_work():
    avgs = (np.zeros(3), np.zeros(2))
    F.ema_update_multi(avgs, (np.ones(3), np.ones(2)), beta=0.5)
    assert [a.tolist() for a in avgs] == [[0.5] * 3, [0.5] * 2]
    assert F.all_finite((np.zeros(2),)) is True
    F.ema_update_multi([], (), beta=0.5)


# ---- thread settings --------------------------------------------------------------

INT_MAX = 2**63 - 1


@pytest.mark.parametrize("bad, exc", [
    (True, TypeError), (False, TypeError), (np.bool_(True), TypeError),
    (1.0, TypeError), (1.5, TypeError), ("3", TypeError), (None, TypeError),
    (np.float64(2.0), TypeError),
    (-1, ValueError), (-(2**63), ValueError), (-(2**64), ValueError),
    (2**63, ValueError), (2**64, ValueError), (2**200, ValueError),
    (np.uint64(2**63), ValueError),
])
def test_set_thread_threshold_rejects(bad, exc):
    before = _core.get_thread_threshold()
    with pytest.raises(exc, match=r"^n must be"):
        _core.set_thread_threshold(bad)
    assert _core.get_thread_threshold() == before


@pytest.mark.parametrize("good", [0, 1, 12345, np.int64(7), np.uint8(3), INT_MAX])
def test_set_thread_threshold_accepts(good):
    _core.set_thread_threshold(good)
    assert _core.get_thread_threshold() == int(good)


@pytest.mark.parametrize("bad, exc", [
    (True, TypeError), (False, TypeError), (np.bool_(True), TypeError),
    (2.0, TypeError), ("2", TypeError), (None, TypeError),
    (0, ValueError), (-1, ValueError), (257, ValueError), (2**31, ValueError),
    (2**32 + 1, ValueError), (2**63, ValueError), (2**64 + 1, ValueError),
    (-(2**64) + 1, ValueError), (np.int64(-3), ValueError),
])
def test_set_num_threads_rejects(bad, exc):
    before = pyrmsprop.get_num_threads()
    with pytest.raises(exc, match=r"^n must be"):
        pyrmsprop.set_num_threads(bad)
    assert pyrmsprop.get_num_threads() == before


@pytest.mark.parametrize("good", [1, 2, np.int32(3), 256])
def test_set_num_threads_accepts(good):
    pyrmsprop.set_num_threads(good)
    assert pyrmsprop.get_num_threads() == int(good)


@pytest.mark.parametrize("bad", [True, np.bool_(True)])
def test_step_rejects_bools_of_both_kinds(bad):
    # numpy < 2.3 still lets np.bool_ through operator.index (with a DeprecationWarning),
    # which took step=np.True_ as step 1; found by tools/ci/pythons.sh on CPython 3.10
    p = np.ones(8, np.float32)
    g, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    before = [a.tobytes() for a in (p, g, m, v)]
    with pytest.raises(TypeError, match=r"^step must be an integer"):
        pyrmsprop.adam_update(p, g, m, v, step=bad)
    assert [a.tobytes() for a in (p, g, m, v)] == before
