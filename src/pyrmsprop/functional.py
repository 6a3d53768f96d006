"""The functional API: stateless, in-place updates of numpy arrays.

Each function checks every argument (types, dtypes, shapes, contiguity,
writability, memory overlap, hyperparameter ranges) before it writes anything,
then runs one compiled, vectorized kernel with the GIL released.  The formulas
are in each docstring (and in the README and ``docs/``).

A state argument may be a :class:`pyrmsprop.QuantizedState` (8-bit block-wise
state) instead of an array; then all of the call's state arguments are.

The ``*_multi`` variants take lists of arrays (like torch's ``foreach``
functions) and update all of them in one compiled call, split across threads by
total size; ``all_finite`` is the optimizers' NaN/Inf check.
"""

from pyrmsprop._core import (
    adam_update,
    adam_update_multi,
    all_finite,
    ema_update,
    ema_update_multi,
    rmsprop_update,
    rmsprop_update_multi,
    sgd_update,
    sgd_update_multi,
)

__all__ = [
    "adam_update",
    "adam_update_multi",
    "all_finite",
    "ema_update",
    "ema_update_multi",
    "rmsprop_update",
    "rmsprop_update_multi",
    "sgd_update",
    "sgd_update_multi",
]
