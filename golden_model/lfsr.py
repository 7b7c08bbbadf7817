"""The 64-bit Galois LFSR of the on-chip learning engine, and its vectorised draw stream.

One step (right-shifting Galois form, polynomial x^64 + x^63 + x^61 + x^60 + 1, maximal length
2^64 - 1)::

    out   = state & 1
    state = (state >> 1) ^ (MASK if out else 0)        MASK = 0xD800000000000000

A *draw* of ``r`` bits advances the register ``r`` steps and takes the low ``r`` bits of the
new state: ``d_k = (A^(r (k+1)) S) & (2^r - 1)`` for the k-th draw from state ``S``, where
``A`` is the one-step map, linear over GF(2). The RTL computes ``lanes`` draws per cycle with
the constant XOR networks ``A^r, A^(2r), ...`` (``jump_matrix``); the model computes a whole
block of draws at once as the XOR of precomputed basis streams, one per set bit of ``S``
(``Draws``). Both give the same integers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["WIDTH", "MASK", "step", "Matrix", "jump_matrix", "Draws"]

WIDTH = 64
MASK = 0xD800000000000000
_ALL = (1 << WIDTH) - 1


def step(state: int, n: int = 1) -> int:
    """Advance the LFSR ``n`` steps (reference implementation, one step at a time)."""
    for _ in range(n):
        out = state & 1
        state >>= 1
        if out:
            state ^= MASK
    return state


class Matrix:
    """A 64x64 GF(2) matrix stored as its 64 columns (``cols[c] = M e_c`` as an int)."""

    def __init__(self, cols):
        self.cols = tuple(int(c) for c in cols)

    @classmethod
    def identity(cls) -> "Matrix":
        return cls(1 << c for c in range(WIDTH))

    def apply(self, state: int) -> int:
        out, c = 0, 0
        while state:
            if state & 1:
                out ^= self.cols[c]
            state >>= 1
            c += 1
        return out

    def __matmul__(self, other: "Matrix") -> "Matrix":
        return Matrix(self.apply(col) for col in other.cols)

    def __pow__(self, n: int) -> "Matrix":
        result, base = Matrix.identity(), self
        while n:
            if n & 1:
                result = base @ result
            base = base @ base
            n >>= 1
        return result

    def apply_array(self, states: np.ndarray) -> np.ndarray:
        """``M`` applied to every uint64 state of an array."""
        out = np.zeros_like(states)
        for c, col in enumerate(self.cols):
            bit = (states >> np.uint64(c)) & np.uint64(1)
            out ^= bit * np.uint64(col)
        return out

    def rows_for_bit(self, b: int) -> list:
        """State bits whose XOR gives output bit ``b`` (the XOR network the RTL builds)."""
        return [c for c, col in enumerate(self.cols) if (col >> b) & 1]


@lru_cache(maxsize=None)
def jump_matrix(n: int) -> Matrix:
    """The map ``A^n`` (``n`` LFSR steps)."""
    one = Matrix(step(1 << c) for c in range(WIDTH))
    return one ** n


@lru_cache(maxsize=8)
def _basis(bits: int, block: int) -> np.ndarray:
    """``T[c, i] = low_bits(A^(bits (i+1)) e_c)`` for i < block, as uint16 (block = power of 2)."""
    x = np.array(jump_matrix(bits).cols, dtype=np.uint64)[:, None]     # (64, 1): A^bits e_c
    while x.shape[1] < block:
        x = np.concatenate([x, jump_matrix(bits * x.shape[1]).apply_array(x)], axis=1)
    return (x & np.uint64((1 << bits) - 1)).astype(np.uint16)


class Draws:
    """The draw stream of one LFSR: ``take(n)`` returns the next ``n`` draws of ``bits`` bits.

    Parameters
    ----------
    seed : int
        Initial state, 1 .. 2^64 - 1.
    bits : int
        Bits per draw (1..16).
    block : int
        Draws computed per basis XOR (memory: 64 x block x 2 bytes).
    """

    def __init__(self, seed: int, bits: int, block: int = 1 << 14):
        if not 1 <= seed <= _ALL:
            raise ValueError(f"LFSR seed must be in 1..2^64-1, not {seed!r}")
        if not 1 <= bits <= 16:
            raise ValueError(f"draws must have 1..16 bits, not {bits!r}")
        self.state, self.bits, self.block = int(seed), int(bits), int(block)
        self._table = None

    def take(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.uint16)
        done = 0
        while done < n:
            m = min(self.block, n - done)
            if m <= 4:          # a few draws: step directly (the per-sample sign draw)
                for i in range(m):
                    self.state = step(self.state, self.bits)
                    out[done + i] = self.state & ((1 << self.bits) - 1)
            else:
                if self._table is None:
                    self._table = _basis(self.bits, self.block)
                bits_set = [c for c in range(WIDTH) if (self.state >> c) & 1]
                out[done:done + m] = np.bitwise_xor.reduce(self._table[bits_set, :m], axis=0)
                self.state = jump_matrix(self.bits * m).apply(self.state)
            done += m
        return out
