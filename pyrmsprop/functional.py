"""The functional API: stateless, in-place updates of numpy arrays.

Each function checks every argument (types, dtypes, shapes, contiguity,
writability, memory overlap, hyperparameter ranges) before it writes anything,
then runs one compiled, vectorized kernel with the GIL released.  The formulas
are in each docstring and in ``shared/ALGORITHMS.md``.
"""

from pyrmsprop._core import adam_update, ema_update, rmsprop_update, sgd_update

__all__ = ["adam_update", "ema_update", "rmsprop_update", "sgd_update"]
