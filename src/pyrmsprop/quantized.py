"""8-bit block-wise optimizer state: :class:`QuantizedState`.

A state array of n elements kept as n uint8 codes and one float32 ``absmax`` per
block of 256 consecutive elements (the last block may be shorter): element i is
``map[codes[i]] * absmax[i // 256]``, the map being bitsandbytes' dynamic map (signed
for first moments and momentum buffers, unsigned for second moments).  The update
functions take a QuantizedState wherever they take a state array: each step
dequantizes a block, updates it in float32 by the rule's exact arithmetic, and
writes it back with the block's new absmax, every value as its nearest code
(distances in float32, a tie to the lower code, as bitsandbytes' CPU quantizer).
Bytes per element: 1 + 4/256.
"""

from __future__ import annotations

import numpy as np

from pyrmsprop import _core

__all__ = ["QuantizedState", "BLOCK"]

BLOCK = _core.Q8_BLOCK


def _nblocks(size: int) -> int:
    return -(-size // BLOCK)


def _shape(shape) -> tuple:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must not be negative, got {shape}")
    return shape


class QuantizedState(_core._QState):
    """One 8-bit state array: ``codes`` (uint8, the param's shape) and ``absmax``
    (float32, one per block of 256 elements of the flattened array), read through the
    signed map (``signed=True``: first moments, momentum) or the unsigned one (second
    moments).  The arrays are used in place, never copied: pass them as they are
    (torch tensors through ``.numpy()``).

    Non-finite values: a NaN or an Inf written into a block makes its absmax NaN or
    Inf and every code that of 0, so every value of that block reads back as NaN.
    """

    def __init__(self, codes, absmax, *, signed: bool):
        if not isinstance(signed, (bool, np.bool_)):
            raise TypeError(f"signed must be True or False, got {signed!r}")
        if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
            raise TypeError(f"codes must be a numpy uint8 array, got "
                            f"{getattr(codes, 'dtype', type(codes).__name__)}")
        if not isinstance(absmax, np.ndarray) or absmax.dtype != np.float32:
            raise TypeError(f"absmax must be a numpy float32 array, got "
                            f"{getattr(absmax, 'dtype', type(absmax).__name__)}")
        if absmax.shape != (_nblocks(codes.size),):
            raise ValueError(f"absmax has shape {absmax.shape}, but {codes.size} codes need "
                             f"({_nblocks(codes.size)},): one per block of {BLOCK}")
        super().__init__(codes, absmax, bool(signed))

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def zeros(cls, shape, *, signed: bool = True) -> QuantizedState:
        """A state of zeros (absmax 0, every code that of 0)."""
        return cls.zeros_into(np.empty(_shape(shape), np.uint8), signed=signed)

    @classmethod
    def zeros_into(cls, codes: np.ndarray, *, signed: bool = True) -> QuantizedState:
        """A state of zeros whose codes are ``codes`` (a uint8 array, filled here;
        e.g. a view of a larger buffer), with a new absmax."""
        codes.fill(_core.Q8_ZERO[bool(signed)])
        return cls(codes, np.zeros(_nblocks(codes.size), np.float32), signed=signed)

    @classmethod
    def from_float(cls, x, *, signed: bool = True) -> QuantizedState:
        """x (any float array; float64 is rounded to float32 first) quantized."""
        arr = np.asarray(x)
        if arr.dtype.kind != "f" and getattr(arr.dtype, "name", "") != "bfloat16":
            raise TypeError(f"x must be a float array, got {arr.dtype}")
        if not signed and np.any(arr < 0):
            raise ValueError("an unsigned QuantizedState holds non-negative values; x has "
                             "negative ones (use signed=True)")
        q = cls.zeros(arr.shape, signed=signed)
        q.quantize_(arr)
        return q

    # ---- values ---------------------------------------------------------------------
    def quantize_(self, x) -> None:
        """Overwrite the state with x's values (x: the state's shape)."""
        arr = np.ascontiguousarray(np.asarray(x).astype(np.float32, copy=False))
        if arr.shape != self.codes.shape:
            raise ValueError(f"x has shape {arr.shape} but the state has {self.codes.shape}")
        _core.q8_quantize(arr.reshape(-1), self.codes.reshape(-1), self.absmax, self.signed)

    def dequantize(self) -> np.ndarray:
        """The values, float32, in the codes' shape."""
        out = np.empty(self.codes.shape, np.float32)
        _core.q8_dequantize(np.ascontiguousarray(self.codes).reshape(-1), self.absmax,
                            out.reshape(-1), self.signed)
        return out

    def copy(self) -> QuantizedState:
        return type(self)(self.codes.copy(), self.absmax.copy(), signed=self.signed)

    # ---- description ----------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.codes.shape

    @property
    def size(self) -> int:
        return self.codes.size

    @property
    def nbytes(self) -> int:
        """Bytes held: 1 per element + 4 per block."""
        return self.codes.nbytes + self.absmax.nbytes

    @staticmethod
    def map(signed: bool = True) -> np.ndarray:
        """The 256 entries of the signed or unsigned map (float32)."""
        return np.frombuffer(_core.q8_map(bool(signed)), dtype=np.float32).copy()

    def __repr__(self) -> str:
        return (f"QuantizedState(shape={self.shape}, signed={self.signed}, "
                f"blocks={self.absmax.size})")

    def __eq__(self, other):
        if not isinstance(other, QuantizedState):
            return NotImplemented
        return (self.signed == other.signed and np.array_equal(self.codes, other.codes)
                and np.array_equal(self.absmax.view(np.uint32), other.absmax.view(np.uint32)))

    __hash__ = None

