"""Plain-NumPy reference implementations of every update rule (the slow path).

Each function has exactly the signature and the semantics of its compiled
counterpart in :mod:`pyrmsprop` (in place on the arrays given, returns None),
but computes every step in float64 and writes the results back in the arrays'
own dtype.  It is written from the update rules alone (PyTorch's), independently
of the C kernels, and serves as the test oracle (like ``bottleneck.slow``).

It checks only what the rule itself needs (state arrays required by the
options); the argument validation of the compiled API is not repeated here.

When an array is bfloat16 or float16, the state's dtype differs from the param's
(a :class:`pyrmsprop.QuantizedState` included), or a master mode (``master_param``, ``param_lo``, ``compensation``, ``seed``) is
given, the update is instead the kernels' exact float32 arithmetic, emulated in
numpy (:mod:`pyrmsprop._emulate`): there, rounding once per stored value is what
the kernels promise, and the tests check it bit for bit.
"""

from __future__ import annotations

import numpy as np

from pyrmsprop import _emulate

__all__ = ["adam_update", "ema_update", "rmsprop_update", "sgd_update"]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _store(out, value):
    out[...] = value  # numpy rounds float64 to the array's dtype (to nearest)


def _emulated(param, state, extras):
    """True when the update is emulated in float32 (see the module's docstring)."""
    dt = np.dtype(param.dtype)
    return (dt.itemsize == 2 or any(x is not None for x in extras)
            or any(a is not None and (_emulate.is_q8(a) or np.dtype(a.dtype) != dt)
                   for a in state))


def _param(param, master_param, param_lo, compensation, seed, step):
    store = _emulate.Store(seed, step)
    return _emulate.Param(param, master_param, param_lo, compensation, store), store


def _require(needed, state, option, name):
    if needed and state is None:
        raise ValueError(f"{option} needs {name} (an array of zeros to start)")


def ema_update(avg, x, *, beta, seed=None, step=None):
    """Exponentially weighted average, in place::

        avg <- beta * avg + (1 - beta) * x
    """
    if _emulated(x, [avg], [seed]):
        _emulate.ema(avg, x, beta, _emulate.Store(seed, step or 0))
        return
    _store(avg, beta * _f64(avg) + (1.0 - beta) * _f64(x))


def rmsprop_update(param, grad, square_avg, *, lr=1e-2, alpha=0.99, eps=1e-8,
                   weight_decay=0.0, momentum=0.0, momentum_buffer=None,
                   centered=False, grad_avg=None, eps_in_sqrt=False, maximize=False,
                   master_param=None, param_lo=None, compensation=None, seed=None, step=None):
    """One RMSprop step, in place (PyTorch convention)::

        g <- -g                                   if maximize
        g <- g + weight_decay * p                 if weight_decay != 0
        s <- alpha * s + (1 - alpha) * g * g
        centered:  m <- lerp(m, g, 1 - alpha) ;  d <- sqrt(s - m * m)
        otherwise: d <- sqrt(s)
        d <- d + eps                 (eps_in_sqrt: d <- sqrt(s [- m*m] + eps) instead)
        momentum > 0:  buf <- momentum * buf + g / d ;  p <- p - lr * buf
        otherwise:     p <- p - lr * g / d

    with ``s = square_avg``, ``m = grad_avg``, ``buf = momentum_buffer``.
    """
    _require(centered, grad_avg, "centered=True", "grad_avg")
    _require(momentum > 0, momentum_buffer, "momentum > 0", "momentum_buffer")
    extras = (master_param, param_lo, compensation, seed)
    if _emulated(param, [square_avg, grad_avg, momentum_buffer], extras):
        prm, store = _param(param, *extras, step or 0)
        _emulate.rmsprop(prm, grad, square_avg, grad_avg, momentum_buffer, store, lr=lr,
                         alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered, eps_in_sqrt=eps_in_sqrt, maximize=maximize)
        return
    p = _f64(param)
    g = _f64(grad)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    s = alpha * _f64(square_avg) + (1.0 - alpha) * g * g
    var = s
    if centered:
        m = _f64(grad_avg)
        m = m + (1.0 - alpha) * (g - m)
        var = s - m * m
        _store(grad_avg, m)
    d = np.sqrt(var + eps) if eps_in_sqrt else np.sqrt(var) + eps
    if momentum > 0:
        buf = momentum * _f64(momentum_buffer) + g / d
        _store(momentum_buffer, buf)
        p = p - lr * buf
    else:
        p = p - lr * g / d
    _store(square_avg, s)
    _store(param, p)


def adam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9,
                beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                amsgrad=False, max_exp_avg_sq=None, maximize=False, master_param=None,
                param_lo=None, compensation=None, seed=None):
    """One Adam (``decoupled_weight_decay=True``: AdamW) step, in place; ``step``
    is the 1-based number of this update (PyTorch convention)::

        g <- -g                                   if maximize
        Adam  (L2):        g <- g + weight_decay * p
        AdamW (decoupled): p <- p * (1 - lr * weight_decay)
        m <- lerp(m, g, 1 - beta1)
        v <- beta2 * v + (1 - beta2) * g * g
        amsgrad:   vmax <- max(vmax, v) ; use vmax below instead of v
        bc1 = 1 - beta1**step ;  bc2 = 1 - beta2**step
        d <- sqrt(v) / sqrt(bc2) + eps
        p <- p - (lr / bc1) * m / d

    with ``m = exp_avg``, ``v = exp_avg_sq``, ``vmax = max_exp_avg_sq``.
    """
    _require(amsgrad, max_exp_avg_sq, "amsgrad=True", "max_exp_avg_sq")
    extras = (master_param, param_lo, compensation, seed)
    if _emulated(param, [exp_avg, exp_avg_sq, max_exp_avg_sq], extras):
        prm, store = _param(param, *extras, step)
        _emulate.adam(prm, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, store, step=step, lr=lr,
                      beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                      decoupled=decoupled_weight_decay, amsgrad=amsgrad, maximize=maximize)
        return
    p = _f64(param)
    g = _f64(grad)
    if maximize:
        g = -g
    if decoupled_weight_decay:
        p = p * (1.0 - lr * weight_decay)
    elif weight_decay != 0:
        g = g + weight_decay * p
    m = _f64(exp_avg)
    m = m + (1.0 - beta1) * (g - m)
    v = beta2 * _f64(exp_avg_sq) + (1.0 - beta2) * g * g
    _store(exp_avg, m)
    _store(exp_avg_sq, v)
    if amsgrad:
        v = np.maximum(_f64(max_exp_avg_sq), v)
        _store(max_exp_avg_sq, v)
    bc1 = 1.0 - beta1**step
    bc2 = 1.0 - beta2**step
    d = np.sqrt(v) / np.sqrt(bc2) + eps
    _store(param, p - (lr / bc1) * m / d)


def sgd_update(param, grad, *, lr, momentum=0.0, momentum_buffer=None, dampening=0.0,
               nesterov=False, weight_decay=0.0, maximize=False, master_param=None,
               param_lo=None, compensation=None, seed=None, step=None):
    """One SGD step, in place (PyTorch convention)::

        g <- -g                                   if maximize
        g <- g + weight_decay * p                 if weight_decay != 0
        momentum > 0:
            buf <- momentum * buf + (1 - dampening) * g
            g <- g + momentum * buf  if nesterov  else  g <- buf
        p <- p - lr * g

    with ``buf = momentum_buffer``, which the caller initializes: unlike
    ``torch.optim.SGD`` there is no "first step: buf <- g" here.
    """
    _require(momentum > 0, momentum_buffer, "momentum > 0", "momentum_buffer")
    extras = (master_param, param_lo, compensation, seed)
    if _emulated(param, [momentum_buffer], extras):
        prm, store = _param(param, *extras, step or 0)
        _emulate.sgd(prm, grad, momentum_buffer, store, lr=lr, momentum=momentum,
                     dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
                     maximize=maximize)
        return
    p = _f64(param)
    g = _f64(grad)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum > 0:
        buf = momentum * _f64(momentum_buffer) + (1.0 - dampening) * g
        _store(momentum_buffer, buf)
        g = g + momentum * buf if nesterov else buf
    _store(param, p - lr * g)
