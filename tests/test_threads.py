"""Threads: the GIL is released during updates, concurrent calls from Python threads
are independent, and the pool survives fork."""

import os
import signal
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pyrmsprop
import pyrmsprop.functional as F
from pyrmsprop import _core


def adam_steps(arrays, steps, start=1):
    p, g, m, v = arrays
    for t in range(start, start + steps):
        pyrmsprop.adam_update(p, g, m, v, step=t, lr=1e-2, weight_decay=0.1)


def same(arrays, others):
    return all(a.tobytes() == b.tobytes() for a, b in zip(arrays, others, strict=True))


def make_adam(n, seed):
    rng = np.random.default_rng(seed)
    p, g = rng.standard_normal((2, n), dtype=np.float32)
    return [p, g, np.zeros(n, np.float32), np.zeros(n, np.float32)]


def test_gil_released_during_update():
    """A Python thread keeps running (its iterations are timestamped) while the main
    thread is inside one long single-threaded update.  With the GIL held it could run
    at most at the edges of the call, never in its middle half (a GIL-holding C call,
    sorted() of a long list, gives no timestamp there; adam on 3e7 elements ~100)."""
    pyrmsprop.set_num_threads(1)
    arrays = [np.full(30_000_000, 0.5, np.float32) for _ in range(4)]
    stamps = []
    stop = threading.Event()

    def spin():  # a timestamp every 0.1 ms or so while it runs
        last = 0.0
        while not stop.is_set():
            now = time.perf_counter()
            if now - last > 1e-4:
                stamps.append(now)
                last = now

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        for attempt in range(3):  # a shared machine may not schedule the thread at once
            t0 = time.perf_counter()
            adam_steps(arrays, 1, start=attempt + 1)
            t1 = time.perf_counter()
            lo, hi = t0 + 0.25 * (t1 - t0), t0 + 0.75 * (t1 - t0)
            inside = sum(lo <= s <= hi for s in stamps)
            if inside > 0:
                break
    finally:
        stop.set()
        worker.join()
    assert inside > 0, "no Python thread ran during the update: the GIL was not released"


@pytest.mark.parametrize("threads", [1, 2])
def test_concurrent_calls_match_serial(threads):
    """Several Python threads update their own arrays at once (sizes around the
    thread split, so calls contend for the pool): the results equal serial runs."""
    pyrmsprop.set_num_threads(threads)
    _core.set_thread_threshold(0)
    sizes = [1, 1000, 3 * _core.chunk_elements() + 5, 200_003, 65, 4 * _core.chunk_elements()]
    serial = [make_adam(n, seed) for seed, n in enumerate(sizes)]
    concurrent = [[a.copy() for a in arrays] for arrays in serial]
    for arrays in serial:
        adam_steps(arrays, 20)
    with ThreadPoolExecutor(len(sizes)) as pool:
        list(pool.map(lambda arrays: adam_steps(arrays, 20), concurrent))
    for a, b in zip(serial, concurrent, strict=True):
        assert same(a, b)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available here")
def test_threaded_update_after_fork():
    """The parent starts the pool; a forked child (where the workers do not exist)
    runs a threaded update without hanging, to the same result, and (where
    /proc/self/task shows it) with a worker thread started afresh."""
    pyrmsprop.set_num_threads(2)
    _core.set_thread_threshold(0)
    n = 8 * _core.chunk_elements() + 3
    arrays = make_adam(n, 1)
    adam_steps([a.copy() for a in arrays], 3)  # the parent's pool is up and used
    expected = [a.copy() for a in arrays]
    adam_steps(expected, 5)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 3
        try:
            signal.alarm(60)
            tasks = "/proc/self/task"
            before = len(os.listdir(tasks)) if os.path.isdir(tasks) else None
            adam_steps(arrays, 5)
            code = 0 if same(arrays, expected) else 1
            if code == 0 and before is not None and len(os.listdir(tasks)) <= before:
                code = 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 90
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in a threaded update")
        time.sleep(0.05)
    assert os.WIFEXITED(status), f"child died: status {status}"
    assert os.WEXITSTATUS(status) != 1, "the child's threaded update gave different results"
    assert os.WEXITSTATUS(status) != 2, "the child started no worker thread"
    assert os.WEXITSTATUS(status) == 0, f"the child failed (exit status {os.WEXITSTATUS(status)})"
    # and the parent's pool still works
    adam_steps(arrays, 5)
    assert same(arrays, expected)


def test_update_while_workers_busy(n_threads):
    """Updates issued back to back, each split into many chunks, give the same
    bytes as one thread (a late worker must never apply a stale job)."""
    _core.set_thread_threshold(0)
    n = 5 * _core.chunk_elements() + 7
    ref = make_adam(n, 2)
    arrays = [a.copy() for a in ref]
    adam_steps(arrays, 50)
    pyrmsprop.set_num_threads(1)
    adam_steps(ref, 50)
    assert same(ref, arrays)


def test_runs_beside_torch_threads(torch):
    """pyrmsprop's pool and torch's OpenMP threads, both with 2 threads in one process,
    from several Python threads at once: no crash or deadlock, and the same bytes as a
    serial run (torch's own fused Adam checked against torch's single-tensor Adam)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _beside_torch(torch)
    finally:
        torch.set_num_threads(saved)


def _beside_torch(torch):
    pyrmsprop.set_num_threads(2)
    _core.set_thread_threshold(0)
    n = 300_000
    want = make_adam(n, 7)
    pyrmsprop.set_num_threads(1)
    adam_steps(want, 5)
    pyrmsprop.set_num_threads(2)

    def ours(seed):
        arrays = make_adam(n, 7)
        adam_steps(arrays, 5)
        return same(arrays, want)

    def theirs(seed):
        ps = [torch.nn.Parameter(torch.from_numpy(make_adam(n, seed)[0])) for _ in range(2)]
        opts = [torch.optim.Adam([ps[0]], lr=1e-2, fused=True),
                torch.optim.Adam([ps[1]], lr=1e-2, foreach=False)]
        for _ in range(5):
            for p, opt in zip(ps, opts):
                p.grad = torch.ones_like(p)
                opt.step()
        return torch.allclose(ps[0], ps[1], rtol=1e-6, atol=1e-7)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ours if k % 2 == 0 else theirs, k) for k in range(8)]
        assert all(f.result(timeout=120) for f in futures)


def test_many_pooled_jobs_match_serial():
    """More than 2**16 jobs through the pool, so the job generation in the claim ticket
    passes 2**15 (where it was once shifted into the sign bit of a signed 64-bit
    integer: undefined behaviour, which UBSan reports) and then wraps around.  Each job
    is a multi update of two tiny tensors (one chunk each, so with threshold 0 and two
    threads every call is posted to the pool); the bytes equal a serial run's."""
    jobs = 2**16 + 300
    rng = np.random.default_rng(11)

    def run(threads):
        pyrmsprop.set_num_threads(threads)
        _core.set_thread_threshold(0)
        ps = [a.copy() for a in start]
        gs = [np.full(3, 0.25, np.float32), np.full(5, -0.5, np.float32)]
        ms = [np.zeros_like(p) for p in ps]
        vs = [np.zeros_like(p) for p in ps]
        for t in range(1, jobs + 1):
            F.adam_update_multi(ps, gs, ms, vs, step=t, lr=1e-3)
        return ps + ms + vs

    start = [rng.standard_normal(3, dtype=np.float32), rng.standard_normal(5, dtype=np.float32)]
    pooled = run(2)
    serial = run(1)
    assert same(pooled, serial)
    assert abs(float(pooled[0][0] - start[0][0]) + jobs * 1e-3) < 1.0  # Adam moved p by ~lr a step


def test_settings_change_while_updates_run():
    """Thread count and threshold switched by one Python thread while three others run
    split updates: each call reads the settings once (atomically: under
    ThreadSanitizer, tools/ci/sanitizers.sh, the plain int once was a data race), so
    every result still equals a serial run's bytes."""
    chunk = _core.chunk_elements()
    sizes = [3 * chunk + 1, 2 * chunk, 5 * chunk + 7]
    serial = [make_adam(n, 20 + k) for k, n in enumerate(sizes)]
    pyrmsprop.set_num_threads(1)
    for arrays in serial:
        adam_steps(arrays, 15)
    concurrent = [make_adam(n, 20 + k) for k, n in enumerate(sizes)]
    _core.set_thread_threshold(0)
    stop = threading.Event()
    switches = 0

    def switch():
        nonlocal switches
        while not stop.is_set():
            pyrmsprop.set_num_threads(1 + switches % 3)
            _core.set_thread_threshold(0 if switches % 2 else chunk)
            switches += 1
            time.sleep(0.0002)

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        with ThreadPoolExecutor(len(sizes)) as pool:
            list(pool.map(lambda arrays: adam_steps(arrays, 15), concurrent))
    finally:
        stop.set()
        switcher.join()
    assert switches > 0
    for a, b in zip(serial, concurrent, strict=True):
        assert same(a, b)


def test_set_simd_while_updates_run():
    """set_simd switching between every supported target while other threads run
    updates: each call uses one whole kernel table (the target is one atomic int,
    loaded once per call), and every target gives the same bytes."""
    targets = pyrmsprop.simd_targets()
    sizes = [2 * _core.chunk_elements() + 9, 1000, 70_001]
    serial = [make_adam(n, 40 + k) for k, n in enumerate(sizes)]
    for arrays in serial:
        adam_steps(arrays, 30)
    concurrent = [make_adam(n, 40 + k) for k, n in enumerate(sizes)]
    pyrmsprop.set_num_threads(2)
    _core.set_thread_threshold(0)
    stop = threading.Event()
    switches = 0

    def switch():
        nonlocal switches
        while not stop.is_set():
            pyrmsprop.set_simd(targets[switches % len(targets)])
            switches += 1
            time.sleep(0.0002)

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        with ThreadPoolExecutor(len(sizes)) as pool:
            list(pool.map(lambda arrays: adam_steps(arrays, 30), concurrent))
    finally:
        stop.set()
        switcher.join()
    assert switches > 0
    for a, b in zip(serial, concurrent, strict=True):
        assert same(a, b)


# ------------------------------------------------ chunk layout: every element exactly once

CHUNK = _core.chunk_elements()


def _view(n, dtype, offset_bytes):
    """A C-contiguous array of n elements starting `offset_bytes` past a 64-byte
    boundary (numpy's own large arrays sit 16 bytes past one)."""
    itemsize = np.dtype(dtype).itemsize
    buf = np.empty(n + 128 // itemsize, dtype)
    skip = (-buf.__array_interface__["data"][0] % 64 + offset_bytes) // itemsize
    out = buf[skip:skip + n]
    assert n == 0 or out.__array_interface__["data"][0] % 64 == offset_bytes
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offsets", [(0, 0), (16, 16), (16, 0), (8, 40), (48, 16)])
@pytest.mark.parametrize("n_threads", [1, 2, 3, 4])
def test_each_element_updated_exactly_once(dtype, offsets, n_threads):
    """EMA with beta = 0.5 from avg = 0, x = 2: one update gives exactly 1.0, two give
    1.5, none 0.0, so any element skipped or run twice by the chunk layout (heads
    peeled to a cache line, ranges per thread, steals from their ends) shows."""
    pyrmsprop.set_num_threads(n_threads)
    _core.set_thread_threshold(0)
    sizes = [1023, 1024, 1025, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 13, 5 * CHUNK + 3]
    if np.dtype(dtype).itemsize == 4:
        sizes.append(3 * CHUNK - 15)
    for n in sizes:
        avg, x = _view(n, dtype, offsets[0]), _view(n, dtype, offsets[1])
        avg[...] = 0
        x[...] = 2
        pyrmsprop.ema_update(avg, x, beta=0.5)
        assert (avg == 1.0).all(), (n, np.flatnonzero(avg != 1.0)[:10])
    # a list: tensors of every size above at various offsets, one call
    avgs = [_view(n, dtype, (16 * i) % 64) for i, n in enumerate(sizes)]
    xs = [_view(n, dtype, (offsets[1] + 8 * i) % 64) for i, n in enumerate(sizes)]
    for a, x in zip(avgs, xs):
        a[...] = 0
        x[...] = 2
    F.ema_update_multi(avgs, xs, beta=0.5)
    for a in avgs:
        assert (a == 1.0).all()


@pytest.mark.parametrize("n_threads", [2, 3, 4])
def test_uneven_list_bit_identical_to_serial(n_threads):
    """A model-like list (a few large tensors among many tiny ones, numpy-offset and
    aligned arrays mixed): Adam under n threads gives the serial bytes."""
    sizes = [7, 3 * CHUNK + 5, 1, 64, CHUNK // 2, 9 * CHUNK + 1, 0, 1500, 2 * CHUNK, 33]

    def build():
        r = np.random.default_rng(3)
        lists = [[], [], [], []]
        for i, n in enumerate(sizes):
            for k, lst in enumerate(lists):
                a = _view(n, np.float32, (16 * (i + k)) % 64)
                a[...] = r.standard_normal(n).astype(np.float32) if k < 2 else 0
                lst.append(a)
        return lists

    _core.set_thread_threshold(0)
    pyrmsprop.set_num_threads(1)
    serial = build()
    for t in range(1, 4):
        F.adam_update_multi(*serial, step=t, lr=1e-2, weight_decay=0.1)
    pyrmsprop.set_num_threads(n_threads)
    threaded = build()
    for t in range(1, 4):
        F.adam_update_multi(*threaded, step=t, lr=1e-2, weight_decay=0.1)
    for a_list, b_list in zip(serial, threaded):
        assert same(a_list, b_list)
