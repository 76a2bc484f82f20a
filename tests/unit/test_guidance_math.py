"""Hand-computed checks of decoupled classifier-free guidance (DCG).

Every expected value below was worked out by hand from the specification
(small integers / simple fractions) and is written as a literal, with the
arithmetic shown in a comment.  Nothing here calls the implementation to
produce an expected value.

Spec recap (three branches stacked along the batch axis: all rows of
branch 0, then branch 1, then branch 2):

    DCG_1 / DCG_2:  e0 + a(e1 - e0) + b(e2 - e1)
    DCG_3:          e0 + a(e1 - e0) + b(e2 - e0)

    rescale phi > 0 (per sample, sample std over all of C, H, W):
        f = (std(e1) + std(e2)) / (2 * std(pred))
        f = phi * f + (1 - phi)
        pred = pred * f
"""

import pytest
import torch
from torch.testing import assert_close

from fastface.method.guidance import combine

TOL = dict(rtol=1e-10, atol=1e-10)


def _const(value, shape=(1, 2, 2)):
    """A [C, H, W] map filled with one number (float64)."""
    return torch.full(shape, float(value), dtype=torch.float64)


def _stack(*rows):
    """Stack [C, H, W] maps along a new batch axis, in the given order."""
    return torch.stack(rows, dim=0)


def _chw(v0, v1, v2, v3):
    """Four numbers as a [C=2, H=1, W=2] map: channel 0 = (v0, v1), channel 1 = (v2, v3)."""
    return torch.tensor([[[v0, v1]], [[v2, v3]]], dtype=torch.float64)


# ---------------------------------------------------------------------------
# Coefficients of each variant (n = 1, spatially varying values)
# ---------------------------------------------------------------------------

# e0, e1, e2 as [1, 2, 2] maps; a = 2, b = 3.
E0 = [[[1.0, 2.0], [3.0, 4.0]]]
E1 = [[[2.0, 0.0], [5.0, 1.0]]]
E2 = [[[0.0, 3.0], [1.0, 6.0]]]

# DCG_1 / DCG_2: e0 + 2(e1 - e0) + 3(e2 - e1)
#   [0,0]: 1 + 2*(2-1) + 3*(0-2) = 1 + 2 - 6  = -3
#   [0,1]: 2 + 2*(0-2) + 3*(3-0) = 2 - 4 + 9  =  7
#   [1,0]: 3 + 2*(5-3) + 3*(1-5) = 3 + 4 - 12 = -5
#   [1,1]: 4 + 2*(1-4) + 3*(6-1) = 4 - 6 + 15 = 13
EXPECTED_DCG12 = [[[[-3.0, 7.0], [-5.0, 13.0]]]]
# DCG_3: e0 + 2(e1 - e0) + 3(e2 - e0)
#   [0,0]: 1 + 2*(2-1) + 3*(0-1) = 1 + 2 - 3 = 0
#   [0,1]: 2 + 2*(0-2) + 3*(3-2) = 2 - 4 + 3 = 1
#   [1,0]: 3 + 2*(5-3) + 3*(1-3) = 3 + 4 - 6 = 1
#   [1,1]: 4 + 2*(1-4) + 3*(6-4) = 4 - 6 + 6 = 4
EXPECTED_DCG3 = [[[[0.0, 1.0], [1.0, 4.0]]]]


def _coeff_input():
    return torch.tensor([E0, E1, E2], dtype=torch.float64)  # [3, 1, 2, 2]


@pytest.mark.parametrize(
    "variant, expected",
    [(1, EXPECTED_DCG12), (2, EXPECTED_DCG12), (3, EXPECTED_DCG3)],
)
def test_combine_variant_coefficients(variant, expected):
    out = combine(_coeff_input(), 2.0, 3.0, variant=variant)
    assert out.shape == (1, 1, 2, 2)
    assert_close(out, torch.tensor(expected, dtype=torch.float64), **TOL)


def test_combine_default_variant_is_dcg2():
    # Without `variant`, the paper default DCG_2 is used (same numbers as above).
    out = combine(_coeff_input(), 2.0, 3.0)
    assert_close(out, torch.tensor(EXPECTED_DCG12, dtype=torch.float64), **TOL)


def test_combine_constants_distinguish_alpha_beta_and_variant():
    # e0 = 1, e1 = 3, e2 = 7 everywhere; a = 2, b = 5.
    #   DCG_2: 1 + 2*(3-1) + 5*(7-3) = 1 + 4 + 20 = 25
    #   DCG_3: 1 + 2*(3-1) + 5*(7-1) = 1 + 4 + 30 = 35
    #   (a and b swapped would give 1 + 5*2 + 2*4 = 19 for DCG_2)
    x = _stack(_const(1), _const(3), _const(7))
    assert_close(combine(x, 2.0, 5.0, variant=2), _const(25).unsqueeze(0), **TOL)
    assert_close(combine(x, 2.0, 5.0, variant=3), _const(35).unsqueeze(0), **TOL)
    # a = b = 0 -> e0 for every variant
    for variant in (1, 2, 3):
        assert_close(combine(x, 0.0, 0.0, variant=variant), _const(1).unsqueeze(0), **TOL)
    # a = 0, b = 1: DCG_1/2 -> e0 + e2 - e1 = 1 + 7 - 3 = 5; DCG_3 -> e0 + e2 - e0 = 7
    assert_close(combine(x, 0.0, 1.0, variant=1), _const(5).unsqueeze(0), **TOL)
    assert_close(combine(x, 0.0, 1.0, variant=3), _const(7).unsqueeze(0), **TOL)
    # a = 1, b = 0 -> e1 = 3 for every variant
    for variant in (1, 2, 3):
        assert_close(combine(x, 1.0, 0.0, variant=variant), _const(3).unsqueeze(0), **TOL)


# ---------------------------------------------------------------------------
# Batch layout: n = 2 rows per branch, branch-major
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant, expected_rows",
    [
        # DCG_2, a = 2, b = 3:
        #   row 0: 1 + 2*(3-1) + 3*(7-3)  = 1 + 4 + 12 = 17
        #   row 1: 2 + 2*(5-2) + 3*(11-5) = 2 + 6 + 18 = 26
        (2, (17.0, 26.0)),
        # DCG_3, a = 2, b = 3:
        #   row 0: 1 + 2*(3-1) + 3*(7-1)  = 1 + 4 + 18 = 23
        #   row 1: 2 + 2*(5-2) + 3*(11-2) = 2 + 6 + 27 = 35
        (3, (23.0, 35.0)),
    ],
)
def test_combine_two_rows_per_branch_layout(variant, expected_rows):
    # Batch order: [b0 r0, b0 r1, b1 r0, b1 r1, b2 r0, b2 r1]
    #   branch 0: r0 = 1, r1 = 2; branch 1: r0 = 3, r1 = 5; branch 2: r0 = 7, r1 = 11
    # (reading it row-major, i.e. [r0 b0, r0 b1, r0 b2, r1 b0, ...], gives other numbers)
    x = _stack(_const(1), _const(2), _const(3), _const(5), _const(7), _const(11))
    out = combine(x, 2.0, 3.0, variant=variant)
    assert out.shape == (2, 1, 2, 2)
    expected = _stack(_const(expected_rows[0]), _const(expected_rows[1]))
    assert_close(out, expected, **TOL)


# ---------------------------------------------------------------------------
# a = b = 1, no rescale: DCG_2 returns e2 bit for bit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_combine_dcg2_unit_weights_is_bit_identical_to_e2(dtype):
    g = torch.Generator().manual_seed(1234)
    n = 2
    x = (torch.randn(3 * n, 4, 8, 8, generator=g, dtype=torch.float64) * 3.0).to(dtype)
    e2 = x[2 * n :].clone()
    # Sanity check of the test itself: plain float arithmetic
    # e0 + (e1 - e0) + (e2 - e1) is NOT exact for these numbers, so an exact
    # result needs the a = b = 1 case to be handled on purpose.
    naive = x[:n] + (x[n : 2 * n] - x[:n]) + (x[2 * n :] - x[n : 2 * n])
    assert not torch.equal(naive, e2)
    out = combine(x, 1.0, 1.0, variant=2, rescale=0.0)
    assert out.dtype == dtype
    assert torch.equal(out, e2)
    out_default = combine(x, 1.0, 1.0)
    assert torch.equal(out_default, e2)


# ---------------------------------------------------------------------------
# Rescale (per sample, sample std over all of C, H, W)
# ---------------------------------------------------------------------------
#
# Maps are [C=2, H=1, W=2], written as 4 numbers (ch0: v0 v1 | ch1: v2 v3).
# Useful stds (sample std, n - 1 = 3):
#   [0,0,0,2]: mean 1/2, deviations (-1/2,-1/2,-1/2,3/2), sum sq 3/4+9/4 = 3, var 1, std 1
#   [2,0,0,0], [0,2,0,0]: same, std 1
#   [0,0,0,4]: twice the first, std 2
#   [6,0,0,4]: mean 5/2, deviations (7/2,-5/2,-5/2,3/2),
#              sum sq (49+25+25+9)/4 = 27, var 9, std 3
#   [0,6,0,4]: same numbers permuted, std 3
#
# DCG_1/2 with a = 2, b = 3: pred = e0 + 2(e1-e0) + 3(e2-e1) = -e0 - e1 + 3 e2
#
# Row 0: e0 = [0,0,0,-6] (std 3), e1 = [0,0,0,2] (std 1), e2 = [2,0,0,0] (std 1)
#   pred = [0+0+6, 0, 0, 6-2+0] = [6,0,0,4], std 3
#   f_raw = (1 + 1) / (2*3) = 1/3
# Row 1: e0 = [0,0,0,-8] (std 4), e1 = [0,0,0,4] (std 2), e2 = [0,2,0,0] (std 1)
#   pred = [0, 6, 0, 8-4+0] = [0,6,0,4], std 3
#   f_raw = (2 + 1) / (2*3) = 1/2
# (e0 has a different std from e1 and e2, so using the wrong branches shows;
#  per-channel stds would give 0/0 or x/0; a std over the whole batch would mix rows.)

ROW0 = dict(e0=(0, 0, 0, -6), e1=(0, 0, 0, 2), e2=(2, 0, 0, 0))
ROW1 = dict(e0=(0, 0, 0, -8), e1=(0, 0, 0, 4), e2=(0, 2, 0, 0))


def _rescale_input():
    return _stack(
        _chw(*ROW0["e0"]), _chw(*ROW1["e0"]),
        _chw(*ROW0["e1"]), _chw(*ROW1["e1"]),
        _chw(*ROW0["e2"]), _chw(*ROW1["e2"]),
    )  # [6, 2, 1, 2]


@pytest.mark.parametrize("variant", [1, 2])
def test_combine_rescale_off_when_zero(variant):
    out = combine(_rescale_input(), 2.0, 3.0, variant=variant, rescale=0.0)
    expected = _stack(_chw(6, 0, 0, 4), _chw(0, 6, 0, 4))
    assert_close(out, expected, **TOL)


@pytest.mark.parametrize("variant", [1, 2])
@pytest.mark.parametrize(
    "phi, row0, row1",
    [
        # phi = 0.75: row 0 f = 0.75*(1/3) + 0.25 = 0.5   -> [3, 0, 0, 2]
        #             row 1 f = 0.75*(1/2) + 0.25 = 0.625 -> [0, 3.75, 0, 2.5]
        (0.75, (3.0, 0.0, 0.0, 2.0), (0.0, 3.75, 0.0, 2.5)),
        # phi = 0.5:  row 0 f = 0.5*(1/3) + 0.5 = 2/3 -> [4, 0, 0, 8/3]
        #             row 1 f = 0.5*(1/2) + 0.5 = 3/4 -> [0, 4.5, 0, 3]
        (0.5, (4.0, 0.0, 0.0, 8.0 / 3.0), (0.0, 4.5, 0.0, 3.0)),
        # phi = 1:    row 0 f = 1/3 -> [2, 0, 0, 4/3]
        #             row 1 f = 1/2 -> [0, 3, 0, 2]
        (1.0, (2.0, 0.0, 0.0, 4.0 / 3.0), (0.0, 3.0, 0.0, 2.0)),
    ],
)
def test_combine_rescale_per_sample_over_chw(variant, phi, row0, row1):
    out = combine(_rescale_input(), 2.0, 3.0, variant=variant, rescale=phi)
    assert out.shape == (2, 2, 1, 2)
    expected = _stack(_chw(*row0), _chw(*row1))
    assert_close(out, expected, **TOL)


def test_combine_rescale_variant3_uses_branches_1_and_2():
    # DCG_3, a = 2, b = 3: pred = e0 + 2(e1-e0) + 3(e2-e0) = -4 e0 + 2 e1 + 3 e2
    # e0 = [0,0,0,1] (std 1/2), e1 = [0,0,0,2] (std 1), e2 = [2,0,0,0] (std 1)
    #   pred = [0+0+6, 0, 0, -4+4+0] = [6,0,0,0]
    #   std(pred): mean 3/2, deviations (9/2,-3/2,-3/2,-3/2), sum sq (81+27)/4 = 27,
    #              var 9, std 3
    #   f_raw = (std(e1) + std(e2)) / (2*3) = 2/6 = 1/3
    #   phi = 0.75: f = 0.25 + 0.25 = 0.5 -> [3, 0, 0, 0]
    x = _stack(_chw(0, 0, 0, 1), _chw(0, 0, 0, 2), _chw(2, 0, 0, 0))
    out_off = combine(x, 2.0, 3.0, variant=3, rescale=0.0)
    assert_close(out_off, _stack(_chw(6, 0, 0, 0)), **TOL)
    out = combine(x, 2.0, 3.0, variant=3, rescale=0.75)
    assert_close(out, _stack(_chw(3, 0, 0, 0)), **TOL)
