"""Exact float32 emulation of the compiled kernels for 16-bit storage (the test
oracle of :mod:`pyrmsprop.reference` when an array is bfloat16 or float16, or a
master mode is chosen).

Every element is loaded as float32 (numpy's and ml_dtypes' own casts), the rule is
computed in numpy float32 in the kernels' order of operations (no FMA: numpy never
contracts), and each stored value is rounded once: to nearest even by the same
casts, or, with a seed, stochastically with the documented counter-based bits
(re-derived here from their description: splitmix64 keys, murmur3 finalizers).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
_M64 = (1 << 64) - 1


def is_16bit(a) -> bool:
    return a is not None and np.dtype(a.dtype).itemsize == 2


def _bits(a):
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


def load(a):
    """An array's values as float32 (exact for every storage type but float64)."""
    return np.asarray(a).astype(F32)


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def sr_key(seed, step, tensor, slot, high=0):
    """The 32-bit key of (seed, step, tensor, slot, index // 2**32)."""
    z = _mix64((seed + 0x9E3779B97F4A7C15) & _M64)
    z = _mix64(z ^ step)
    z = _mix64(z ^ tensor)
    z = _mix64(z ^ (slot << 56) ^ high)
    return (z ^ (z >> 32)) & 0xFFFFFFFF


def _mix32(h):
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def random_bits(key, n):
    """The 32 random bits of elements 0..n-1 (n < 2**32) for one key."""
    with np.errstate(over="ignore"):
        idx = np.arange(n, dtype=np.uint32)
        k = np.uint32(key)
        return _mix32(_mix32(idx ^ k) + k)


def _sround_bf16(x, r):
    u = _bits(x)
    with np.errstate(over="ignore"):
        out = ((u + (r & np.uint32(0xFFFF))) >> np.uint32(16)).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    out[nan] = ((u[nan] >> 16) & 0x8000 | 0x7FC0).astype(np.uint16)
    return out


def _sround_f16(x, r):
    u = _bits(x)
    a = u & np.uint32(0x7FFFFFFF)
    with np.errstate(over="ignore", invalid="ignore"):
        normal = ((a - np.uint32(0x38000000)) + (r & np.uint32(0x1FFF))) >> np.uint32(13)
        small = np.minimum(a, np.uint32(0x38800000)).view(F32)
        fixed = (small * F32(2.0**37)).astype(np.int32).view(np.uint32)
        sub = (fixed + (r & np.uint32(0x1FFF))) >> np.uint32(13)
    top = (a >> 13) & 0x3FF
    nan = np.uint32(0x7C00) | top | (top == 0).astype(np.uint32)
    out = np.where(a >= 0x38800000, normal, sub)
    out = np.where(a >= 0x47800000, np.uint32(0x7C00), out)
    out = np.where(a > 0x7F800000, nan, out)
    return (((u >> 16) & 0x8000) | out).astype(np.uint16)


class Store:
    """Rounds float32 values into arrays: to nearest even, or stochastically."""

    def __init__(self, seed=None, step=0, tensor=0):
        self.seed, self.step, self.tensor = seed, step, tensor

    def __call__(self, out, x, slot):
        x = np.asarray(x, dtype=F32)
        if self.seed is None or not is_16bit(out):
            out[...] = x.astype(out.dtype)
            return
        r = random_bits(sr_key(self.seed, self.step, self.tensor, slot), x.size).reshape(x.shape)
        bits = _sround_f16(x, r) if out.dtype == np.float16 else _sround_bf16(x, r)
        out.view(np.uint16)[...] = bits


def split_get(hi, lo):
    """The float32 master of a split bfloat16 param (hi) and its low halves (lo)."""
    with np.errstate(over="ignore"):
        u = (hi.view(np.uint16).astype(np.uint32) << np.uint32(16)) \
            + lo.view(np.int16).astype(np.int32).view(np.uint32)
    return u.view(F32)


def split_put(hi, lo, v):
    u = _bits(v)
    with np.errstate(over="ignore"):
        h = ((u + np.uint32(0x8000)) >> np.uint32(16)).astype(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    h[nan] = (u[nan] >> 16) & 0x8000 | 0x7FC0
    hi.view(np.uint16)[...] = h.astype(np.uint16)
    with np.errstate(over="ignore"):
        lo.view(np.uint16)[...] = ((u - (h << np.uint32(16))) & np.uint32(0xFFFF)).astype(np.uint16)


class Param:
    """A param's value and store under its master mode."""

    def __init__(self, param, master_param=None, param_lo=None, compensation=None,
                 store=None):
        self.p, self.master, self.lo, self.comp = param, master_param, param_lo, compensation
        self.store = store

    def get(self):
        if self.master is not None:
            return self.master.astype(F32)
        if self.lo is not None:
            return split_get(self.p, self.lo).copy()
        return load(self.p)

    def put(self, v, old):
        v = np.asarray(v, dtype=F32)
        if self.master is not None:
            self.master[...] = v
            self.p[...] = v.astype(self.p.dtype)
        elif self.lo is not None:
            split_put(self.p, self.lo, v)
        elif self.comp is not None:
            u = load(self.comp) + (v - old)
            new = (old + u).astype(self.p.dtype)
            self.p[...] = new
            self.comp[...] = (u - (load(new) - old)).astype(self.p.dtype)
        else:
            self.store(self.p, v, 0)


def f32(x):
    return F32(x)


def ema(avg, x, beta, store):
    store(avg, f32(beta) * load(avg) + f32(1.0 - beta) * load(x), 0)


def _grad(prm, grad, maximize, weight_decay):
    """(g, p0): the gradient as RMSprop and SGD use it, and the param's value."""
    g = load(grad)
    p0 = prm.get()
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + f32(weight_decay) * p0
    return g, p0


def rmsprop(prm, grad, square_avg, grad_avg, momentum_buffer, store, *, lr, alpha, eps,
            weight_decay, momentum, centered, eps_in_sqrt, maximize):
    c = f32(1.0 - alpha)
    g, p0 = _grad(prm, grad, maximize, weight_decay)
    s = f32(alpha) * load(square_avg) + c * g * g
    store(square_avg, s, 2)
    var = s
    if centered:
        m0 = load(grad_avg)
        m = m0 + c * (g - m0)
        store(grad_avg, m, 3)
        var = s - m * m
    with np.errstate(invalid="ignore"):      # centered: var < 0 gives NaN, as in C
        d = np.sqrt(var + f32(eps)) if eps_in_sqrt else np.sqrt(var) + f32(eps)
    if momentum > 0:
        b = f32(momentum) * load(momentum_buffer) + g / d
        store(momentum_buffer, b, 4)
        prm.put(p0 - f32(lr) * b, p0)
    else:
        prm.put(p0 - f32(lr) * (g / d), p0)


def adam(prm, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, store, *, step, lr, beta1, beta2,
         eps, weight_decay, decoupled, amsgrad, maximize):
    g = load(grad)
    p0 = prm.get()
    p = p0
    if decoupled and weight_decay != 0:
        p = p0 * f32(1.0 - lr * weight_decay)
    if maximize:
        g = -g
    if not decoupled and weight_decay != 0:
        g = g + f32(weight_decay) * p
    m0 = load(exp_avg)
    m = m0 + f32(1.0 - beta1) * (g - m0)
    store(exp_avg, m, 2)
    v = f32(beta2) * load(exp_avg_sq) + f32(1.0 - beta2) * g * g
    store(exp_avg_sq, v, 3)
    if amsgrad:
        vm = load(max_exp_avg_sq)
        v = np.where(vm > v, vm, v)
        store(max_exp_avg_sq, v, 4)
    step_size = f32(lr / (1.0 - beta1**step))
    bc2_sqrt = f32((1.0 - beta2**step) ** 0.5)
    d = np.sqrt(v) / bc2_sqrt + f32(eps)
    prm.put(p - step_size * (m / d), p0)


def sgd(prm, grad, momentum_buffer, store, *, lr, momentum, dampening, nesterov,
        weight_decay, maximize, first_step=False):
    g, p0 = _grad(prm, grad, maximize, weight_decay)
    if momentum > 0:
        b = g if first_step else f32(momentum) * load(momentum_buffer) + f32(1.0 - dampening) * g
        store(momentum_buffer, b, 2)
        g = g + f32(momentum) * b if nesterov else b
    prm.put(p0 - f32(lr) * g, p0)
