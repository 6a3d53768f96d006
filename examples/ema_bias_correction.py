"""Exponentially weighted averages of noisy daily temperatures, with and without bias correction.

A year of synthetic daily temperatures (deg F, as in the course: a seasonal
cosine, cold in January, plus Gaussian noise; fixed seed) is smoothed with
beta = 0.9 (about the last 10 days), 0.98 (about 50 days: smoother but late)
and 0.5 (about 2 days: noisy).  Every average is made by pyrmsprop's EMA
kernel, one ``ema_update`` per day on a 1-element array per beta::

    v <- beta * v + (1 - beta) * theta_t          v starts at 0
    corrected_t = v / (1 - beta**t)

Starting from v = 0 pulls the first averages towards zero: with beta = 0.98 the
uncorrected curve starts near 2% of the temperature and needs weeks to catch
up (the start-up dip); the correction removes it and fades out as beta**t -> 0.

Run ``python examples/ema_bias_correction.py`` (writes
docs/images/ema_bias_correction.png); ``--fast`` for CI, ``--no-plot``.
"""

import sys

import numpy as np
from _common import make_parser, new_figure, parse, print_table, save

import pyrmsprop

BETAS = {0.9: "tab:red", 0.98: "tab:green", 0.5: "gold"}  # the course's colors
SEED = 2017
EARLY_DAYS = 10


def temperatures(days, seed=SEED):
    """(truth, measured): the seasonal curve and it plus noise, deg F, day 1 = January 1."""
    t = np.arange(days)
    truth = 52.0 - 18.0 * np.cos(2 * np.pi * (t - 20) / 365)
    return truth, truth + np.random.default_rng(seed).normal(0.0, 5.0, days)


def smooth(theta, beta):
    """(raw, corrected): the EMA of `theta` after each day, made by pyrmsprop.ema_update."""
    avg = np.zeros(1)
    raw = np.empty_like(theta)
    for t in range(len(theta)):
        pyrmsprop.ema_update(avg, theta[t:t + 1], beta=beta)
        raw[t] = avg[0]
    corrected = raw / (1.0 - beta ** np.arange(1, len(theta) + 1))
    return raw, corrected


def plot(theta, truth, curves, out, fast):
    fig = new_figure(figsize=(11, 7.5), layout="constrained")
    if fig is None:
        return None
    ax_year, ax_start = fig.subplots(2, 1, height_ratios=[1.2, 1])
    days = np.arange(1, len(theta) + 1)
    zoom = min(60, len(theta))
    for ax, n in ((ax_year, len(theta)), (ax_start, zoom)):
        ax.plot(days[:n], theta[:n], ".", color="0.55", ms=4, label="daily temperature")
        ax.plot(days[:n], truth[:n], "-", color="k", lw=1, alpha=0.6, label="seasonal curve")
    for beta, (raw, corrected) in curves.items():
        color, width, z = BETAS[beta], (1.2 if beta == 0.5 else 1.8), (2 if beta == 0.5 else 3)
        ax_year.plot(days, corrected, color=color, lw=width, zorder=z,
                     label=f"beta={beta} (~{1 / (1 - beta):.0f} days), corrected")
        ax_start.plot(days[:zoom], corrected[:zoom], color=color, lw=width + 0.3, zorder=z,
                      label=f"beta={beta} corrected")
        ax_start.plot(days[:zoom], raw[:zoom], "--", color=color, lw=1.6,
                      label=f"beta={beta} uncorrected")
    raw98 = curves[0.98][0]
    ax_year.plot(days, raw98, "--", color="purple", lw=1.4, label="beta=0.98, uncorrected")
    ax_year.set(xlabel="day of the year", ylabel="temperature (F)",
                title="Exponentially weighted averages: v <- beta*v + (1-beta)*theta")
    ax_year.legend(fontsize=8, loc="lower center", ncol=3)
    ax_start.set(xlabel="day", ylabel="temperature (F)", ylim=(0, 60),
                 title="The first days: v starts at 0; dividing by 1 - beta**t removes the dip")
    ax_start.legend(fontsize=8, loc="lower right", ncol=2)
    return save(fig, out, dpi=70 if fast else 100)


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0], "ema_bias_correction.png")
    args = parse(parser, argv)
    days = 120 if args.fast else 365
    truth, theta = temperatures(days)
    curves = {beta: smooth(theta, beta) for beta in BETAS}

    rows = []
    for beta, (raw, corrected) in curves.items():
        early = slice(0, EARLY_DAYS)
        rows.append({
            "beta": beta,
            "early_mae_uncorrected": float(np.abs(raw[early] - truth[early]).mean()),
            "early_mae_corrected": float(np.abs(corrected[early] - truth[early]).mean()),
            "mae_after_early": float(np.abs(corrected[EARLY_DAYS:] - truth[EARLY_DAYS:]).mean()),
        })
    print(f"{days} days, noise sd 5 F; mean absolute error against the seasonal curve "
          f"over the first {EARLY_DAYS} days and after them:")
    print_table(rows, ["beta", "early_mae_uncorrected", "early_mae_corrected",
                       "mae_after_early"])
    png = None if args.no_plot else plot(theta, truth, curves, args.out, args.fast)
    return {"days": days, "early_days": EARLY_DAYS, "betas": {r["beta"]: r for r in rows},
            "png": None if png is None else str(png)}


if __name__ == "__main__":
    main(sys.argv[1:])
