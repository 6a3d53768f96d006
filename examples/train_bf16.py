"""bfloat16 training: where plain bfloat16 stalls, and which master schemes track float32.

The digits MLP of ``train_digits.py`` (64-128-10, same data, weights and batches),
its weights kept in bfloat16 (the forward and backward pass compute in float32 from
them, the gradients are rounded to bfloat16, as a bfloat16 model's are), trained by
``pyrmsprop.SGD`` with momentum 0.9 and float32 state, six ways:

* float32:      float32 weights (the reference);
* bf16:         the bfloat16 weights alone, each step rounded to nearest (torch's
                numbers for a bfloat16 model);
* fp32 master:  ``master="fp32"``, a float32 copy that the update goes to;
* split:        ``master="split"``, the float32 master as the bfloat16 weights plus
                16 low bits (bit-identical to float32 training on the master);
* kahan:        ``master="kahan"``, a bfloat16 compensation array;
* stochastic:   ``master="stochastic"``, stochastic rounding (seed 0).

A small learning rate makes the point: most updates are then smaller than half a
bfloat16 unit of the weight they change, and rounding to nearest throws them away.
The table gives the final training loss, train and test accuracy, and the largest
difference from the float32 run's weights.

Run ``python examples/train_bf16.py`` (writes docs/images/train_bf16.png with
``--update-docs``); ``--fast`` for CI, ``--epochs N``, ``--lr X``, ``--seed N``.
"""

import sys

import numpy as np
from _common import make_parser, parse, plot_loss_curves, print_table
from train_digits import batches, evaluate, init_params, load_data, loss_and_grads

import pyrmsprop

SCHEMES = {  # name: (weights bfloat16?, master, color)
    "float32": (False, None, "black"),
    "bf16": (True, None, "tab:red"),
    "fp32 master": (True, "fp32", "tab:blue"),
    "split": (True, "split", "tab:cyan"),
    "kahan": (True, "kahan", "tab:green"),
    "stochastic": (True, "stochastic", "tab:orange"),
}


def train(scheme, data, *, epochs, lr, seed):
    import ml_dtypes
    bf16, master, _ = SCHEMES[scheme]
    x_train, y_train, x_test, y_test = data
    params = init_params(seed)
    if bf16:
        params = [p.astype(ml_dtypes.bfloat16) for p in params]
    opt = pyrmsprop.SGD(params, lr=lr, momentum=0.9, state_dtype="float32", master=master,
                        seed=seed)
    rng = np.random.default_rng(seed + 1)  # the same batches for every run
    curve = []
    for _ in range(epochs):
        for idx in batches(len(y_train), 128, rng):
            f32 = [p.astype(np.float32) for p in params]
            _, grads = loss_and_grads(f32, x_train[idx], y_train[idx])
            opt.step([g.astype(p.dtype) for g, p in zip(grads, params)])
        curve.append(evaluate([p.astype(np.float32) for p in params], x_train, y_train)[0])
    f32 = [p.astype(np.float32) for p in params]
    if master == "fp32":
        f32 = [opt.state[i]["master_param"] for i in range(len(params))]
    if master == "split":
        from pyrmsprop import _emulate
        f32 = [_emulate.split_get(p, opt.state[i]["param_lo"]) for i, p in enumerate(params)]
    return np.array(curve), f32, evaluate([p.astype(np.float32) for p in params], x_train,
                                          y_train), evaluate([p.astype(np.float32)
                                                              for p in params], x_test, y_test)


def plot(results, out, fast, lr):
    return plot_loss_curves(
        {name: (curve, SCHEMES[name][2], "--" if name == "split" else "-")
         for name, (curve, *_rest) in results.items()},
        f"digits MLP, SGD momentum 0.9, lr {lr:g}: bfloat16 weights", out, fast)


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], "train_bf16.png")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 30)")
    parser.add_argument("--lr", type=float, default=0.003, help="learning rate (default 0.003)")
    parser.add_argument("--seed", type=int, default=0, help="split, weights and batches")
    args = parse(parser, argv)
    epochs = args.epochs or (6 if args.fast else 30)
    data = load_data(args.seed)
    results = {name: train(name, data, epochs=epochs, lr=args.lr, seed=args.seed)
               for name in SCHEMES}
    ref = results["float32"][1]
    rows = [{"scheme": name, "train_loss": float(curve[-1]), "train_acc": tr[1],
             "test_acc": te[1],
             "max |w - w_float32|": max(float(np.abs(a.astype(np.float64) - b).max())
                                        for a, b in zip(w, ref))}
            for name, (curve, w, tr, te) in results.items()]
    print(f"digits MLP 64-128-10, bfloat16 weights, SGD momentum 0.9, lr {args.lr:g}, "
          f"{epochs} epochs, batch 128, seed {args.seed}")
    print_table(rows, ["scheme", "train_loss", "train_acc", "test_acc", "max |w - w_float32|"])
    png = None if args.no_plot else plot(results, args.out, args.fast, args.lr)
    return {"epochs": epochs, "lr": args.lr, "rows": rows,
            "png": None if png is None else str(png)}


if __name__ == "__main__":
    main(sys.argv[1:])
