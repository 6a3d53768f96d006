"""Stateful optimizers over numpy arrays, with torch.optim's names and defaults.

    opt = pyrmsprop.Adam(params, lr=1e-3)      # params: list of float arrays
    for batch in data:
        grads = compute_grads(params, batch)   # list of arrays, same shapes
        opt.step(grads)                        # params updated in place

Each ``step`` runs one compiled call per parameter group (per dtype), whatever
the number of arrays, split across threads by total size.  ``lr`` may be a
float or a schedule (a callable ``step -> lr``, see :mod:`pyrmsprop.schedules`).
State arrays are allocated on a parameter's first step, as torch does.

Every optimizer takes, per group, ``state_dtype`` (the state arrays' dtype: None
for the param's, or 'float32' / 'bfloat16' / 'float16' / 'float64' as the
param's dtype allows), ``master`` (how a bfloat16/float16 param keeps what its
rounding loses: None, 'fp32' (a float32 copy, state['master_param']), 'split'
(bfloat16: the low halves, state['param_lo']), 'kahan' (state['compensation']) or
'stochastic' (stochastic rounding, keyed by ``seed``, the step, the parameter and
the element)) and ``seed`` (an int).

``state_dtype='8bit'`` (float32, bfloat16 and float16 params) keeps each state array
of a parameter of at least :data:`Q8_MIN_SIZE` elements as a
:class:`~pyrmsprop.QuantizedState` (one uint8 code per element, one float32 absmax
per block of 256); smaller parameters keep float32 state, as bitsandbytes'
``min_8bit_size``.  Their state dicts hold each quantized array as two arrays,
``<name>_codes`` and ``<name>_absmax``; a state dict of float state loads into an
8-bit optimizer (quantized on load) and an 8-bit one into a float optimizer
(dequantized on load).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from pyrmsprop import _core
from pyrmsprop.quantized import QuantizedState

__all__ = ["SGD", "Adam", "AdamW", "EMA", "Optimizer", "RMSprop", "Q8_MIN_SIZE"]

_FORMAT = "pyrmsprop-state"
_CALLABLE_LR = "<callable>"


_FLOATS = ("float32", "float64", "bfloat16", "float16")
_Q8 = "8bit"   # state_dtype: block-wise 8-bit state (QuantizedState)
# the state dtypes each param dtype allows (the first: its default), as the kernels
_STATE_FOR = {"float64": ("float64",), "float32": ("float32", "bfloat16", _Q8),
              "bfloat16": ("bfloat16", "float32", _Q8), "float16": ("float16", "float32", _Q8)}
#: Parameters with fewer elements keep float32 state under ``state_dtype='8bit'``.
Q8_MIN_SIZE = 4096
# 8-bit state arrays read through the signed map (first moments, momentum) or the
# unsigned one (second moments)
_Q8_SIGNED = {"exp_avg": True, "exp_avg_sq": False, "max_exp_avg_sq": False,
              "square_avg": False, "momentum_buffer": True, "grad_avg": True}
_Q8_PARTS = ("_codes", "_absmax")   # a quantized array's two arrays in a state dict
_MASTERS = (None, "fp32", "split", "kahan", "stochastic")
# the state array each master mode keeps beside the param
_MASTER_ARRAY = {"fp32": "master_param", "split": "param_lo", "kahan": "compensation"}


def _dtype_name(dt) -> str:
    return np.dtype(dt).name


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # only reached with bfloat16 params or state, which need it
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _state_dtype_option(value, q8: bool = True) -> str | None:
    """A group's ``state_dtype`` as a dtype name (None: the param's), or '8bit' if
    ``q8`` allows it."""
    if value is None:
        return None
    name = getattr(value, "__name__", None) or getattr(value, "name", None) or value
    names = _FLOATS + ((_Q8,) if q8 else ())
    if isinstance(name, str) and name in names:
        return name
    raise TypeError(f"state_dtype must be None or one of {list(names)}, got {value!r}")


def _q8_state(sd: str | None, size: int) -> bool:
    """Whether a param of ``size`` elements keeps 8-bit state under state dtype ``sd``."""
    return sd == _Q8 and size >= Q8_MIN_SIZE


def _state_kind(sd: str | None, size: int) -> str | None:
    """How a rule's state array of a param of ``size`` elements is kept under state
    dtype ``sd``: '8bit', a dtype name, or None (the param's dtype); for the numpy
    optimizers and pyrmsprop.torch."""
    if sd == _Q8:
        return _Q8 if _q8_state(sd, size) else "float32"
    return sd


def _q8_pairs(st: dict, where: str) -> dict:
    """A saved state ``st`` with each pair ``<name>_codes``, ``<name>_absmax`` as one
    entry ``name: (codes, absmax)`` (a lone half, or a pair beside a plain ``name``,
    is a ValueError naming ``where``)."""
    out, pairs = dict(st), {}
    for key in st:
        for part in _Q8_PARTS:
            if isinstance(key, str) and key.endswith(part) and key[:-len(part)] in _Q8_SIGNED:
                name = key[:-len(part)]
                if name in pairs:
                    continue
                if name in st:
                    raise ValueError(f"{where} has both {name!r} and {key!r}: one of them, "
                                     f"please")
                if not all(name + q in st for q in _Q8_PARTS):
                    raise ValueError(f"{where} has {key!r} but not "
                                     f"{[name + q for q in _Q8_PARTS]}: an 8-bit state needs both")
                pairs[name] = tuple(out.pop(name + q) for q in _Q8_PARTS)
    return {**out, **pairs}


def _converted(a, name: str, want, shape: tuple, where: str):
    """Saved state ``a`` (an array, or a (codes, absmax) pair) as state array ``name`` of
    dtype ``want`` (a numpy dtype, or '8bit': a QuantizedState) for a param of
    ``shape``: as it is, quantized or dequantized (a float array of another dtype is
    an error, as before 8-bit state); a ValueError naming ``where`` if it cannot be."""
    if isinstance(a, tuple):
        codes, absmax = (np.asarray(x) for x in a)
        if codes.shape != shape or codes.dtype != np.uint8:
            raise ValueError(f"{where}: {name}_codes has shape {codes.shape} and dtype "
                             f"{codes.dtype}; it must be uint8 of the parameter's shape {shape}")
        try:
            q = QuantizedState(codes.copy(), np.array(absmax, copy=True),
                               signed=_Q8_SIGNED[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {name}_{exc}") from None
        if isinstance(want, str):
            return q
        return q.dequantize().astype(want)
    a = np.asarray(a)
    if a.shape != shape or (a.dtype != want if not isinstance(want, str) else
                            a.dtype.kind != "f" and a.dtype.name != "bfloat16"):
        raise ValueError(f"{where} has shape {a.shape} and dtype {a.dtype}, the parameter "
                         f"{shape} (this state's dtype: {want})")
    if isinstance(want, str):
        try:
            return QuantizedState.from_float(a, signed=_Q8_SIGNED[name])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return a


def _storage_error(pd: str, sd: str | None, master: str | None, name: str) -> Exception | None:
    """Why param ``name`` of dtype ``pd`` cannot take state dtype ``sd`` and master mode
    ``master`` (a TypeError or ValueError to raise), or None; pyrmsprop.torch too."""
    if sd is not None and sd not in _STATE_FOR[pd]:
        return TypeError(f"state_dtype={sd!r} does not suit {name} of dtype {pd}: its state "
                         f"must be {' or '.join(_STATE_FOR[pd])}")
    if master is not None and pd not in ("bfloat16", "float16"):
        return ValueError(f"master={master!r} needs bfloat16 or float16 params; {name} has "
                          f"dtype {pd} (its own master)")
    if master == "split" and pd != "bfloat16":
        return ValueError(f"master='split' needs bfloat16 params; {name} has dtype {pd}")
    return None


def _master_kwargs(master: str | None, seed, first: int, states, step) -> dict[str, Any]:
    """The master keywords of one compiled call (the kernels' names, plural), for
    the numpy optimizers and pyrmsprop.torch.  Stochastic rounding keys each call by
    the group's seed and the number of its first parameter, ``first`` (the kernel
    adds the step, the place in the call and the element), so no two parameters
    share random bits; ``step`` is passed to rules without a step of their own
    (None: Adam's).  ``states`` None: a check-only call, whose arrays are not there
    yet."""
    if master is None:
        return {}
    if master == "stochastic":
        key = (int(seed) * 0x9E3779B97F4A7C15 + first) % 2**64
        return {"seed": key, **({"step": step} if step is not None else {})}
    if states is None:
        return {}
    name = _MASTER_ARRAY[master]
    return {name + "s": [s[name] for s in states]}


def _check_storage(params: list, group: dict, where: str) -> None:
    """Each param's dtype allows the group's state_dtype and master (TypeError /
    ValueError naming the param), before anything is allocated or written."""
    for i, p in enumerate(params):
        err = _storage_error(_dtype_name(p.dtype), group["state_dtype"], group["master"],
                             f"{where}[{i}]")
        if err is not None:
            raise err


def _check_params(params: list, where: str, written: bool = True) -> None:
    """Every parameter a C-contiguous, aligned float32/float64/bfloat16/float16 ndarray; if
    ``written``, also writable and no two sharing memory (arrays only read may be
    read-only views)."""
    spans = []
    for i, p in enumerate(params):
        name = f"{where}[{i}]"
        if not isinstance(p, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(p).__name__}")
        if p.dtype.name not in _FLOATS:
            raise TypeError(f"{name} must have dtype float32, float64, bfloat16 or float16, "
                            f"got {p.dtype}")
        if not p.flags.c_contiguous:
            raise ValueError(f"{name} is not C-contiguous; parameters are updated in place")
        if p.size and not p.flags.aligned:
            raise ValueError(f"{name} is not aligned (a view at an odd byte offset); parameters "
                             f"are updated in place: copy it once (np.array(x)) and keep that")
        if not written:
            continue
        if not p.flags.writeable:
            raise ValueError(f"{name} is read-only")
        if p.size:
            start = p.__array_interface__["data"][0]
            spans.append((start, start + p.nbytes, i))
    spans.sort()
    for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
        if start_b < end_a:
            raise ValueError(f"{where}[{a}] and {where}[{b}] share memory")


def _as_list(arrays, name: str, count: int, owner: str, what: str) -> list:
    """``arrays`` as a list of ``count`` items; one ndarray (a common slip: its rows
    would pass for a list) or a non-iterable is a TypeError naming ``name``."""
    if isinstance(arrays, np.ndarray):
        raise TypeError(f"{name} must be a list of arrays (one per {what}, in order), not a "
                        f"single array")
    try:
        out = list(arrays)
    except TypeError:
        raise TypeError(f"{name} must be a list of arrays (one per {what}, in order), got "
                        f"{type(arrays).__name__}") from None
    if len(out) != count:
        raise ValueError(f"{name} has {len(out)} arrays but {owner} has {count} {what}s")
    return out


def _check_dtypes(arrays: list, name: str, like: list, like_name: str) -> None:
    """``arrays[i]`` must have ``like[i]``'s dtype (checked before any compiled call,
    whose message would speak of arrays of one call)."""
    for i, (a, b) in enumerate(zip(arrays, like)):
        dt = getattr(a, "dtype", None)
        if dt is not None and getattr(dt, "name", None) in _FLOATS and dt != b.dtype:
            raise TypeError(f"{name}[{i}] has dtype {dt} but {like_name}[{i}] has dtype "
                            f"{b.dtype}; each must match")


_ALIGN = 64   # bytes: a cache line


def _offset(a: np.ndarray) -> int:
    """Where ``a`` starts within its 64-byte line, in elements (0 when its address is
    not a multiple of its element size, or it is empty)."""
    addr = a.__array_interface__["data"][0]
    if a.size == 0 or addr % a.dtype.itemsize:
        return 0
    return (addr % _ALIGN) // a.dtype.itemsize


def _packed(like: list[np.ndarray], values: list | None = None,
            dtype=None) -> list[np.ndarray]:
    """Arrays shaped and typed like ``like`` (one dtype), as views of ONE new buffer,
    each starting at the same offset within a 64-byte line as its counterpart in
    ``like`` (on a line when that is aligned, as torch allocates; 16 bytes past one
    for numpy's large arrays); zeros, or copies of ``values``.

    The same offset: the kernels peel a short head so that their vector loads and
    stores never split a cache line, which works for all arrays of a call only when
    they share their offset.  One buffer instead of one allocation per tensor: numpy
    asks the kernel for huge pages for allocations of 4 MiB and more, and per-tensor
    state arrays of a real model (mostly below that) would otherwise stream through
    4 KiB pages, which measurably slows a memory-bound step (see
    ``python -m pyrmsprop.bench``, lists).  ``dtype``: the new arrays' (default:
    like's); offsets count in bytes, so arrays of another size keep the lines."""
    if not like:
        return []
    dtype = like[0].dtype if dtype is None else np.dtype(dtype)
    per = _ALIGN // dtype.itemsize
    offsets, total = [], 0
    for a in like:
        at = _offset(a) * a.dtype.itemsize // dtype.itemsize
        total += (at - total) % per              # to the counterpart's place in a line
        offsets.append(total)
        total += a.size
    buf = np.zeros(total + per, dtype=dtype)
    skip = (-buf.__array_interface__["data"][0] % _ALIGN) // dtype.itemsize
    out = [buf[skip + o: skip + o + a.size].reshape(a.shape) for o, a in zip(offsets, like)]
    if values is not None:
        for o, v in zip(out, values):
            o[...] = v
    return out


def _packed_by_dtype(like: list[np.ndarray], values: list | None = None,
                     dtypes: list | None = None) -> list[np.ndarray]:
    """:func:`_packed` for arrays of mixed dtypes (``dtypes[i]``, default like's):
    one buffer per dtype, same order."""
    dts = [a.dtype for a in like] if dtypes is None else [np.dtype(d) for d in dtypes]
    out: list[Any] = [None] * len(like)
    for dt in dict.fromkeys(dts):
        idx = [i for i, d in enumerate(dts) if d == dt]
        vals = None if values is None else [values[i] for i in idx]
        for i, a in zip(idx, _packed([like[i] for i in idx], vals, dt)):
            out[i] = a
    return out


def _exported(st: dict) -> dict:
    """A copy of one param's state for a state dict: arrays copied, each
    QuantizedState as its two arrays (``<name>_codes``, ``<name>_absmax``)."""
    out = {}
    for k, v in st.items():
        if isinstance(v, QuantizedState):
            out[k + "_codes"], out[k + "_absmax"] = v.codes.copy(), v.absmax.copy()
        else:
            out[k] = v.copy() if isinstance(v, np.ndarray) else v
    return out


def _plain(v: Any) -> Any:
    """``v`` with numpy scalars (``np.float32(1e-3)``, ...) as Python numbers, for JSON."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def _renamed(exc: Exception, members, names: dict[str, str] | None = None) -> Exception:
    """``exc`` again, with each ``list[k]`` of its message (k: an index into one
    compiled call's lists) turned into ``list[members[k]]``, the optimizer's own
    parameter number, and lists renamed by ``names``."""
    def sub(m: re.Match) -> str:
        name = (names or {}).get(m[1], m[1])
        return name if m[2] is None else f"{name}[{members[int(m[2])]}]"
    return type(exc)(re.sub(r"\b(\w+)(?:\[(\d+)\])?", sub, str(exc)))


def _atomic_savez(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz to ``path`` through a temporary file in the same folder and a
    rename, so that a crash mid-save leaves the previous file intact."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pyrmsprop-", suffix=".npz.tmp", dir=folder)
    try:
        # numpy cannot store ml_dtypes' bfloat16 without pickling: its bits, as uint16,
        # under a name that says so
        plain = {(k + ".bfloat16" if v.dtype.name == "bfloat16" else k):
                 (v.view(np.uint16) if v.dtype.name == "bfloat16" else v)
                 for k, v in arrays.items()}
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(meta)), **plain)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _load_npz(path: str | os.PathLike, kind: str) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(os.fspath(path), allow_pickle=False) as z:
        if "__meta__" not in z.files:
            raise ValueError(f"{os.fspath(path)!r} is not a pyrmsprop checkpoint")
        meta = json.loads(str(z["__meta__"]))
        arrays = {}
        for k in z.files:
            if k == "__meta__":
                continue
            if k.endswith(".bfloat16"):
                arrays[k[:-len(".bfloat16")]] = z[k].view(_np_dtype("bfloat16"))
            else:
                arrays[k] = z[k]
    if meta.get("format") != _FORMAT or meta.get("kind") != kind:
        raise ValueError(
            f"{os.fspath(path)!r} holds {meta.get('kind')!r} state, not {kind!r}")
    return meta, arrays


class Optimizer:
    """Base class: parameter groups, per-parameter state, checkpoints.

    Subclasses define ``_defaults`` (hyperparameter names and defaults, torch's),
    ``_state_arrays(group)`` (the state array names a group needs) and
    ``_update(group, batch, grads, step, lr)`` (one compiled call).
    """

    _defaults: ClassVar[dict[str, Any]] = {}
    _STATE_NAMES: ClassVar[tuple[str, ...]] = ()   # every state array any option set uses

    def __init__(self, params: Iterable, defaults: dict[str, Any], *,
                 skip_nonfinite: bool = False) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: list[dict[str, Any]] = []
        self.skip_nonfinite = bool(skip_nonfinite)
        self.skipped_steps = 0
        if isinstance(params, np.ndarray):
            raise TypeError("params must be a list of arrays or of param-group dicts, "
                            "not a single array")
        groups = list(params)
        if not groups:
            raise ValueError("params is empty")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- groups -----------------------------------------------------------------
    def _check_group(self, group: dict[str, Any]) -> None:
        """Check hyperparameters with the same code the kernels use: a call on no arrays."""
        group["state_dtype"] = _state_dtype_option(group.get("state_dtype"))
        if group.get("master") not in _MASTERS:
            raise ValueError(f"master must be one of {list(_MASTERS)}, got {group.get('master')!r}")
        seed = group.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
                not 0 <= int(seed) < 2**63:
            raise TypeError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        lr = group["lr"]
        if callable(lr):
            group = {**group, "lr": 0.0}
        self._master = {}
        self._update(group, [], [], None, 1, group["lr"], first=False)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a dict with ``"params"`` (a list of arrays) and optional hyperparameters."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a param group must be a dict with a 'params' list")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) {sorted(unknown)} for "
                             f"{type(self).__name__}; known: {sorted(self.defaults)}")
        params = group["params"]
        params = [params] if isinstance(params, np.ndarray) else list(params)
        if not params:
            raise ValueError("a param group needs at least one array")
        new = {**self.defaults, **group, "params": params}
        self._check_group(new)
        existing = [p for g in self.param_groups for p in g["params"]]
        _check_params(existing + params, "params")
        _check_storage(params, new, "params")
        self.param_groups.append(new)
        self.state.extend({} for _ in params)

    def _groups_with_index(self):
        start = 0
        for group in self.param_groups:
            n = len(group["params"])
            yield group, range(start, start + n)
            start += n

    # ---- stepping ---------------------------------------------------------------
    def step(self, grads: list[np.ndarray]) -> bool:
        """Apply one update with ``grads`` (one array per parameter, in order).

        Returns False, changing nothing, when ``skip_nonfinite`` is set and a
        gradient holds NaN or Inf (``skipped_steps`` counts those); else True.
        Every argument is checked before any array is written.
        """
        grads = _as_list(grads, "grads", len(self.state), "the optimizer", "parameter")
        _check_dtypes(grads, "grads", [p for g in self.param_groups for p in g["params"]],
                      "params")
        calls = []
        fresh = False
        for group, idx in self._groups_with_index():
            batches: dict[tuple, list[int]] = {}
            needed = set(self._state_arrays(group))
            for i, p in zip(idx, group["params"]):
                # (8-bit and float32 state cannot share a call)
                key = (p.dtype.char, self.state[i].get("step", 0), self._first(group, i),
                       _q8_state(group["state_dtype"], p.size))
                batches.setdefault(key, []).append(i)
                # new state (first step, or an option such as momentum or amsgrad
                # switched on in a group mid-training)
                fresh = fresh or not needed <= self.state[i].keys()
            for (_, step, first, _), members in batches.items():
                params = [group["params"][i - idx.start] for i in members]
                calls.append((group, members, params, step + 1, first,
                              self._lr(group, step + 1)))
        # Check every call before the first write (and before allocating state, or
        # looking for NaN) unless the single call below checks everything itself.
        if len(calls) > 1 or fresh or self.skip_nonfinite:
            for group, members, params, step, first, lr in calls:
                self._call(group, members, params, grads, None, step, lr, first)
        if self.skip_nonfinite and not _core.all_finite(grads):
            self.skipped_steps += 1
            return False
        for group, members, params, step, first, lr in calls:
            self._init_state(group, members, params)
            self._call(group, members, params, grads, [self.state[i] for i in members],
                       step, lr, first)
            for i in members:
                self.state[i]["step"] = step
        return True

    def _call(self, group, members, params, grads, states, step, lr, first) -> None:
        """:meth:`_update` on the parameters numbered ``members``; errors name them
        by those numbers ("grads[3]"), not by their place in this call."""
        try:
            self._master = self._master_kwargs(group, members, states, step)
            self._update(group, params, [grads[i] for i in members], states, step, lr, first)
        except (TypeError, ValueError) as exc:
            raise _renamed(exc, members) from None

    def _first(self, group: dict, i: int) -> bool:
        return False

    _master: dict[str, Any] = {}

    def _master_kwargs(self, group, members, states, step) -> dict[str, Any]:
        return _master_kwargs(group.get("master"), group.get("seed", 0), members[0], states,
                              step if self._sr_step else None)

    _sr_step = True    # the rule takes step= for stochastic rounding (Adam has its own)

    @staticmethod
    def _lr(group: dict, step: int) -> float:
        lr = group["lr"]
        return lr(step) if callable(lr) else lr

    def _param(self, i: int) -> np.ndarray:
        for group, idx in self._groups_with_index():
            if i in idx:
                return group["params"][i - idx.start]
        raise IndexError(i)

    def _init_state(self, group, members, params) -> None:
        """Allocate, as zeros, the state arrays ``group``'s options need that the
        parameters numbered ``members`` (one dtype) lack: all of them on a first
        step.  Each state name gets one buffer for the lot (:func:`_packed`)."""
        for i in members:
            self.state[i].setdefault("step", 0)
        for name in self._all_state_arrays(group):
            need = [(i, p) for i, p in zip(members, params) if name not in self.state[i]]
            if not need:
                continue
            dtype = self._dtype_of(group, need[0][1], name)   # (one for the lot: see step)
            if isinstance(dtype, str):     # 8-bit: the codes in one buffer
                for (i, _), codes in zip(need, _packed([p for _, p in need], dtype=np.uint8)):
                    self.state[i][name] = QuantizedState.zeros_into(codes,
                                                                    signed=_Q8_SIGNED[name])
                continue
            values = [p.astype(np.float32) for _, p in need] if name == "master_param" else None
            for (i, _), a in zip(need, _packed([p for _, p in need], values, dtype)):
                self.state[i][name] = a

    def _all_state_arrays(self, group) -> tuple[str, ...]:
        """The rule's state arrays and the master mode's."""
        extra = _MASTER_ARRAY.get(group["master"])
        return self._state_arrays(group) + ((extra,) if extra else ())

    @staticmethod
    def _dtype_of(group, p: np.ndarray, name: str) -> np.dtype | str:
        """The dtype of state array ``name`` of param ``p`` in ``group``, or '8bit' (a
        QuantizedState)."""
        if name == "master_param":
            return np.dtype(np.float32)
        if name == "param_lo":
            return np.dtype(np.uint16)
        if name == "compensation":
            return p.dtype
        kind = _state_kind(group["state_dtype"], p.size)
        return p.dtype if kind is None else kind if kind == _Q8 else _np_dtype(kind)

    def _state_arrays(self, group) -> tuple[str, ...]:
        raise NotImplementedError

    def _update(self, group, params, grads, states, step, lr, first) -> None:
        """One compiled call; ``states`` is None to only check the arguments."""
        raise NotImplementedError

    @staticmethod
    def _lists(states, name, wanted=True):
        return None if states is None or not wanted else [s[name] for s in states]

    # ---- state ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy of the state: ``{"state": {i: {...}}, "param_groups": [...]}``,
        laid out like ``torch.optim``'s (parameters as indices)."""
        groups = []
        for group, idx in self._groups_with_index():
            g = {k: v for k, v in group.items() if k != "params"}
            g["params"] = list(idx)
            groups.append(g)
        state = {i: _exported(st) for i, st in enumerate(self.state) if st}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`; it must match the parameters (count, shapes,
        keys).  On any mismatch a ``ValueError``/``TypeError`` is raised and the
        optimizer is left unchanged.  A saved callable ``lr`` keeps this optimizer's
        own schedule, and each group keeps its own ``state_dtype``: saved float state
        loads into 8-bit state quantized, saved 8-bit state into float state
        dequantized (and rounded to nearest even for 16-bit state); other dtypes must
        match."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(saved_groups)} param groups, the "
                             f"optimizer has {len(self.param_groups)}")
        new_groups = []
        for gi, ((group, idx), saved) in enumerate(zip(self._groups_with_index(), saved_groups)):
            if list(saved.get("params", [])) != list(idx):
                raise ValueError(f"param group {gi} of state_dict holds parameters "
                                 f"{list(saved.get('params', []))}, expected {list(idx)}")
            missing = set(self.defaults) - set(saved)
            unknown = set(saved) - set(self.defaults) - {"params"}
            if missing or unknown:
                raise ValueError(f"param group {gi} of state_dict: missing {sorted(missing)}, "
                                 f"unknown {sorted(unknown)}")
            new = {**{k: v for k, v in saved.items() if k != "params"},
                   "params": group["params"]}
            if callable(new["lr"]) or new["lr"] == _CALLABLE_LR:
                new["lr"] = group["lr"]
            new["state_dtype"] = group["state_dtype"]
            if isinstance(new.get("betas"), list):
                new["betas"] = tuple(new["betas"])
            self._check_group(new)
            new_groups.append(new)
        saved_state = state_dict["state"]
        new_state: list[dict[str, Any]] = [{} for _ in self.state]
        for key, st in saved_state.items():
            i = int(key)
            if not 0 <= i < len(self.state):
                raise ValueError(f"state_dict has state for parameter {i}, the optimizer "
                                 f"has {len(self.state)}")
            group = next(g for g, idx in zip(new_groups, (r for _, r in
                         self._groups_with_index())) if i in idx)
            p = self._param(i)
            if not isinstance(st, dict):
                raise ValueError(f"state of parameter {i} must be a dict, got "
                                 f"{type(st).__name__}")
            st = _q8_pairs(st, f"state of parameter {i}")
            expected = {"step", *self._all_state_arrays(group)}
            # arrays of an option switched off since (torch keeps them too) are allowed
            allowed = {"step", *self._STATE_NAMES, *_MASTER_ARRAY.values()}
            if not expected <= set(st) <= allowed:
                raise ValueError(f"state of parameter {i} has keys {sorted(st)}, expected "
                                 f"{sorted(expected)}")
            step = st["step"]
            if isinstance(step, bool) or int(step) != step or step < 0:
                raise ValueError(f"state of parameter {i}: step must be an integer >= 0")
            new_st = {"step": int(step)}
            for name in sorted(set(st) - {"step"}):
                want = self._dtype_of(group, p, name)
                if name in _MASTER_ARRAY.values():     # the master's own arrays: as saved
                    a = np.asarray(st[name])
                    if a.shape != p.shape or a.dtype != want:
                        raise ValueError(f"state {name!r} of parameter {i} has shape "
                                         f"{a.shape} and dtype {a.dtype}, the parameter "
                                         f"{p.shape} (this state's dtype: {want})")
                else:
                    a = _converted(st[name], name, want, p.shape,
                                   f"state {name!r} of parameter {i}")
                new_st[name] = a
            new_state[i] = new_st
        # copies, packed into one buffer per (state name, dtype) as a step allocates them
        # (each at its parameter's offset in a cache line, as :func:`_packed` places them)
        for name in (*self._STATE_NAMES, *_MASTER_ARRAY.values()):
            have = [i for i, st in enumerate(new_state) if isinstance(st.get(name), np.ndarray)]
            arrays = [new_state[i][name] for i in have]
            like = [self._param(i) for i in have]
            for i, a in zip(have, _packed_by_dtype(like, arrays, [x.dtype for x in arrays])):
                new_state[i][name] = a
        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = new_state

    def save(self, path: str | os.PathLike) -> None:
        """Write the state to an ``.npz`` file atomically (temporary file + rename)."""
        sd = self.state_dict()
        groups = []
        for g in sd["param_groups"]:
            g = dict(g)
            if callable(g["lr"]):
                g["lr"] = _CALLABLE_LR
            groups.append({k: _plain(v) for k, v in g.items()})
        arrays = {}
        state_meta = {}
        for i, st in sd["state"].items():
            state_meta[str(i)] = {"step": st["step"]}
            for k, v in st.items():
                if isinstance(v, np.ndarray):
                    arrays[f"state.{i}.{k}"] = v
        meta = {"format": _FORMAT, "kind": type(self).__name__, "param_groups": groups,
                "state": state_meta}
        _atomic_savez(path, meta, arrays)

    def load(self, path: str | os.PathLike) -> None:
        """Load a file written by :meth:`save` (checked like :meth:`load_state_dict`)."""
        meta, arrays = _load_npz(path, type(self).__name__)
        state: dict[int, dict[str, Any]] = {}
        for key, st in meta["state"].items():
            state[int(key)] = {"step": st["step"]}
        for name, a in arrays.items():
            _, i, k = name.split(".", 2)
            state.setdefault(int(i), {})[k] = a
        self.load_state_dict({"state": state, "param_groups": meta["param_groups"]})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for gi, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {gi}")
            for k in sorted(self.defaults):
                lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """SGD with momentum, ``torch.optim.SGD``'s rule and defaults::

        g <- -g (maximize);  g <- g + weight_decay * p
        buf <- g on a parameter's first step, else momentum*buf + (1 - dampening)*g
        g <- g + momentum*buf (nesterov) or buf;   p <- p - lr*g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, skip_nonfinite=False, state_dtype=None,
                 master=None, seed=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, state_dtype=state_dtype,
                                      master=master, seed=seed),
                         skip_nonfinite=skip_nonfinite)

    _STATE_NAMES = ("momentum_buffer",)

    def _state_arrays(self, group):
        return ("momentum_buffer",) if group["momentum"] > 0 else ()

    def _first(self, group, i):
        return group["momentum"] > 0 and "momentum_buffer" not in self.state[i]

    def _update(self, group, params, grads, states, step, lr, first):
        _core.sgd_update_multi(
            params, grads, lr=lr, momentum=group["momentum"],
            momentum_buffers=self._lists(states, "momentum_buffer", group["momentum"] > 0),
            dampening=group["dampening"], nesterov=group["nesterov"],
            weight_decay=group["weight_decay"], maximize=group["maximize"],
            first_step=first, _validate_only=states is None, **self._master)


class RMSprop(Optimizer):
    """RMSprop, ``torch.optim.RMSprop``'s rule and defaults (lr=1e-2, alpha=0.99,
    eps=1e-8), plus ``eps_in_sqrt`` (Keras/optax: ``sqrt(s + eps)``)::

        s <- alpha*s + (1 - alpha)*g*g;   d <- sqrt(s [- m*m]) + eps
        p <- p - lr * g / d   (or through a momentum buffer)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, *, maximize=False, eps_in_sqrt=False,
                 skip_nonfinite=False, state_dtype=None, master=None, seed=0):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize,
                                      eps_in_sqrt=eps_in_sqrt, state_dtype=state_dtype,
                                      master=master, seed=seed),
                         skip_nonfinite=skip_nonfinite)

    _STATE_NAMES = ("square_avg", "momentum_buffer", "grad_avg")

    def _state_arrays(self, group):
        names = ("square_avg",)
        if group["momentum"] > 0:
            names += ("momentum_buffer",)
        if group["centered"]:
            names += ("grad_avg",)
        return names

    def _update(self, group, params, grads, states, step, lr, first):
        _core.rmsprop_update_multi(
            params, grads, self._lists(states, "square_avg"), lr=lr, alpha=group["alpha"],
            eps=group["eps"], weight_decay=group["weight_decay"], momentum=group["momentum"],
            momentum_buffers=self._lists(states, "momentum_buffer", group["momentum"] > 0),
            centered=group["centered"],
            grad_avgs=self._lists(states, "grad_avg", group["centered"]),
            eps_in_sqrt=group["eps_in_sqrt"], maximize=group["maximize"],
            _validate_only=states is None, **self._master)


class Adam(Optimizer):
    """Adam, ``torch.optim.Adam``'s rule and defaults (lr=1e-3, betas=(0.9, 0.999),
    eps=1e-8, L2 weight_decay)::

        m <- lerp(m, g, 1 - beta1);  v <- beta2*v + (1 - beta2)*g*g
        p <- p - lr/(1 - beta1**t) * m / (sqrt(v)/sqrt(1 - beta2**t) + eps)
    """

    _decoupled = False

    _sr_step = False   # Adam's own step keys stochastic rounding

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, skip_nonfinite=False, state_dtype=None,
                 master=None, seed=0):
        betas = tuple(betas) if isinstance(betas, (tuple, list)) else betas
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, state_dtype=state_dtype,
                                      master=master, seed=seed),
                         skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        super()._check_group(group)

    _STATE_NAMES = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _state_arrays(self, group):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def _update(self, group, params, grads, states, step, lr, first):
        beta1, beta2 = group["betas"]
        _core.adam_update_multi(
            params, grads, self._lists(states, "exp_avg"), self._lists(states, "exp_avg_sq"),
            step=step, lr=lr, beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], decoupled_weight_decay=self._decoupled,
            amsgrad=group["amsgrad"],
            max_exp_avg_sqs=self._lists(states, "max_exp_avg_sq", group["amsgrad"]),
            maximize=group["maximize"], _validate_only=states is None, **self._master)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, ``p <- p * (1 - lr*weight_decay)``
    before the Adam step; torch's defaults (weight_decay=1e-2)."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, skip_nonfinite=False, state_dtype=None,
                 master=None, seed=0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, skip_nonfinite=skip_nonfinite,
                         state_dtype=state_dtype, master=master, seed=seed)


class EMA:
    """Exponential moving average of weights (Polyak averaging)::

        avg <- beta * avg + (1 - beta) * param        (avg starts at 0)
        average() = avg / (1 - beta**t)               (bias_correction=True)

    Call :meth:`update` after each optimizer step; :meth:`average` returns the
    averages, :meth:`copy_to` writes them into arrays (e.g. for evaluation).
    """

    def __init__(self, params, beta: float = 0.999, bias_correction: bool = True, *,
                 state_dtype=None) -> None:
        if isinstance(params, np.ndarray):
            raise TypeError("params must be a list of arrays, not a single array")
        params = list(params)
        _check_params(params, "params", written=False)   # only read: read-only arrays are fine
        _core.ema_update_multi([], [], beta=beta, _validate_only=True)  # checks beta
        sd = _state_dtype_option(state_dtype, q8=False)
        _check_storage(params, {"state_dtype": sd, "master": None}, "params")
        self.beta = float(beta)
        self.bias_correction = bool(bias_correction)
        # the params' dtypes, which update() checks (the averages' may differ)
        self._param_dtypes = [p.dtype for p in params]
        self._set_averages(_packed_by_dtype(
            params, dtypes=[p.dtype if sd is None else _np_dtype(sd) for p in params]))
        self.num_updates = 0

    def _set_averages(self, averages: list[np.ndarray]) -> None:
        self.averages = averages
        # one compiled call per (param, average) dtype pair
        by_dtype: dict[tuple, list[int]] = {}
        for i, a in enumerate(averages):
            by_dtype.setdefault((self._param_dtypes[i], a.dtype), []).append(i)
        self._by_dtype = list(by_dtype.values())

    def update(self, params) -> None:
        """Fold the current values of ``params`` (one array per average, in order)
        into the averages; every array is checked before any average is written."""
        params = _as_list(params, "params", len(self.averages), "the EMA", "average")
        for i, (a, dt) in enumerate(zip(params, self._param_dtypes)):
            if getattr(a, "dtype", dt) != dt:
                raise TypeError(f"params[{i}] has dtype {a.dtype}, but the EMA was made for "
                                f"dtype {dt}")
        for validate in ([True] if len(self._by_dtype) > 1 else []) + [False]:
            for idx in self._by_dtype:
                try:
                    _core.ema_update_multi([self.averages[i] for i in idx],
                                           [params[i] for i in idx], beta=self.beta,
                                           _validate_only=validate)
                except (TypeError, ValueError) as exc:
                    raise _renamed(exc, idx, {"xs": "params", "avgs": "averages"}) from None
        self.num_updates += 1

    def _scale(self) -> float:
        if not self.bias_correction or self.num_updates == 0:
            return 1.0
        return 1.0 / (1.0 - self.beta ** self.num_updates)

    def average(self) -> list[np.ndarray]:
        """The (bias-corrected) averages, as new arrays."""
        s = self._scale()
        return [(a * a.dtype.type(s)) if s != 1.0 else a.copy() for a in self.averages]

    def copy_to(self, params) -> None:
        """Write :meth:`average` into ``params`` (checked for shapes/dtypes first)."""
        params = _as_list(params, "params", len(self.averages), "the EMA", "average")
        for i, (p, a) in enumerate(zip(params, self.averages)):
            dt = self._param_dtypes[i]
            if not isinstance(p, np.ndarray) or p.shape != a.shape or p.dtype != dt:
                raise ValueError(f"params[{i}] must be an array of shape {a.shape} and dtype "
                                 f"{dt}")
            if not p.flags.writeable:
                raise ValueError(f"params[{i}] is read-only")
        for p, avg in zip(params, self.average()):
            p[...] = avg

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "bias_correction": self.bias_correction,
                "num_updates": self.num_updates,
                "averages": [a.copy() for a in self.averages]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        keys = {"beta", "bias_correction", "num_updates", "averages"}
        if not isinstance(state_dict, dict) or set(state_dict) != keys:
            raise ValueError(f"state_dict must be a dict with keys {sorted(keys)}")
        avgs = state_dict["averages"]
        if len(avgs) != len(self.averages):
            raise ValueError(f"state_dict has {len(avgs)} averages, the EMA has "
                             f"{len(self.averages)}")
        for i, (a, mine) in enumerate(zip(avgs, self.averages)):
            a = np.asarray(a)
            if a.shape != mine.shape or a.dtype != mine.dtype:
                raise ValueError(f"averages[{i}] has shape {a.shape} and dtype {a.dtype}, "
                                 f"expected {mine.shape} {mine.dtype}")
        n = state_dict["num_updates"]
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError("num_updates must be an integer >= 0")
        _core.ema_update_multi([], [], beta=state_dict["beta"], _validate_only=True)
        self.beta = float(state_dict["beta"])
        self.bias_correction = bool(state_dict["bias_correction"])
        self.num_updates = int(n)
        for mine, a in zip(self.averages, avgs):    # in place: the averages keep their layout
            mine[...] = a

    def save(self, path) -> None:
        meta = {"format": _FORMAT, "kind": "EMA", "beta": self.beta,
                "bias_correction": self.bias_correction, "num_updates": self.num_updates,
                "count": len(self.averages)}
        _atomic_savez(path, meta, {f"avg.{i}": a for i, a in enumerate(self.averages)})

    def load(self, path) -> None:
        meta, arrays = _load_npz(path, "EMA")
        self.load_state_dict({"beta": meta["beta"], "bias_correction": meta["bias_correction"],
                              "num_updates": meta["num_updates"],
                              "averages": [arrays[f"avg.{i}"] for i in range(meta["count"])]})
