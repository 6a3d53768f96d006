"""pyrmsprop: fast, exact optimizer updates on the CPU.

Vectorized C kernels for EMA, RMSprop, Adam/AdamW and SGD with momentum,
compiled for several SIMD targets and chosen at import, split across a small
thread pool for large arrays, and giving the same numbers as ``torch.optim``.

Importing pyrmsprop never imports torch; ``pyrmsprop.torch`` does, on demand.
"""

import os as _os


def _explain_import_error(exc: ImportError) -> None:
    here = _os.path.dirname(_os.path.abspath(__file__))
    if _os.path.exists(_os.path.join(here, "_core.pyx")):
        # A source checkout's package folder, imported before (or instead of) the
        # installed one: its compiled extension was never built here.
        raise ImportError(
            f"pyrmsprop was imported from its source folder {here}, which has no compiled "
            f"extension (pyrmsprop._core). Install it (`pip install .` in the checkout's "
            f"root) and run Python from anywhere but {_os.path.dirname(here)}, or build it in "
            f"place with `pip install -e .`.") from exc


try:
    from pyrmsprop import _core
except ImportError as _exc:
    _explain_import_error(_exc)
    raise

from pyrmsprop import schedules  # noqa: E402
from pyrmsprop._config import show_config  # noqa: E402
from pyrmsprop._core import get_num_threads, set_num_threads, simd_targets  # noqa: E402
from pyrmsprop._simd import set_simd, simd_by_rule, simd_target  # noqa: E402
from pyrmsprop._version import __version__  # noqa: E402
from pyrmsprop.functional import adam_update, ema_update, rmsprop_update, sgd_update  # noqa: E402
from pyrmsprop.optim import EMA, SGD, Adam, AdamW, RMSprop  # noqa: E402
from pyrmsprop.quantized import QuantizedState  # noqa: E402

__all__ = [
    "EMA",
    "SGD",
    "Adam",
    "AdamW",
    "QuantizedState",
    "RMSprop",
    "__version__",
    "schedules",
    "adam_update",
    "ema_update",
    "get_num_threads",
    "rmsprop_update",
    "set_num_threads",
    "set_simd",
    "sgd_update",
    "show_config",
    "simd_by_rule",
    "simd_target",
    "simd_targets",
]


def _default_threads() -> int:
    for var in ("PYRMSPROP_NUM_THREADS", "OMP_NUM_THREADS"):
        value = _os.environ.get(var, "").strip().split(",")[0]
        if value:
            try:
                n = int(value)
            except ValueError:
                raise ValueError(f"{var}={value!r} is not a positive integer") from None
            if n < 1:
                raise ValueError(f"{var}={value!r} is not a positive integer")
            return min(n, 256)
    try:
        return max(1, min(len(_os.sched_getaffinity(0)), 256))
    except (AttributeError, OSError):
        return max(1, min(_os.cpu_count() or 1, 256))


def _init() -> None:
    from pyrmsprop import _simd

    _simd.init()
    _core.set_num_threads(_default_threads())


_init()
