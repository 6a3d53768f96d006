"""The digits MLP in PyTorch: pyrmsprop.torch.Adam against torch.optim.Adam, step for step.

The model of ``train_digits.py`` (64-128-10, ReLU, cross-entropy) as an
``nn.Sequential`` in float32, on the same standardized data.  Two copies start
from the same weights (``train_digits.init_params``) and see the same
mini-batches; one is trained by ``pyrmsprop.torch.Adam``, the other by
``torch.optim.Adam`` (both lr=3e-3, default betas and eps).  The script prints
the final loss and accuracies of both, the largest parameter difference between
the two models, and the median time of a training step and of the optimizer's
``step()`` alone, side by side; it plots both loss curves.

Run ``python examples/train_torch.py`` (writes docs/images/train_torch.png);
``--fast`` for CI, ``--epochs N``, ``--batch-size N``, ``--seed N``.  Without
torch it prints a message and returns ``{"skipped": reason}``.
"""

import sys
import time

import numpy as np
from _common import make_parser, new_figure, parse, print_table, save
from train_digits import batch_size_arg, batches, init_params, load_data

LR = 3e-3


def build_model(torch, params):
    """nn.Sequential(Linear, ReLU, Linear) holding copies of the numpy [W1, b1, W2, b2]."""
    w1, b1, w2, b2 = params
    model = torch.nn.Sequential(torch.nn.Linear(w1.shape[0], w1.shape[1]), torch.nn.ReLU(),
                                torch.nn.Linear(w2.shape[0], w2.shape[1]))
    with torch.no_grad():
        for layer, w, b in ((model[0], w1, b1), (model[2], w2, b2)):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))  # torch stores (out, in)
            layer.bias.copy_(torch.from_numpy(b))
    return model


def plot(losses, names, out, fast):
    fig = new_figure(figsize=(12, 4.4), layout="constrained")
    if fig is None:
        return None
    ax, ax_diff = fig.subplots(1, 2)
    steps = np.arange(1, losses.shape[1] + 1)
    for curve, name, style in zip(losses, names, [("tab:red", "-", 2.4), ("k", "--", 1.0)],
                                  strict=True):
        ax.semilogy(steps, curve, color=style[0], ls=style[1], lw=style[2], label=name)
    ax.set(xlabel="step", ylabel="mini-batch loss", title=f"Adam (lr={LR:g}), same batches")
    ax.legend()
    diff = np.abs(losses[0] - losses[1])
    ax_diff.semilogy(steps, np.maximum(diff, 1e-12), color="tab:purple", lw=1)
    ax_diff.set(xlabel="step", ylabel="|loss difference|", ylim=(1e-12, 1),
                title="difference of the two curves (floored at 1e-12)")
    return save(fig, out, dpi=80 if fast else 110)


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], "train_torch.png")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 40)")
    parser.add_argument("--batch-size", type=batch_size_arg, default=128, metavar="64..512",
                        help="mini-batch size (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="split, weights and batches")
    args = parse(parser, argv)
    epochs = args.epochs or (12 if args.fast else 40)
    try:
        import torch

        import pyrmsprop.torch
    except ImportError as exc:
        print(f"torch is not installed: example skipped ({exc})")
        return {"skipped": str(exc)}

    x_train, y_train, x_test, y_test = load_data(args.seed)
    tensors = [torch.from_numpy(a) for a in (x_train, y_train, x_test, y_test)]
    init = init_params(args.seed)
    names = ["pyrmsprop.torch.Adam", "torch.optim.Adam"]
    models = [build_model(torch, init) for _ in names]
    opts = [pyrmsprop.torch.Adam(models[0].parameters(), lr=LR),
            torch.optim.Adam(models[1].parameters(), lr=LR)]
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(args.seed + 1)
    losses, step_s, opt_s = ([[], []] for _ in range(3))
    for _ in range(epochs):
        for idx in batches(len(y_train), args.batch_size, rng):
            idx = torch.from_numpy(idx)
            x, y = tensors[0][idx], tensors[1][idx]
            for k, (model, opt) in enumerate(zip(models, opts, strict=True)):
                start = time.perf_counter()
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                mid = time.perf_counter()
                opt.step()
                end = time.perf_counter()
                losses[k].append(loss.item())
                step_s[k].append(end - start)
                opt_s[k].append(end - mid)

    rows = []
    with torch.no_grad():
        for k, (name, model) in enumerate(zip(names, models, strict=True)):
            train_logits, test_logits = model(tensors[0]), model(tensors[2])
            rows.append({
                "optimizer": name,
                "train_loss": loss_fn(train_logits, tensors[1]).item(),
                "train_acc": (train_logits.argmax(1) == tensors[1]).double().mean().item(),
                "test_acc": (test_logits.argmax(1) == tensors[3]).double().mean().item(),
                "us_per_step": 1e6 * float(np.median(step_s[k])),
                "us_per_opt_step": 1e6 * float(np.median(opt_s[k])),
            })
        max_param_diff = max((a - b).abs().max().item() for a, b in
                             zip(models[0].parameters(), models[1].parameters(), strict=True))
    losses = np.array(losses)
    max_loss_diff = float(np.abs(losses[0] - losses[1]).max())
    print(f"digits MLP 64-128-10 float32 in torch {torch.__version__}: {epochs} epochs, "
          f"{losses.shape[1]} steps, batch {args.batch_size}, seed {args.seed}")
    print_table(rows, ["optimizer", "train_loss", "train_acc", "test_acc", "us_per_step",
                       "us_per_opt_step"])
    print(f"max |parameter difference| after training: {max_param_diff:.3g}")
    print(f"max |loss difference| over all steps:      {max_loss_diff:.3g}")
    png = None if args.no_plot else plot(losses, names, args.out, args.fast)
    return {"epochs": epochs, "steps": losses.shape[1], "batch_size": args.batch_size,
            "runs": {r["optimizer"]: r for r in rows}, "losses": losses,
            "max_param_diff": max_param_diff, "max_loss_diff": max_loss_diff,
            "png": None if png is None else str(png)}


if __name__ == "__main__":
    main(sys.argv[1:])
