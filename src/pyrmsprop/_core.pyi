# Type stubs for the compiled module pyrmsprop._core (pyrmsprop/_core.pyx).
# tests/test_packaging.py checks them with mypy and stubtest, and that their
# names match the module's, so they cannot drift from the binding.
#
# All arrays of one call share one dtype: the constrained TypeVar _F makes a
# float32/float64 mix a type error, as it is a TypeError at run time.

from collections.abc import Sequence
from typing import Any, SupportsIndex, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)
# Any shape: numpy's stubs give np.zeros(100) the shape type tuple[int], and list is
# invariant, so list[NDArray[_F]] (shape tuple[int, ...]) would refuse [np.zeros(100)].
_Arrays: TypeAlias = list[np.ndarray[Any, np.dtype[_F]]] | tuple[NDArray[_F], ...]
_Floats: TypeAlias = NDArray[np.floating[Any]]  # float32/float64 arrays, mixed allowed

# ---- one array per argument --------------------------------------------------
def ema_update(avg: NDArray[_F], x: NDArray[_F], *, beta: float) -> None: ...
def rmsprop_update(
    param: NDArray[_F],
    grad: NDArray[_F],
    square_avg: NDArray[_F],
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    momentum_buffer: NDArray[_F] | None = None,
    centered: bool = False,
    grad_avg: NDArray[_F] | None = None,
    eps_in_sqrt: bool = False,
    maximize: bool = False,
) -> None: ...
def adam_update(
    param: NDArray[_F],
    grad: NDArray[_F],
    exp_avg: NDArray[_F],
    exp_avg_sq: NDArray[_F],
    *,
    step: SupportsIndex,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    amsgrad: bool = False,
    max_exp_avg_sq: NDArray[_F] | None = None,
    maximize: bool = False,
) -> None: ...
def sgd_update(
    param: NDArray[_F],
    grad: NDArray[_F],
    *,
    lr: float,
    momentum: float = 0.0,
    momentum_buffer: NDArray[_F] | None = None,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None: ...
def memory_only_update(
    a0: NDArray[_F], a1: NDArray[_F], a2: NDArray[_F] | None = None, a3: NDArray[_F] | None = None
) -> None: ...

# ---- lists of arrays, one compiled call --------------------------------------
def ema_update_multi(
    avgs: _Arrays[_F], xs: _Arrays[_F], *, beta: float, _validate_only: bool = False
) -> None: ...
def rmsprop_update_multi(
    params: _Arrays[_F],
    grads: _Arrays[_F],
    square_avgs: _Arrays[_F],
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    momentum_buffers: _Arrays[_F] | None = None,
    centered: bool = False,
    grad_avgs: _Arrays[_F] | None = None,
    eps_in_sqrt: bool = False,
    maximize: bool = False,
    _validate_only: bool = False,
) -> None: ...
def adam_update_multi(
    params: _Arrays[_F],
    grads: _Arrays[_F],
    exp_avgs: _Arrays[_F],
    exp_avg_sqs: _Arrays[_F],
    *,
    step: SupportsIndex,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    amsgrad: bool = False,
    max_exp_avg_sqs: _Arrays[_F] | None = None,
    maximize: bool = False,
    _validate_only: bool = False,
) -> None: ...
def sgd_update_multi(
    params: _Arrays[_F],
    grads: _Arrays[_F],
    *,
    lr: float,
    momentum: float = 0.0,
    momentum_buffers: _Arrays[_F] | None = None,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    first_step: bool = False,
    _validate_only: bool = False,
) -> None: ...
def all_finite(arrays: list[_Floats] | tuple[_Floats, ...]) -> bool: ...

# ---- SIMD targets --------------------------------------------------------------
def compiled_targets() -> list[str]: ...
def simd_targets() -> list[str]: ...
def simd_target() -> str: ...
def best_simd_target() -> str: ...
def set_simd(name: str) -> None: ...
def rule_target(rule: str, dtype: str) -> str: ...
def set_rule_target(rule: str, dtype: str, name: str) -> None: ...
def time_on(name: str, rule: str, arrays: Sequence[_Floats], calls: int) -> float: ...
def target_note() -> str: ...
def compiler() -> str: ...
def cpu_name() -> str: ...

# ---- threads -------------------------------------------------------------------
def set_num_threads(n: SupportsIndex) -> None: ...
def get_num_threads() -> int: ...
def set_thread_threshold(n: SupportsIndex) -> None: ...
def get_thread_threshold() -> int: ...
def split_elements(rule: str, dtype: object) -> int: ...
def thread_mode() -> str: ...
def chunk_elements() -> int: ...
