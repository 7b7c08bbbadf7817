"""Rounding, saturation and wrap helpers at their edges (golden_model/fixedpoint.py)."""

from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from golden_model.fixedpoint import (align, clip_unit, code_range, quantise_real, round_shift,
                                     saturate, shift_right_floor, shift_right_half_up, wrap)


@pytest.mark.parametrize("x,n,floor,half_up", [
    (5, 1, 2, 3),      # 2.5: floor 2, tie rounds up to 3
    (-5, 1, -3, -2),   # -2.5: floor -3, tie rounds up to -2
    (-1, 1, -1, 0),    # -0.5 -> 0 (half up)
    (1, 1, 0, 1),      # 0.5 -> 1
    (7, 2, 1, 2),      # 1.75
    (-7, 2, -2, -2),   # -1.75
    (6, 2, 1, 2),      # 1.5 tie
    (-6, 2, -2, -1),   # -1.5 tie
    (9, 0, 9, 9),      # no shift
])
def test_round_shift_edges(x, n, floor, half_up):
    assert shift_right_floor(x, n) == floor == round_shift(x, n, "floor")
    assert shift_right_half_up(x, n) == half_up == round_shift(x, n, "half_up")


@given(st.integers(-2**40, 2**40), st.integers(1, 20))
def test_round_shift_matches_exact_formula(x, n):
    q = Fraction(x, 2**n)
    assert round_shift(x, n, "floor") == math.floor(q)
    assert round_shift(x, n, "half_up") == math.floor(q + Fraction(1, 2))


def test_round_shift_vectorised_and_left_shift():
    arr = np.array([-5, -1, 1, 5], dtype=np.int64)
    assert round_shift(arr, 1, "half_up").tolist() == [-2, 0, 1, 3]
    assert round_shift(arr, -2, "half_up").tolist() == [-20, -4, 4, 20]   # exact left shift
    assert align(3, 2, 5) == 24 and align(24, 5, 2) == 3 and align(13, 3, 1, "floor") == 3


def test_bad_rounding_and_shift():
    with pytest.raises(ValueError, match="rounding must be one of"):
        round_shift(3, 1, "stochastic")
    with pytest.raises(ValueError, match="shift must be >= 0"):
        shift_right_floor(3, -1)


def test_code_range_and_saturate_edges():
    assert code_range(8, True) == (-128, 127)
    assert code_range(8, False) == (0, 255)
    assert code_range(1, True) == (-1, 0)
    arr = np.array([-129, -128, 127, 128])
    assert saturate(arr, -128, 127).tolist() == [-128, -128, 127, 127]
    assert saturate(300, -128, 127) == 127 and saturate(-300, -128, 127) == -128


def test_wrap_edges():
    assert wrap(127 + 1, 8, True) == -128
    assert wrap(-128 - 1, 8, True) == 127
    assert wrap(255 + 1, 8, False) == 0
    assert wrap(np.array([128, -129, 5]), 8, True).tolist() == [-128, 127, 5]


@given(st.integers(-2**30, 2**30), st.integers(2, 24))
def test_wrap_is_modular_and_in_range(x, w):
    y = wrap(x, w, True)
    assert -(2**(w - 1)) <= y < 2**(w - 1) and (x - y) % 2**w == 0


def test_clip_unit_is_inclusive_unit_interval():
    assert clip_unit(np.array([-1, 0, 4096, 4097]), 12).tolist() == [0, 0, 4096, 4096]


def test_quantise_real():
    assert quantise_real(0.5, 3) == 4
    assert quantise_real(-0.0625, 3) == 0          # -0.5 lsb ties up
    assert quantise_real(0.0625, 3, "floor") == 0
    assert quantise_real(np.array([1.0, -1.0]), 4).tolist() == [16, -16]
