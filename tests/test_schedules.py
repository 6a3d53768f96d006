"""pyrmsprop.schedules: formulas at given steps (hand-computed), epoch/step clock, bad args."""

import math
import pickle

import numpy as np
import pytest

from pyrmsprop.schedules import (
    ExponentialDecay,
    InverseSqrtDecay,
    InverseTimeDecay,
    PiecewiseConstant,
    Staircase,
    Warmup,
)


@pytest.mark.parametrize(
    "schedule, expected",
    [
        # by step: x = step
        (InverseTimeDecay(0.2, 1.0), {1: 0.1, 3: 0.05, 9: 0.02}),
        (InverseTimeDecay(1.0, 0.5), {1: 1 / 1.5, 2: 0.5, 6: 0.25}),
        (InverseTimeDecay(0.3, 0.0), {1: 0.3, 1000: 0.3}),
        (ExponentialDecay(0.1, 0.5), {1: 0.05, 2: 0.025, 4: 0.00625}),
        (ExponentialDecay(1.0, 0.95), {1: 0.95, 2: 0.9025, 3: 0.857375}),
        (InverseSqrtDecay(0.1), {1: 0.1, 4: 0.05, 100: 0.01}),
        (InverseSqrtDecay(0.5, k=2.0), {1: 1.0, 16: 0.25}),
        # by epoch: x = (step - 1) // steps_per_epoch, from 0
        # the course's table: alpha0 = 0.2, decay_rate = 1 -> 0.2, 0.1, 0.0667, 0.05
        (InverseTimeDecay(0.2, 1.0, steps_per_epoch=10),
         {1: 0.2, 10: 0.2, 11: 0.1, 20: 0.1, 21: 0.2 / 3, 31: 0.05}),
        (ExponentialDecay(2.0, 0.5, steps_per_epoch=3), {1: 2.0, 3: 2.0, 4: 1.0, 7: 0.5, 10: 0.25}),
        # epoch 0 uses epoch 1's value
        (InverseSqrtDecay(0.3, steps_per_epoch=5), {1: 0.3, 5: 0.3, 6: 0.3, 10: 0.3,
                                                    11: 0.3 / math.sqrt(2), 21: 0.15, 46: 0.1}),
        (InverseSqrtDecay(0.1, k=3.0, steps_per_epoch=1), {1: 0.3, 2: 0.3, 5: 0.15}),
    ],
    ids=repr,
)
def test_decay_formulas(schedule, expected):
    for step, lr in expected.items():
        assert schedule(step) == pytest.approx(lr, rel=1e-15), step
        assert type(schedule(step)) is float


def test_piecewise_constant():
    lr = PiecewiseConstant([3, 5], [1.0, 0.5, 0.25])
    assert [lr(s) for s in range(1, 8)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25]
    # MultiStepLR-style milestones in epochs of 10 steps: epochs 0..1, 2, 3..
    by_epoch = Staircase([2, 3], [0.1, 0.01, 0.001], steps_per_epoch=10)
    assert [by_epoch(s) for s in (1, 20, 21, 30, 31, 500)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert PiecewiseConstant([], [0.7])(12345) == 0.7
    assert Staircase is PiecewiseConstant


def test_warmup():
    lr = Warmup(0.4, warmup_steps=4)
    assert [lr(s) for s in range(1, 7)] == [0.1, 0.2, 0.30000000000000004, 0.4, 0.4, 0.4]
    # wraps a schedule on the same clock: inner(step) * step / warmup_steps
    inner = ExponentialDecay(1.0, 0.5)
    w = Warmup(inner, 3)
    assert [w(s) for s in (1, 2, 3, 4)] == [0.5 / 3, 0.25 * 2 / 3, 0.125, 0.0625]
    assert Warmup(0.3, 0)(1) == 0.3
    assert Warmup(lambda step: 2.0 * step, 2)(1) == 1.0


def test_numpy_integer_step_and_time_variable():
    lr = ExponentialDecay(1.0, 0.5, steps_per_epoch=4)
    assert lr(np.int64(5)) == 0.5
    # epoch e covers steps e*N + 1 .. (e+1)*N
    for n in (1, 2, 7):
        s = InverseTimeDecay(1.0, 1.0, steps_per_epoch=n)
        for step in range(1, 5 * n + 1):
            assert s(step) == 1.0 / (1 + (step - 1) // n)


def test_repr_eq_pickle():
    s = Warmup(InverseTimeDecay(0.1, 0.5, steps_per_epoch=100), warmup_steps=10)
    assert repr(s) == ("Warmup(schedule_or_lr=InverseTimeDecay(lr0=0.1, decay_rate=0.5, "
                       "steps_per_epoch=100), warmup_steps=10)")
    assert repr(PiecewiseConstant([10], [1, 0.5])) == (
        "PiecewiseConstant(boundaries=(10,), values=(1.0, 0.5), steps_per_epoch=None)")
    assert repr(InverseSqrtDecay(1)) == "InverseSqrtDecay(lr0=1.0, k=1.0, steps_per_epoch=None)"
    assert repr(ExponentialDecay(1, 0.9)) == (
        "ExponentialDecay(lr0=1.0, rate=0.9, steps_per_epoch=None)")
    clone = pickle.loads(pickle.dumps(s))
    assert clone == s and hash(clone) == hash(s) and clone(37) == s(37)
    assert InverseTimeDecay(0.1, 0.5) != InverseTimeDecay(0.1, 0.5, steps_per_epoch=2)


@pytest.mark.parametrize(
    "make, error, name",
    [
        (lambda: InverseTimeDecay("0.1", 1.0), TypeError, "lr0"),
        (lambda: InverseTimeDecay(-0.1, 1.0), ValueError, "lr0"),
        (lambda: InverseTimeDecay(math.nan, 1.0), ValueError, "lr0"),
        (lambda: InverseTimeDecay(True, 1.0), TypeError, "lr0"),
        (lambda: InverseTimeDecay(0.1, -1.0), ValueError, "decay_rate"),
        (lambda: InverseTimeDecay(0.1, math.inf), ValueError, "decay_rate"),
        (lambda: InverseTimeDecay(0.1, 1.0, steps_per_epoch=0), ValueError, "steps_per_epoch"),
        (lambda: InverseTimeDecay(0.1, 1.0, steps_per_epoch=2.0), TypeError, "steps_per_epoch"),
        (lambda: ExponentialDecay(0.1, 0.0), ValueError, "rate"),
        (lambda: ExponentialDecay(0.1, 1.5), ValueError, "rate"),
        (lambda: ExponentialDecay(0.1, None), TypeError, "rate"),
        (lambda: InverseSqrtDecay(0.1, k=0.0), ValueError, "k"),
        (lambda: InverseSqrtDecay(0.1, steps_per_epoch=-3), ValueError, "steps_per_epoch"),
        (lambda: PiecewiseConstant([5, 5], [1, 2, 3]), ValueError, "boundaries"),
        (lambda: PiecewiseConstant([0], [1, 2]), ValueError, "boundaries"),
        (lambda: PiecewiseConstant([1.5], [1, 2]), TypeError, "boundaries"),
        (lambda: PiecewiseConstant([5], [1]), ValueError, "values"),
        (lambda: PiecewiseConstant([5], [1, -2]), ValueError, "values"),
        (lambda: PiecewiseConstant(5, [1, 2]), TypeError, "boundaries"),
        (lambda: Warmup("fast", 10), TypeError, "schedule_or_lr"),
        (lambda: Warmup(0.1, -1), ValueError, "warmup_steps"),
        (lambda: Warmup(0.1, 2.5), TypeError, "warmup_steps"),
    ],
)
def test_bad_constructor_args(make, error, name):
    with pytest.raises(error, match=name):
        make()


@pytest.mark.parametrize(
    "schedule",
    [InverseTimeDecay(0.1, 1.0), ExponentialDecay(0.1, 0.9, steps_per_epoch=3),
     InverseSqrtDecay(0.1), PiecewiseConstant([2], [1, 2]), Warmup(0.1, 5)],
    ids=repr,
)
def test_bad_step(schedule):
    for step, error in ((0, ValueError), (-1, ValueError), (1.0, TypeError),
                        (True, TypeError), ("1", TypeError)):
        with pytest.raises(error, match="step"):
            schedule(step)
