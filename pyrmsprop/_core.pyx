# The Cython boundary: argument checks (O(1), before the first write), the
# params structs filled in double precision, and one GIL-free prm_run() per call.
#
# Arrays are taken through the buffer protocol only (no numpy C-API), so the
# compiled module does not depend on the numpy version it was built against.

from cpython.buffer cimport (
    PyBUF_RECORDS_RO,
    PyBuffer_IsContiguous,
    PyBuffer_Release,
    PyObject_CheckBuffer,
    PyObject_GetBuffer,
)
from libc.math cimport isfinite
from libc.string cimport memset

import numbers
import operator
import sys

from pyrmsprop._core cimport *

cdef char _NATIVE = b'<' if sys.byteorder == "little" else b'>'

# ---------------------------------------------------------------------------
# arrays
# ---------------------------------------------------------------------------

cdef struct Arrays:
    Py_buffer views[5]          # PRM_MAX_ARRAYS
    bint have[5]
    bint written[5]
    char *ptrs[5]
    int dtype
    Py_ssize_t n


cdef inline void _init(Arrays *a) noexcept:
    memset(a, 0, sizeof(Arrays))


cdef inline void _release(Arrays *a) noexcept:
    cdef int k
    for k in range(5):
        if a.have[k]:
            PyBuffer_Release(&a.views[k])
            a.have[k] = False


cdef int _dtype_of(const Py_buffer *v) noexcept:
    cdef const char *f = v.format
    if f == NULL:
        return -1
    if f[0] == b'@' or f[0] == b'=' or f[0] == _NATIVE:
        f += 1
    if f[1] != 0:
        return -1
    if f[0] == b'f' and v.itemsize == 4:
        return PRM_F32
    if f[0] == b'd' and v.itemsize == 8:
        return PRM_F64
    return -1


cdef str _dtype_name(object obj, const Py_buffer *v):
    if hasattr(obj, "dtype"):
        return str(obj.dtype)
    if v.format == NULL:
        return "uint8"
    return f"buffer format {v.format.decode('ascii', 'replace')!r}"


cdef tuple _shape(const Py_buffer *v):
    return tuple([v.shape[i] for i in range(v.ndim)])


cdef bint _same_shape(const Py_buffer *a, const Py_buffer *b) noexcept:
    if a.ndim != b.ndim:
        return False
    for i in range(a.ndim):
        if a.shape[i] != b.shape[i]:
            return False
    return True


cdef int _take(Arrays *a, int k, object obj, tuple names, bint written) except -1:
    """Acquire obj as slot k and check it alone and against slot 0."""
    cdef Py_buffer *v = &a.views[k]
    name = names[k]
    if not PyObject_CheckBuffer(obj):
        raise TypeError(
            f"{name} must be a numpy array of float32 or float64, got {type(obj).__name__}")
    try:
        PyObject_GetBuffer(obj, v, PyBUF_RECORDS_RO)
    except Exception as exc:
        raise TypeError(f"{name} cannot be used as a float array: {exc}") from None
    a.have[k] = True
    cdef int dt = _dtype_of(v)
    if dt < 0:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {_dtype_name(obj, v)}")
    if k == 0:
        a.dtype = dt
        a.n = v.len // v.itemsize
    else:
        if dt != a.dtype:
            raise TypeError(
                f"{name} has dtype {'float32' if dt == PRM_F32 else 'float64'} but "
                f"{names[0]} has dtype {'float32' if a.dtype == PRM_F32 else 'float64'}; "
                f"all arrays of one call must share one dtype")
        if not _same_shape(v, &a.views[0]):
            raise ValueError(
                f"{name} has shape {_shape(v)} but {names[0]} has shape {_shape(&a.views[0])}")
    if not PyBuffer_IsContiguous(v, b'C'):
        raise ValueError(
            f"{name} is not C-contiguous; pyrmsprop updates arrays in place and never "
            f"copies them (an update applied to a copy would be lost): make it contiguous "
            f"once, e.g. np.ascontiguousarray, and keep using that array")
    if written and v.readonly:
        raise ValueError(f"{name} is read-only, but this update writes to it")
    a.written[k] = written
    a.ptrs[k] = <char *>v.buf
    return 0


cdef int _check_overlap(Arrays *a, tuple names) except -1:
    """No written array may share a byte with any other array of the call."""
    cdef int i, j
    cdef char *lo_i
    cdef char *lo_j
    if a.n == 0:
        return 0
    for i in range(5):
        if not (a.have[i] and a.written[i]):
            continue
        lo_i = <char *>a.views[i].buf
        for j in range(5):
            if j == i or not a.have[j] or (a.written[j] and j < i):
                continue
            lo_j = <char *>a.views[j].buf
            if lo_i < lo_j + a.views[j].len and lo_j < lo_i + a.views[i].len:
                raise ValueError(
                    f"{names[i]} and {names[j]} overlap in memory; {names[i]} is written "
                    f"by this update, so every array must be a separate buffer")
    return 0


cdef void _run(Arrays *a, int rule, const void *params) noexcept nogil:
    cdef prm_job job
    cdef Py_ssize_t n = a.n
    job.rule = rule
    job.dtype = a.dtype
    job.ntensors = 1
    job.ptrs = a.ptrs
    job.lens = &n
    job.params = params
    prm_run(&job)


# ---------------------------------------------------------------------------
# hyperparameters
# ---------------------------------------------------------------------------

cdef double _real(object x, str name) except? -1.0:
    cdef double v
    if type(x) is float:
        v = <double>x
    elif type(x) is int:
        v = <double>x
    elif isinstance(x, numbers.Real) and not isinstance(x, bool):
        v = float(x)
    else:
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    if not isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return v


cdef double _nonneg(object x, str name) except? -1.0:
    cdef double v = _real(x, name)
    if v < 0.0:
        raise ValueError(f"{name} must be >= 0, got {v!r}")
    return v


cdef double _unit(object x, str name) except? -1.0:
    """A decay rate in [0, 1)."""
    cdef double v = _real(x, name)
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {v!r}")
    return v


cdef long long _step(object x) except -1:
    if isinstance(x, bool) or isinstance(x, float):
        raise TypeError(f"step must be an integer >= 1, got {x!r}")
    try:
        s = operator.index(x)
    except TypeError:
        raise TypeError(f"step must be an integer >= 1, got {type(x).__name__}") from None
    if s < 1:
        raise ValueError(f"step must be an integer >= 1, got {s}")
    if s > 2**62:
        raise ValueError(f"step is too large: {s}")
    return s


# ---------------------------------------------------------------------------
# the functional API
# ---------------------------------------------------------------------------

_EMA_NAMES = ("avg", "x")
_RMSPROP_NAMES = ("param", "grad", "square_avg", "grad_avg", "momentum_buffer")
_ADAM_NAMES = ("param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
_SGD_NAMES = ("param", "grad", "momentum_buffer")
_TOUCH_NAMES = ("a0", "a1", "a2", "a3")


def ema_update(avg, x, *, beta):
    """ema_update(avg, x, *, beta)

    Exponentially weighted average, in place::

        avg <- beta * avg + (1 - beta) * x

    ``avg`` starts at zero and averages roughly the last ``1 / (1 - beta)``
    values; divide it by ``1 - beta**t`` after ``t`` updates for the
    bias-corrected value (:class:`pyrmsprop.EMA` does that for you).

    Parameters
    ----------
    avg : ndarray of float32 or float64, C-contiguous, writable
        The average, updated in place.
    x : ndarray, same shape and dtype as ``avg``
        The new value.
    beta : float in [0, 1)
        The decay rate, e.g. 0.9 .. 0.999.

    Raises ``TypeError``/``ValueError`` naming the bad argument, before
    anything is written.  Returns None.
    """
    cdef prm_ema_params hp
    hp.beta = _unit(beta, "beta")
    hp.one_minus_beta = 1.0 - hp.beta
    cdef Arrays a
    _init(&a)
    try:
        _take(&a, 0, avg, _EMA_NAMES, True)
        _take(&a, 1, x, _EMA_NAMES, False)
        _check_overlap(&a, _EMA_NAMES)
        with nogil:
            _run(&a, PRM_EMA, &hp)
    finally:
        _release(&a)


def rmsprop_update(param, grad, square_avg, *, lr=1e-2, alpha=0.99, eps=1e-8,
                   weight_decay=0.0, momentum=0.0, momentum_buffer=None,
                   bint centered=False, grad_avg=None, bint eps_in_sqrt=False,
                   bint maximize=False):
    """rmsprop_update(param, grad, square_avg, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None, eps_in_sqrt=False, maximize=False)

    One RMSprop step, in place, with ``torch.optim.RMSprop``'s rule and defaults::

        g <- -g                                  if maximize
        g <- g + weight_decay * param            if weight_decay != 0
        square_avg <- alpha * square_avg + (1 - alpha) * g * g
        centered:  grad_avg <- lerp(grad_avg, g, 1 - alpha)
                   d <- sqrt(square_avg - grad_avg**2)
        otherwise: d <- sqrt(square_avg)
        d <- d + eps                             (eps_in_sqrt: d <- sqrt(... + eps))
        momentum > 0:  momentum_buffer <- momentum * momentum_buffer + g / d
                       param <- param - lr * momentum_buffer
        otherwise:     param <- param - lr * g / d

    ``eps_in_sqrt=True`` is the Keras / TensorFlow / optax(``eps_in_sqrt=True``)
    convention.  State arrays start at zero and are updated in place; the caller
    owns them.  ``grad_avg`` is required when ``centered``, ``momentum_buffer``
    when ``momentum > 0``; otherwise they are ignored.

    All arrays share one shape and dtype (float32 or float64) and are
    C-contiguous; every argument is checked before anything is written.
    """
    cdef prm_rmsprop_params hp
    hp.lr = _nonneg(lr, "lr")
    hp.alpha = _unit(alpha, "alpha")
    hp.one_minus_alpha = 1.0 - hp.alpha
    hp.eps = _nonneg(eps, "eps")
    hp.weight_decay = _nonneg(weight_decay, "weight_decay")
    hp.momentum = _nonneg(momentum, "momentum")
    hp.flags = ((PRM_MAXIMIZE if maximize else 0)
                | (PRM_WEIGHT_DECAY if hp.weight_decay != 0.0 else 0)
                | (PRM_CENTERED if centered else 0)
                | (PRM_MOMENTUM if hp.momentum > 0.0 else 0)
                | (PRM_EPS_IN_SQRT if eps_in_sqrt else 0))
    if centered and grad_avg is None:
        raise ValueError("centered=True needs grad_avg (an array of zeros to start)")
    if hp.momentum > 0.0 and momentum_buffer is None:
        raise ValueError("momentum > 0 needs momentum_buffer (an array of zeros to start)")
    cdef Arrays a
    _init(&a)
    try:
        _take(&a, 0, param, _RMSPROP_NAMES, True)
        _take(&a, 1, grad, _RMSPROP_NAMES, False)
        _take(&a, 2, square_avg, _RMSPROP_NAMES, True)
        if centered:
            _take(&a, 3, grad_avg, _RMSPROP_NAMES, True)
        if hp.momentum > 0.0:
            _take(&a, 4, momentum_buffer, _RMSPROP_NAMES, True)
        _check_overlap(&a, _RMSPROP_NAMES)
        with nogil:
            _run(&a, PRM_RMSPROP, &hp)
    finally:
        _release(&a)


def adam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9,
                beta2=0.999, eps=1e-8, weight_decay=0.0, bint decoupled_weight_decay=False,
                bint amsgrad=False, max_exp_avg_sq=None, bint maximize=False):
    """adam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None, maximize=False)

    One Adam (or AdamW) step, in place, with ``torch.optim.Adam``'s rule and
    defaults.  ``step`` is the 1-based number of this update::

        g <- -g                                       if maximize
        Adam  (L2):        g <- g + weight_decay * param
        AdamW (decoupled): param <- param * (1 - lr * weight_decay)
        exp_avg    <- lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq <- beta2 * exp_avg_sq + (1 - beta2) * g * g
        amsgrad:   max_exp_avg_sq <- max(max_exp_avg_sq, exp_avg_sq), used for v below
        bc1 = 1 - beta1**step ;  bc2 = 1 - beta2**step          (double precision)
        d <- sqrt(v) / sqrt(bc2) + eps
        param <- param - (lr / bc1) * exp_avg / d

    ``decoupled_weight_decay=True`` gives AdamW (whose usual weight_decay is
    1e-2).  ``max_exp_avg_sq`` is required when ``amsgrad``.  All arrays share
    one shape and dtype (float32 or float64) and are C-contiguous; every
    argument is checked before anything is written.
    """
    cdef long long t = _step(step)
    cdef prm_adam_params hp
    cdef double lr_ = _nonneg(lr, "lr")
    hp.beta1 = _unit(beta1, "beta1")
    hp.beta2 = _unit(beta2, "beta2")
    hp.eps = _nonneg(eps, "eps")
    hp.weight_decay = _nonneg(weight_decay, "weight_decay")
    hp.one_minus_beta1 = 1.0 - hp.beta1
    hp.one_minus_beta2 = 1.0 - hp.beta2
    hp.step_size = lr_ / (1.0 - hp.beta1 ** <double>t)
    hp.bc2_sqrt = (1.0 - hp.beta2 ** <double>t) ** 0.5
    hp.decay = 1.0 - lr_ * hp.weight_decay
    hp.flags = ((PRM_MAXIMIZE if maximize else 0)
                | (PRM_WEIGHT_DECAY if hp.weight_decay != 0.0 else 0)
                | (PRM_DECOUPLED if decoupled_weight_decay else 0)
                | (PRM_AMSGRAD if amsgrad else 0))
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError("amsgrad=True needs max_exp_avg_sq (an array of zeros to start)")
    cdef Arrays a
    _init(&a)
    try:
        _take(&a, 0, param, _ADAM_NAMES, True)
        _take(&a, 1, grad, _ADAM_NAMES, False)
        _take(&a, 2, exp_avg, _ADAM_NAMES, True)
        _take(&a, 3, exp_avg_sq, _ADAM_NAMES, True)
        if amsgrad:
            _take(&a, 4, max_exp_avg_sq, _ADAM_NAMES, True)
        _check_overlap(&a, _ADAM_NAMES)
        with nogil:
            _run(&a, PRM_ADAM, &hp)
    finally:
        _release(&a)


def sgd_update(param, grad, *, lr, momentum=0.0, momentum_buffer=None, dampening=0.0,
               bint nesterov=False, weight_decay=0.0, bint maximize=False):
    """sgd_update(param, grad, *, lr, momentum=0.0, momentum_buffer=None, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False)

    One SGD step, in place, with ``torch.optim.SGD``'s rule::

        g <- -g                                       if maximize
        g <- g + weight_decay * param                 if weight_decay != 0
        momentum > 0:
            momentum_buffer <- momentum * momentum_buffer + (1 - dampening) * g
            g <- g + momentum * momentum_buffer       if nesterov
            g <- momentum_buffer                      otherwise
        param <- param - lr * g

    The caller initializes ``momentum_buffer`` (torch copies the first
    gradient into it; a zero buffer with ``dampening=0`` gives the same first
    step, and ``pyrmsprop.SGD`` reproduces torch exactly).  ``nesterov`` needs
    ``momentum > 0`` and ``dampening == 0``.
    """
    cdef prm_sgd_params hp
    hp.lr = _nonneg(lr, "lr")
    hp.momentum = _nonneg(momentum, "momentum")
    cdef double damp = _real(dampening, "dampening")
    if not (0.0 <= damp <= 1.0):
        raise ValueError(f"dampening must be in [0, 1], got {damp!r}")
    hp.one_minus_dampening = 1.0 - damp
    hp.weight_decay = _nonneg(weight_decay, "weight_decay")
    if nesterov and (hp.momentum <= 0.0 or damp != 0.0):
        raise ValueError("nesterov=True needs momentum > 0 and dampening == 0")
    hp.flags = ((PRM_MAXIMIZE if maximize else 0)
                | (PRM_WEIGHT_DECAY if hp.weight_decay != 0.0 else 0)
                | (PRM_NESTEROV if nesterov else 0)
                | (PRM_MOMENTUM if hp.momentum > 0.0 else 0))
    if hp.momentum > 0.0 and momentum_buffer is None:
        raise ValueError("momentum > 0 needs momentum_buffer (an array of zeros to start)")
    cdef Arrays a
    _init(&a)
    try:
        _take(&a, 0, param, _SGD_NAMES, True)
        _take(&a, 1, grad, _SGD_NAMES, False)
        if hp.momentum > 0.0:
            _take(&a, 2, momentum_buffer, _SGD_NAMES, True)
        _check_overlap(&a, _SGD_NAMES)
        with nogil:
            _run(&a, PRM_SGD, &hp)
    finally:
        _release(&a)


def memory_only_update(a0, a1, a2=None, a3=None):
    """memory_only_update(a0, a1, a2=None, a3=None)

    The benchmark's bandwidth limit: ``a0 += a1`` and, when given, ``a2 += a1``
    and ``a3 += a1``, in one pass through the same dispatch and threads as the
    optimizer kernels.  With 2, 3 or 4 arrays it moves exactly the bytes of
    EMA, RMSprop/SGD-momentum and Adam respectively, with no other arithmetic.
    """
    cdef Arrays a
    _init(&a)
    try:
        _take(&a, 0, a0, _TOUCH_NAMES, True)
        _take(&a, 1, a1, _TOUCH_NAMES, False)
        if a2 is not None:
            _take(&a, 2, a2, _TOUCH_NAMES, True)
        if a3 is not None:
            if a2 is None:
                raise ValueError("a3 needs a2")
            _take(&a, 3, a3, _TOUCH_NAMES, True)
        _check_overlap(&a, _TOUCH_NAMES)
        with nogil:
            _run(&a, PRM_TOUCH, NULL)
    finally:
        _release(&a)


# ---------------------------------------------------------------------------
# SIMD targets and threads
# ---------------------------------------------------------------------------

cdef str _name(int t):
    return prm_target_name(t).decode()


def compiled_targets():
    """Names of the SIMD targets compiled into this build, lowest first."""
    return [_name(t) for t in range(PRM_NTARGETS) if prm_target_compiled(t)]


def simd_targets():
    """Names of the SIMD targets this build has and this CPU supports, lowest first."""
    return [_name(t) for t in range(PRM_NTARGETS) if prm_target_supported(t)]


def simd_target():
    """Name of the SIMD target in use: 'baseline', 'avx2', 'avx512' or 'neon'."""
    return _name(prm_target_current())


def best_simd_target():
    """The best target this build and CPU support (the default at import)."""
    return _name(prm_target_best())


def set_simd(name):
    """set_simd(name)

    Use the kernels compiled for SIMD target ``name`` ('baseline', 'avx2',
    'avx512'; 'neon' on ARM).  Every target gives bit-identical results; this
    exists to test and benchmark them.  A name this build lacks or this CPU does
    not support raises ``ValueError``.  Not thread-safe: do not call it while
    updates run in other threads.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key == "baseline" or key == "neon":
        key = _name(0)
    for t in range(PRM_NTARGETS):
        if _name(t) == key:
            break
    else:
        t = -1
    if t < 0 or not prm_target_compiled(t):
        raise ValueError(
            f"unknown SIMD target {name!r}: this build has {compiled_targets()} "
            f"(this CPU supports {simd_targets()})")
    if not prm_target_supported(t):
        raise ValueError(
            f"SIMD target {name!r} is not supported by this CPU/OS; supported here: "
            f"{simd_targets()}")
    prm_set_target(t)


def target_note():
    """Why a compiled target is not dispatched on this platform ('' if none)."""
    return prm_target_note().decode()


def compiler():
    """The compiler that built the extension."""
    return prm_compiler().decode()


def set_num_threads(n):
    """set_num_threads(n)

    Use up to ``n`` threads (the caller and ``n - 1`` pool workers) for updates
    large enough to gain from it.  Results do not depend on ``n``.
    """
    if isinstance(n, bool):
        raise TypeError("n must be an int >= 1, got bool")
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an int >= 1, got {type(n).__name__}") from None
    if not (1 <= k <= 256):
        raise ValueError(f"n must be in [1, 256], got {k}")
    prm_set_num_threads(k)


def get_num_threads():
    """The number of threads updates may use (see :func:`set_num_threads`)."""
    return prm_get_num_threads()


def set_thread_threshold(n):
    """Updates of fewer than ``n`` elements in total run on the calling thread only."""
    k = operator.index(n)
    if k < 0:
        raise ValueError(f"n must be >= 0, got {k}")
    prm_set_thread_threshold(k)


def get_thread_threshold():
    """Updates below this many elements in total are not split across threads."""
    return prm_get_thread_threshold()


def thread_mode():
    """How updates are split across threads."""
    return prm_thread_mode().decode()


def chunk_elements():
    """Elements per chunk that a thread claims (a multiple of 64 bytes)."""
    return prm_chunk_elems()
