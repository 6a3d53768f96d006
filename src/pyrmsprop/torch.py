"""``torch.optim`` drop-ins backed by pyrmsprop's kernels (imported on demand).

    from pyrmsprop.torch import Adam
    opt = Adam(model.parameters(), lr=1e-3)     # same signature as torch.optim.Adam

``RMSprop``, ``Adam``, ``AdamW`` and ``SGD`` subclass ``torch.optim.Optimizer``
with torch's constructor signatures, defaults, param groups and ``state`` keys
('step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'square_avg', 'grad_avg',
'momentum_buffer'), so state dicts move both ways between these and
``torch.optim``'s optimizers, and ``zero_grad``, closures, ``add_param_group``
and ``torch.optim.lr_scheduler`` work as usual.  CPU tensors reach the kernels
without copies (they share memory with numpy); each step is one compiled call
per parameter group and dtype.  bfloat16 and float16 params keep state of their
own dtype, as torch's do, and are computed in float32 with each stored value
rounded once to nearest even, as torch's fused kernels do.  Every optimizer also
takes, per group, ``state_dtype`` (e.g. 'float32' state for bfloat16 params, or
'bfloat16' state for float32 ones), ``master`` (None, 'fp32', 'split', 'kahan',
'stochastic': see :mod:`pyrmsprop.optim`) and ``seed``; the extra arrays live in
the state as 'master_param', 'param_lo' (int16) or 'compensation'.
``state_dtype='8bit'`` (float32, bfloat16, float16 params) keeps each state array of
a param of at least ``pyrmsprop.optim.Q8_MIN_SIZE`` (4096) elements as two tensors,
'<name>_codes' (uint8, the param's shape) and '<name>_absmax' (float32, one per
block of 256), e.g. 'exp_avg_codes' and 'exp_avg_absmax'; smaller params keep
float32 state.  ``load_state_dict`` keeps each group's own ``state_dtype`` and
converts saved state to it (a float state dict, torch.optim's too, is quantized on
load; an 8-bit one is dequantized into a float optimizer), and keeps master arrays
in their own dtypes (torch.optim would cast every state tensor to the param's).
``foreach``/``fused`` are accepted and ignored (every step is fused);
``capturable``/``differentiable`` are not supported.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch.optim import Optimizer as _TorchOptimizer

from pyrmsprop import _core
from pyrmsprop.optim import (
    _MASTER_ARRAY,
    _MASTERS,
    _Q8,
    _Q8_PARTS,
    _Q8_SIGNED,
    _STATE_FOR,
    _master_kwargs,
    _q8_pairs,
    _q8_state,
    _state_dtype_option,
    _state_kind,
    _storage_error,
)
from pyrmsprop.quantized import QuantizedState

__all__ = ["SGD", "Adam", "AdamW", "RMSprop"]

_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


_TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64,
                "bfloat16": torch.bfloat16, "float16": torch.float16}


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, torch.Tensor) else x


def _numpy(t: torch.Tensor):
    """The tensor's memory as an array the kernels take (no copy): numpy has no
    bfloat16, so a bfloat16 tensor goes as its 16-bit integer view, marked."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return _core.bf16_bits(t.view(torch.int16).numpy())
    return t.numpy()


def _has(state: dict, name: str) -> bool:
    """Whether ``state`` holds state array ``name`` (a tensor, or its 8-bit pair)."""
    return isinstance(state.get(name), torch.Tensor) or \
        isinstance(state.get(name + "_codes"), torch.Tensor)


def _stored(value, name: str, want, p: torch.Tensor, where: str) -> dict[str, torch.Tensor]:
    """Saved state ``value`` (a tensor, or a (codes, absmax) pair) as state array
    ``name`` of ``p`` kept as ``want`` (a torch dtype, or '8bit'): new tensors under
    their state keys; a ValueError naming ``where`` if it cannot be converted."""
    if isinstance(value, tuple):
        codes, absmax = value
        if not all(isinstance(t, torch.Tensor) for t in value):
            raise ValueError(f"{where}: its codes and absmax must be tensors")
        if want == _Q8:
            return {name + "_codes": codes.detach().clone(),
                    name + "_absmax": absmax.detach().clone()}
        try:
            q = QuantizedState(codes.detach().cpu().contiguous().numpy(),
                               absmax.detach().cpu().contiguous().numpy(),
                               signed=_Q8_SIGNED[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        return {name: torch.from_numpy(q.dequantize()).to(want)}
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise ValueError(f"{where} must be a float tensor, got "
                         f"{getattr(value, 'dtype', type(value).__name__)}")
    if want != _Q8:
        return {name: value.detach().to("cpu", want, copy=True)}
    if value.shape != p.shape:
        raise ValueError(f"{where} has shape {tuple(value.shape)}, the param "
                         f"{tuple(p.shape)}")
    try:
        q = QuantizedState.from_float(value.detach().cpu().float().contiguous().numpy(),
                                      signed=_Q8_SIGNED[name])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return {name + "_codes": torch.from_numpy(q.codes), name + "_absmax": torch.from_numpy(q.absmax)}


class _Base(_TorchOptimizer):
    _state_names: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        for flag in ("capturable", "differentiable"):
            if defaults.get(flag):
                raise ValueError(f"{flag}=True is not supported by pyrmsprop.torch")
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        gi = len(self.param_groups) - 1
        group = self.param_groups[-1]
        try:
            group["state_dtype"] = _state_dtype_option(group.get("state_dtype"))
            if group.get("master") not in _MASTERS:
                raise ValueError(f"master must be one of {list(_MASTERS)}, got "
                                 f"{group.get('master')!r}")
            seed = group.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
                raise TypeError(f"seed must be an integer in [0, 2**63), got {seed!r}")
            for pi, p in enumerate(group["params"]):
                self._check_param(p, gi, pi)
                self._check_storage(group, p, f"param_groups[{gi}]['params'][{pi}]")
        except (TypeError, ValueError):
            self.param_groups.pop()   # a refused group leaves the optimizer as it was
            raise

    @staticmethod
    def _check_param(p: torch.Tensor, gi: int, pi: int) -> None:
        name = f"param_groups[{gi}]['params'][{pi}]"
        if p.device.type != "cpu":
            raise ValueError(f"{name} is on {p.device}; pyrmsprop runs on the CPU only")
        if p.layout != torch.strided:
            raise ValueError(f"{name} has layout {p.layout}; only dense tensors are supported")
        if p.dtype not in _DTYPES:
            raise TypeError(f"{name} has dtype {p.dtype}; pyrmsprop supports float32, "
                            f"float64, bfloat16 and float16")
        if not p.is_contiguous():
            raise ValueError(f"{name} is not contiguous; it is updated in place")

    @staticmethod
    def _check_storage(group: dict, p: torch.Tensor, name: str) -> None:
        pd = _name(p.dtype)
        if pd in _STATE_FOR:          # (another dtype: _check_param names it)
            err = _storage_error(pd, group.get("state_dtype"), group.get("master"), name)
            if err is not None:
                raise err

    @staticmethod
    def _alloc(group: dict, p: torch.Tensor, name: str) -> torch.Tensor:
        """State array ``name`` of ``p`` in ``group``, new: zeros in the group's state
        dtype, or the master mode's array (a float32 copy of p, its low halves as
        int16 zeros, a Kahan compensation of p's dtype)."""
        if name == "master_param":
            return p.detach().to(torch.float32, copy=True)
        if name == "param_lo":
            return torch.zeros(p.shape, dtype=torch.int16)
        if name == "compensation":
            return torch.zeros_like(p, memory_format=torch.preserve_format)
        return torch.zeros_like(p, dtype=_Base._want(group, p, name),
                                memory_format=torch.preserve_format)

    @staticmethod
    def _extra(group: dict) -> tuple[str, ...]:
        name = _MASTER_ARRAY.get(group.get("master"))
        return (name,) if name else ()

    @staticmethod
    def _want(group: dict, p: torch.Tensor, name: str):
        """How state array ``name`` of ``p`` is kept: a torch dtype, or '8bit'."""
        kind = _state_kind(group.get("state_dtype"), p.numel())
        return p.dtype if kind is None else kind if kind == _Q8 else _TORCH_DTYPE[kind]

    def _put(self, group: dict, p: torch.Tensor, state: dict, name: str) -> None:
        """New state array ``name`` of ``p`` into ``state``: zeros (8-bit: every code
        0's, absmax 0) or the master mode's array (see :meth:`_alloc`)."""
        if name in _Q8_SIGNED and self._want(group, p, name) == _Q8:
            q = QuantizedState.zeros(tuple(p.shape), signed=_Q8_SIGNED[name])
            state[name + "_codes"] = torch.from_numpy(q.codes)
            state[name + "_absmax"] = torch.from_numpy(q.absmax)
        else:
            state[name] = self._alloc(group, p, name)

    def _init_state(self, group: dict, p: torch.Tensor) -> dict:
        state = self.state[p]
        if len(state) == 0:
            # torch keeps 'step' as a 0-d tensor (float64 only under that default dtype)
            dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
            state["step"] = torch.tensor(0.0, dtype=dtype)
        for name in self._arrays(group) + self._extra(group):
            if not _has(state, name):
                self._put(group, p, state, name)
        return state

    _master: dict[str, Any] = {}
    _sr_step = True   # the rule takes step= for stochastic rounding (Adam: its own)

    def _master_kwargs(self, group: dict, pis, states, step) -> dict[str, Any]:
        return _master_kwargs(group.get("master"), group.get("seed", 0), pis[0], states,
                              step if self._sr_step else None)

    def _arrays(self, group: dict) -> tuple[str, ...]:
        raise NotImplementedError

    def _needed(self, group: dict, first: bool) -> tuple[str, ...]:
        """The state arrays a step of ``group`` reads (those not made by this step)."""
        return self._arrays(group)

    def _collect(self) -> list[tuple]:
        """Check every parameter with a gradient; group them by (group, dtype, step)."""
        batches: dict[tuple, list] = {}
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                g = p.grad
                if g is None:
                    continue
                self._check_param(p, gi, pi)
                name = f"param_groups[{gi}]['params'][{pi}]"
                if g.is_sparse or g.layout != torch.strided:
                    raise ValueError(f"the gradient of {name} is sparse; pyrmsprop needs "
                                     f"dense gradients")
                if g.device.type != "cpu" or g.dtype != p.dtype or g.shape != p.shape:
                    raise ValueError(f"the gradient of {name} must be a CPU tensor of dtype "
                                     f"{p.dtype} and shape {tuple(p.shape)}")
                state = self.state.get(p, {})
                step = int(_scalar(state["step"])) if "step" in state else 0
                first = self._first(group, state)
                # (8-bit and float32 state cannot share a call)
                q8 = _q8_state(group.get("state_dtype"), p.numel())
                batches.setdefault((gi, p.dtype, step, first, q8), []).append((pi, p))
        return [(gi, step, first, [pi for pi, _ in members], [p for _, p in members])
                for (gi, _, step, first, _), members in batches.items()]

    def _first(self, group: dict, state: dict) -> bool:
        return False

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step (``closure`` re-evaluates the loss)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        batches = self._collect()
        if len(batches) > 1:
            # check every batch, with the state it has (a loaded state may be bad),
            # before the first one writes
            for gi, step, first, pis, ps in batches:
                needed = self._needed(self.param_groups[gi], first)
                have = bool(needed) and all(_has(self.state.get(p, {}), k)
                                            for p in ps for k in needed)
                self._call(gi, pis, [_numpy(p) for p in ps],
                           [_numpy(p.grad.contiguous()) for p in ps],
                           self._np_states([self.state[p] for p in ps], gi, pis) if have
                           else None, step + 1, first, check_only=True)
        for gi, step, first, pis, ps in batches:
            group = self.param_groups[gi]
            states = [self._init_state(group, p) for p in ps]
            self._call(gi, pis, [_numpy(p) for p in ps],
                       [_numpy(p.grad.contiguous()) for p in ps],
                       self._np_states(states, gi, pis), step + 1, first)
            for st in states:
                if "step" in st:
                    st["step"] += 1
        return loss

    @staticmethod
    def _np_states(states: list[dict], gi: int, pis: list[int]) -> list[dict]:
        """The states as the kernels take them: arrays sharing the tensors' memory,
        an 8-bit pair as one QuantizedState under the array's name."""
        out = []
        for pi, st in zip(pis, states):
            arrays = {k: (_numpy(v) if isinstance(v, torch.Tensor) and k != "step" else v)
                      for k, v in st.items()}
            for name in _Q8_SIGNED:
                if isinstance(st.get(name + "_codes"), torch.Tensor):
                    codes, absmax = (arrays.pop(name + q, None) for q in _Q8_PARTS)
                    try:
                        arrays[name] = QuantizedState(codes, absmax, signed=_Q8_SIGNED[name])
                    except (TypeError, ValueError) as exc:
                        raise type(exc)(f"state[{name!r}] of param_groups[{gi}]['params'][{pi}]"
                                        f": {exc}") from None
            out.append(arrays)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch.optim's, keeping each group's own ``state_dtype`` and converting the
        saved state to it (quantized, dequantized or cast); master arrays, 8-bit codes
        and absmax keep their dtypes (torch.optim casts every state tensor of a
        float param to the param's dtype), and every tensor is a copy (torch.optim
        may share the caller's).  A conversion that fails raises before anything
        changes."""
        groups, saved_groups = self.param_groups, state_dict.get("param_groups", [])
        own = [g.get("state_dtype") for g in groups]
        # storage options a state dict without them (torch.optim's) leaves as they are
        storage = [{k: g[k] for k in ("master", "seed") if k in g} for g in groups]
        try:
            lens = [len(g["params"]) for g in saved_groups]
        except (TypeError, KeyError):
            lens = None
        if lens != [len(g["params"]) for g in groups]:
            return super().load_state_dict(state_dict)   # torch's own error
        where = {}
        for (gi, g), saved in zip(enumerate(groups), saved_groups):
            for pi, (p, key) in enumerate(zip(g["params"], saved["params"])):
                where[key] = (gi, pi, p)
        kept: dict[Any, dict] = {}
        state = dict(state_dict["state"])
        for key, st in state_dict["state"].items():
            if key not in where or not isinstance(st, dict):
                continue
            gi, pi, p = where[key]
            name = f"param_groups[{gi}]['params'][{pi}]"
            # copies: the loaded state never shares memory with the caller's tensors
            new = {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v)
                   for k, v in _q8_pairs(st, f"the saved state of {name}").items()}
            mine = {}
            for k, v in list(new.items()):
                if k in _Q8_SIGNED and v is not None:   # (torch's SGD keeps a None buffer)
                    new.pop(k, None)
                    mine.update(_stored(v, k, self._want({"state_dtype": own[gi]}, p, k), p,
                                        f"state[{k!r}] of {name}"))
                elif k in _MASTER_ARRAY.values() and isinstance(v, torch.Tensor):
                    mine[k] = new[k]
            state[key] = {**new, **mine}
            kept[p] = mine
        super().load_state_dict({**state_dict, "state": state})
        for g, sd, kept_opts in zip(self.param_groups, own, storage):
            g["state_dtype"] = sd
            for k, v in kept_opts.items():
                g.setdefault(k, v)
        for p, mine in kept.items():
            self.state[p].update(mine)

    def _call(self, gi, pis, params, grads, states, step, first, check_only=False) -> None:
        """:meth:`_update` for parameters ``pis`` of group ``gi`` (``check_only``:
        validate, write nothing); an error names the parameter
        (``param_groups[0]['params'][5]``), not its place in this call."""
        try:
            self._master = self._master_kwargs(self.param_groups[gi], pis,
                                               None if check_only else states, step)
            self._update(self.param_groups[gi], params, grads, states, step, first,
                         check_only or states is None)
        except (TypeError, ValueError) as exc:
            def name(m: re.Match) -> str:
                where = f"param_groups[{gi}]['params'][{pis[int(m[2])]}]"
                if m[1] == "params":
                    return where
                if m[1] == "grads":
                    return f"the gradient of {where}"
                return f"state[{m[1][:-1]!r}] of {where}"
            raise type(exc)(re.sub(r"\b(\w+s)\[(\d+)\]", name, str(exc))) from None

    @staticmethod
    def _lists(states, name, wanted=True):
        return None if states is None or not wanted else [s[name] for s in states]


class SGD(_Base):
    """``torch.optim.SGD`` on pyrmsprop's kernels (same signature and defaults)."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None, state_dtype=None, master=None, seed=0):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused,
                        state_dtype=state_dtype, master=master, seed=seed)
        _core.sgd_update_multi([], [], lr=_scalar(lr), momentum=momentum, dampening=dampening,
                               nesterov=nesterov, weight_decay=_scalar(weight_decay),
                               _validate_only=True)
        super().__init__(params, defaults)

    def _arrays(self, group):
        return ()

    def _first(self, group, state):
        return group["momentum"] != 0 and not _has(state, "momentum_buffer")

    def _needed(self, group, first):
        return ("momentum_buffer",) if group["momentum"] != 0 and not first else ()

    def _init_state(self, group, p):
        # torch's SGD keeps no 'step' (but stochastic rounding needs one) and stores
        # the buffer only with momentum
        state = self.state[p]
        if group["momentum"] != 0 and not _has(state, "momentum_buffer"):
            self._put(group, p, state, "momentum_buffer")
        if group.get("master") == "stochastic" and "step" not in state:
            state["step"] = torch.tensor(0.0)
        for name in self._extra(group):
            if name not in state:
                self._put(group, p, state, name)
        return state

    def _update(self, group, params, grads, states, step, first, check):
        mom = group["momentum"] != 0
        _core.sgd_update_multi(
            params, grads, lr=_scalar(group["lr"]), momentum=group["momentum"],
            momentum_buffers=self._lists(states, "momentum_buffer", mom),
            dampening=group["dampening"], nesterov=group["nesterov"],
            weight_decay=_scalar(group["weight_decay"]), maximize=group["maximize"],
            first_step=first, _validate_only=check, **self._master)


class RMSprop(_Base):
    """``torch.optim.RMSprop`` on pyrmsprop's kernels (same signature and defaults),
    plus ``eps_in_sqrt`` (Keras/optax convention, off by default)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False, *, eps_in_sqrt=False, state_dtype=None, master=None,
                 seed=0):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, capturable=capturable,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        eps_in_sqrt=eps_in_sqrt, state_dtype=state_dtype, master=master,
                        seed=seed)
        _core.rmsprop_update_multi([], [], None, lr=_scalar(lr), alpha=alpha, eps=eps,
                                   weight_decay=weight_decay, momentum=momentum,
                                   _validate_only=True)
        super().__init__(params, defaults)

    def _arrays(self, group):
        names = ("square_avg",)
        if group["momentum"] > 0:
            names += ("momentum_buffer",)
        if group["centered"]:
            names += ("grad_avg",)
        return names

    def _update(self, group, params, grads, states, step, first, check):
        _core.rmsprop_update_multi(
            params, grads, self._lists(states, "square_avg"), lr=_scalar(group["lr"]),
            alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            momentum_buffers=self._lists(states, "momentum_buffer", group["momentum"] > 0),
            centered=group["centered"],
            grad_avgs=self._lists(states, "grad_avg", group["centered"]),
            eps_in_sqrt=group.get("eps_in_sqrt", False), maximize=group["maximize"],
            _validate_only=check, **self._master)


class Adam(_Base):
    """``torch.optim.Adam`` on pyrmsprop's kernels (same signature and defaults)."""

    _sr_step = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False,
                 state_dtype=None, master=None, seed=0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay,
                        state_dtype=state_dtype, master=master, seed=seed)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _core.adam_update_multi([], [], None, None, step=1, lr=_scalar(lr),
                                beta1=_scalar(betas[0]), beta2=_scalar(betas[1]), eps=eps,
                                weight_decay=weight_decay, _validate_only=True)
        super().__init__(params, defaults)

    def _arrays(self, group):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def _update(self, group, params, grads, states, step, first, check):
        beta1, beta2 = group["betas"]
        _core.adam_update_multi(
            params, grads, self._lists(states, "exp_avg"), self._lists(states, "exp_avg_sq"),
            step=step, lr=_scalar(group["lr"]), beta1=_scalar(beta1), beta2=_scalar(beta2),
            eps=group["eps"], weight_decay=group["weight_decay"],
            decoupled_weight_decay=group.get("decoupled_weight_decay", False),
            amsgrad=group["amsgrad"],
            max_exp_avg_sqs=self._lists(states, "max_exp_avg_sq", group["amsgrad"]),
            maximize=group["maximize"], _validate_only=check, **self._master)


class AdamW(Adam):
    """``torch.optim.AdamW`` on pyrmsprop's kernels: decoupled weight decay,
    default weight_decay=1e-2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None, state_dtype=None, master=None, seed=0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True, state_dtype=state_dtype,
                         master=master, seed=seed)
