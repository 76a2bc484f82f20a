"""Hand-computed checks of the attention-map transforms (AM1, AM2, AdaIN blend).

Attention maps are [batch, heads, queries, tokens].  Every expected value was
worked out by hand from the specification and is written as a literal or as
explicit scalar arithmetic on literals (sigmoids as 1 / (1 + exp(-z)) with z
worked out by hand).  Nothing here calls the implementation to produce an
expected value.

Spec recap:
    AM1   f(A) = min(s * A^p, max_value)                    (max_value = 10)
    norm  (X - min) / (max - min), min/max per token over all batch rows,
          heads and queries together
    soft  q = quantile_p(A) over queries per (row, head, token), on the RAW A,
          linear interpolation, clamped to >= 1e-6
          T = norm(sigmoid(d * (norm(A) - q)))
    AM2   [token 0 -> 1 - A0]; soft mask; T = min(s*T, 10);
          [token 0 -> max_q(T0) - T0, max over queries per row and head]
    AdaIN w*x + (1-w)*((x - mean_x)/(std_x + 1e-6)*std_ref + mean_ref),
          sample std (n - 1), over `dim`
"""

import math

import pytest
import torch
from torch.testing import assert_close

from fastface.method.transforms import adain_blend, am2, scale_power, soft_mask

TOL = dict(rtol=1e-6, atol=1e-6)


def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def t64(nested):
    return torch.tensor(nested, dtype=torch.float64)


# ---------------------------------------------------------------------------
# AM1: scale-power
# ---------------------------------------------------------------------------


def test_scale_power_power_then_scale_then_clamp_default_10():
    # s = 2, p = 2, default max_value = 10
    #   0.5 -> 2 * 0.25 = 0.5     (scale-then-power would give (2*0.5)^2 = 1)
    #   2   -> 2 * 4    = 8
    #   3   -> 2 * 9    = 18 -> clamped to 10
    #   1   -> 2 * 1    = 2
    attn = t64([[[[0.5, 2.0], [3.0, 1.0]]]])  # [1, 1, 2, 2]
    out = scale_power(attn, scale=2.0, power=2.0)
    assert out.shape == attn.shape
    assert_close(out, t64([[[[0.5, 8.0], [10.0, 2.0]]]]), **TOL)


def test_scale_power_custom_max_value():
    # same as above with max_value = 20: 18 is no longer clamped; max_value = 1.5
    # clamps 8, 18 and 2.
    attn = t64([[[[0.5, 2.0], [3.0, 1.0]]]])
    out = scale_power(attn, scale=2.0, power=2.0, max_value=20.0)
    assert_close(out, t64([[[[0.5, 8.0], [18.0, 2.0]]]]), **TOL)
    out = scale_power(attn, scale=2.0, power=2.0, max_value=1.5)
    assert_close(out, t64([[[[0.5, 1.5], [1.5, 1.5]]]]), **TOL)


def test_scale_power_fractional_power():
    # s = 3, p = 0.5
    #   4      -> 3 * 2   = 6
    #   9      -> 3 * 3   = 9
    #   0.25   -> 3 * 0.5 = 1.5
    #   100    -> 3 * 10  = 30 -> 10
    #   0      -> 0
    #   0.0625 -> 3 * 0.25 = 0.75
    attn = t64([[[[4.0, 9.0, 0.25], [100.0, 0.0, 0.0625]]]])  # [1, 1, 2, 3]
    out = scale_power(attn, scale=3.0, power=0.5)
    assert_close(out, t64([[[[6.0, 9.0, 1.5], [10.0, 0.0, 0.75]]]]), **TOL)


def test_scale_power_no_lower_clamp_and_identity():
    # s = 1, p = 1 leaves values below 10 unchanged (no lower clamp, no renormalising)
    attn = t64([[[[0.001, 0.5, 9.5]], [[12.0, 0.0, 1.0]]]])  # [1, 2, 1, 3]
    out = scale_power(attn, scale=1.0, power=1.0)
    assert_close(out, t64([[[[0.001, 0.5, 9.5]], [[10.0, 0.0, 1.0]]]]), **TOL)


# ---------------------------------------------------------------------------
# AM2 step 2: soft mask
# ---------------------------------------------------------------------------
#
# Main case, A of shape [B=2, H=1, Q=3, T=2], steepness d = 8, quantile p = 0.5.
#
# Token 0:  row 0 queries (0.0625, 0.125, 0.3125), row 1 queries (0, 0.25, 0.5)
#   norm over all 6 values: min 0, max 0.5 -> divide by 0.5
#     row 0: (0.125, 0.25, 0.625), row 1: (0, 0.5, 1)
#   q on RAW A (median of 3): row 0 0.125, row 1 0.25
#   z = 8 (norm - q): row 0: (8*0, 8*0.125, 8*0.5) = (0, 1, 4)
#                     row 1: (8*-0.25, 8*0.25, 8*0.75) = (-2, 2, 6)
#   second norm over all 6 sigmoids: min sig(-2), max sig(6)
#     T0(z) = (sig(z) - sig(-2)) / (sig(6) - sig(-2))
#   [a quantile on norm(A) would give q = 0.25 / 0.5 -> z = (-1,0,3) / (-4,0,4);
#    a per-row norm would make row 0 norm = (0, 0.25, 1)]
#
# Token 1:  row 0 queries (0.75, 0.25, 0.5), row 1 queries (1.0, 1.25, 0.25)
#   norm: min 0.25, max 1.25 -> subtract 0.25 (range 1)
#     row 0: (0.5, 0, 0.25), row 1: (0.75, 1, 0)
#   q on RAW A (median): row 0 median{0.25,0.5,0.75} = 0.5,
#                        row 1 median{0.25,1,1.25} = 1.0
#   z = 8 (norm - q): row 0: (8*0, 8*-0.5, 8*-0.25) = (0, -4, -2)
#                     row 1: (8*-0.25, 8*0, 8*-1) = (-2, 0, -8)
#   second norm: min sig(-8), max sig(0)
#     T1(z) = (sig(z) - sig(-8)) / (sig(0) - sig(-8))
#   [quantile on norm(A): q = 0.25 / 0.75; per-row norm: row 0 = (1, 0, 0.5)]

SOFT_A = [  # [2, 1, 3, 2]: each inner pair is (token 0, token 1)
    [[[0.0625, 0.75],
      [0.125, 0.25],
      [0.3125, 0.5]]],
    [[[0.0, 1.0],
      [0.25, 1.25],
      [0.5, 0.25]]],
]
SOFT_Z = [  # the hand-worked z values, same layout
    [[[0.0, 0.0],
      [1.0, -4.0],
      [4.0, -2.0]]],
    [[[-2.0, -2.0],
      [2.0, 0.0],
      [6.0, -8.0]]],
]


def T0(z):
    return (sig(z) - sig(-2.0)) / (sig(6.0) - sig(-2.0))


def T1(z):
    return (sig(z) - sig(-8.0)) / (sig(0.0) - sig(-8.0))


def _soft_expected():
    # [2, 1, 3, 2] with token 0 through T0 and token 1 through T1
    return [
        [[[T0(0.0), T1(0.0)],
          [T0(1.0), T1(-4.0)],
          [T0(4.0), T1(-2.0)]]],
        [[[T0(-2.0), T1(-2.0)],
          [T0(2.0), T1(0.0)],
          [T0(6.0), T1(-8.0)]]],
    ]


def test_soft_mask_expected_values_are_sane():
    # Self-check of the hand values above (pure Python, no implementation):
    # the second norm maps the smallest z of each token to 0 and the largest to 1.
    assert T0(-2.0) == 0.0 and T0(6.0) == 1.0
    assert T1(-8.0) == 0.0 and T1(0.0) == 1.0


def test_soft_mask_quantile_on_raw_and_norm_over_batch_rows():
    attn = t64(SOFT_A)
    out = soft_mask(attn, steepness=8.0, quantile=0.5)
    assert out.shape == attn.shape
    assert_close(out, t64(_soft_expected()), **TOL)


def test_soft_mask_norm_spans_heads():
    # Same numbers with the two groups on the head axis: [B=1, H=2, Q=3, T=2].
    # min/max are still taken over all heads together, the quantile per head.
    attn = t64(SOFT_A).transpose(0, 1).contiguous()
    out = soft_mask(attn, steepness=8.0, quantile=0.5)
    expected = t64(_soft_expected()).transpose(0, 1)
    assert_close(out, expected, **TOL)


def test_soft_mask_norm_spans_batch_and_heads_together():
    # [B=2, H=2, Q=3, T=1]: token 0 of the main case in (row 0, head 0) and
    # (row 1, head 1); the two other (row, head) cells hold copies of the
    # row-0 group, which changes neither the global min/max nor the quantiles.
    g0 = [[0.0625], [0.125], [0.3125]]
    g1 = [[0.0], [0.25], [0.5]]
    attn = t64([[g0, g0], [g0, g1]])
    out = soft_mask(attn, steepness=8.0, quantile=0.5)
    e0 = [[T0(0.0)], [T0(1.0)], [T0(4.0)]]
    e1 = [[T0(-2.0)], [T0(2.0)], [T0(6.0)]]
    assert_close(out, t64([[e0, e0], [e0, e1]]), **TOL)


def test_soft_mask_linear_interpolation_quantile():
    # A over 3 queries: (1.25, 0.25, 0.5) (unsorted), p = 0.6, d = 4
    #   sorted (0.25, 0.5, 1.25), position 0.6 * (3 - 1) = 1.2
    #   q = 0.5 + 0.2 * (1.25 - 0.5) = 0.65
    #   (lower -> 0.5, higher/nearest -> 0.5 or 1.25, midpoint -> 0.875)
    #   norm: min 0.25, range 1 -> (1, 0, 0.25)
    #   z = 4 (norm - 0.65) = (1.4, -2.6, -1.6)
    #   T = (sig(z) - sig(-2.6)) / (sig(1.4) - sig(-2.6)) -> (1, 0, middle)
    attn = t64([[[[1.25], [0.25], [0.5]]]])  # [1, 1, 3, 1]
    out = soft_mask(attn, steepness=4.0, quantile=0.6)
    middle = (sig(-1.6) - sig(-2.6)) / (sig(1.4) - sig(-2.6))
    assert_close(out, t64([[[[1.0], [0.0], [middle]]]]), **TOL)


def test_soft_mask_quantile_clamped_to_1e_minus_6():
    # A over 3 queries: (2, -2, -1), p = 0.5, d = 4
    #   raw median = -1 -> clamped to 1e-6
    #   norm: min -2, max 2, range 4 -> ((2+2)/4, 0, (-1+2)/4) = (1, 0, 0.25)
    #   z = 4 (norm - 1e-6) = (4 - 4e-6, -4e-6, 1 - 4e-6)
    #   T = (sig(z) - sig(-4e-6)) / (sig(4 - 4e-6) - sig(-4e-6)) -> (1, 0, middle)
    #   [without the clamp, z = 4 (norm + 1) = (8, 4, 5) and middle ~ 0.7]
    attn = t64([[[[2.0], [-2.0], [-1.0]]]])
    out = soft_mask(attn, steepness=4.0, quantile=0.5)
    middle = (sig(1.0 - 4e-6) - sig(-4e-6)) / (sig(4.0 - 4e-6) - sig(-4e-6))
    assert_close(out, t64([[[[1.0], [0.0], [middle]]]]), **TOL)


# --- the release's float16 rounding of q (quantile_dtype="float16") --------
#
# A over 5 queries: (0, 0.25, 0.5, 0.8, 1), p = 0.5625, d = 7.5
#   position 0.5625 * (5 - 1) = 2.25 -> q = 0.5 + 0.25 * (0.8 - 0.5) = 0.575
#   float16 steps on [0.5, 1) are 2**-11: 0.575 / 2**-11 = 1177.6 -> 1178 * 2**-11 = 0.5751953125
#   norm: min 0, max 1 -> A itself;  z = 7.5 (A - q);  T = (sig(z) - sig(z_0)) / (sig(z_4) - sig(z_0))
Q16_A = [0.0, 0.25, 0.5, 0.8, 1.0]


def _q16_expected(q):
    s = [sig(7.5 * (a - q)) for a in Q16_A]
    return t64([[[[(v - s[0]) / (s[4] - s[0])] for v in s]]])  # [1, 1, 5, 1]


def test_soft_mask_float16_quantile_is_the_release_rounding():
    attn = t64([[[[a] for a in Q16_A]]])
    q32, q16 = 0.575, 1178 * 2.0 ** -11
    assert q16 == 0.5751953125 and abs(q16 - q32) <= 2.0 ** -12  # within half a float16 step
    default = soft_mask(attn, steepness=7.5, quantile=0.5625)
    rounded = soft_mask(attn, steepness=7.5, quantile=0.5625, quantile_dtype="float16")
    assert_close(default, _q16_expected(q32), **TOL)
    assert_close(rounded, _q16_expected(q16), **TOL)
    # the option moves the mask by a small, visible amount: ~2e-4 here
    diff = (rounded - default).abs().max().item()
    hand = (_q16_expected(q16) - _q16_expected(q32)).abs().max().item()
    assert 1e-4 < diff < 5e-4 and abs(diff - hand) <= 2e-6
    with pytest.raises(ValueError, match="quantile_dtype 'bfloat16'"):
        soft_mask(attn, steepness=7.5, quantile=0.5625, quantile_dtype="bfloat16")


def test_am2_float16_quantile_changes_maps_by_a_bounded_amount():
    # Softmax maps of the real shape class (4 ID tokens), release schedule values d = 7.5, s = 1.55.
    # Bound: |dq| <= 2**-12 (q <= 1) and sigmoid' <= 1/4, so every sigmoid value moves by at most
    # delta = d/4 * 2**-12 = 4.6e-4. T = (x - lo) / (hi - lo) with R = hi - lo: the numerator moves
    # by <= 2 delta, R by <= 2 delta and (x - lo) / R <= 1, so |dT| <= 4 delta / R (first order);
    # R per token = sig(d (1 - min q)) - sig(-d max q) (norm(A) spans [0, 1]); times s.
    g = torch.Generator().manual_seed(3)
    attn = torch.softmax(torch.randn(3, 2, 64, 4, generator=g, dtype=torch.float64) * 2.0, dim=-1)
    kw = dict(steepness=7.5, quantile=0.65, scale=1.55)
    default = am2(attn, **kw)
    rounded = am2(attn, quantile_dtype="float16", **kw)
    assert am2(attn, quantile_dtype="float32", **kw).equal(default)  # the default is float32
    a = attn.clone()
    a[..., 0] = 1.0 - attn[..., 0]  # what the soft mask sees
    q = torch.quantile(a, 0.65, dim=2).clamp_min(1e-6)  # [B, H, T]
    r = torch.sigmoid(7.5 * (1.0 - q.amin(dim=(0, 1)))) - torch.sigmoid(-7.5 * q.amax(dim=(0, 1)))  # [T]
    delta = 7.5 / 4 * 2.0 ** -12
    bound = 4 * delta / r * 1.55  # per token
    diff = (rounded - default).abs().amax(dim=(0, 1, 2))  # per token
    # token 0 is turned back by max_q(T0) - T0 afterwards: two moved values, twice the bound
    assert bool((diff > 0).any()) and bool((diff[1:] <= bound[1:]).all()) and diff[0] <= 2 * bound[0], (diff, bound)
    assert diff.max() < 5e-3  # the order of the ~3.7e-3 reported for the block output


# ---------------------------------------------------------------------------
# AM2: inversion, soft mask, scale
# ---------------------------------------------------------------------------
#
# Input: token 1 as in the soft-mask case; token 0 is 1 - (token 0 of SOFT_A):
#   row 0: 1 - (0.0625, 0.125, 0.3125) = (0.9375, 0.875, 0.6875)
#   row 1: 1 - (0, 0.25, 0.5)          = (1.0, 0.75, 0.5)
# so after the first inversion token 0 is exactly SOFT_A's token 0, and the
# soft mask gives T0(z) with z = (0, 1, 4) / (-2, 2, 6) as worked out above.

AM2_A = [
    [[[0.9375, 0.75],
      [0.875, 0.25],
      [0.6875, 0.5]]],
    [[[1.0, 1.0],
      [0.75, 1.25],
      [0.5, 0.25]]],
]


def test_am2_first_token_inversion_before_and_after():
    # s = 2 (T <= 1, so 2T <= 2: no clamp in play)
    # Token 0 after soft mask and scale: 2*T0(z).
    # Final inversion, max over queries per (row, head):
    #   row 0 max = 2*T0(4)                -> (2*(T0(4)-T0(0)), 2*(T0(4)-T0(1)), 0)
    #   row 1 max = 2*T0(6) = 2            -> (2 - 2*T0(-2) = 2, 2 - 2*T0(2), 0)
    #   [a max over the whole tensor would use 2 for row 0 too]
    # Token 1 (not inverted): 2*T1(z).
    attn = t64(AM2_A)
    out = am2(attn, steepness=8.0, quantile=0.5, scale=2.0, invert_first_token=True)
    expected = [
        [[[2.0 * (T0(4.0) - T0(0.0)), 2.0 * T1(0.0)],
          [2.0 * (T0(4.0) - T0(1.0)), 2.0 * T1(-4.0)],
          [0.0, 2.0 * T1(-2.0)]]],
        [[[2.0 - 2.0 * T0(-2.0), 2.0 * T1(-2.0)],
          [2.0 - 2.0 * T0(2.0), 2.0 * T1(0.0)],
          [0.0, 2.0 * T1(-8.0)]]],
    ]
    assert out.shape == attn.shape
    assert_close(out, t64(expected), **TOL)


def test_am2_final_inversion_max_is_per_head():
    # Same numbers with the two groups on the head axis: [1, 2, 3, 2].
    attn = t64(AM2_A).transpose(0, 1).contiguous()
    out = am2(attn, steepness=8.0, quantile=0.5, scale=2.0, invert_first_token=True)
    expected = [
        [[[2.0 * (T0(4.0) - T0(0.0)), 2.0 * T1(0.0)],
          [2.0 * (T0(4.0) - T0(1.0)), 2.0 * T1(-4.0)],
          [0.0, 2.0 * T1(-2.0)]]],
        [[[2.0 - 2.0 * T0(-2.0), 2.0 * T1(-2.0)],
          [2.0 - 2.0 * T0(2.0), 2.0 * T1(0.0)],
          [0.0, 2.0 * T1(-8.0)]]],
    ]
    assert_close(out, t64(expected).transpose(0, 1), **TOL)


def test_am2_without_inversion_is_scaled_soft_mask():
    # invert_first_token=False, s = 3: 3 * soft_mask(SOFT_A) (3T <= 3, no clamp)
    attn = t64(SOFT_A)
    out = am2(attn, steepness=8.0, quantile=0.5, scale=3.0, invert_first_token=False)
    expected = [[[[3.0 * v for v in q] for q in h] for h in b] for b in _soft_expected()]
    assert_close(out, t64(expected), **TOL)


def test_am2_scale_clamped_at_10():
    # invert_first_token=False, s = 20: min(20 * T, 10).
    # Approximate values (for the reader): T0(0) = (0.5-0.1192)/0.8783 = 0.434 -> 8.67
    # (not clamped); T0(1), T0(2), T0(4), T0(6) > 0.5 -> 10; T0(-2) = 0 -> 0;
    # T1(0) = 1 -> 10; T1(-4) = 0.0353 -> 0.707; T1(-2) = 0.238 -> 4.76; T1(-8) = 0.
    attn = t64(SOFT_A)
    out = am2(attn, steepness=8.0, quantile=0.5, scale=20.0, invert_first_token=False)
    expected = [
        [[[min(20.0 * T0(0.0), 10.0), 10.0],
          [10.0, min(20.0 * T1(-4.0), 10.0)],
          [10.0, min(20.0 * T1(-2.0), 10.0)]]],
        [[[0.0, min(20.0 * T1(-2.0), 10.0)],
          [10.0, 10.0],
          [10.0, 0.0]]],
    ]
    # the unclamped ones really are below 10 and the clamped ones above
    assert 20.0 * T0(0.0) < 10.0 and 20.0 * T1(-2.0) < 10.0
    assert 20.0 * T0(1.0) > 10.0 and 20.0 * T1(0.0) > 10.0
    assert_close(out, t64(expected), **TOL)


def test_am2_default_inverts_first_token():
    attn = t64(AM2_A)
    out_default = am2(attn, steepness=8.0, quantile=0.5, scale=2.0)
    # token 0, row 0, last query: the query holding the row maximum -> 0 after
    # the final inversion; row 1 first query: 2 - 2*T0(-2) = 2
    assert_close(out_default[0, 0, 2, 0].item(), 0.0, **TOL)
    assert_close(out_default[1, 0, 0, 0].item(), 2.0, **TOL)
    assert_close(out_default[0, 0, 0, 0].item(), 2.0 * (T0(4.0) - T0(0.0)), **TOL)


# ---------------------------------------------------------------------------
# AdaIN blend
# ---------------------------------------------------------------------------
#
# Rows over the last axis (3 tokens), sample std:
#   x (1, 2, 3):    mean 2, deviations (-1, 0, 1), sum sq 2, var 2/2 = 1, std 1
#   x (4, 0, 2):    mean 2, deviations (2, -2, 0), sum sq 8, var 4, std 2
#   ref (2, 4, 6):  mean 4, std 2
#   ref (0, 3, 6):  mean 3, std 3

ADAIN_X = [[[[1.0, 2.0, 3.0], [4.0, 0.0, 2.0]]]]  # [1, 1, 2, 3]
ADAIN_REF = [[[[2.0, 4.0, 6.0], [0.0, 3.0, 6.0]]]]


def _adain_rows():
    # pure AdaIN, row by row:
    #   row 0: (x - 2)/(1 + 1e-6)*2 + 4 = (4 - 2/(1+1e-6), 4, 4 + 2/(1+1e-6))
    #   row 1: (x - 2)/(2 + 1e-6)*3 + 3 = (3 + 6/(2+1e-6), 3 - 6/(2+1e-6), 3)
    r0 = [4.0 - 2.0 / (1.0 + 1e-6), 4.0, 4.0 + 2.0 / (1.0 + 1e-6)]
    r1 = [3.0 + 6.0 / (2.0 + 1e-6), 3.0 - 6.0 / (2.0 + 1e-6), 3.0]
    return r0, r1


def test_adain_blend_weight_one_returns_x():
    x = t64(ADAIN_X)
    out = adain_blend(x, t64(ADAIN_REF), weight=1.0, dim=-1)
    assert_close(out, x, **TOL)


def test_adain_blend_weight_zero_is_pure_adain_per_row():
    out = adain_blend(t64(ADAIN_X), t64(ADAIN_REF), weight=0.0, dim=-1)
    r0, r1 = _adain_rows()
    assert out.shape == (1, 1, 2, 3)
    assert_close(out, t64([[[r0, r1]]]), **TOL)


def test_adain_blend_partial_weight():
    # w = 0.25: 0.25 * x + 0.75 * adain
    out = adain_blend(t64(ADAIN_X), t64(ADAIN_REF), weight=0.25, dim=-1)
    r0, r1 = _adain_rows()
    x0, x1 = ADAIN_X[0][0]
    e0 = [0.25 * x0[i] + 0.75 * r0[i] for i in range(3)]
    e1 = [0.25 * x1[i] + 0.75 * r1[i] for i in range(3)]
    # e.g. e0[0] = 0.25*1 + 0.75*(4 - 2/(1+1e-6)) ~= 0.25 + 1.5 = 1.75
    assert_close(out, t64([[[e0, e1]]]), **TOL)


def test_adain_blend_uses_sample_std():
    # x = (-1e-6, 0, 1e-6): mean 0, sample var (1e-12 + 1e-12)/2 = 1e-12, std 1e-6
    #   (x - 0)/(1e-6 + 1e-6) = (-0.5, 0, 0.5)
    # ref = (1, 3, 5): mean 3, sample std sqrt((4 + 0 + 4)/2) = 2
    #   -> (-0.5*2 + 3, 3, 0.5*2 + 3) = (2, 3, 4)
    # With the population std (n): std_x = 1e-6*sqrt(2/3), std_ref = 2*sqrt(2/3)
    #   -> 3 -/+ 1e-6/(1e-6*0.8165 + 1e-6) * 1.633 = (2.101, 3, 3.899): different.
    x = t64([[[[-1e-6, 0.0, 1e-6]]]])
    ref = t64([[[[1.0, 3.0, 5.0]]]])
    out = adain_blend(x, ref, weight=0.0, dim=-1)
    assert_close(out, t64([[[[2.0, 3.0, 4.0]]]]), **TOL)


@pytest.mark.parametrize("dim", [-2, 2])
def test_adain_blend_respects_dim(dim):
    # The same rows laid out along the query axis: [1, 1, 3, 2], stats over dim -2.
    x = t64(ADAIN_X).transpose(-1, -2).contiguous()
    ref = t64(ADAIN_REF).transpose(-1, -2).contiguous()
    out = adain_blend(x, ref, weight=0.0, dim=dim)
    r0, r1 = _adain_rows()
    assert_close(out, t64([[[r0, r1]]]).transpose(-1, -2), **TOL)
