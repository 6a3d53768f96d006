"""Learning-rate schedules: small callables ``schedule(step) -> lr``.

Pass one as ``lr`` to an optimizer; it calls ``lr(step)`` with the 1-based
number of the update it is about to make (``step = 1`` on the first update),
as the ``step`` argument of :func:`pyrmsprop.adam_update`.  Pure Python.

Time variable, by step or by epoch
----------------------------------
Every decaying schedule takes ``steps_per_epoch``:

- ``steps_per_epoch=None`` (default): decay by step.  The time variable is the
  step itself, ``t = step``: 1, 2, 3, ...  (so the first update already uses
  one decay, e.g. ``lr0 * rate`` for :class:`ExponentialDecay`).
- ``steps_per_epoch=N``: decay by epoch.  The time variable is the epoch,
  counted from 0: ``epoch = (step - 1) // N``.  Steps 1..N use epoch 0 (so
  ``lr = lr0``), steps N+1..2N epoch 1, and so on; the rate is constant within
  an epoch, as in the course's ``alpha = alpha0 / (1 + decay_rate * epoch_num)``.

Formulas (``x`` is ``t`` or ``epoch``)::

    InverseTimeDecay    lr = lr0 / (1 + decay_rate * x)
    ExponentialDecay    lr = lr0 * rate**x
    InverseSqrtDecay    lr = lr0 * k / sqrt(max(x, 1))
    PiecewiseConstant   lr = values[i]  for boundaries[i-1] <= x < boundaries[i]
    Warmup              lr = inner(step) * min(1, step / warmup_steps)

Examples
--------
>>> from pyrmsprop.schedules import InverseTimeDecay, Warmup
>>> lr = InverseTimeDecay(0.2, decay_rate=1.0, steps_per_epoch=100)
>>> lr(1), lr(100), lr(101), lr(201)
(0.2, 0.2, 0.1, 0.06666666666666667)
>>> Warmup(0.1, warmup_steps=4)(2)
0.05
"""

import bisect
import itertools
import math
import numbers

__all__ = [
    "ExponentialDecay",
    "InverseSqrtDecay",
    "InverseTimeDecay",
    "PiecewiseConstant",
    "Schedule",
    "Staircase",
    "Warmup",
]


def _real(value, name, *, low=0.0, low_open=False, high=None):
    """``float(value)`` if it is a finite real in the range, else TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    if (not math.isfinite(x) or x < low or (low_open and x == low)
            or (high is not None and x > high)):
        raise ValueError(f"Invalid {name} value: {value!r}")
    return x


def _integer(value, name, *, low):
    """``int(value)`` if it is an integer >= low (bool excluded), else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"Invalid {name} value: {value!r} (must be >= {low})")
    return int(value)


def _steps_per_epoch(value):
    return None if value is None else _integer(value, "steps_per_epoch", low=1)


class Schedule:
    """Base class: ``__call__`` checks ``step`` and hands the time variable to ``_lr``.

    Subclasses set ``_fields`` (constructor arguments, for the repr) and
    implement ``_lr(x)`` where ``x`` is ``step`` (``steps_per_epoch=None``) or
    ``(step - 1) // steps_per_epoch``.
    """

    _fields = ()
    steps_per_epoch = None

    def __call__(self, step):
        step = _integer(step, "step", low=1)
        if self.steps_per_epoch is None:
            return self._lr(step)
        return self._lr((step - 1) // self.steps_per_epoch)

    def _lr(self, x):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self):
        return hash((type(self),) + tuple(getattr(self, f) for f in self._fields))


class InverseTimeDecay(Schedule):
    """Inverse-time decay::

        lr = lr0 / (1 + decay_rate * x)

    ``x = step`` (``steps_per_epoch=None``) or ``x = (step - 1) // steps_per_epoch``,
    the epoch counted from 0 (see the module docstring).

    Parameters
    ----------
    lr0 : float
        Initial learning rate, >= 0.
    decay_rate : float
        >= 0; 0 gives a constant ``lr0``.
    steps_per_epoch : int or None
        Decay by epoch of this many steps; None decays every step.
    """

    _fields = ("lr0", "decay_rate", "steps_per_epoch")

    def __init__(self, lr0, decay_rate, steps_per_epoch=None):
        self.lr0 = _real(lr0, "lr0")
        self.decay_rate = _real(decay_rate, "decay_rate")
        self.steps_per_epoch = _steps_per_epoch(steps_per_epoch)

    def _lr(self, x):
        return self.lr0 / (1.0 + self.decay_rate * x)


class ExponentialDecay(Schedule):
    """Exponential decay::

        lr = lr0 * rate**x

    ``x = step`` (``steps_per_epoch=None``) or ``x = (step - 1) // steps_per_epoch``,
    the epoch counted from 0 (see the module docstring).

    Parameters
    ----------
    lr0 : float
        Initial learning rate, >= 0.
    rate : float
        Decay factor per step or epoch, in (0, 1]; e.g. 0.95.
    steps_per_epoch : int or None
        Decay by epoch of this many steps; None decays every step.
    """

    _fields = ("lr0", "rate", "steps_per_epoch")

    def __init__(self, lr0, rate, steps_per_epoch=None):
        self.lr0 = _real(lr0, "lr0")
        self.rate = _real(rate, "rate", low_open=True, high=1.0)
        self.steps_per_epoch = _steps_per_epoch(steps_per_epoch)

    def _lr(self, x):
        return self.lr0 * self.rate**x


class InverseSqrtDecay(Schedule):
    """Inverse square-root decay::

        lr = lr0 * k / sqrt(max(x, 1))

    ``x = step`` (``steps_per_epoch=None``) or ``x = (step - 1) // steps_per_epoch``,
    the epoch counted from 0 (see the module docstring).  ``1 / sqrt(0)`` is
    undefined, so epoch 0 uses the value of epoch 1: ``lr = lr0 * k`` for the
    first two epochs, then ``lr0 * k / sqrt(epoch)``.  By step, ``x = step >= 1``
    and the formula applies as written.

    Parameters
    ----------
    lr0 : float
        Initial learning rate, >= 0.
    k : float
        Positive scale (default 1.0), so that ``lr(1) = lr0 * k``.
    steps_per_epoch : int or None
        Decay by epoch of this many steps; None decays every step.
    """

    _fields = ("lr0", "k", "steps_per_epoch")

    def __init__(self, lr0, k=1.0, steps_per_epoch=None):
        self.lr0 = _real(lr0, "lr0")
        self.k = _real(k, "k", low_open=True)
        self.steps_per_epoch = _steps_per_epoch(steps_per_epoch)

    def _lr(self, x):
        return self.lr0 * self.k / math.sqrt(max(x, 1))


class PiecewiseConstant(Schedule):
    """Staircase: constant on intervals, changing at given boundaries::

        lr = values[0]   for            x < boundaries[0]
        lr = values[i]   for boundaries[i-1] <= x < boundaries[i]
        lr = values[-1]  for boundaries[-1] <= x

    ``x = step`` (``steps_per_epoch=None``) or ``x = (step - 1) // steps_per_epoch``,
    the epoch counted from 0.  A boundary is the first step (or epoch) that uses
    the next value, as the milestones of ``torch.optim.lr_scheduler.MultiStepLR``:
    ``PiecewiseConstant([30, 60], [0.1, 0.01, 0.001], steps_per_epoch=N)`` uses
    0.1 for epochs 0..29, 0.01 for 30..59, 0.001 from epoch 60 on.

    Parameters
    ----------
    boundaries : sequence of int
        Strictly increasing, each >= 1.
    values : sequence of float
        ``len(boundaries) + 1`` learning rates, each >= 0.
    steps_per_epoch : int or None
        Count boundaries in epochs of this many steps; None counts steps.
    """

    _fields = ("boundaries", "values", "steps_per_epoch")

    def __init__(self, boundaries, values, steps_per_epoch=None):
        try:
            boundaries, values = tuple(boundaries), tuple(values)
        except TypeError:
            raise TypeError("boundaries and values must be sequences") from None
        self.boundaries = tuple(_integer(b, "boundaries", low=1) for b in boundaries)
        if any(a >= b for a, b in itertools.pairwise(self.boundaries)):
            raise ValueError(f"Invalid boundaries value: {boundaries!r} (must increase strictly)")
        if len(values) != len(self.boundaries) + 1:
            raise ValueError(f"values needs len(boundaries) + 1 = {len(self.boundaries) + 1} "
                             f"entries, got {len(values)}")
        self.values = tuple(_real(v, "values") for v in values)
        self.steps_per_epoch = _steps_per_epoch(steps_per_epoch)

    def _lr(self, x):
        return self.values[bisect.bisect_right(self.boundaries, x)]


Staircase = PiecewiseConstant


class Warmup(Schedule):
    """Linear warm-up, then the wrapped schedule (or constant lr)::

        lr = inner(step) * step / warmup_steps    for step < warmup_steps
        lr = inner(step)                          for step >= warmup_steps

    ``inner`` is the wrapped schedule, or the constant given as a number.  The
    ramp multiplies the wrapped schedule on the same clock (it is not delayed),
    so the rate is continuous at ``step = warmup_steps``: ``inner(1) /
    warmup_steps`` on the first step, the full ``inner(warmup_steps)`` on step
    ``warmup_steps``.  Warm-up is always counted in steps.

    Parameters
    ----------
    schedule_or_lr : float or callable
        A learning rate >= 0, or a callable ``step -> lr`` (e.g. another schedule).
    warmup_steps : int
        Length of the ramp in steps, >= 0 (0: no warm-up).
    """

    _fields = ("schedule_or_lr", "warmup_steps")

    def __init__(self, schedule_or_lr, warmup_steps):
        if not callable(schedule_or_lr):
            schedule_or_lr = _real(schedule_or_lr, "schedule_or_lr")
        self.schedule_or_lr = schedule_or_lr
        self.warmup_steps = _integer(warmup_steps, "warmup_steps", low=0)

    def __call__(self, step):
        step = _integer(step, "step", low=1)
        inner = self.schedule_or_lr
        lr = float(inner(step)) if callable(inner) else inner
        if step < self.warmup_steps:
            lr *= step / self.warmup_steps
        return lr
