"""Gradient descent, momentum, RMSprop and Adam on an elongated bowl (the course's picture).

The loss is an ill-conditioned quadratic in two parameters, shallow in W and
steep in b::

    loss(W, b) = 0.5 * (a * W**2 + c * b**2)      a = 1, c = 50
    grad       = (a * W, c * b)

Every method starts at (W, b) = (-4, 0.8) and every update is made by
pyrmsprop's kernels on a float64 array holding [W, b]:

- gradient descent, ``sgd_update(lr=0.036)``: lr * c = 1.8, so each step
  overshoots the valley floor and b flips sign (factor 1 - 1.8 = -0.8): the
  zig-zag.  Any lr above 2 / c = 0.04 diverges in b, while W shrinks only by
  1 - lr * a = 0.964 per step: the steep direction caps the learning rate and
  the shallow one pays for it.
- momentum, the course's form ``v <- beta*v + (1-beta)*g ; p <- p - lr*v``, is
  ``sgd_update(momentum=0.9, dampening=0.9)`` with a zero buffer, at GD's lr:
  the alternating gradients in b average out, the steady ones in W add up.
- RMSprop, ``rmsprop_update(lr=0.05, alpha=0.99)`` (PyTorch's defaults but lr):
  dividing by the root of each coordinate's squared-gradient average gives both
  directions the same step scale, so b goes straight down without oscillating.
- Adam, ``adam_update(lr=0.1)`` with the default betas: momentum + RMSprop.

Run ``python examples/elongated_bowl.py`` (writes docs/images/elongated_bowl.png);
``--fast`` for CI, ``--no-plot`` to print the numbers only, ``--steps N``.
At a constant learning rate RMSprop does not settle for good: run ``--steps 800``
and its loss jumps back up to 1.8 at step 552, once its square
average has decayed so far that ``lr / sqrt(s)`` exceeds the stable step
(PyTorch gives the same numbers).  A learning rate that decays as fast as
sqrt(s) can, ``lr=schedules.ExponentialDecay(0.05, 0.995)`` (0.995 = sqrt(alpha)),
stays below 1e-3 for good from step 91; slower decays (inverse time, inverse
sqrt) only postpone the jump.
"""

import sys

import numpy as np
from _common import make_parser, new_figure, parse, print_table, save

import pyrmsprop

CURVATURE = np.array([1.0, 50.0])    # (a, c)
START = np.array([-4.0, 0.8])        # (W, b)
TOL = 1e-3
METHODS = {  # name: (learning rate, color)
    "gradient descent": (0.036, "tab:blue"),
    "momentum": (0.036, "tab:orange"),
    "RMSprop": (0.05, "tab:green"),
    "Adam": (0.1, "tab:red"),
}


def loss(p):
    """Loss of one point [W, b] or of an (n, 2) path."""
    return 0.5 * (CURVATURE * np.square(p)).sum(axis=-1)


def run(method, lr, steps):
    """The path (steps + 1, 2) of `method` from START, every update by a pyrmsprop kernel."""
    p = START.copy()
    state = [np.zeros_like(p), np.zeros_like(p)]
    path = [p.copy()]
    for t in range(1, steps + 1):
        g = CURVATURE * p
        if method == "gradient descent":
            pyrmsprop.sgd_update(p, g, lr=lr)
        elif method == "momentum":
            pyrmsprop.sgd_update(p, g, lr=lr, momentum=0.9, dampening=0.9,
                                 momentum_buffer=state[0])
        elif method == "RMSprop":
            pyrmsprop.rmsprop_update(p, g, state[0], lr=lr, alpha=0.99)
        elif method == "Adam":
            pyrmsprop.adam_update(p, g, state[0], state[1], step=t, lr=lr)
        else:
            raise ValueError(f"unknown method {method!r}")
        path.append(p.copy())
    return np.array(path)


def summarize(method, lr, path):
    below = loss(path) < TOL
    above = np.flatnonzero(~below)
    settled = int(above[-1]) + 1 if above.size else 0
    return {
        "method": method,
        "lr": lr,
        "steps_to_1e-3": int(np.argmax(below)) if below.any() else None,
        "settled_at": settled if settled < len(path) else None,  # below TOL from here on
        "final_loss": float(loss(path[-1])),
        "b_path_length": float(np.abs(np.diff(path[:, 1])).sum()),  # zig-zag in b
    }


def plot(paths, rows, out, fast):
    fig = new_figure(figsize=(12, 4.8), layout="constrained")
    if fig is None:
        return None
    ax, ax_loss = fig.subplots(1, 2, width_ratios=[1.35, 1])
    w, b = np.meshgrid(np.linspace(-4.6, 1.0, 120 if fast else 400),
                       np.linspace(-1.0, 1.0, 80 if fast else 300))
    levels = np.geomspace(1e-3, 40, 14)
    ax.contour(w, b, loss(np.stack([w, b], axis=-1)), levels=levels, colors="0.75",
               linewidths=0.8)
    for (name, path), row in zip(paths.items(), rows, strict=True):
        color = METHODS[name][1]
        ax.plot(path[:, 0], path[:, 1], "-o", color=color, ms=2.5, lw=1.1,
                label=f"{name} (lr={row['lr']})")
        ax_loss.semilogy(loss(path), color=color, lw=1.4,
                         label=f"{name}: < 1e-3 at step {row['steps_to_1e-3']}")
    ax.plot(*START, "ks", ms=6)
    ax.plot(0, 0, "k*", ms=12)
    ax.set(xlabel="W (shallow)", ylabel="b (steep)",
           title=r"loss = $\frac{1}{2}(W^2 + 50\,b^2)$, all from (-4, 0.8)")
    ax.legend(loc="lower right", fontsize=8)
    ax_loss.axhline(TOL, color="0.5", ls=":", lw=1)
    ax_loss.set(xlabel="step", ylabel="loss", ylim=(1e-12, 100), title="loss per step")
    ax_loss.legend(fontsize=8)
    return save(fig, out, dpi=80 if fast else 110)


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], "elongated_bowl.png")
    parser.add_argument("--steps", type=int, default=None, help="steps per method (default 200)")
    args = parse(parser, argv)
    steps = args.steps or (150 if args.fast else 200)

    paths = {name: run(name, lr, steps) for name, (lr, _) in METHODS.items()}
    rows = [summarize(name, METHODS[name][0], path) for name, path in paths.items()]
    print(f"{steps} steps from (W, b) = ({START[0]:g}, {START[1]:g}), "
          f"loss = 0.5*({CURVATURE[0]:g}*W^2 + {CURVATURE[1]:g}*b^2)")
    print_table(rows, ["method", "lr", "steps_to_1e-3", "settled_at", "final_loss",
                       "b_path_length"])
    png = None if args.no_plot else plot(paths, rows, args.out, args.fast)
    return {"steps": steps, "methods": {r["method"]: r for r in rows},
            "png": None if png is None else str(png)}


if __name__ == "__main__":
    main(sys.argv[1:])
