"""8-bit optimizer state on real training: float32 Adam against block-wise 8-bit Adam.

The digits MLP of ``train_digits.py`` widened to 64-512-10, so that both weight
matrices (32768 and 5120 elements) reach ``pyrmsprop.optim.Q8_MIN_SIZE`` (4096)
and keep 8-bit state (the biases keep float32 state), on the same data, weights and
mini-batches, trained by Adam (lr 3e-3, default betas and eps):

* numpy:  ``pyrmsprop.Adam`` with float32 state and with ``state_dtype="8bit"``;
* torch:  the same model as an ``nn.Sequential``, trained by ``torch.optim.Adam``
  (float32), ``pyrmsprop.torch.Adam(state_dtype="8bit")`` and, where they install,
  bitsandbytes' ``bnb.optim.Adam8bit`` and torchao's ``AdamW8bit`` (weight_decay=0,
  i.e. Adam) on the CPU.

The table gives the final training loss, train and test accuracy and the bytes of
optimizer state per parameter (Adam's two moments; bitsandbytes' and torchao's as
they keep them). One figure holds every loss curve.

Run ``python examples/train_8bit.py`` (writes docs/images/train_8bit.png with
``--update-docs``); ``--fast`` for CI, ``--epochs N``, ``--seed N``, ``--no-torch``.
"""

import contextlib
import io
import sys
import warnings

import numpy as np
from _common import make_parser, parse, plot_loss_curves, print_table
from train_digits import batches, evaluate, init_params, load_data, loss_and_grads
from train_torch import build_model

import pyrmsprop

HIDDEN = 512
LR = 3e-3
BATCH = 128


def state_bytes(values) -> int:
    """Bytes held by optimizer state values (arrays, tensors, QuantizedStates), the
    step counters excluded."""
    total = 0
    for v in values:
        if isinstance(v, pyrmsprop.QuantizedState):
            total += v.nbytes
        elif hasattr(v, "codes") and hasattr(v, "scale"):      # torchao's OptimState8bit
            total += int(v.codes.nbytes + v.scale.nbytes)
        elif hasattr(v, "nbytes") and getattr(v, "ndim", 0) > 0:
            total += int(v.nbytes)
    return total


def train_numpy(state_dtype, data, *, epochs, seed):
    x_train, y_train, _, _ = data
    params = init_params(seed, n_hidden=HIDDEN)
    opt = pyrmsprop.Adam(params, lr=LR, state_dtype=state_dtype)
    rng = np.random.default_rng(seed + 1)  # the same batches for every run
    curve = []
    for _ in range(epochs):
        for idx in batches(len(y_train), BATCH, rng):
            _, grads = loss_and_grads(params, x_train[idx], y_train[idx])
            opt.step(grads)
        curve.append(evaluate(params, x_train, y_train)[0])
    nbytes = state_bytes(v for st in opt.state for v in st.values())
    return np.array(curve), params, nbytes


def _torch_optimizers(torch):
    """name -> factory(params) of the torch-side optimizers that import here."""
    import pyrmsprop.torch as pt
    out = {"torch.optim.Adam float32": lambda ps: torch.optim.Adam(ps, lr=LR),
           "pyrmsprop.torch.Adam 8-bit": lambda ps: pt.Adam(ps, lr=LR, state_dtype="8bit")}
    # (their imports print notes about GPU libraries they cannot load here)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            import bitsandbytes as bnb
            out["bitsandbytes Adam8bit"] = lambda ps: bnb.optim.Adam8bit(ps, lr=LR)
        except Exception:   # (absent or broken here: not in the comparison)
            pass
        try:
            from torchao.optim import AdamW8bit
            out["torchao AdamW8bit (wd 0)"] = lambda ps: AdamW8bit(ps, lr=LR, weight_decay=0.0)
        except Exception:
            pass
    return out


def train_torch(torch, factory, data, *, epochs, seed):
    x_train, y_train, _, _ = data
    model = build_model(torch, init_params(seed, n_hidden=HIDDEN))
    opt = factory(list(model.parameters()))
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    rng = np.random.default_rng(seed + 1)
    curve = []
    with warnings.catch_warnings():   # (torchao's state tensors: a torch.compile cache note)
        warnings.filterwarnings("ignore", message=".*_stable_hash_for_caching")
        for _ in range(epochs):
            for idx in batches(len(y_train), BATCH, rng):
                i = torch.from_numpy(idx)
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[i]), yt[i]).backward()
                opt.step()
            curve.append(_torch_loss(torch, model, x_train, y_train))
    w1, b1, w2, b2 = (p.detach().numpy() for p in model.parameters())
    params = [w1.T.copy(), b1.copy(), w2.T.copy(), b2.copy()]
    nbytes = state_bytes(v for st in opt.state.values() for k, v in st.items() if k != "step")
    return np.array(curve), params, nbytes


def _torch_loss(torch, model, x, y):
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(torch.from_numpy(x)),
                                                        torch.from_numpy(y)))


def plot(results, out, fast):
    colors = ["k", "tab:red", "tab:gray", "tab:blue", "tab:green", "tab:orange"]
    return plot_loss_curves(
        {name: (curve, color, "--" if name.endswith("8-bit") else "-")
         for (name, (curve, *_)), color in zip(results.items(), colors)},
        f"digits MLP 64-{HIDDEN}-10, Adam lr {LR:g}: float32 and 8-bit state", out, fast)


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], "train_8bit.png")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="split, weights and batches")
    parser.add_argument("--no-torch", action="store_true", help="the numpy runs only")
    args = parse(parser, argv)
    epochs = args.epochs or (4 if args.fast else 40)
    data = load_data(args.seed)
    results = {"numpy pyrmsprop.Adam float32": train_numpy(None, data, epochs=epochs,
                                                           seed=args.seed),
               "numpy pyrmsprop.Adam 8-bit": train_numpy("8bit", data, epochs=epochs,
                                                         seed=args.seed)}
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch is not installed: the torch runs are skipped")
    if torch is not None:
        torch.manual_seed(args.seed)
        for name, factory in _torch_optimizers(torch).items():
            results[name] = train_torch(torch, factory, data, epochs=epochs, seed=args.seed)
    x_train, y_train, x_test, y_test = data
    nparams = sum(p.size for p in init_params(args.seed, n_hidden=HIDDEN))
    rows = []
    for name, (curve, params, nbytes) in results.items():
        rows.append({"optimizer": name, "train_loss": float(curve[-1]),
                     "train_acc": evaluate(params, x_train, y_train)[1],
                     "test_acc": evaluate(params, x_test, y_test)[1],
                     "state bytes/param": round(nbytes / nparams, 3)})
    print(f"digits MLP 64-{HIDDEN}-10 ({nparams} params), Adam lr {LR:g}, {epochs} epochs, "
          f"batch {BATCH}, seed {args.seed}")
    print_table(rows, ["optimizer", "train_loss", "train_acc", "test_acc", "state bytes/param"])
    png = None if args.no_plot else plot(results, args.out, args.fast)
    return {"epochs": epochs, "rows": rows, "png": None if png is None else str(png)}


if __name__ == "__main__":
    main(sys.argv[1:])
