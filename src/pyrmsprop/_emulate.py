"""Exact float32 emulation of the compiled kernels for 16-bit storage and 8-bit
state (the test oracle of :mod:`pyrmsprop.reference` when an array is bfloat16 or
float16, a state is a QuantizedState, or a master mode is chosen).

Every element is loaded as float32 (numpy's and ml_dtypes' own casts), the rule is
computed in numpy float32 in the kernels' order of operations (no FMA: numpy never
contracts), and each stored value is rounded once: to nearest even by the same
casts, or, with a seed, stochastically with the documented counter-based bits
(re-derived here from their description: splitmix64 keys, murmur3 finalizers).
8-bit state is dequantized and quantized here from the encoding's description (the
map built as bitsandbytes builds it, the nearest code by a search over all 256),
not by the C quantizer's cell tables.
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
    """An array's values as float32 (exact for every storage type but float64; a
    QuantizedState's dequantized values)."""
    if is_q8(a):
        return q8_dequantize(a.codes, a.absmax, a.signed).reshape(a.codes.shape)
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
        if is_q8(out):      # 8-bit state: to the nearest code, never stochastically
            codes, absmax = q8_quantize(x, out.signed)
            out.codes[...] = codes.reshape(out.codes.shape)
            out.absmax[...] = absmax
            return
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


# ---- 8-bit block-wise state (pyrmsprop.QuantizedState) -----------------------------
Q8_BLOCK = 256


def _linspace32(start, end, steps):
    """torch.linspace(start, end, steps, dtype=torch.float32) on the CPU: the step in
    float32, element i < steps // 2 as start + step*i, the others as end - step*(steps
    - 1 - i), each rounded once (torch evaluates them with an FMA)."""
    s, e = F32(start), F32(end)
    step = F32((e - s) / F32(steps - 1))
    i = np.arange(steps, dtype=np.float64)
    first = np.float64(s) + np.float64(step) * i
    second = np.float64(e) - np.float64(step) * (steps - 1 - i)
    return np.where(i < steps // 2, first, second).astype(F32)


def qmap(signed):
    """The 256 entries of bitsandbytes' dynamic map (create_dynamic_map), float32:
    for i = 0..6 the midpoints of linspace(0.1, 1, k + 1), k = 2**i (signed) or
    2**(i + 1) (unsigned), times 10**(i - 6) (a float32 product), their negatives for
    the signed map, then 0 and 1, sorted."""
    data = []
    for i in range(7):
        b = _linspace32(0.1, 1.0, (2**i if signed else 2 ** (i + 1)) + 1)
        means = (b[:-1] + b[1:]) / F32(2)
        scale = F32(10.0 ** (i - 6))
        data.append(scale * means)
        if signed:
            data.append(-scale * means)
    data.append(np.array([0.0, 1.0], dtype=F32))
    return np.sort(np.concatenate(data))


def q8_nearest(x, signed):
    """The code of each float32 x (a value divided by its block's absmax): the map
    entry nearest to it, distances in float32, a tie to the lower code."""
    m = qmap(signed)
    x = np.asarray(x, dtype=F32).reshape(-1)
    out = np.empty(x.size, np.uint8)
    for i in range(0, x.size, 4096):
        d = np.abs(x[i:i + 4096, None] - m[None, :])
        out[i:i + 4096] = np.argmin(d, axis=1)
    return out


def q8_quantize(x, signed):
    """(codes, absmax) of float32 values x, block by block of Q8_BLOCK consecutive
    elements: absmax = max |x| (NaN if a value is NaN), codes of x / absmax (a
    block of zeros, and a block whose absmax is NaN or Inf: the code of 0)."""
    x = np.asarray(x, dtype=F32).reshape(-1)
    nb = -(-x.size // Q8_BLOCK)
    pad = np.zeros(nb * Q8_BLOCK, F32)
    pad[:x.size] = x
    blocks = pad.reshape(nb, Q8_BLOCK)
    absmax = np.max(np.abs(blocks), axis=1).astype(F32) if nb else np.zeros(0, F32)
    div = np.where(absmax == 0, F32(1), absmax)
    with np.errstate(invalid="ignore", divide="ignore"):
        normed = (blocks / div[:, None]).reshape(-1)[:x.size]
    codes = q8_nearest(np.where(np.isnan(normed), F32(0), normed), signed)
    bad = np.repeat(~np.isfinite(absmax), Q8_BLOCK)[:x.size]
    codes[bad] = 127 if signed else 0    # a block with a NaN or Inf: the code of 0
    return codes, absmax


def q8_dequantize(codes, absmax, signed):
    """float32 map[code] * absmax of each element's block."""
    c = np.asarray(codes).reshape(-1)
    scale = np.repeat(np.asarray(absmax, dtype=F32), Q8_BLOCK)[:c.size]
    return (qmap(signed)[c] * scale).astype(F32)


def is_q8(a) -> bool:
    return hasattr(a, "codes") and hasattr(a, "absmax")
