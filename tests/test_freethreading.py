"""Many Python threads at once (issue 10; what free-threaded CPython allows, and what
the GIL build allows while updates run with the GIL released).

Eight worker threads each run their own trajectory -- every rule, single and list
form, float32 and float64, sizes below and above the split threshold -- while two
other threads keep changing the pool's thread count, the split threshold and the
SIMD target.  Every final byte must equal the same trajectory run serially with
the default settings: the settings change how a call is split and which target runs
it, never what it computes.  ``tools/ci/freethreaded.sh`` runs this with the GIL
disabled.
"""

import sys
import threading

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core
from pyrmsprop import functional as F

STEPS = 12
SIZES = (1_000, 70_001)      # one call below the default split threshold, one above


def _arrays(rule, dtype, n, seed, count):
    """``count`` tensors of the rule's arrays: param/avg, grad/x, then the state."""
    rng = np.random.default_rng(seed)
    width = {"ema": 2, "rmsprop": 5, "adam": 5, "sgd": 3}[rule]
    out = []
    for t in range(count):
        arrs = [rng.uniform(-1, 1, n + 7 * t).astype(dtype) for _ in range(width)]
        for k in range(2, width):
            arrs[k] = np.abs(arrs[k])      # second moments stay non-negative
        out.append(arrs)
    return out


def _step(rule, multi, tensors, step):
    cols = list(zip(*tensors))
    if rule == "ema":
        if multi:
            F.ema_update_multi(list(cols[0]), list(cols[1]), beta=0.9)
        else:
            for a, x in tensors:
                F.ema_update(a, x, beta=0.9)
    elif rule == "rmsprop":
        kw = dict(lr=1e-2, alpha=0.9, eps=1e-8, weight_decay=0.1, momentum=0.9,
                  centered=True)
        if multi:
            F.rmsprop_update_multi(list(cols[0]), list(cols[1]), list(cols[2]),
                                   grad_avgs=list(cols[3]), momentum_buffers=list(cols[4]),
                                   **kw)
        else:
            for p, g, s, ga, mb in tensors:
                F.rmsprop_update(p, g, s, grad_avg=ga, momentum_buffer=mb, **kw)
    elif rule == "adam":
        kw = dict(step=step, lr=1e-2, weight_decay=0.1, amsgrad=True,
                  decoupled_weight_decay=step % 2 == 0)
        if multi:
            F.adam_update_multi(list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]),
                                max_exp_avg_sqs=list(cols[4]), **kw)
        else:
            for p, g, m, v, vmax in tensors:
                F.adam_update(p, g, m, v, max_exp_avg_sq=vmax, **kw)
    else:
        kw = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.1)
        if multi:
            F.sgd_update_multi(list(cols[0]), list(cols[1]), momentum_buffers=list(cols[2]),
                               **kw)
        else:
            for p, g, mb in tensors:
                F.sgd_update(p, g, momentum_buffer=mb, **kw)


def _trajectory(job):
    rule, dtype, multi, n, seed = job
    tensors = _arrays(rule, dtype, n, seed, 3 if multi else 2)
    for step in range(1, STEPS + 1):
        _step(rule, multi, tensors, step)
    return [a.tobytes() for arrs in tensors for a in arrs]


JOBS = [(rule, dtype, multi, n, seed)
        for seed, (rule, dtype, multi, n) in enumerate(
            (r, d, m, n) for r in ("ema", "rmsprop", "adam", "sgd")
            for d in (np.float32, np.float64) for m in (False, True) for n in SIZES)]


@pytest.fixture
def restore_settings():
    saved = (pyrmsprop.get_num_threads(), _core.get_thread_threshold(),
             pyrmsprop.simd_target())
    yield
    pyrmsprop.set_num_threads(saved[0])
    _core.set_thread_threshold(saved[1])
    pyrmsprop.set_simd(saved[2])


def test_concurrent_trajectories_match_serial(restore_settings):
    want = {job: _trajectory(job) for job in JOBS}     # serial, default settings

    got, errors = {}, []
    done = threading.Event()
    lock = threading.Lock()
    queue = list(JOBS) * 2                               # each job twice, concurrently
    start = threading.Barrier(10)

    def worker():
        start.wait()
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    job = queue.pop()
                result = _trajectory(job)
                with lock:
                    got.setdefault(job, []).append(result)
        except BaseException as exc:        # reported below, never lost in a thread
            errors.append(exc)

    targets = pyrmsprop.simd_targets()

    def meddler(seed):
        rng = np.random.default_rng(seed)
        start.wait()
        try:
            while not done.is_set():
                pyrmsprop.set_num_threads(int(rng.integers(1, 4)))
                _core.set_thread_threshold(int(rng.choice([0, 1, 4096, 1 << 16])))
                pyrmsprop.set_simd(str(rng.choice(targets)))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    meddlers = [threading.Thread(target=meddler, args=(s,)) for s in range(2)]
    for t in workers + meddlers:
        t.start()
    for t in workers:
        t.join()
    done.set()
    for t in meddlers:
        t.join()
    assert not errors, errors
    assert sorted(got, key=str) == sorted(want, key=str)
    for job, results in got.items():
        assert len(results) == 2
        for result in results:
            assert result == want[job], f"{job}: differs from the serial run"


def test_gil_state_is_reported():
    # On a free-threaded build the extension must not turn the GIL back on (it declares
    # Py_MOD_GIL_NOT_USED); on a GIL build there is nothing to check.
    if not hasattr(sys, "_is_gil_enabled"):
        pytest.skip("Python < 3.13: no free-threaded build")
    import sysconfig
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("not a free-threaded build")
    assert not sys._is_gil_enabled()
