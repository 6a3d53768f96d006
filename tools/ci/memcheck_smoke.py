"""A smoke run of every rule for valgrind memcheck (tools/ci/memcheck.sh): each rule
with every option that adds an array, single and list forms, float32 and float64,
sizes around every vector width and tail (0 to 67 elements) and one that the pool
splits, on every SIMD target valgrind's CPU offers and with 1 and 2 threads.  Each
configuration's result must equal, byte for byte, the first configuration's, so the
run fails on a wrong result as well as on a memcheck error."""

import itertools
import sys

import numpy as np

import pyrmsprop
from pyrmsprop import _core
from pyrmsprop import functional as F

SIZES = (0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 67, 5000)


def inputs(rule, dtype, n, seed):
    rng = np.random.default_rng(seed)
    width = {"ema": 2, "rmsprop": 5, "adam": 5, "sgd": 3}[rule]
    arrs = [rng.uniform(-1, 1, n).astype(dtype) for _ in range(width)]
    for k in range(2, width):
        arrs[k] = np.abs(arrs[k])
    if rule == "rmsprop":
        arrs[3] *= 0.01       # centered: grad_avg**2 stays below square_avg
    return arrs


def run(rule, dtype, multi):
    tensors = [inputs(rule, dtype, n, i) for i, n in enumerate(SIZES)]
    cols = [list(c) for c in zip(*tensors)]
    for step in (1, 2):
        if rule == "ema":
            if multi:
                F.ema_update_multi(cols[0], cols[1], beta=0.9)
            else:
                for a, x in tensors:
                    F.ema_update(a, x, beta=0.9)
        elif rule == "rmsprop":
            kw = dict(lr=1e-2, weight_decay=0.1, momentum=0.9, centered=True)
            if multi:
                F.rmsprop_update_multi(cols[0], cols[1], cols[2], grad_avgs=cols[3],
                                       momentum_buffers=cols[4], **kw)
            else:
                for p, g, s, ga, mb in tensors:
                    F.rmsprop_update(p, g, s, grad_avg=ga, momentum_buffer=mb, **kw)
        elif rule == "adam":
            kw = dict(step=step, lr=1e-2, weight_decay=0.1, amsgrad=True)
            if multi:
                F.adam_update_multi(cols[0], cols[1], cols[2], cols[3],
                                    max_exp_avg_sqs=cols[4], **kw)
            else:
                for p, g, m, v, vm in tensors:
                    F.adam_update(p, g, m, v, max_exp_avg_sq=vm, **kw)
        else:
            kw = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)
            if multi:
                F.sgd_update_multi(cols[0], cols[1], momentum_buffers=cols[2], **kw)
            else:
                for p, g, mb in tensors:
                    F.sgd_update(p, g, momentum_buffer=mb, **kw)
    assert F.all_finite([a for arrs in tensors for a in arrs])
    return b"".join(a.tobytes() for arrs in tensors for a in arrs)


def main() -> int:
    targets = pyrmsprop.simd_targets()
    _core.set_thread_threshold(1024)          # the 5000-element tensors are split
    configs = list(itertools.product(targets, (1, 2)))
    bad = 0
    for rule, dtype, multi in itertools.product(("ema", "rmsprop", "adam", "sgd"),
                                                (np.float32, np.float64), (False, True)):
        results = []
        for target, threads in configs:
            pyrmsprop.set_simd(target)
            pyrmsprop.set_num_threads(threads)
            results.append(run(rule, dtype, multi))
        same = all(r == results[0] for r in results)
        bad += not same
        print(f"{rule:8} {np.dtype(dtype).name:8} {'list' if multi else 'single':6} "
              f"{'identical' if same else 'DIFFERENT'} on {configs}")
    print(f"memcheck_smoke: {bad} rule/dtype/form combination(s) differ across configurations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
