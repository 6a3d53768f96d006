#!/usr/bin/env python3
"""Bit-exact trajectory hashes: the same seeded 50-step runs of every rule, hashed, for
every SIMD target this machine supports, so that machines of other architectures (and the
targets of one machine) can be compared byte for byte.

    python tools/trajectory_hashes.py [-o out.json]      # every supported target
    python tools/trajectory_hashes.py --compare a.json b.json [...]

The first form runs every case (rule variant x dtype x size or list form x thread count)
once per target in ``pyrmsprop.simd_targets()`` and writes JSON: the machine, the targets,
and one sha256 per case over the little-endian bytes of every array the case updates
(parameters and all state), in a fixed order.  It exits 1 when two targets of this machine
disagree on any case (those cases are listed).  The second form exits 1 unless every file
holds the same cases with the same hashes; it prints how many it compared.

The inputs never come from numpy's random generators (whose streams and normal sampler
are not promised to be equal across numpy versions and platforms): a counter-based
splitmix64 in uint64 arithmetic gives 53 (float64) or 24 (float32) random bits per
element, scaled exactly into [-1, 1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys

import numpy as np

STEPS = 50
SIZES = (1, 17, 1000, 70001)   # a lone tail, body + tail, several vectors, thread-pool sized
THREADS = (1, 2)
DTYPES = ("float32", "float64")
# "q8": float32 params with 8-bit state (pyrmsprop.QuantizedState), for these variants
Q8_VARIANTS = ("adam", "adamw-amsgrad-maximize", "rmsprop-centered-momentum-wd", "sgd-momentum")
SIGNED = {"exp_avg": True, "exp_avg_sq": False, "max_exp_avg_sq": False, "square_avg": False,
          "grad_avg": True, "momentum_buffer": True}


def dtypes(name: str) -> tuple[str, ...]:
    return DTYPES + ("q8",) if name in Q8_VARIANTS else DTYPES

# Every rule and its variants: (rule, name, hyperparameters).  The list form passes the
# same hyperparameters to the *_multi function.
VARIANTS = [
    ("ema", "ema", dict(beta=0.9)),
    ("rmsprop", "rmsprop", dict(lr=1e-2, alpha=0.99, eps=1e-8)),
    ("rmsprop", "rmsprop-centered", dict(lr=1e-2, centered=True)),
    ("rmsprop", "rmsprop-momentum", dict(lr=1e-2, momentum=0.9)),
    ("rmsprop", "rmsprop-centered-momentum-wd", dict(lr=1e-3, centered=True, momentum=0.5,
                                                     weight_decay=1e-2)),
    ("rmsprop", "rmsprop-eps_in_sqrt-maximize", dict(lr=1e-2, eps=1e-6, eps_in_sqrt=True,
                                                     maximize=True)),
    ("adam", "adam", dict(lr=1e-3)),
    ("adam", "adam-l2", dict(lr=1e-2, weight_decay=1e-2)),
    ("adam", "adam-amsgrad", dict(lr=1e-3, amsgrad=True)),
    ("adam", "adamw", dict(lr=1e-3, weight_decay=1e-2, decoupled_weight_decay=True)),
    ("adam", "adamw-amsgrad-maximize", dict(lr=1e-2, beta1=0.8, beta2=0.95, weight_decay=0.1,
                                            decoupled_weight_decay=True, amsgrad=True,
                                            maximize=True)),
    ("sgd", "sgd", dict(lr=1e-2)),
    ("sgd", "sgd-momentum", dict(lr=1e-2, momentum=0.9)),
    ("sgd", "sgd-nesterov", dict(lr=1e-2, momentum=0.9, nesterov=True)),
    ("sgd", "sgd-momentum-dampening-wd", dict(lr=1e-2, momentum=0.8, dampening=0.1,
                                              weight_decay=1e-3)),
    ("sgd", "sgd-maximize-wd", dict(lr=1e-3, weight_decay=1e-2, maximize=True)),
]

# State arrays of each rule, in the order they are hashed (after the parameter), and the
# keyword they are passed as (single form; the list form's is the plural).
_STATE = {
    "ema": [],
    "rmsprop": ["square_avg", "grad_avg", "momentum_buffer"],
    "adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "sgd": ["momentum_buffer"],
}
_PLURAL = {"square_avg": "square_avgs", "grad_avg": "grad_avgs",
           "momentum_buffer": "momentum_buffers", "exp_avg": "exp_avgs",
           "exp_avg_sq": "exp_avg_sqs", "max_exp_avg_sq": "max_exp_avg_sqs"}


def _used_state(rule: str, hp: dict) -> list[str]:
    """The state arrays a variant uses (the others would be ignored, so are not made)."""
    used = []
    for name in _STATE[rule]:
        if name == "grad_avg" and not hp.get("centered"):
            continue
        if name == "momentum_buffer" and not hp.get("momentum"):
            continue
        if name == "max_exp_avg_sq" and not hp.get("amsgrad"):
            continue
        used.append(name)
    return used


_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def uniform(seed: int, n: int, dtype: str) -> np.ndarray:
    """n values in [-1, 1) of ``dtype``, a pure function of (seed, n, dtype) on every
    platform: splitmix64 of the counters seed*2**32 + i, top 53 or 24 bits, exactly
    scaled (every step is exact in float64, and the float32 values have 24 bits)."""
    with np.errstate(over="ignore"):
        z = (np.uint64(seed & 0xFFFFFFFF) << np.uint64(32)) + np.arange(n, dtype=np.uint64)
        z = z * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E5F5)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = (z ^ (z >> np.uint64(31))) & _M64
    bits = 53 if dtype == "float64" else 24
    k = (z >> np.uint64(64 - bits)).astype(np.float64)          # exact: < 2**53
    return (k * (2.0 ** (1 - bits)) - 1.0).astype(dtype)         # exact in [-1, 1)


def hash_arrays(arrays) -> str:
    """sha256 over each array's dtype, shape and little-endian bytes, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def case_names(sizes=SIZES, threads=THREADS) -> list[str]:
    """Every case's name: variant/dtype/form/threads."""
    forms = [f"n{n}" for n in sizes] + ["list"]
    return [f"{v}/{dt}/{form}/t{t}" for _, v, _ in VARIANTS for dt in dtypes(v)
            for form in forms for t in threads]


def run_case(pr, rule: str, hp: dict, dtype: str, sizes: tuple[int, ...], as_list: bool,
             steps: int = STEPS, seed: int = 0) -> list[np.ndarray]:
    """Run one trajectory and return every array it updated (parameters first, then each
    state kind), tensor by tensor.  ``sizes`` are the tensors' sizes: one for the single
    form, several for the list form (one call updates them all)."""
    state = _used_state(rule, hp)
    q8, dtype = dtype == "q8", "float32" if dtype == "q8" else dtype
    params = [uniform(seed * 100000 + i, n, dtype) for i, n in enumerate(sizes)]
    if q8:
        states = {name: [pr.QuantizedState.zeros(n, signed=SIGNED[name]) for n in sizes]
                  for name in state}
    else:
        states = {name: [np.zeros(n, dtype) for n in sizes] for name in state}
    for t in range(1, steps + 1):
        grads = [uniform(seed * 100000 + 100 * t + i, n, dtype) * np.array(0.5, dtype)
                 for i, n in enumerate(sizes)]
        kw = dict(hp)
        if rule == "adam":
            kw["step"] = t
        if as_list:
            if rule == "sgd" and hp.get("momentum") and t == 1:
                kw["first_step"] = True            # torch's first step: buffer <- g
            for name in state:
                kw[_PLURAL[name]] = states[name]
            fn = getattr(pr.functional, f"{rule}_update_multi")
            fn(params, grads, **kw)
        else:
            (p,), (g,) = params, grads
            for name in state:
                kw[name] = states[name][0]
            fn = getattr(pr.functional, f"{rule}_update")
            fn(p, g, **kw)
    out = list(params)
    for name in state:
        for x in states[name]:
            out += [x.codes, x.absmax] if q8 else [x]
    return out


def target_hashes(pr, sizes=SIZES, threads=THREADS, steps=STEPS) -> dict[str, str]:
    """Every case's hash on the SIMD target in use."""
    from pyrmsprop import _core
    hashes = {}
    old_threads, old_threshold = pr.get_num_threads(), _core.get_thread_threshold()
    try:
        for seed, (rule, name, hp) in enumerate(VARIANTS):
            for dtype in dtypes(name):
                forms = [(f"n{n}", (n,), False) for n in sizes] + [("list", tuple(sizes), True)]
                for form, shape, as_list in forms:
                    for nt in threads:
                        pr.set_num_threads(nt)
                        # with 2 threads, split every call that has two chunks
                        _core.set_thread_threshold(0 if nt > 1 else old_threshold)
                        arrays = run_case(pr, rule, hp, dtype, shape, as_list, steps, seed)
                        hashes[f"{name}/{dtype}/{form}/t{nt}"] = hash_arrays(arrays)
    finally:
        pr.set_num_threads(old_threads)
        _core.set_thread_threshold(old_threshold)
    return hashes


def all_targets(sizes=SIZES, threads=THREADS, steps=STEPS) -> dict:
    """Hashes on every supported target: {"machine", "targets", "hashes" (the first
    target's), "disagree" (cases on which some target differs, with every target's)}."""
    import pyrmsprop as pr
    import pyrmsprop.functional
    before = pr.simd_target()
    per = {}
    try:
        for target in pr.simd_targets():
            pr.set_simd(target)
            per[target] = target_hashes(pr, sizes, threads, steps)
    finally:
        pr.set_simd(before)
    targets = list(per)
    first = per[targets[0]]
    disagree = {case: {t: per[t][case] for t in targets}
                for case in first if len({per[t][case] for t in targets}) > 1}
    return {"machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "pyrmsprop": pr.__version__, "targets": targets,
            "cases": len(first), "hashes": first, "disagree": disagree}


def compare(results: list[dict]) -> list[str]:
    """Cases whose hashes differ between results (or that some result lacks)."""
    cases = set().union(*(r["hashes"] for r in results))
    return sorted(c for c in cases if len({r["hashes"].get(c) for r in results}) > 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", help="write the JSON here (default: stdout)")
    ap.add_argument("--compare", nargs="+", metavar="JSON",
                    help="compare result files instead of computing")
    args = ap.parse_args(argv)
    if args.compare:
        results = []
        for path in args.compare:
            with open(path) as f:
                results.append(json.load(f))
        bad = compare(results)
        where = ", ".join(f"{r['machine']} {'/'.join(r['targets'])}" for r in results)
        if any(r["disagree"] for r in results):
            bad = sorted(set(bad).union(*(r["disagree"] for r in results)))
        if bad:
            print(f"trajectory hashes DISAGREE on {len(bad)} of {len(results[0]['hashes'])} "
                  f"cases ({where}):")
            for c in bad[:40]:
                print("  " + c + ": " + " ".join(str(r["hashes"].get(c, "-"))[:12]
                                                   for r in results))
            return 1
        print(f"trajectory hashes agree: {len(results[0]['hashes'])} cases x "
              f"{len(results)} files ({where})")
        return 0
    res = all_targets()
    text = json.dumps(res, indent=1, sort_keys=True)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    status = (f"{res['machine']}: {res['cases']} cases on {len(res['targets'])} targets "
              f"({', '.join(res['targets'])})")
    if res["disagree"]:
        print(f"{status}: targets DISAGREE on {len(res['disagree'])} cases:", file=sys.stderr)
        for c, per in list(res["disagree"].items())[:40]:
            print("  " + c + ": " + " ".join(f"{t}={h[:12]}" for t, h in per.items()),
                  file=sys.stderr)
        return 1
    print(f"{status}: targets agree", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
