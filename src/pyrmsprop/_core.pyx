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
from libc.math cimport isfinite, pow
from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memset
from cpython.pyport cimport PY_SSIZE_T_MAX

import numbers
import time
import operator
import sys

from pyrmsprop._core cimport *

cdef char _NATIVE = b'<' if sys.byteorder == "little" else b'>'
cdef enum:
    # array slots per tensor (PRM_MAX_ARRAYS): 0 param, 1 grad, 2-4 state, 5 the
    # param's master copy / low halves / compensation, 6-8 the absmax arrays of 8-bit
    # state (PRM_Q8_ABSMAX_SLOT: EMA's avg 6; state slots 2, 3, 4 -> 6, 7, 8)
    _NS = 9
    # a 16-bit integer buffer: the low halves of a "split" master (never a float array)
    _U16 = 100
    # a uint8 buffer: the codes of a QuantizedState (never a state array by itself)
    _U8 = 101

# ---------------------------------------------------------------------------
# arrays
# ---------------------------------------------------------------------------

cdef struct Bufs:
    # ntensors x 6 slots (PRM_MAX_ARRAYS), tensor-major; slot k of tensor t is t*6+k
    Py_buffer *views
    bint *have
    bint *written
    char **ptrs
    Py_ssize_t *lens
    Py_ssize_t ntensors
    int rule                    # PRM_EMA ... PRM_TOUCH: which slots are state
    int dtype                   # the param's and grad's storage (EMA: x's), -1 until taken
    int state                   # the state arrays' storage, -1 until taken
    int master                  # PRM_MASTER_*
    bint multi                  # name arguments "params[3]" rather than "param"


cdef struct Single:
    # storage of a one-tensor call, on the stack
    Py_buffer views[9]
    bint have[9]
    bint written[9]
    char *ptrs[9]
    Py_ssize_t lens[1]


cdef inline Bufs _single(Single *s, int rule, int master=PRM_MASTER_NONE) noexcept:
    memset(s, 0, sizeof(Single))
    cdef Bufs b
    b.views = s.views
    b.have = s.have
    b.written = s.written
    b.ptrs = s.ptrs
    b.lens = s.lens
    b.ntensors = 1
    b.rule = rule
    b.dtype = -1
    b.state = -1
    b.master = master
    b.multi = False
    return b


cdef void _release(Bufs *b) noexcept:
    cdef Py_ssize_t i
    if b.have == NULL:
        return
    for i in range(b.ntensors * _NS):
        if b.have[i]:
            PyBuffer_Release(&b.views[i])
            b.have[i] = False


cdef class _Multi:
    """Heap storage for a multi-tensor call; releases every buffer when freed."""
    cdef Bufs b

    def __cinit__(self, Py_ssize_t ntensors, int rule, int master):
        self.b.ntensors = ntensors
        self.b.rule = rule
        self.b.dtype = -1
        self.b.state = -1
        self.b.master = master
        self.b.multi = True
        if ntensors < 0 or ntensors > PY_SSIZE_T_MAX // (_NS * <Py_ssize_t>sizeof(Py_buffer)):
            raise MemoryError()             # ntensors * 6 * sizeof would overflow
        cdef Py_ssize_t m = ntensors * _NS if ntensors > 0 else 1
        self.b.views = <Py_buffer *>calloc(m, sizeof(Py_buffer))
        self.b.have = <bint *>calloc(m, sizeof(bint))
        self.b.written = <bint *>calloc(m, sizeof(bint))
        self.b.ptrs = <char **>calloc(m, sizeof(char *))
        self.b.lens = <Py_ssize_t *>calloc(m, sizeof(Py_ssize_t))
        if (self.b.views == NULL or self.b.have == NULL or self.b.written == NULL
                or self.b.ptrs == NULL or self.b.lens == NULL):
            raise MemoryError()

    def __dealloc__(self):
        _release(&self.b)
        free(self.b.views)
        free(self.b.have)
        free(self.b.written)
        free(self.b.ptrs)
        free(self.b.lens)


cdef int _dtype_of(const Py_buffer *v) noexcept:
    cdef const char *f = v.format
    if f == NULL:
        return -1
    if f[0] == b'@' or f[0] == b'=' or f[0] == _NATIVE:
        f += 1
    if f[0] == 0 or f[1] != 0:
        return -1
    if f[0] == b'f' and v.itemsize == 4:
        return PRM_F32
    if f[0] == b'd' and v.itemsize == 8:
        return PRM_F64
    if f[0] == b'e' and v.itemsize == 2:
        return PRM_F16
    if (f[0] == b'H' or f[0] == b'h') and v.itemsize == 2:
        return _U16
    if f[0] == b'B' and v.itemsize == 1:
        return _U8
    return -1


cdef str _dtype_name(object obj, const Py_buffer *v):
    if hasattr(obj, "dtype"):
        return str(obj.dtype)
    if v.format == NULL:
        return "uint8"
    return f"buffer format {v.format.decode('ascii', 'replace')!r}"


_STORAGE_NAMES = {PRM_F32: "float32", PRM_F64: "float64", PRM_BF16: "bfloat16",
                  PRM_F16: "float16", _U16: "uint16", _U8: "uint8", PRM_Q8: "8bit"}


cdef inline str _float_name(int dtype):
    return _STORAGE_NAMES[dtype]


# the state storage types each param storage allows, the first its default
_STATE_FOR = {PRM_F64: (PRM_F64,), PRM_F32: (PRM_F32, PRM_BF16, PRM_Q8),
              PRM_BF16: (PRM_BF16, PRM_F32, PRM_Q8), PRM_F16: (PRM_F16, PRM_F32, PRM_Q8)}


cdef class _BF16Bits:
    """A 16-bit integer array (a torch bfloat16 tensor's .view(torch.int16).numpy(),
    say) to be read and written as the bfloat16 numbers whose bits it holds."""
    cdef public object bits

    def __init__(self, bits):
        self.bits = bits


def bf16_bits(bits):
    """Wrap a 16-bit integer array so that the update functions take it as bfloat16
    (no copy; pyrmsprop.torch passes bfloat16 tensors this way)."""
    return _BF16Bits(bits)


cdef class _QState:
    """The arrays of one 8-bit state array: uint8 codes (the param's shape) and one
    float32 absmax per block of 256 elements, with the map they index (signed or
    not).  pyrmsprop.QuantizedState is the class users see; the update functions
    take its arrays as a state slot and that slot's absmax slot."""
    cdef readonly object codes
    cdef readonly object absmax
    cdef bint _signed

    def __init__(self, codes, absmax, is_signed):
        self.codes = codes
        self.absmax = absmax
        self._signed = bool(is_signed)

    @property
    def signed(self):
        """True: the signed map (first moments, momentum); False: the unsigned one."""
        return self._signed


Q8_BLOCK = 256
Q8_ZERO = {True: 127, False: 0}     # the code of 0 in the signed and unsigned maps


def q8_map(bint is_signed):
    """The 256 entries of the signed or unsigned map, as float32 bits (bytes)."""
    cdef const unsigned int *m = prm_q8_map(0 if is_signed else 1)
    return bytes((<const char *>m)[:256 * 4])


def q8_quantize(x, codes, absmax, bint is_signed):
    """codes, absmax <- the 8-bit encoding of the float32 array x (all C-contiguous,
    checked by the caller: pyrmsprop.QuantizedState)."""
    cdef const float[::1] xv = x
    cdef unsigned char[::1] cv = codes
    cdef float[::1] av = absmax
    cdef Py_ssize_t n = xv.shape[0]
    if cv.shape[0] != n or av.shape[0] != (n + 255) // 256:
        raise ValueError("q8_quantize: codes and absmax do not fit x")
    if n == 0:
        return
    with nogil:
        prm_q8_quantize(&xv[0], n, &cv[0], &av[0], 0 if is_signed else 1)


def q8_dequantize(codes, absmax, out, bint is_signed):
    """out <- map[codes] * absmax of each element's block (float32)."""
    cdef const unsigned char[::1] cv = codes
    cdef const float[::1] av = absmax
    cdef float[::1] ov = out
    cdef Py_ssize_t n = cv.shape[0]
    if ov.shape[0] != n or av.shape[0] != (n + 255) // 256:
        raise ValueError("q8_dequantize: absmax and out do not fit codes")
    if n == 0:
        return
    with nogil:
        prm_q8_dequantize(&cv[0], &av[0], n, &ov[0], 0 if is_signed else 1)


cdef inline bint _state_ok(int p, int st) noexcept:
    """_STATE_FOR in C: whether params of storage p allow state of storage st."""
    if p == PRM_F64:
        return st == PRM_F64
    if p == PRM_F32 or p == PRM_BF16:
        return st == PRM_F32 or st == PRM_BF16 or st == PRM_Q8
    return p == PRM_F16 and (st == PRM_F16 or st == PRM_F32 or st == PRM_Q8)


# the type and dtype of the first ml_dtypes.bfloat16 array taken (the slow path below
# found it): later ones are recognised before the buffer protocol fails on them.  Not
# on a free-threaded build: there the per-array .dtype would be Python code on every
# array's path again (TSan saw CPython's biased-refcount queues under our frames).
cdef bint _FREE_THREADED = bool(__import__("sysconfig").get_config_var("Py_GIL_DISABLED"))
cdef object _bf16_type = None
cdef object _bf16_dtype = None


cdef inline bint _is_bf16_ndarray(object obj):
    # an ml_dtypes.bfloat16 numpy array: numpy cannot export its dtype through the
    # buffer protocol, so it is taken through a uint16 view of the same memory
    d = getattr(obj, "dtype", None)
    return d is not None and getattr(d, "name", None) == "bfloat16" and hasattr(obj, "view")


cdef tuple _shape(const Py_buffer *v):
    return tuple([v.shape[i] for i in range(v.ndim)])


cdef bint _same_shape(const Py_buffer *a, const Py_buffer *b) noexcept:
    if a.ndim != b.ndim:
        return False
    for i in range(a.ndim):
        if a.shape[i] != b.shape[i]:
            return False
    return True


cdef str _argname(tuple names, int k, Py_ssize_t t, bint multi):
    if k > 5:   # an absmax slot: the QuantizedState's (EMA's avg, or state slot k - 4)
        return _argname(names, k - 4 if names[k - 4] else 0, t, multi) + ".absmax"
    return f"{names[k]}[{t}]" if multi else names[k]


cdef inline int _role(const Bufs *b, int k) noexcept:
    """0: param-like (param, grad; EMA's x), 1: a state array (EMA's avg), 2: slot 5,
    3: an absmax slot."""
    if k > 5:
        return 3
    if k == 5:
        return 2
    if b.rule == PRM_EMA:
        return 1 if k == 0 else 0
    return 0 if k <= 1 else 1


cdef int _first_of(const Bufs *b, int role) noexcept:
    """The first slot of tensor 0 taken in this role (to name it in errors)."""
    cdef int k
    for k in range(_NS):
        if b.have[k] and _role(b, k) == role:
            return k
    return 0


cdef int _check_dtype(Bufs *b, Py_ssize_t t, int k, int dt, tuple names) except -1:
    cdef bint multi = b.multi
    cdef int role = _role(b, k), want
    if dt == _U16 and not (role == 2 and b.master == PRM_MASTER_SPLIT):
        raise TypeError(f"{_argname(names, k, t, multi)} must have dtype float32, float64, "
                        f"bfloat16 or float16, got uint16")
    if dt == _U8:
        raise TypeError(f"{_argname(names, k, t, multi)} must have dtype float32, float64, "
                        f"bfloat16 or float16, got uint8 (8-bit state is a "
                        f"pyrmsprop.QuantizedState: its codes with their absmax)")
    if role == 2:
        want = (PRM_F32 if b.master == PRM_MASTER_FP32 else
                _U16 if b.master == PRM_MASTER_SPLIT else b.dtype)
        if dt != want:
            raise TypeError(f"{_argname(names, k, t, multi)} must have dtype "
                            f"{_float_name(want)}, got {_float_name(dt)}")
        return 0
    # the role's shared dtype (param and grad; the state arrays): the first sets it
    cdef int *shared = &b.dtype if role == 0 else &b.state
    if shared[0] < 0:
        shared[0] = dt
    elif dt != shared[0]:
        raise TypeError(
            f"{_argname(names, k, t, multi)} has dtype {_float_name(dt)} but "
            f"{_argname(names, _first_of(b, role), 0, multi)} has dtype "
            f"{_float_name(shared[0])}; "
            + ("a param and its grad share one dtype" if role == 0
               else "all state arrays share one dtype (8bit: QuantizedState objects)"))
    if b.dtype >= 0 and b.state >= 0 and not _state_ok(b.dtype, b.state):
        p = _argname(names, _first_of(b, 0) if role == 1 else k, 0 if role == 1 else t, multi)
        st = _argname(names, k if role == 1 else _first_of(b, 1), t if role == 1 else 0, multi)
        allowed = " or ".join(_float_name(x) for x in _STATE_FOR[b.dtype])
        raise TypeError(
            f"{st} has dtype {_float_name(b.state)}, but {p} has dtype "
            f"{_float_name(b.dtype)}, whose state must be {allowed}")
    return 0


cdef int _take(Bufs *b, Py_ssize_t t, int k, object obj, tuple names, bint written) except -1:
    """Acquire obj as slot k of tensor t and check it, alone and against the
    tensor's slot 0 (shape) and the call's dtypes (param, state, slot 5)."""
    cdef bint multi = b.multi
    cdef Py_ssize_t i = t * _NS + k
    cdef Py_buffer *v = &b.views[i]
    cdef bint bf16 = False
    src = obj
    global _bf16_type, _bf16_dtype
    if isinstance(obj, _QState):
        return _take_q8(b, t, k, <_QState>obj, names, written)
    if type(obj) is _BF16Bits:
        src = (<_BF16Bits>obj).bits
        bf16 = True
    elif (_bf16_type is not None and not _FREE_THREADED and type(obj) is _bf16_type
          and obj.dtype is _bf16_dtype):
        src = obj.view("uint16")    # an ml_dtypes.bfloat16 array, as below (5 us sooner)
        bf16 = True
    if not PyObject_CheckBuffer(src):
        raise TypeError(f"{_argname(names, k, t, multi)} must be a numpy array of float32, "
                        f"float64, bfloat16 (ml_dtypes) or float16, got {type(obj).__name__}")
    try:
        PyObject_GetBuffer(src, v, PyBUF_RECORDS_RO)
    except Exception as exc:
        # an ml_dtypes.bfloat16 array: numpy cannot export its dtype, so it is taken
        # through a uint16 view of the same memory (asked only here, after the buffer
        # protocol failed: the other arrays never run Python code in this call)
        if bf16 or not _is_bf16_ndarray(obj):
            raise TypeError(f"{_argname(names, k, t, multi)} cannot be used as a float array: "
                            f"{exc}") from None
        src = obj.view("uint16")
        bf16 = True
        PyObject_GetBuffer(src, v, PyBUF_RECORDS_RO)
        if _bf16_type is None:      # set once (before, both None: no reference lost
            _bf16_type, _bf16_dtype = type(obj), obj.dtype   # to a racing thread)
    b.have[i] = True
    cdef int dt = _dtype_of(v)
    if bf16:
        if dt != _U16:
            raise TypeError(f"{_argname(names, k, t, multi)}: bf16_bits needs a 16-bit integer "
                            f"array, got {_dtype_name(src, v)}")
        dt = PRM_BF16
    if dt < 0:
        raise TypeError(f"{_argname(names, k, t, multi)} must have dtype float32, float64, "
                        f"bfloat16 or float16, got {_dtype_name(obj, v)}")
    _check_dtype(b, t, k, dt, names)
    _shape_of(b, t, k, v, names, "")
    return _layout(b, t, k, v, names, written, "")


cdef int _shape_of(Bufs *b, Py_ssize_t t, int k, Py_buffer *v, tuple names,
                   str what) except -1:
    """Slot 0 sets the tensor's length; every other slot has slot 0's shape."""
    cdef bint multi = b.multi
    if k == 0:
        b.lens[t] = v.len // v.itemsize
    elif not _same_shape(v, &b.views[t * _NS]):
        raise ValueError(
            f"{_argname(names, k, t, multi)}{what} has shape {_shape(v)} but "
            f"{_argname(names, 0, t, multi)} has shape {_shape(&b.views[t * _NS])}")
    return 0


cdef int _layout(Bufs *b, Py_ssize_t t, int k, Py_buffer *v, tuple names, bint written,
                 str what) except -1:
    """A taken buffer is C-contiguous, aligned, writable if written; then it is used."""
    cdef bint multi = b.multi
    cdef Py_ssize_t i = t * _NS + k
    if not PyBuffer_IsContiguous(v, b'C'):
        raise ValueError(
            f"{_argname(names, k, t, multi)}{what} is not C-contiguous; pyrmsprop updates arrays in "
            f"place and never copies them (an update applied to a copy would be lost): make "
            f"it contiguous once, e.g. np.ascontiguousarray, and keep using that array")
    if v.len > 0 and <size_t>v.buf % <size_t>v.itemsize != 0:
        # a view at an odd byte offset (numpy's flags.aligned is False): loading a
        # double from it is undefined behaviour in C (UBSan), and a vector loop that
        # peels to an aligned address would never reach one
        raise ValueError(
            f"{_argname(names, k, t, multi)}{what} is not aligned: its data starts "
            f"{<size_t>v.buf % <size_t>v.itemsize} bytes past a multiple of its "
            f"{v.itemsize}-byte items (numpy's flags.aligned is False); pyrmsprop never "
            f"copies the arrays it updates: copy it once (np.array(x)) and keep using that")
    if written and v.readonly:
        raise ValueError(
            f"{_argname(names, k, t, multi)}{what} is read-only, but this update writes to it")
    b.written[i] = written
    b.ptrs[i] = <char *>v.buf
    return 0


cdef int _take_q8(Bufs *b, Py_ssize_t t, int k, _QState q, tuple names,
                  bint written) except -1:
    """A QuantizedState as state slot k of tensor t: its codes in slot k, its absmax
    in the slot's absmax slot; the map (signed or not) must be the slot's."""
    cdef bint multi = b.multi
    if _role(b, k) != 1:
        raise TypeError(f"{_argname(names, k, t, multi)} cannot be a QuantizedState: only "
                        f"state arrays are kept in 8 bits")
    cdef bint want_unsigned = (prm_q8_unsigned_slots(b.rule) >> k) & 1
    if q._signed == want_unsigned:
        raise ValueError(
            f"{_argname(names, k, t, multi)} must be a QuantizedState with signed="
            f"{not want_unsigned}: it holds "
            + ("non-negative values (a second moment: the unsigned map)" if want_unsigned
               else "values of either sign (the signed map)"))
    cdef Py_ssize_t i = t * _NS + k
    cdef Py_buffer *v = &b.views[i]
    if not PyObject_CheckBuffer(q.codes):
        raise TypeError(f"{_argname(names, k, t, multi)}.codes must be a uint8 array, got "
                        f"{type(q.codes).__name__}")
    PyObject_GetBuffer(q.codes, v, PyBUF_RECORDS_RO)
    b.have[i] = True
    if _dtype_of(v) != _U8:
        raise TypeError(f"{_argname(names, k, t, multi)}.codes must have dtype uint8, got "
                        f"{_dtype_name(q.codes, v)}")
    _check_dtype(b, t, k, PRM_Q8, names)
    _shape_of(b, t, k, v, names, ".codes")
    _layout(b, t, k, v, names, written, ".codes")
    cdef int ka = 6 if k < 2 else k + 4     # PRM_Q8_ABSMAX_SLOT
    cdef Py_ssize_t nblocks = (b.lens[t] + 255) // 256
    i = t * _NS + ka
    v = &b.views[i]
    if not PyObject_CheckBuffer(q.absmax):
        raise TypeError(f"{_argname(names, ka, t, multi)} must be a float32 array, got "
                        f"{type(q.absmax).__name__}")
    PyObject_GetBuffer(q.absmax, v, PyBUF_RECORDS_RO)
    b.have[i] = True
    if _dtype_of(v) != PRM_F32:
        raise TypeError(f"{_argname(names, ka, t, multi)} must have dtype float32, got "
                        f"{_dtype_name(q.absmax, v)}")
    if v.ndim != 1 or v.shape[0] != nblocks:
        raise ValueError(f"{_argname(names, ka, t, multi)} has shape {_shape(v)}, but "
                         f"{b.lens[t]} elements need ({nblocks},): one per block of 256")
    return _layout(b, t, ka, v, names, written, "")


cdef int _finish(Bufs *b, tuple names) except -1:
    """After every array is taken: the state storage of a call without state arrays
    (the param's), and the master mode against the param's storage."""
    if b.state < 0:     # the param's own storage (the first _STATE_FOR lists)
        b.state = b.dtype if b.dtype >= 0 else PRM_F32
    if b.master != PRM_MASTER_NONE and b.dtype >= 0:
        what = names[5] if b.master != PRM_MASTER_STOCHASTIC else "seed"
        if b.master == PRM_MASTER_SPLIT and b.dtype != PRM_BF16:
            raise ValueError(f"{what} (a split master) needs bfloat16 {names[0]}, got "
                             f"{_float_name(b.dtype)}")
        if b.dtype != PRM_BF16 and b.dtype != PRM_F16:
            raise ValueError(f"{what} needs bfloat16 or float16 {names[0]}, got "
                             f"{_float_name(b.dtype)}: float32 and float64 params are "
                             f"their own master")
    return 0


cdef struct Span:
    char *lo
    char *hi
    Py_ssize_t slot
    bint written


cdef int _span_cmp(const void *a, const void *b) noexcept nogil:
    cdef const Span *x = <const Span *>a
    cdef const Span *y = <const Span *>b
    return -1 if x.lo < y.lo else (1 if x.lo > y.lo else 0)


cdef int _check_overlap(Bufs *b, tuple names) except -1:
    """No written array may share a byte with any other array of the call.

    Sort the byte ranges by start and sweep: range i overlaps an earlier one iff
    it starts before the furthest end seen so far; it is an error when i is
    written (any earlier range) or when it starts before the furthest end of an
    earlier *written* range.  O(n log n), exact for contiguous arrays."""
    cdef Py_ssize_t m = b.ntensors * _NS, i, count = 0, worst_all = -1, worst_w = -1
    cdef Span small[_NS]
    cdef Span *spans = &small[0]
    if m > _NS:
        spans = <Span *>malloc(m * sizeof(Span))
    cdef char *end_all = NULL
    cdef char *end_w = NULL
    cdef Py_ssize_t bad_a = -1, bad_b = -1
    if spans == NULL:
        raise MemoryError()
    try:
        for i in range(m):
            if b.have[i] and b.views[i].len > 0:
                spans[count].lo = <char *>b.views[i].buf
                spans[count].hi = spans[count].lo + b.views[i].len
                spans[count].slot = i
                spans[count].written = b.written[i]
                count += 1
        qsort(spans, count, sizeof(Span), _span_cmp)
        for i in range(count):
            if worst_all >= 0 and spans[i].lo < end_all and spans[i].written:
                bad_a, bad_b = spans[worst_all].slot, spans[i].slot
                break
            if worst_w >= 0 and spans[i].lo < end_w:
                bad_a, bad_b = spans[worst_w].slot, spans[i].slot
                break
            if worst_all < 0 or spans[i].hi > end_all:
                worst_all, end_all = i, spans[i].hi
            if spans[i].written and (worst_w < 0 or spans[i].hi > end_w):
                worst_w, end_w = i, spans[i].hi
    finally:
        if spans != &small[0]:
            free(spans)
    if bad_a >= 0:
        na = _argname(names, bad_a % _NS, bad_a // _NS, b.multi)
        nb = _argname(names, bad_b % _NS, bad_b // _NS, b.multi)
        raise ValueError(f"{na} and {nb} overlap in memory; an array that this update "
                         f"writes must not share memory with any other argument")
    return 0


cdef void _run(Bufs *b, const void *params, unsigned long long seed=0,
               unsigned long long step=0) noexcept nogil:
    cdef prm_job job
    job.rule = b.rule
    job.dtype = b.dtype
    job.state = b.state
    job.master = b.master
    job.seed = seed
    job.step = step
    job.ntensors = b.ntensors
    job.ptrs = b.ptrs
    job.lens = b.lens
    job.params = params
    prm_run(&job)


# ---------------------------------------------------------------------------
# hyperparameters
# ---------------------------------------------------------------------------

cdef double _real(object x, str name) except? -1.0:
    cdef double v
    if type(x) is float:
        v = <double>x
    elif (type(x) is int or isinstance(x, numbers.Real)) and not isinstance(x, bool):
        try:
            v = float(x)
        except OverflowError:
            raise ValueError(f"{name} must be finite, got {x!r}") from None
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


cdef bint _is_bool(object x):
    # Python's bool, and numpy's (np.bool_ still has __index__ in numpy < 2.3, with only
    # a DeprecationWarning, so operator.index would take it as 0 or 1)
    return isinstance(x, bool) or (type(x).__name__ in ("bool", "bool_")
                                   and type(x).__module__ == "numpy")


cdef bint _flag(object x, str name) except -1:
    # a switch: Python's or numpy's bool only (truthiness would take "no" as True)
    if _is_bool(x):
        return bool(x)
    raise TypeError(f"{name} must be a bool, got {type(x).__name__}")


cdef long long _step(object x) except -1:
    if _is_bool(x) or isinstance(x, float):
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

cdef int _ema_params(prm_ema_params *hp, beta) except -1:
    hp.beta = _unit(beta, "beta")
    hp.one_minus_beta = 1.0 - hp.beta
    return 0


cdef int _rmsprop_params(prm_rmsprop_params *hp, lr, alpha, eps, weight_decay, momentum,
                         centered_, eps_in_sqrt_, maximize_) except -1:
    cdef bint centered = _flag(centered_, "centered")
    cdef bint eps_in_sqrt = _flag(eps_in_sqrt_, "eps_in_sqrt")
    cdef bint maximize = _flag(maximize_, "maximize")
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
    return 0


cdef int _adam_params(prm_adam_params *hp, step, lr, beta1, beta2, eps, weight_decay,
                      decoupled_, amsgrad_, maximize_) except -1:
    cdef bint decoupled = _flag(decoupled_, "decoupled_weight_decay")
    cdef bint amsgrad = _flag(amsgrad_, "amsgrad")
    cdef bint maximize = _flag(maximize_, "maximize")
    cdef long long t = _step(step)
    cdef double lr_ = _nonneg(lr, "lr")
    hp.beta1 = _unit(beta1, "beta1")
    hp.beta2 = _unit(beta2, "beta2")
    hp.eps = _nonneg(eps, "eps")
    hp.weight_decay = _nonneg(weight_decay, "weight_decay")
    hp.one_minus_beta1 = 1.0 - hp.beta1
    hp.one_minus_beta2 = 1.0 - hp.beta2
    # as torch computes them: Python floats (C pow, as float.__pow__), once per call.
    # Not Cython's `**`: without cpow it computes in complex numbers, and lr=1e308
    # made the complex quotient's imaginary part NaN, a TypeError.
    hp.step_size = lr_ / (1.0 - pow(hp.beta1, <double>t))
    hp.bc2_sqrt = pow(1.0 - pow(hp.beta2, <double>t), 0.5)
    hp.decay = 1.0 - lr_ * hp.weight_decay
    hp.flags = ((PRM_MAXIMIZE if maximize else 0)
                | (PRM_WEIGHT_DECAY if hp.weight_decay != 0.0 else 0)
                | (PRM_DECOUPLED if decoupled else 0)
                | (PRM_AMSGRAD if amsgrad else 0))
    return 0


cdef int _sgd_params(prm_sgd_params *hp, lr, momentum, dampening, nesterov_,
                     weight_decay, maximize_, first_step_) except -1:
    cdef bint nesterov = _flag(nesterov_, "nesterov")
    cdef bint maximize = _flag(maximize_, "maximize")
    cdef bint first_step = _flag(first_step_, "first_step")
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
                | (PRM_MOMENTUM if hp.momentum > 0.0 else 0)
                | (PRM_FIRST_STEP if first_step and hp.momentum > 0.0 else 0))
    return 0


cdef int _needs(bint needed, object state, str option, str name) except -1:
    if needed and state is None:
        raise ValueError(f"{option} needs {name} (an array of zeros to start)")
    return 0


# Argument names for error messages, by slot (slot 5: the param's extra array, named
# by the master mode); the multi-tensor calls name the lists ("params[3]").
_EMA_NAMES = ("avg", "x", "", "", "", "")
_RMSPROP_NAMES = ("param", "grad", "square_avg", "grad_avg", "momentum_buffer")
_ADAM_NAMES = ("param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
_SGD_NAMES = ("param", "grad", "momentum_buffer", "", "")
_TOUCH_NAMES = ("a0", "a1", "a2", "a3", "", "extra")
_EMA_LISTS = ("avgs", "xs", "", "", "", "")
_RMSPROP_LISTS = ("params", "grads", "square_avgs", "grad_avgs", "momentum_buffers")
_ADAM_LISTS = ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs")
_SGD_LISTS = ("params", "grads", "momentum_buffers", "", "")
# the master keywords, singular and plural, in _master_of's order
_MASTER_KW = ("master_param", "param_lo", "compensation", "seed")
_MASTER_KWS = ("master_params", "param_los", "compensations", "seed")


cdef int _master_of(object master, object lo, object comp, object seed, tuple kw) except -1:
    """The master mode the keywords select (at most one may be given)."""
    if master is None and lo is None and comp is None and seed is None:
        return PRM_MASTER_NONE      # the common call: no list built
    cdef list given = [kw[i] for i, v in enumerate((master, lo, comp, seed)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"{given[0]} and {given[1]} cannot be combined: a param keeps at most "
                         f"one of {kw[0]}, {kw[1]}, {kw[2]} or a seed (stochastic rounding)")
    if master is not None:
        return PRM_MASTER_FP32
    if lo is not None:
        return PRM_MASTER_SPLIT
    if comp is not None:
        return PRM_MASTER_KAHAN
    if seed is not None:
        return PRM_MASTER_STOCHASTIC
    return PRM_MASTER_NONE


cdef tuple _with_extra(tuple names, int master, tuple kw):
    """names + the slot-5 name of this master mode."""
    return names + (kw[0] if master == PRM_MASTER_FP32 else kw[1] if master == PRM_MASTER_SPLIT
                    else kw[2] if master == PRM_MASTER_KAHAN else "",)


cdef unsigned long long _seed(object seed) except? 0:
    if _is_bool(seed) or isinstance(seed, float):
        raise TypeError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an integer in [0, 2**64), got "
                        f"{type(seed).__name__}") from None
    if not 0 <= s < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {s}")
    return s


cdef unsigned long long _sr_step(object seed, object step) except? 0:
    """The step that keys stochastic rounding (rules without a step of their own)."""
    if seed is None:
        if step is not None:
            raise ValueError("step is used only with seed (stochastic rounding)")
        return 0
    if step is None:
        raise ValueError("seed needs step (the 1-based number of this update), so that each "
                         "update rounds with new random bits")
    return <unsigned long long>_step(step)


# A list slot that this call does not use (an option switched off); a None that the
# caller passed is an error, never this.
cdef object _UNUSED = object()


cdef tuple _snapshot(object seq, str name):
    """``seq`` (a list or tuple of arrays) as a tuple, taken once.  A call reads only
    its snapshots: a list subclass whose __len__/__getitem__/__iter__ lie or mutate
    lists, user code run later in the call, or another thread changing the list
    cannot make it index past a list's end (its items stay referenced, too)."""
    if not isinstance(seq, (list, tuple)):
        raise TypeError(f"{name} must be a list of arrays, got {type(seq).__name__}")
    if type(seq) is tuple or type(seq) is list:
        return tuple(seq)
    # a subclass: through its iterator, never its __len__ (a lying length hint would
    # ask for a huge tuple; Cython turns tuple(iter(seq)) into tuple(seq))
    return tuple([x for x in seq])


cdef object _state(object seq, bint validate_only):
    """A state list: may be None (then unused) only in a check-only call."""
    return _UNUSED if (seq is None and validate_only) else seq


cdef _Multi _take_lists(tuple lists, tuple names, tuple written, int rule, int master):
    """Snapshot every list (``_UNUSED``: slot unused; slot 0 always used), check the
    snapshots' lengths, and acquire every tensor of them into a new _Multi."""
    cdef Py_ssize_t nl = len(lists), n, t
    cdef int k
    cdef list snaps = [None] * nl
    for k in range(nl):
        if lists[k] is not _UNUSED:
            snaps[k] = _snapshot(lists[k], names[k])
    n = len(<tuple>snaps[0])
    for k in range(1, nl):
        if snaps[k] is not None and len(<tuple>snaps[k]) != n:
            raise ValueError(
                f"{names[k]} has {len(<tuple>snaps[k])} arrays but {names[0]} has {n}")
    cdef _Multi m = _Multi(n, rule, master)
    cdef tuple seq
    for t in range(n):
        for k in range(nl):
            if snaps[k] is not None:
                seq = <tuple>snaps[k]
                _take(&m.b, t, k, seq[t], names, written[k])
    _finish(&m.b, names)
    return m


cdef object _extra(int master, object master_param, object lo, object comp):
    """The slot-5 argument of a master mode (_UNUSED when it has none)."""
    return (master_param if master == PRM_MASTER_FP32 else lo if master == PRM_MASTER_SPLIT
            else comp if master == PRM_MASTER_KAHAN else _UNUSED)


cdef int _take_extra(Bufs *b, object extra, tuple names) except -1:
    if extra is not _UNUSED:
        _take(b, 0, 5, extra, names, True)
    return 0


# The storage types and master keywords, said once for every update's docstring.
_STORAGE_DOC = """

    Storage: params and grads are float32, float64, bfloat16 (``ml_dtypes.bfloat16``
    arrays) or float16, one dtype; the state arrays share one dtype: float64 for
    float64 params, float32 or bfloat16 for float32 and bfloat16 params, float32 or
    float16 for float16 params.  Every element is computed in float32 (float64 for
    float64 params) and every stored value rounded once, to nearest even.  8-bit
    state (float32, bfloat16 and float16 params): every state argument is a
    ``pyrmsprop.QuantizedState`` (``signed=True`` for first moments and momentum
    buffers, ``False`` for second moments); each block of 256 elements is
    dequantized, updated in float32 and written back with its new absmax, each value
    as its nearest code.

    A 16-bit param can keep what its rounding loses, with at most one of:
    ``master_param`` (a float32 array: it is updated, and param is it rounded),
    ``param_lo`` (bfloat16 only, a uint16 array: the float32 master is param's bits
    and these, exactly; param is the master rounded to nearest, ties away from zero),
    ``compensation`` (Kahan: an array of param's dtype, zeros to start) or ``seed``
    (every 16-bit value written is rounded stochastically, with random bits from
    (seed, step, the array's position in the list (0 for one array), the element's
    index): the same for every thread count and SIMD target).
"""


def ema_update(avg, x, *, beta, seed=None, step=None):
    """Exponentially weighted average, in place::

        avg <- beta * avg + (1 - beta) * x

    ``avg`` starts at zero and averages roughly the last ``1 / (1 - beta)``
    values; divide it by ``1 - beta**t`` after ``t`` updates for the
    bias-corrected value (:class:`pyrmsprop.EMA` does that for you).

    Parameters
    ----------
    avg : ndarray, C-contiguous, aligned, writable
        The average, updated in place: a state array (float32 or bfloat16 for
        float32 or bfloat16 ``x``, float32 or float16 for float16, float64 for
        float64).
    x : ndarray, same shape as ``avg``
        The new value.
    beta : float in [0, 1)
        The decay rate, e.g. 0.9 .. 0.999.
    seed, step : int, optional
        Round a 16-bit ``avg`` stochastically, keyed by (seed, step, element).

    Raises ``TypeError``/``ValueError`` naming the bad argument, before
    anything is written.  Returns None.
    """
    cdef prm_ema_params hp
    _ema_params(&hp, beta)
    cdef int master = PRM_MASTER_STOCHASTIC if seed is not None else PRM_MASTER_NONE
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = _sr_step(seed, step)
    cdef Single st
    cdef Bufs b = _single(&st, PRM_EMA, master)
    try:
        _take(&b, 0, 0, avg, _EMA_NAMES, True)
        _take(&b, 0, 1, x, _EMA_NAMES, False)
        _finish(&b, _EMA_NAMES)
        _check_overlap(&b, _EMA_NAMES)
        with nogil:
            _run(&b, &hp, sd, sst)
    finally:
        _release(&b)


def ema_update_multi(avgs, xs, *, beta, seed=None, step=None, bint _validate_only=False):
    """:func:`ema_update` over lists of arrays (pairwise equal shapes, one dtype per
    role), in one compiled call split across threads by total size.
    """
    cdef prm_ema_params hp
    _ema_params(&hp, beta)
    cdef int master = PRM_MASTER_STOCHASTIC if seed is not None else PRM_MASTER_NONE
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = _sr_step(seed, step)
    cdef _Multi m = _take_lists((avgs, xs), _EMA_LISTS, (True, False), PRM_EMA, master)
    _check_overlap(&m.b, _EMA_LISTS)
    if _validate_only:
        return
    with nogil:
        _run(&m.b, &hp, sd, sst)


def rmsprop_update(param, grad, square_avg, *, lr=1e-2, alpha=0.99, eps=1e-8,
                   weight_decay=0.0, momentum=0.0, momentum_buffer=None,
                   centered=False, grad_avg=None, eps_in_sqrt=False,
                   maximize=False, master_param=None, param_lo=None, compensation=None,
                   seed=None, step=None):
    """One RMSprop step, in place, with ``torch.optim.RMSprop``'s rule and defaults::

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
    when ``momentum > 0``; otherwise they are ignored.  ``step`` (the 1-based
    update number) is needed with ``seed`` only.

    All arrays share param's shape and are C-contiguous and aligned; every
    argument is checked before anything is written.
    """
    cdef prm_rmsprop_params hp
    _rmsprop_params(&hp, lr, alpha, eps, weight_decay, momentum, centered, eps_in_sqrt,
                    maximize)
    cdef bint mom = hp.momentum > 0.0
    _needs(centered, grad_avg, "centered=True", "grad_avg")
    _needs(mom, momentum_buffer, "momentum > 0", "momentum_buffer")
    cdef int master = _master_of(master_param, param_lo, compensation, seed, _MASTER_KW)
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = _sr_step(seed, step)
    cdef tuple names = _with_extra(_RMSPROP_NAMES, master, _MASTER_KW)
    cdef Single st
    cdef Bufs b = _single(&st, PRM_RMSPROP, master)
    try:
        _take(&b, 0, 0, param, names, True)
        _take(&b, 0, 1, grad, names, False)
        _take(&b, 0, 2, square_avg, names, True)
        if centered:
            _take(&b, 0, 3, grad_avg, names, True)
        if mom:
            _take(&b, 0, 4, momentum_buffer, names, True)
        _take_extra(&b, _extra(master, master_param, param_lo, compensation), names)
        _finish(&b, names)
        _check_overlap(&b, names)
        with nogil:
            _run(&b, &hp, sd, sst)
    finally:
        _release(&b)


def rmsprop_update_multi(params, grads, square_avgs, *, lr=1e-2, alpha=0.99, eps=1e-8,
                         weight_decay=0.0, momentum=0.0, momentum_buffers=None,
                         centered=False, grad_avgs=None, eps_in_sqrt=False,
                         maximize=False, master_params=None, param_los=None,
                         compensations=None, seed=None, step=None,
                         bint _validate_only=False):
    """:func:`rmsprop_update` over lists of arrays (one dtype per role; each
    tensor's arrays share its shape), in one compiled call split across threads by
    total size.  Everything is checked before anything is written.
    """
    cdef prm_rmsprop_params hp
    _rmsprop_params(&hp, lr, alpha, eps, weight_decay, momentum, centered, eps_in_sqrt,
                    maximize)
    cdef bint mom = hp.momentum > 0.0
    _needs(centered and not _validate_only, grad_avgs, "centered=True", "grad_avgs")
    _needs(mom and not _validate_only, momentum_buffers, "momentum > 0", "momentum_buffers")
    cdef int master = _master_of(master_params, param_los, compensations, seed, _MASTER_KWS)
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = _sr_step(seed, step)
    cdef tuple names = _with_extra(_RMSPROP_LISTS, master, _MASTER_KWS)
    cdef _Multi m = _take_lists(
        (params, grads, _state(square_avgs, _validate_only),
         _state(grad_avgs, _validate_only) if centered else _UNUSED,
         _state(momentum_buffers, _validate_only) if mom else _UNUSED,
         _extra(master, master_params, param_los, compensations)),
        names, (True, False, True, True, True, True), PRM_RMSPROP, master)
    _check_overlap(&m.b, names)
    if _validate_only:
        return
    with nogil:
        _run(&m.b, &hp, sd, sst)


def adam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9,
                beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                amsgrad=False, max_exp_avg_sq=None, maximize=False, master_param=None,
                param_lo=None, compensation=None, seed=None):
    """One Adam (or AdamW) step, in place, with ``torch.optim.Adam``'s rule and
    defaults.  ``step`` is the 1-based number of this update::

        g <- -g                                       if maximize
        Adam  (L2):        g <- g + weight_decay * param
        AdamW (decoupled): param <- param * (1 - lr * weight_decay)
        exp_avg    <- lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq <- beta2 * exp_avg_sq + (1 - beta2) * g * g
        v = exp_avg_sq,  or with amsgrad:  max_exp_avg_sq <- max(max_exp_avg_sq, exp_avg_sq); v = max_exp_avg_sq
        bc1 = 1 - beta1**step ;  bc2 = 1 - beta2**step          (double precision)
        d <- sqrt(v) / sqrt(bc2) + eps
        param <- param - (lr / bc1) * exp_avg / d

    ``decoupled_weight_decay=True`` gives AdamW (whose usual weight_decay is
    1e-2).  ``max_exp_avg_sq`` is required when ``amsgrad``.  All arrays share
    param's shape and are C-contiguous and aligned; every argument is checked
    before anything is written.
    """
    cdef prm_adam_params hp
    _adam_params(&hp, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                 amsgrad, maximize)
    _needs(amsgrad, max_exp_avg_sq, "amsgrad=True", "max_exp_avg_sq")
    cdef int master = _master_of(master_param, param_lo, compensation, seed, _MASTER_KW)
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = <unsigned long long>_step(step)
    cdef tuple names = _with_extra(_ADAM_NAMES, master, _MASTER_KW)
    cdef Single st
    cdef Bufs b = _single(&st, PRM_ADAM, master)
    try:
        _take(&b, 0, 0, param, names, True)
        _take(&b, 0, 1, grad, names, False)
        _take(&b, 0, 2, exp_avg, names, True)
        _take(&b, 0, 3, exp_avg_sq, names, True)
        if amsgrad:
            _take(&b, 0, 4, max_exp_avg_sq, names, True)
        _take_extra(&b, _extra(master, master_param, param_lo, compensation), names)
        _finish(&b, names)
        _check_overlap(&b, names)
        with nogil:
            _run(&b, &hp, sd, sst)
    finally:
        _release(&b)


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, *, step, lr=1e-3, beta1=0.9,
                      beta2=0.999, eps=1e-8, weight_decay=0.0,
                      decoupled_weight_decay=False, amsgrad=False,
                      max_exp_avg_sqs=None, maximize=False, master_params=None,
                      param_los=None, compensations=None, seed=None,
                      bint _validate_only=False):
    """:func:`adam_update` over lists of arrays (one dtype per role; each tensor's
    arrays share its shape), in one compiled call split across threads by total
    size.  Everything is checked before anything is written.
    """
    cdef prm_adam_params hp
    _adam_params(&hp, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                 amsgrad, maximize)
    _needs(amsgrad and not _validate_only, max_exp_avg_sqs, "amsgrad=True", "max_exp_avg_sqs")
    cdef int master = _master_of(master_params, param_los, compensations, seed, _MASTER_KWS)
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = <unsigned long long>_step(step)
    cdef tuple names = _with_extra(_ADAM_LISTS, master, _MASTER_KWS)
    cdef _Multi m = _take_lists(
        (params, grads, _state(exp_avgs, _validate_only), _state(exp_avg_sqs, _validate_only),
         _state(max_exp_avg_sqs, _validate_only) if amsgrad else _UNUSED,
         _extra(master, master_params, param_los, compensations)),
        names, (True, False, True, True, True, True), PRM_ADAM, master)
    _check_overlap(&m.b, names)
    if _validate_only:
        return
    with nogil:
        _run(&m.b, &hp, sd, sst)


def sgd_update(param, grad, *, lr, momentum=0.0, momentum_buffer=None, dampening=0.0,
               nesterov=False, weight_decay=0.0, maximize=False, master_param=None,
               param_lo=None, compensation=None, seed=None, step=None):
    """One SGD step, in place, with ``torch.optim.SGD``'s rule::

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
    ``momentum > 0`` and ``dampening == 0``.  ``step`` (the 1-based update
    number) is needed with ``seed`` only.
    """
    cdef prm_sgd_params hp
    _sgd_params(&hp, lr, momentum, dampening, nesterov, weight_decay, maximize, False)
    cdef bint mom = hp.momentum > 0.0
    _needs(mom, momentum_buffer, "momentum > 0", "momentum_buffer")
    cdef int master = _master_of(master_param, param_lo, compensation, seed, _MASTER_KW)
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = _sr_step(seed, step)
    cdef tuple names = _with_extra(_SGD_NAMES, master, _MASTER_KW)
    cdef Single st
    cdef Bufs b = _single(&st, PRM_SGD, master)
    try:
        _take(&b, 0, 0, param, names, True)
        _take(&b, 0, 1, grad, names, False)
        if mom:
            _take(&b, 0, 2, momentum_buffer, names, True)
        _take_extra(&b, _extra(master, master_param, param_lo, compensation), names)
        _finish(&b, names)
        _check_overlap(&b, names)
        with nogil:
            _run(&b, &hp, sd, sst)
    finally:
        _release(&b)


def sgd_update_multi(params, grads, *, lr, momentum=0.0, momentum_buffers=None,
                     dampening=0.0, nesterov=False, weight_decay=0.0,
                     maximize=False, first_step=False, master_params=None, param_los=None,
                     compensations=None, seed=None, step=None, bint _validate_only=False):
    """:func:`sgd_update` over lists of arrays, in one compiled call split across
    threads by total size.  ``first_step=True`` is torch's first momentum step:
    ``momentum_buffer <- g`` (whatever the buffers held) instead of the
    momentum update.
    """
    cdef prm_sgd_params hp
    _sgd_params(&hp, lr, momentum, dampening, nesterov, weight_decay, maximize, first_step)
    cdef bint mom = hp.momentum > 0.0
    _needs(mom and not _validate_only, momentum_buffers, "momentum > 0", "momentum_buffers")
    cdef int master = _master_of(master_params, param_los, compensations, seed, _MASTER_KWS)
    cdef unsigned long long sd = _seed(seed) if seed is not None else 0
    cdef unsigned long long sst = _sr_step(seed, step)
    cdef tuple names = _with_extra(_SGD_LISTS, master, _MASTER_KWS)
    cdef _Multi m = _take_lists(
        (params, grads, _state(momentum_buffers, _validate_only) if mom else _UNUSED,
         _UNUSED, _UNUSED, _extra(master, master_params, param_los, compensations)),
        names, (True, False, True, True, True, True), PRM_SGD, master)
    _check_overlap(&m.b, names)
    if _validate_only:
        return
    with nogil:
        _run(&m.b, &hp, sd, sst)


for _f in (rmsprop_update, rmsprop_update_multi, adam_update, adam_update_multi,
           sgd_update, sgd_update_multi):
    _f.__doc__ = _f.__doc__.rstrip() + "\n" + _STORAGE_DOC
del _f


def all_finite(arrays):
    """True when no element of the float32/float64/bfloat16/float16 arrays in the
    list is NaN or +-Inf (the optimizers' ``skip_nonfinite`` check; one vectorized
    pass).  Every array is checked, also those after a non-finite one.
    """
    # a snapshot: the GIL is released between arrays, when another thread may
    # change the list
    cdef tuple seq = _snapshot(arrays, "arrays")
    cdef Single st
    cdef Bufs b
    cdef int bad = 0
    cdef Py_ssize_t t
    for t in range(len(seq)):
        b = _single(&st, PRM_TOUCH)
        try:
            _take(&b, 0, 0, seq[t], (f"arrays[{t}]",), False)
            if not bad:     # after the first non-finite array, only check the rest
                with nogil:
                    bad = prm_any_nonfinite(b.dtype, b.ptrs, b.lens, 1)
        finally:
            _release(&b)
    return not bad


def memory_only_update(a0, a1, a2=None, a3=None, *, extra=None, prefetch=True):
    """The benchmark's bandwidth limit: ``a0 += a1`` and, when given, ``a2 += a1``
    and ``a3 += a1`` (``+= 1`` when their dtype differs from a1's) and ``extra += 1``,
    in one pass through the same dispatch and threads as the optimizer kernels.
    With 2, 3 or 4 arrays it moves exactly the bytes of EMA, RMSprop/SGD-momentum and
    Adam respectively, with no other arithmetic.  a0 and a1 are a param's storage,
    a2 and a3 its state's; ``extra`` (float32, or 16 bits: uint16 or the param's
    dtype) stands for a master copy, its low halves or a compensation array.  16-bit
    arrays are added to as integers and keep their values (a run-time zero is added:
    only the bytes matter, and the benchmark's updates of the same arrays must not
    meet the NaN patterns integer sums would make).  ``prefetch=False`` leaves out
    the software prefetches the kernels issue (on a Zen 5-class EPYC the loop
    streamed faster without them, the updates with them: the benchmark takes the
    faster of both).
    """
    if a3 is not None and a2 is None:
        raise ValueError("a3 needs a2")
    cdef prm_touch_params tp
    tp.flags = 0 if prefetch else PRM_NO_PREFETCH
    cdef int master = PRM_MASTER_NONE
    if extra is not None:
        master = PRM_MASTER_FP32 if getattr(getattr(extra, "dtype", None), "itemsize", 0) == 4 \
            else PRM_MASTER_SPLIT if getattr(getattr(extra, "dtype", None), "name", "") == "uint16" \
            else PRM_MASTER_KAHAN
    cdef Single st
    cdef Bufs b = _single(&st, PRM_TOUCH, master)
    try:
        _take(&b, 0, 0, a0, _TOUCH_NAMES, True)
        _take(&b, 0, 1, a1, _TOUCH_NAMES, False)
        if a2 is not None:
            _take(&b, 0, 2, a2, _TOUCH_NAMES, True)
        if a3 is not None:
            _take(&b, 0, 3, a3, _TOUCH_NAMES, True)
        if extra is not None:
            _take(&b, 0, 5, extra, _TOUCH_NAMES, True)
        _finish(&b, _TOUCH_NAMES)
        _check_overlap(&b, _TOUCH_NAMES)
        with nogil:
            _run(&b, &tp)
    finally:
        _release(&b)


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
    """Use the kernels compiled for SIMD target ``name``: 'baseline', 'avx2' or
    'avx512' on x86-64; 'neon' on ARM64, where 'baseline' is an alias of it (the
    baseline there is NEON).  Every target gives bit-identical results; this
    exists to test and benchmark them.  A name this build lacks (a target of
    another architecture included) or this CPU does not support raises
    ``ValueError``.  Safe from any thread: an update already running finishes on
    the target it started with, and later calls use the new one.
    """
    prm_set_target(_target_id(name))


cdef int _target_id(object name) except -1:
    """The id of supported target ``name`` (TypeError / ValueError otherwise)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key == "baseline":
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
    return t


cdef int _rule_id(object rule) except -1:
    """The id of ``rule`` ('ema', 'rmsprop', 'adam', 'sgd', 'memory_only')."""
    if rule not in _RULE_IDS:
        raise ValueError(f"rule must be one of {sorted(_RULE_IDS)}, got {rule!r}")
    return _RULE_IDS[rule]


cdef int _dtype_id(object dtype) except -2:
    """PRM_F32 / PRM_F64 for np.float32 (a type), np.dtype("float32") or "float32"
    (and float64 alike); -1 for anything else (each caller raises its own error)."""
    name = getattr(dtype, "__name__", None) or getattr(dtype, "name", None) or dtype
    return PRM_F32 if name == "float32" else PRM_F64 if name == "float64" else -1


cdef int _storage_id(object dtype) except -2:
    """_dtype_id, and PRM_BF16 / PRM_F16 for bfloat16 and float16."""
    name = getattr(dtype, "__name__", None) or getattr(dtype, "name", None) or dtype
    return (PRM_BF16 if name == "bfloat16" else PRM_F16 if name == "float16"
            else _dtype_id(dtype))


cdef int _rule_dtype(object rule, object dtype, int *r, int *d) except -1:
    r[0] = _rule_id(rule)
    d[0] = _storage_id(dtype)
    if d[0] < 0:
        raise ValueError(f"dtype must be 'float32', 'float64', 'bfloat16' or 'float16', "
                         f"got {dtype!r}")
    return 0


def rule_target(rule, dtype):
    """The SIMD target updates of ``rule`` with params of ``dtype`` run on (calls
    with bfloat16 or float16 state run on that dtype's target, float32 params too)."""
    cdef int r, d
    _rule_dtype(rule, dtype, &r, &d)
    return _name(prm_rule_target(r, d))


def set_rule_target(rule, dtype, name):
    """Run updates of ``rule`` and ``dtype`` on target ``name`` (until set_simd);
    every target gives the same bits.  Safe from any thread, as set_simd."""
    cdef int r, d
    _rule_dtype(rule, dtype, &r, &d)
    prm_set_rule_target(r, d, _target_id(name))


def time_on(name, rule, arrays, Py_ssize_t calls):
    """Seconds that ``calls`` updates of ``rule`` take on target ``name``, serially,
    whatever the rule's own target: the 'auto' mode's measurement.  ``arrays`` as
    memory_only_update takes them, 2 (EMA: avg, x), 3 (RMSprop: param, grad,
    square_avg; SGD: param, grad, momentum_buffer) or 4 (Adam: param, grad,
    exp_avg, exp_avg_sq); torch's defaults (RMSprop lr 1e-2, SGD lr 1e-2 and
    momentum 0.9, Adam at step 10), no options.  The arrays change."""
    if rule not in _RULE_ARRAYS:
        raise ValueError(f"rule must be one of {sorted(_RULE_ARRAYS)}, got {rule!r}")
    cdef int r = _rule_id(rule)
    cdef int t = _target_id(name)
    cdef Py_ssize_t want = _RULE_ARRAYS[rule]
    arrays = list(arrays)
    if len(arrays) != want:
        raise ValueError(f"{rule} takes {want} arrays, got {len(arrays)}")
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    cdef prm_ema_params ema_hp
    cdef prm_rmsprop_params rms_hp
    cdef prm_adam_params adam_hp
    cdef prm_sgd_params sgd_hp
    cdef const void *hp
    if rule == "ema":
        _ema_params(&ema_hp, 0.9)
        hp = &ema_hp
    elif rule == "rmsprop":
        _rmsprop_params(&rms_hp, 1e-2, 0.99, 1e-8, 0.0, 0.0, False, False, False)
        hp = &rms_hp
    elif rule == "adam":
        _adam_params(&adam_hp, 10, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)
        hp = &adam_hp
    else:
        _sgd_params(&sgd_hp, 1e-2, 0.9, 0.0, False, 0.0, False, False)
        hp = &sgd_hp
    cdef Single st
    cdef Bufs b = _single(&st, r)
    cdef prm_job job
    cdef Py_ssize_t k
    cdef double t0, t1
    try:
        for k in range(want):
            _take(&b, 0, k, arrays[k], _TOUCH_NAMES, k != 1)
        _finish(&b, _TOUCH_NAMES)
        _check_overlap(&b, _TOUCH_NAMES)
        job.rule = r
        job.dtype = b.dtype
        job.state = b.state
        job.master = b.master
        job.seed = 0
        job.step = 0
        job.ntensors = 1
        job.ptrs = b.ptrs
        job.lens = b.lens
        job.params = hp
        t0 = time.perf_counter()
        with nogil:
            for k in range(calls):
                prm_run_serial_on(t, &job)
        t1 = time.perf_counter()
    finally:
        _release(&b)
    return t1 - t0


def cpu_name():
    """x86: the CPU's brand string and family/model/stepping, from CPUID; else ''."""
    return prm_cpu_name().decode("ascii", "replace")


_HW_NAMES = (("bfloat16", 1), ("float16", 2))    # pyrmsprop.h's PRM_HW_BF16, PRM_HW_F16


def _hw_names(int mask):
    return tuple(name for name, bit in _HW_NAMES if mask & bit)


def hw_conversions(supported=False):
    """The 16-bit storage types whose conversions use CPU instructions (AVX-512 BF16
    for bfloat16 stores, F16C for float16), in use or (``supported=True``) present.
    Either way the bits are those of the portable integer code."""
    return _hw_names(prm_hw_conversions_supported() if supported else prm_hw_conversions())


def set_hw_conversions(names):
    """Use the CPU's conversion instructions for these storage types only (names from
    ``hw_conversions(supported=True)``; ``()`` for the integer code everywhere, as the
    tests compare).  Returns the types now in use."""
    cdef int mask = 0
    bits = dict(_HW_NAMES)
    for name in names:
        if name not in bits:
            raise ValueError(f"names: unknown storage type {name!r}; expected bfloat16 or float16")
        mask |= bits[name]
    return _hw_names(prm_set_hw_conversions(mask))


def target_note():
    """Why a compiled target is not dispatched on this platform ('' if none)."""
    return prm_target_note().decode()


def compiler():
    """The compiler that built the extension."""
    return prm_compiler().decode()


cdef Py_ssize_t _count(object n, Py_ssize_t lo, Py_ssize_t hi) except? -1:
    # an integer setting ``n`` in [lo, hi]: no bools (Python's or numpy's), no floats
    if _is_bool(n):
        raise TypeError(f"n must be an int >= {lo}, got bool")
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an int >= {lo}, got {type(n).__name__}") from None
    if not (lo <= k <= hi):
        raise ValueError(f"n must be in [{lo}, {hi}], got {k}")
    return k


def set_num_threads(n):
    """Use up to ``n`` threads (the caller and ``n - 1`` pool workers) for updates
    large enough to gain from it.  Results do not depend on ``n``.
    """
    prm_set_num_threads(_count(n, 1, 256))


def get_num_threads():
    """The number of threads updates may use (see :func:`set_num_threads`)."""
    return prm_get_num_threads()


def set_thread_threshold(n):
    """Updates smaller than ``n`` float32-EMA elements run on the calling thread only.

    A call's element count is weighted by its rule and dtype's cost per element
    (see :func:`split_elements`); 0 splits every call that has two chunks."""
    prm_set_thread_threshold(_count(n, 0, PY_SSIZE_T_MAX))


def get_thread_threshold():
    """Updates below this many float32-EMA elements are not split across threads."""
    return prm_get_thread_threshold()


_RULE_IDS = {"ema": PRM_EMA, "rmsprop": PRM_RMSPROP, "adam": PRM_ADAM, "sgd": PRM_SGD,
             "memory_only": PRM_TOUCH}
# the arrays time_on takes per rule, in memory_only_update's order
_RULE_ARRAYS = {"ema": 2, "rmsprop": 3, "adam": 4, "sgd": 3}


def split_elements(rule, dtype):
    """The smallest total number of elements from which an update of ``rule``
    ('ema', 'rmsprop', 'adam', 'sgd', 'memory_only') and ``dtype`` (float32 or
    float64) is split across threads: the threshold over the rule's relative cost
    per element."""
    cdef int r = _rule_id(rule), d = _storage_id(dtype)
    if d < 0:
        raise TypeError(f"dtype must be float32, float64, bfloat16 or float16, got {dtype!r}")
    return prm_split_elems(r, d)


def thread_mode():
    """How updates are split across threads."""
    return prm_thread_mode().decode()


def chunk_elements():
    """Elements per chunk that a thread claims (a multiple of 64 bytes)."""
    return prm_chunk_elems()
