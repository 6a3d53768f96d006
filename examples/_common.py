"""Plumbing shared by the examples: command line, fast mode, optional matplotlib.

Every example has ``main(argv=None) -> dict`` and the flags ``--fast`` (or the
environment variable ``PYRMSPROP_EXAMPLES_FAST=1``: fewer steps, a coarser
plot, for CI), ``--out PATH`` (the PNG; default under ``docs/images/``) and
``--no-plot``.  matplotlib is optional: without it the numbers are still
computed and printed, and the plot is skipped with a message.
"""

import argparse
import os
import tempfile
from pathlib import Path

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def fast_from_env():
    return os.environ.get("PYRMSPROP_EXAMPLES_FAST", "").strip() not in ("", "0")


def make_parser(description, png_name):
    """An ArgumentParser with --fast, --out, --update-docs and --no-plot; call
    :func:`parse` on it to resolve where the PNG goes."""
    parser = argparse.ArgumentParser(description=description)
    parser.set_defaults(png_name=png_name)
    parser.add_argument("--fast", action="store_true", default=fast_from_env(),
                        help="shrink the run for CI (also PYRMSPROP_EXAMPLES_FAST=1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None,
                       help=f"where to write the PNG (default: {scratch_png(png_name)})")
    where.add_argument("--update-docs", action="store_true",
                       help=f"write the committed figure docs/images/{png_name} (not with --fast)")
    parser.add_argument("--no-plot", action="store_true", help="compute and print only")
    return parser


def scratch_png(png_name):
    return Path(tempfile.gettempdir()) / "pyrmsprop-examples" / png_name


def parse(parser, argv):
    """``parser.parse_args(argv)`` with ``args.out`` resolved: --out, the committed
    figure with --update-docs, else a scratch file outside the checkout."""
    args = parser.parse_args(argv)
    if args.update_docs:
        if args.fast:
            parser.error("--update-docs writes the committed figure: run it without --fast")
        args.out = IMAGES / args.png_name
    elif args.out is None:
        args.out = scratch_png(args.png_name)
    return args


def new_figure(**kwargs):
    """A matplotlib Figure (no pyplot, no GUI backend), or None if matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: plot skipped (pip install matplotlib)")
        return None
    return Figure(**kwargs)


def save(fig, path, *, dpi):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    print(f"wrote {path}")
    return path


def plot_loss_curves(curves, title, out, fast):
    """One figure of per-epoch training losses, log scale: ``curves`` maps a label to
    (losses, color, line style).  Returns the PNG's path, or None without matplotlib."""
    fig = new_figure(figsize=(7, 4.4), layout="constrained")
    if fig is None:
        return None
    ax = fig.subplots()
    for name, (curve, color, ls) in curves.items():
        ax.semilogy(range(1, len(curve) + 1), curve, color=color, lw=1.4, ls=ls, label=name)
    ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title=title)
    ax.legend(fontsize=8)
    return save(fig, out, dpi=80 if fast else 110)


def print_table(rows, columns):
    """Print a list of dicts as an aligned text table with the given columns."""
    cells = [[str(c) for c in columns]]
    for row in rows:
        cells.append([f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c])
                      for c in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
