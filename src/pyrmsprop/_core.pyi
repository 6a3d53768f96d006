# Type stubs for the compiled module pyrmsprop._core (pyrmsprop/_core.pyx).
# tests/test_packaging.py checks them with mypy and stubtest, and that their
# names match the module's, so they cannot drift from the binding.
#
# Arrays are float32, float64, bfloat16 (ml_dtypes) or float16, and a call's state
# dtype may differ from its param's (bfloat16 state for float32 params, say): which
# combinations are allowed is checked at run time (a TypeError naming the argument),
# so the stubs take any array.

from collections.abc import Iterable, Sequence
from typing import Any, SupportsIndex, TypeAlias

import numpy as np
from typing_extensions import disjoint_base

_A: TypeAlias = np.ndarray[Any, Any]
# Any shape: numpy's stubs give np.zeros(100) the shape type tuple[int], and list is
# invariant, so a list of a narrower array type would refuse [np.zeros(100)].
_Arrays: TypeAlias = list[np.ndarray[Any, Any]] | tuple[np.ndarray[Any, Any], ...]
_Floats: TypeAlias = _A

# ---- 8-bit state: pyrmsprop.QuantizedState's base (its codes and absmax) ------------
@disjoint_base
class _QState:
    @property
    def codes(self) -> _A: ...
    @property
    def absmax(self) -> _A: ...
    @property
    def signed(self) -> bool: ...
    def __init__(self, codes: _A, absmax: _A, is_signed: bool) -> None: ...

Q8_BLOCK: int
Q8_ZERO: dict[bool, int]
def q8_map(is_signed: bool) -> bytes: ...
def q8_quantize(x: _A, codes: _A, absmax: _A, is_signed: bool) -> None: ...
def q8_dequantize(codes: _A, absmax: _A, out: _A, is_signed: bool) -> None: ...

# a state argument: an array, or 8-bit state
_S: TypeAlias = _A | _QState
_States: TypeAlias = list[_A | _QState] | tuple[_A | _QState, ...]

# ---- one array per argument --------------------------------------------------
def ema_update(
    avg: _S, x: _A, *, beta: float, seed: SupportsIndex | None = None,
    step: SupportsIndex | None = None
) -> None: ...
def rmsprop_update(
    param: _A,
    grad: _A,
    square_avg: _S,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    momentum_buffer: _S | None = None,
    centered: bool = False,
    grad_avg: _S | None = None,
    eps_in_sqrt: bool = False,
    maximize: bool = False,
    master_param: _A | None = None,
    param_lo: _A | None = None,
    compensation: _A | None = None,
    seed: SupportsIndex | None = None,
    step: SupportsIndex | None = None,
) -> None: ...
def adam_update(
    param: _A,
    grad: _A,
    exp_avg: _S,
    exp_avg_sq: _S,
    *,
    step: SupportsIndex,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    amsgrad: bool = False,
    max_exp_avg_sq: _S | None = None,
    maximize: bool = False,
    master_param: _A | None = None,
    param_lo: _A | None = None,
    compensation: _A | None = None,
    seed: SupportsIndex | None = None,
) -> None: ...
def sgd_update(
    param: _A,
    grad: _A,
    *,
    lr: float,
    momentum: float = 0.0,
    momentum_buffer: _S | None = None,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    master_param: _A | None = None,
    param_lo: _A | None = None,
    compensation: _A | None = None,
    seed: SupportsIndex | None = None,
    step: SupportsIndex | None = None,
) -> None: ...
def memory_only_update(
    a0: _A,
    a1: _A,
    a2: _S | None = None,
    a3: _S | None = None,
    *,
    extra: _A | None = None,
    prefetch: bool = True,
) -> None: ...
def bf16_bits(bits: _A) -> object: ...

# ---- lists of arrays, one compiled call --------------------------------------
def ema_update_multi(
    avgs: _States,
    xs: _Arrays,
    *,
    beta: float,
    seed: SupportsIndex | None = None,
    step: SupportsIndex | None = None,
    _validate_only: bool = False,
) -> None: ...
def rmsprop_update_multi(
    params: _Arrays,
    grads: _Arrays,
    square_avgs: _States,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    momentum_buffers: _States | None = None,
    centered: bool = False,
    grad_avgs: _States | None = None,
    eps_in_sqrt: bool = False,
    maximize: bool = False,
    master_params: _Arrays | None = None,
    param_los: _Arrays | None = None,
    compensations: _Arrays | None = None,
    seed: SupportsIndex | None = None,
    step: SupportsIndex | None = None,
    _validate_only: bool = False,
) -> None: ...
def adam_update_multi(
    params: _Arrays,
    grads: _Arrays,
    exp_avgs: _States,
    exp_avg_sqs: _States,
    *,
    step: SupportsIndex,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    amsgrad: bool = False,
    max_exp_avg_sqs: _States | None = None,
    maximize: bool = False,
    master_params: _Arrays | None = None,
    param_los: _Arrays | None = None,
    compensations: _Arrays | None = None,
    seed: SupportsIndex | None = None,
    _validate_only: bool = False,
) -> None: ...
def sgd_update_multi(
    params: _Arrays,
    grads: _Arrays,
    *,
    lr: float,
    momentum: float = 0.0,
    momentum_buffers: _States | None = None,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    first_step: bool = False,
    master_params: _Arrays | None = None,
    param_los: _Arrays | None = None,
    compensations: _Arrays | None = None,
    seed: SupportsIndex | None = None,
    step: SupportsIndex | None = None,
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
def hw_conversions(supported: bool = False) -> tuple[str, ...]: ...
def set_hw_conversions(names: Iterable[str]) -> tuple[str, ...]: ...

# ---- threads -------------------------------------------------------------------
def set_num_threads(n: SupportsIndex) -> None: ...
def get_num_threads() -> int: ...
def set_thread_threshold(n: SupportsIndex) -> None: ...
def get_thread_threshold() -> int: ...
def split_elements(rule: str, dtype: object) -> int: ...
def thread_mode() -> str: ...
def chunk_elements() -> int: ...
