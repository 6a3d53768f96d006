"""pyrmsprop.torch under torch.distributed: the gloo backend, 2 processes on 127.0.0.1.

Each rank trains the digits MLP on its half of every global mini-batch of 64, with
(a) DistributedDataParallel and pyrmsprop.torch.Adam, (b) DDP and
ZeroRedundancyOptimizer(optimizer_class=pyrmsprop.torch.Adam), each rank stepping
its shard and broadcasting it, (c) (b) with DDP's gradient_as_bucket_view and
ZeRO's parameters_as_bucket_view (parameters and gradients are views into flat
buckets).  The ranks write their parameters (and ZeRO's consolidated state dict)
to a tmp dir; the test compares them with a single-process pyrmsprop.torch.Adam
fed the same mean gradients over the global batches.

Exact equality is expected and asserted: DDP averages the two half-batch
gradients as (g0 + g1) / 2 (division by 2 is exact, addition commutes), which
this process computes the same way, with the same one torch thread; the Adam
update is elementwise, so however ZeRO shards the parameters each element gets
the same arithmetic.

Each rank is a fresh interpreter running this file (as torchrun's workers are):
a target defined here could not go through multiprocessing's 'spawn', whose
children import it by module name, which pytest's importlib mode never makes
importable.  The port is picked by binding port 0; the process group and the
wait have timeouts, so a hang fails instead of blocking CI.
"""

import datetime
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

WORLD = 2
STEPS = 40
BATCH = 64           # global; each rank takes BATCH // WORLD rows
HP = {"lr": 3e-3, "weight_decay": 1e-3, "amsgrad": True}
MODES = ["ddp", "zero", "zero_bucket_views"]
DTYPES = ["float32", "float64"]
PG_TIMEOUT = 60      # seconds: a collective waiting longer fails the rank
RUN_TIMEOUT = 180    # seconds for both ranks, start-up included; then they are killed


def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def half_batch(torch, data, k, part, dtype):
    """Rows of global mini-batch k that rank `part` trains on."""
    X, y = data
    idx = np.random.default_rng(k).permutation(len(X))[:BATCH]
    idx = np.array_split(idx, WORLD)[part]
    return torch.from_numpy(X[idx].astype(dtype)), torch.from_numpy(y[idx])


def mlp(torch, dtype):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(),
                                    torch.nn.Linear(32, 10))
    return model.to(getattr(torch, dtype))


# --------------------------------------------------------------------------- one rank


def rank_main(out):
    """Run every mode and dtype on this rank; save the results to out/rank<r>.pt."""
    import torch
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel

    import pyrmsprop.torch

    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=PG_TIMEOUT))
    rank, data, results = dist.get_rank(), digits(), {}
    for mode, dtype in ((m, d) for m in MODES for d in DTYPES):
        model = mlp(torch, dtype)
        ddp = DistributedDataParallel(model, gradient_as_bucket_view=mode == "zero_bucket_views")
        if mode == "ddp":
            opt = pyrmsprop.torch.Adam(ddp.parameters(), **HP)
        else:
            opt = ZeroRedundancyOptimizer(
                ddp.parameters(), optimizer_class=pyrmsprop.torch.Adam,
                parameters_as_bucket_view=mode == "zero_bucket_views", **HP)
        for k in range(STEPS):
            opt.zero_grad()
            x, y = half_batch(torch, data, k, rank, dtype)
            torch.nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
        result = {"params": [p.detach().clone() for p in model.parameters()]}
        if mode != "ddp":
            result["local_optimizer"] = f"{type(opt.optim).__module__}.{type(opt.optim).__name__}"
            result["local_states"] = len(opt.optim.state)
            opt.consolidate_state_dict(to=0)
            if rank == 0:
                result["state_dict"] = opt.state_dict()
        results[f"{mode}-{dtype}"] = result
    torch.save(results, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


# --------------------------------------------------------------------------- the test


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(torch, tmp_path_factory):
    """Launch the two ranks; their results, one dict per rank."""
    pytest.importorskip("sklearn.datasets")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no torch.distributed gloo backend")
    out = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": str(WORLD), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, __file__, str(out)],
                              env={**env, "RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for r in range(WORLD)]
    deadline, logs = time.monotonic() + RUN_TIMEOUT, []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=max(deadline - time.monotonic(), 1))[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for r, (p, log) in enumerate(zip(procs, logs, strict=True)):
        assert p.returncode == 0, f"rank {r} exited with {p.returncode}:\n{log}"
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.fixture(scope="module")
def single_process(torch):
    """pyrmsprop.torch.Adam in this process on the mean gradient of each global
    batch, computed as DDP does: the two halves' gradients, (g0 + g1) / 2."""
    import pyrmsprop.torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data, results = digits(), {}
    for dtype in DTYPES:
        model = mlp(torch, dtype)
        opt = pyrmsprop.torch.Adam(model.parameters(), **HP)
        for k in range(STEPS):
            halves = []
            for part in range(WORLD):
                model.zero_grad()
                x, y = half_batch(torch, data, k, part, dtype)
                torch.nn.functional.cross_entropy(model(x), y).backward()
                halves.append([p.grad.clone() for p in model.parameters()])
            for p, g0, g1 in zip(model.parameters(), *halves, strict=True):
                p.grad = (g0 + g1) / WORLD
            opt.step()
        results[dtype] = (list(model.parameters()), opt.state_dict())
    torch.set_num_threads(threads)
    return results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_ranks_equal_single_process(mode, dtype, ranks, single_process, torch):
    params, _ = single_process[dtype]
    for r, result in enumerate(ranks):
        got = result[f"{mode}-{dtype}"]["params"]
        for i, (a, b) in enumerate(zip(got, params, strict=True)):
            assert a.dtype == b.dtype
            assert torch.equal(a, b), (
                f"rank {r}, parameter {i}: max |diff| {(a - b).abs().max().item():.3g}")
    start = mlp(torch, dtype).parameters()
    assert not any(torch.equal(a, b) for a, b in zip(params, start))  # it trained


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES[1:])
def test_zero_shards_and_consolidated_state(mode, dtype, ranks, single_process, torch):
    """Each rank's pyrmsprop.torch.Adam held a proper shard; ZeRO's consolidated
    state dict (gathered from both) equals the single-process optimizer's."""
    assert {result[f"{mode}-{dtype}"]["local_optimizer"] for result in ranks} == {
        "pyrmsprop.torch.Adam"}
    shards = [result[f"{mode}-{dtype}"]["local_states"] for result in ranks]
    assert all(shards) and sum(shards) == 4, shards
    _, expected = single_process[dtype]
    consolidated = ranks[0][f"{mode}-{dtype}"]["state_dict"]
    assert consolidated["state"].keys() == expected["state"].keys()
    for i, state in expected["state"].items():
        assert consolidated["state"][i].keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(consolidated["state"][i][key], value), (i, key)
    assert consolidated["state"][0]["step"].item() == STEPS


if __name__ == "__main__":  # one rank, launched by the `ranks` fixture
    rank_main(sys.argv[1])
