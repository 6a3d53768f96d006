"""A real training run: a small MLP on scikit-learn's digits, trained by pyrmsprop's optimizers.

The data are the 1797 8x8 handwritten digits that ship with scikit-learn
(``sklearn.datasets.load_digits``, no download), split 75/25 into train and
test sets (stratified, ``--seed``), standardized with the training set's mean
and standard deviation.  The model is written out in plain numpy float32::

    h      = relu(x @ W1 + b1)          64 -> 128
    logits = h @ W2 + b2                128 -> 10
    loss   = mean cross-entropy of softmax(logits)

with its backward pass by hand.  Mini-batches (``--batch-size``, 64..512) are
reshuffled every epoch.  Every run starts from the same weights and sees the
same batches; eight runs: SGD, SGD with momentum 0.9 (same lr as SGD), RMSprop
and Adam from :mod:`pyrmsprop`, each with a constant learning rate and with
``schedules.InverseTimeDecay(lr0, 0.1, steps_per_epoch)``
(``lr = lr0 / (1 + 0.1 * epoch)``).  The table gives the final training loss,
train and test accuracy, and the median time of an epoch's training steps
(forward, backward and update; evaluation excluded).

Run ``python examples/train_digits.py`` (writes docs/images/train_digits.png);
``--fast`` for CI, ``--epochs N``, ``--batch-size N``, ``--seed N``,
``--progress`` for a progress bar per epoch on stderr (shown anyway on a terminal).
"""

import sys
import time

import numpy as np
from _common import make_parser, new_figure, parse, print_table, save

import pyrmsprop
from pyrmsprop.schedules import InverseTimeDecay

HIDDEN = 128
DECAY_RATE = 0.1
OPTIMIZERS = {  # name: (factory(params, lr), lr0, color)
    "SGD": (lambda p, lr: pyrmsprop.SGD(p, lr=lr), 0.1, "tab:blue"),
    "momentum": (lambda p, lr: pyrmsprop.SGD(p, lr=lr, momentum=0.9), 0.1, "tab:orange"),
    "RMSprop": (lambda p, lr: pyrmsprop.RMSprop(p, lr=lr), 3e-3, "tab:green"),
    "Adam": (lambda p, lr: pyrmsprop.Adam(p, lr=lr), 3e-3, "tab:red"),
}


def load_data(seed):
    """(x_train, y_train, x_test, y_test): float32 standardized inputs, int labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0  # pixels that are always blank in the training set
    return ((x_train - mean) / std).astype(np.float32), y_train, \
        ((x_test - mean) / std).astype(np.float32), y_test


def init_params(seed, n_in=64, n_hidden=HIDDEN, n_out=10):
    """[W1, b1, W2, b2], float32, He-normal weights and zero biases."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n_in, n_hidden)) * np.sqrt(2 / n_in)).astype(np.float32),
            np.zeros(n_hidden, np.float32),
            (rng.standard_normal((n_hidden, n_out)) * np.sqrt(2 / n_hidden)).astype(np.float32),
            np.zeros(n_out, np.float32)]


def forward(params, x):
    w1, b1, w2, b2 = params
    z = x @ w1 + b1
    h = np.maximum(z, 0)
    return z, h, h @ w2 + b2


def loss_and_grads(params, x, y):
    """Mean softmax cross-entropy of the batch and its gradients [dW1, db1, dW2, db2]."""
    w2 = params[2]
    z, h, logits = forward(params, x)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    loss = -log_p[rows, y].mean()
    dlogits = np.exp(log_p)  # softmax - one_hot, over the batch size
    dlogits[rows, y] -= 1
    dlogits /= len(y)
    dh = dlogits @ w2.T
    dz = dh * (z > 0)
    return float(loss), [x.T @ dz, dz.sum(axis=0), h.T @ dlogits, dlogits.sum(axis=0)]


def evaluate(params, x, y):
    """(mean cross-entropy, accuracy) on a whole set."""
    logits = forward(params, x)[2].astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean()), float((logits.argmax(1) == y).mean())


def batches(n, batch_size, rng):
    """Index arrays of one epoch's mini-batches, in a fresh random order."""
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def progress(label, done, total, width=30):
    filled = width * done // total
    end = "\n" if done == total else ""
    print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end,
          file=sys.stderr, flush=True)


def train(name, decay, data, *, epochs, batch_size, seed, show_progress=False):
    """Train one model; returns its per-epoch curves and the seconds each epoch's steps took."""
    x_train, y_train, x_test, y_test = data
    factory, lr0, _ = OPTIMIZERS[name]
    steps_per_epoch = -(-len(y_train) // batch_size)
    lr = InverseTimeDecay(lr0, DECAY_RATE, steps_per_epoch=steps_per_epoch) if decay else lr0
    params = init_params(seed)
    opt = factory(params, lr)
    rng = np.random.default_rng(seed + 1)  # the same batches for every run
    curves = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    seconds = []
    label = f"{name}{' + decay' if decay else ''}".ljust(17)
    for epoch in range(epochs):
        if show_progress:
            progress(label, epoch, epochs)
        start = time.perf_counter()
        for idx in batches(len(y_train), batch_size, rng):
            _, grads = loss_and_grads(params, x_train[idx], y_train[idx])
            opt.step(grads)
        seconds.append(time.perf_counter() - start)
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            loss, acc = evaluate(params, x, y)
            curves[f"{split}_loss"].append(loss)
            curves[f"{split}_acc"].append(acc)
    if show_progress:
        progress(label, epochs, epochs)
    return {k: np.array(v) for k, v in curves.items()}, seconds


def plot(results, out, fast):
    fig = new_figure(figsize=(12, 4.6), layout="constrained")
    if fig is None:
        return None
    ax_loss, ax_acc = fig.subplots(1, 2)
    for (name, decay), (curves, _) in results.items():
        color, ls = OPTIMIZERS[name][2], "--" if decay else "-"
        label = f"{name} (lr={OPTIMIZERS[name][1]:g}){' + decay' if decay else ''}"
        epochs = np.arange(1, len(curves["train_loss"]) + 1)
        ax_loss.semilogy(epochs, curves["train_loss"], ls=ls, color=color, lw=1.4, label=label)
        ax_acc.plot(epochs, curves["test_acc"], ls=ls, color=color, lw=1.4, label=label)
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)",
                title="MLP 64-128-10 on the digits: training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", ylim=(0.85, 1.0),
               title="test accuracy (450 held-out digits)")
    ax_loss.legend(fontsize=8, ncols=2)
    ax_acc.legend(fontsize=8, ncols=2, loc="lower right")
    return save(fig, out, dpi=80 if fast else 110)


def batch_size_arg(text):
    value = int(text)
    if not 64 <= value <= 512:
        raise ValueError(value)
    return value


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], "train_digits.png")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 40)")
    parser.add_argument("--batch-size", type=batch_size_arg, default=128, metavar="64..512",
                        help="mini-batch size (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="split, weights and batches")
    parser.add_argument("--progress", action="store_true",
                        help="progress bar per epoch on stderr (default: only on a terminal)")
    args = parse(parser, argv)
    epochs = args.epochs or (12 if args.fast else 40)
    show_progress = args.progress or sys.stderr.isatty()

    data = load_data(args.seed)
    results = {(name, decay): train(name, decay, data, epochs=epochs,
                                    batch_size=args.batch_size, seed=args.seed,
                                    show_progress=show_progress)
               for name in OPTIMIZERS for decay in (False, True)}
    rows = [{"optimizer": name, "lr": OPTIMIZERS[name][1],
             "decay": f"1/(1+{DECAY_RATE:g}*epoch)" if decay else "none",
             "train_loss": float(curves["train_loss"][-1]),
             "train_acc": float(curves["train_acc"][-1]),
             "test_acc": float(curves["test_acc"][-1]),
             "ms_per_epoch": 1e3 * float(np.median(seconds))}
            for (name, decay), (curves, seconds) in results.items()]
    print(f"digits: {len(data[1])} train / {len(data[3])} test, MLP 64-{HIDDEN}-10 float32, "
          f"{epochs} epochs, batch {args.batch_size}, seed {args.seed}")
    print_table(rows, ["optimizer", "lr", "decay", "train_loss", "train_acc", "test_acc",
                       "ms_per_epoch"])
    png = None if args.no_plot else plot(results, args.out, args.fast)
    return {"epochs": epochs, "batch_size": args.batch_size, "seed": args.seed,
            "runs": {key: dict(row, curves=results[key][0])
                     for key, row in zip(results, rows, strict=True)},
            "png": None if png is None else str(png)}


if __name__ == "__main__":
    main(sys.argv[1:])
