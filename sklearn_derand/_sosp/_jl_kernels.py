"""Compiled kernels (numba) for the direct JL objective on the CPU.

The objective of :mod:`sklearn_derand._sosp.jl` ("direct") over the images
``P`` (n x k) of n points is

    L(P) = (mean_pairs delta^p)^(1/p) + alpha * mean_pairs delta^2,
    delta_ij = ||P_i - P_j||^2 * inv_ij - 1,

over the active pairs (``inv_ij > 0``; ``inv`` is symmetric with a zero
diagonal), p a power of two. In torch each of its n x n passes (Gram matrix,
distortions, powers, weights, their transpose) reads and writes a whole
n x n array; with n = 1000 and k = 10 one value and gradient cost about
15 ms. These kernels make one pass per quantity, computing ``||P_i - P_j||^2``
from the k coordinates (no Gram matrix, no cancellation) and keeping
everything else in registers. Rows are independent (``prange``): the value
alone pairs row t with row n - 1 - t so each task scans n - 1 pairs of the
upper triangle; the value with the gradient takes each pair once too, in
tiles of four rows by ``_BLOCK`` columns whose column sums go to a fixed
number of per-chunk accumulators (or, for large k * n, scans whole rows);
the Hessian-vector product scans whole rows, in blocks of ``_BLOCK``
columns. Per-row and per-chunk results are combined in index order, so a
result does not depend on the number of threads.

The power mean is evaluated as ``top * (mean (delta / top)^p)^(1/p)`` by
repeated squaring, with ``top`` the largest |delta| or any positive scale
near it (the value and its derivatives do not depend on it; it keeps the
powers in floating-point range). Its derivatives, with
``z = delta / top``, ``m = mean z^p`` and N active pairs:

    dL/d delta_a = m^(1/p - 1) z_a^(p-1) / N + 2 alpha delta_a / N,
    d2L/d delta_a d delta_b = [a = b] (h_a) + c z_a^(p-1) z_b^(p-1),
    h_a = (p - 1) m^(1/p - 1) z_a^(p-2) / (N top) + 2 alpha / N,
    c = (1 - p) m^(1/p - 2) / (N^2 top),

and ``d delta_ij = 2 inv_ij (P_i - P_j).(V_i - V_j)``, ``d2 delta_ij[V, V]
= 2 inv_ij ||V_i - V_j||^2``, so the gradient is ``g_i = 2 sum_j w_ij (P_i -
P_j)`` with ``w = dL/d delta * inv`` and the Hessian-vector product is
``2 sum_j inv_ij [dL/d delta_ij (V_i - V_j) + f_ij (P_i - P_j)]`` with ``f =
H_delta (J V)``.
"""

import threading

import numba
import numpy as np
from numba import njit, prange

# Reassociation lets the sums over a row vectorise; no NaN/inf assumptions.
_FAST = {"reassoc", "contract"}


@njit(cache=True)
def _ordered_sum(x):
    """Sum in index order. Inside a parallel kernel ``x.sum()`` becomes a
    parallel reduction whose rounding depends on the number of threads."""
    total = 0.0
    for v in x:
        total += v
    return total


@njit(cache=True)
def _ordered_max(x):
    top = -np.inf
    for v in x:
        top = max(top, v)
    return top


# Repeated squaring sets powers below this to 0 (2^-511, the square root of
# the smallest normal double) instead of letting them go subnormal: a
# subnormal product costs the CPU about 100 normal ones. At p = 128 the
# pairs with |delta| below max / 256 go there; near a fitted projection in
# sklearn's sparse setting the whole-row fused pass took 3.0 ms without the
# floor and 2.5-2.7 ms with it, the same bits (their terms are far below
# the sums' rounding). The test costs a few % where nothing goes subnormal,
# so it is made from p = 2^_FLOOR_FROM on (at p = 32 only |delta| under
# about 3e-10 times the max would go subnormal).
_FLOOR = 2.0**-511
_FLOOR_FROM = 6

# Passes work on blocks (tiles) of this many columns: the block's buffers
# and its slice of the images stay in L1 across the k + log2(p) sweeps
# (whole-row fused pass: 2.5 against 2.8 ms for 1000 points and k = 10 at
# p = 128).
_BLOCK = 128


@njit(cache=True, fastmath=_FAST)
def _row_deltas(Pt, inv, i, lo, hi, out):
    """``out[j - lo] = delta_ij`` for j in [lo, hi) (0 for inactive pairs).

    Loops here run from 0 over views starting at ``lo``: numba vectorises
    those, not ``range(lo, hi)`` (3.5 ms against 1.0 ms for the distances
    of the 499,500 pairs of 1000 points).
    """
    k = Pt.shape[0]
    m = hi - lo
    o, w = out[:m], inv[i, lo:hi]
    for j in range(m):
        o[j] = 0.0
    for c in range(k):
        pic, row = Pt[c, i], Pt[c, lo:hi]
        for j in range(m):
            d = pic - row[j]
            o[j] += d * d
    for j in range(m):
        o[j] = o[j] * w[j] - (1.0 if w[j] > 0.0 else 0.0)


@njit(cache=True, fastmath=_FAST)
def _row_dots(Pt, Vt, i, lo, hi, out):
    """``out[j - lo] = (P_i - P_j).(V_i - V_j)`` for j in [lo, hi)."""
    k = Pt.shape[0]
    m = hi - lo
    o = out[:m]
    for j in range(m):
        o[j] = 0.0
    for c in range(k):
        pic, vic, prow, vrow = Pt[c, i], Vt[c, i], Pt[c, lo:hi], Vt[c, lo:hi]
        for j in range(m):
            o[j] += (pic - prow[j]) * (vic - vrow[j])


@njit(cache=True, fastmath=_FAST)
def _block_deltas(Pt, inv, i, lo, m, scale, log2p, delta, sq, zp2):
    """``delta[j] = delta_i,lo+j`` and ``zp2[j] = z^(p-2)`` (``z = delta *
    scale``) for the m columns of a block from ``lo`` (``sq`` is scratch).
    The powers come by repeated squaring, one pass per squaring (which
    vectorises; a per-element loop does not), with :data:`_FLOOR`; callers
    form ``z^(p-1) = z * z^(p-2)`` in their own loop."""
    k = Pt.shape[0]
    d, u, v, w = delta[:m], sq[:m], zp2[:m], inv[i, lo : lo + m]
    for j in range(m):
        d[j] = 0.0
    for c in range(k):
        pic, row = Pt[c, i], Pt[c, lo : lo + m]
        for j in range(m):
            t = pic - row[j]
            d[j] += t * t
    for j in range(m):
        d[j] = d[j] * w[j] - (1.0 if w[j] > 0.0 else 0.0)
        z = d[j] * scale
        u[j] = z * z
        v[j] = 1.0
    for _ in range(log2p - 1):
        if log2p < _FLOOR_FROM:
            for j in range(m):
                v[j] *= u[j]
                u[j] *= u[j]
        else:
            for j in range(m):
                uu = u[j] if u[j] > _FLOOR else 0.0
                vv = v[j] if v[j] > _FLOOR else 0.0
                v[j] = vv * uu
                u[j] = uu * uu


@njit(cache=True, fastmath=_FAST)
def _upper_row_stats(Pt, inv, i, log2p, buf, tops, pws, sqs):
    """Over pairs (i, j > i): max |delta|, sum (delta / max)^p and sum
    delta^2, written to ``tops[i]``, ``pws[i]``, ``sqs[i]``."""
    n = Pt.shape[1]
    _row_deltas(Pt, inv, i, i + 1, n, buf)
    m = n - i - 1
    b = buf[:m]
    top = 0.0
    sq = 0.0
    for j in range(m):
        sq += b[j] * b[j]
        top = max(top, abs(b[j]))
    pw = 0.0
    if top > 0.0:
        scale = 1.0 / top
        for j in range(m):
            b[j] *= scale
        for _ in range(log2p):
            if log2p < _FLOOR_FROM:
                for j in range(m):
                    b[j] *= b[j]
            else:
                for j in range(m):
                    b[j] = b[j] * b[j] if abs(b[j]) > _FLOOR else 0.0
        for j in range(m):
            pw += b[j]
    tops[i], pws[i], sqs[i] = top, pw, sq


def _direct_value(Pt, inv, log2p):
    """``(top, power_sum, square_sum)`` over the pairs i < j: the largest
    |delta|, the sum of (delta / top)^p and the sum of delta^2.

    ``Pt`` is (k, n) C-contiguous: the transposed images.
    """
    n = Pt.shape[1]
    tops = np.zeros(n)
    pws = np.zeros(n)
    sqs = np.zeros(n)
    for t_ in prange((n + 1) // 2):
        t = np.int64(t_)  # int64 helpers: one signature each
        buf = np.empty(n)
        _upper_row_stats(Pt, inv, t, log2p, buf, tops, pws, sqs)
        if n - 1 - t != t:
            _upper_row_stats(Pt, inv, n - 1 - t, log2p, buf, tops, pws, sqs)
    top = _ordered_max(tops)
    power_sum = 0.0
    for i in range(n):
        if tops[i] > 0.0:
            ratio = tops[i] / top
            for _ in range(log2p):
                ratio *= ratio
            power_sum += pws[i] * ratio
    return top, power_sum, _ordered_sum(sqs)


@njit(cache=True, fastmath=_FAST, inline="always")
def _accumulate(a, At, b, Bt, lo, m, acc_a, acc_b):
    """``acc_a[c] += sum_j a[j] At[c, lo + j]``, and the same for b and Bt,
    over the first m entries of a block: the rows' weighted sums."""
    for c in range(At.shape[0]):
        arow, brow = At[c, lo : lo + m], Bt[c, lo : lo + m]
        sa = 0.0
        sb = 0.0
        for j in range(m):
            sa += a[j] * arow[j]
            sb += b[j] * brow[j]
        acc_a[c] += sa
        acc_b[c] += sb


def _direct_value_and_parts(Pt, inv, log2p, scale_ref):
    """Value statistics and the two gradient parts in one pass over whole
    rows, with a reference scale ``scale_ref`` in place of the max |delta|
    (the power mean does not depend on it; it only keeps the powers in
    range).

    Returns ``(top, power_sum, square_sum, G1, G2)``: the max |delta|, the
    sums over pairs i < j of ``(delta / scale_ref)^p`` and delta^2, and
    ``G1_i = sum_j z_ij^(p-1) inv_ij (P_i - P_j)``, ``G2_i = sum_j delta_ij
    inv_ij (P_i - P_j)`` (n x k each), so that the gradient is ``2
    (coef_power G1 + coef_square G2)``.
    """
    k, n = Pt.shape
    G1 = np.empty((n, k))
    G2 = np.empty((n, k))
    tops = np.zeros(n)
    pws = np.zeros(n)
    sqs = np.zeros(n)
    scale = 1.0 / scale_ref
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        delta = np.empty(_BLOCK)
        zp1 = np.empty(_BLOCK)
        zp2 = np.empty(_BLOCK)
        acc1 = np.zeros(k)
        acc2 = np.zeros(k)
        top = 0.0
        pw = 0.0
        sq = 0.0
        sum1 = 0.0
        sum2 = 0.0
        for lo in range(0, n, _BLOCK):
            m = min(_BLOCK, n - lo)
            _block_deltas(Pt, inv, i, lo, m, scale, log2p, delta, zp1, zp2)
            w = inv[i, lo : lo + m]
            for j in range(m):
                d = delta[j]
                u = d * scale * zp2[j]  # z^(p-1)
                top = max(top, abs(d))
                pw += u * d
                sq += d * d
                zp1[j] = u * w[j]
                zp2[j] = d * w[j]
                sum1 += zp1[j]
                sum2 += zp2[j]
            _accumulate(zp1, Pt, zp2, Pt, lo, m, acc1, acc2)
        tops[i], pws[i], sqs[i] = top, pw * scale, sq
        for c in range(k):
            G1[i, c] = sum1 * Pt[c, i] - acc1[c]
            G2[i, c] = sum2 * Pt[c, i] - acc2[c]
    # Whole rows see every pair twice.
    return _ordered_max(tops), 0.5 * _ordered_sum(pws), 0.5 * _ordered_sum(sqs), G1, G2


# The tiled passes (:func:`_direct_value_and_parts_tiled`,
# :func:`_direct_hvp_tiled`) take rows in groups of this many (the code is
# written out for 4): each pair i < j is computed once, its weights added to
# the group's row sums in registers and to column j's sums in a per-chunk
# accumulator, four rows per load and store. Against the whole-row passes,
# which compute each pair twice, at p = 128 on this project's 2-core
# machine: the fused pass in 0.70 of the time for 1000 points and k = 10
# (1.75 against 2.5 ms), 0.67 at k = 32, 0.80 at k = 64, 0.92 at k = 96;
# 0.71-0.84 for 300 points up to k = 128.
_GROUP = 4
# Tiled while the chunks' accumulators (16 x 2 x (k + 1) x n doubles at
# most) stay within 32 MB; by whole rows beyond.
_TILED_MAX = 2**17  # (k + 1) * n


@njit(cache=True, fastmath=_FAST, inline="always")
def _group_weights(inv, i0, lo, m, W):
    """``W[r, j] = inv[i0 + r, lo + j]`` for the four rows of a group and
    the m columns of a tile, 0 for pairs with j <= i and rows past n."""
    rows = min(_GROUP, inv.shape[0] - i0)
    for r in range(_GROUP):
        w = W[r, :m]
        if r >= rows:
            for j in range(m):
                w[j] = 0.0
            continue
        src = inv[i0 + r, lo : lo + m]
        if lo == i0:  # the group's own columns: j > i only
            for j in range(m):
                w[j] = src[j] if j > r else 0.0
        else:
            for j in range(m):
                w[j] = src[j]


@njit(cache=True, fastmath=_FAST, inline="always")
def _group_rows(n, i0):
    """The four rows of the group from ``i0``, the last row repeated past n
    (those rows' weights are 0)."""
    return i0, min(i0 + 1, n - 1), min(i0 + 2, n - 1), min(i0 + 3, n - 1)


@njit(cache=True, fastmath=_FAST, inline="always")
def _group_distances(Pt, i0, lo, m, A):
    """``A[r, j] = ||P_i - P_j||^2`` for the rows i of the group from ``i0``
    and the columns j = lo .. lo + m - 1, two coordinates per sweep (half
    the loads and stores of the four distance rows: 0.95-0.97 of the fused
    pass's time at n = 1000, k = 10 and n = 300, k = 32)."""
    k, n = Pt.shape
    i0, i1, i2, i3 = _group_rows(n, i0)
    a0, a1, a2, a3 = A[0, :m], A[1, :m], A[2, :m], A[3, :m]
    for j in range(m):
        a0[j] = 0.0
        a1[j] = 0.0
        a2[j] = 0.0
        a3[j] = 0.0
    for c in range(0, k - 1, 2):
        row, nxt = Pt[c, lo : lo + m], Pt[c + 1, lo : lo + m]
        p0, p1, p2, p3 = Pt[c, i0], Pt[c, i1], Pt[c, i2], Pt[c, i3]
        q0, q1, q2, q3 = Pt[c + 1, i0], Pt[c + 1, i1], Pt[c + 1, i2], Pt[c + 1, i3]
        for j in range(m):
            x, y = row[j], nxt[j]
            t0, t1, t2, t3 = p0 - x, p1 - x, p2 - x, p3 - x
            u0, u1, u2, u3 = q0 - y, q1 - y, q2 - y, q3 - y
            a0[j] += t0 * t0 + u0 * u0
            a1[j] += t1 * t1 + u1 * u1
            a2[j] += t2 * t2 + u2 * u2
            a3[j] += t3 * t3 + u3 * u3
    if k % 2:
        c = k - 1
        row = Pt[c, lo : lo + m]
        p0, p1, p2, p3 = Pt[c, i0], Pt[c, i1], Pt[c, i2], Pt[c, i3]
        for j in range(m):
            x = row[j]
            t0, t1, t2, t3 = p0 - x, p1 - x, p2 - x, p3 - x
            a0[j] += t0 * t0
            a1[j] += t1 * t1
            a2[j] += t2 * t2
            a3[j] += t3 * t3


@njit(cache=True, fastmath=_FAST, inline="always")
def _group_dots(Pt, Vt, i0, lo, m, D):
    """``D[r, j] = (P_i - P_j).(V_i - V_j)``, rows and columns as in
    :func:`_group_distances`."""
    k, n = Pt.shape
    i0, i1, i2, i3 = _group_rows(n, i0)
    d0, d1, d2, d3 = D[0, :m], D[1, :m], D[2, :m], D[3, :m]
    for j in range(m):
        d0[j] = 0.0
        d1[j] = 0.0
        d2[j] = 0.0
        d3[j] = 0.0
    for c in range(k):
        prow, vrow = Pt[c, lo : lo + m], Vt[c, lo : lo + m]
        p0, p1, p2, p3 = Pt[c, i0], Pt[c, i1], Pt[c, i2], Pt[c, i3]
        v0, v1, v2, v3 = Vt[c, i0], Vt[c, i1], Vt[c, i2], Vt[c, i3]
        for j in range(m):
            x, y = prow[j], vrow[j]
            d0[j] += (p0 - x) * (v0 - y)
            d1[j] += (p1 - x) * (v1 - y)
            d2[j] += (p2 - x) * (v2 - y)
            d3[j] += (p3 - x) * (v3 - y)


@njit(cache=True, fastmath=_FAST, inline="always")
def _group_tile(Pt, inv, i0, lo, m, scale, log2p, S, stats):
    """Pairs of the rows ``i0 .. i0 + 3`` with the columns ``lo .. lo + m -
    1``: ``A[r, j] = z^(p-1) w`` and ``B[r, j] = delta w`` (``z = delta *
    scale``, ``w = inv``, 0 for pairs with j <= i and rows past n), with
    ``W, A, B = S[:3]``. Adds the rows' max |delta|, sum z^(p-1) delta and
    sum delta^2 over these pairs to ``stats`` (3 x 4)."""
    W, A, B = S[0], S[1], S[2]
    _group_weights(inv, i0, lo, m, W)
    _group_distances(Pt, i0, lo, m, A)
    for r in range(_GROUP):
        a, b, w = A[r, :m], B[r, :m], W[r, :m]
        for j in range(m):
            d = a[j] * w[j] - (1.0 if w[j] > 0.0 else 0.0)
            a[j] = d
            b[j] = d * scale
        # z^(p-1) by e <- e^2 z, one squaring per doubling of p.
        for _ in range(log2p - 1):
            if log2p < _FLOOR_FROM:
                for j in range(m):
                    b[j] = b[j] * b[j] * (a[j] * scale)
            else:
                for j in range(m):
                    e = b[j] if abs(b[j]) > _FLOOR else 0.0
                    b[j] = e * e * (a[j] * scale)
        top = 0.0
        pw = 0.0
        sq = 0.0
        for j in range(m):
            d, u = a[j], b[j]
            top = max(top, abs(d))
            pw += u * d
            sq += d * d
            a[j] = u * w[j]
            b[j] = d * w[j]
        stats[0, r] = max(stats[0, r], top)
        stats[1, r] += pw
        stats[2, r] += sq


@njit(cache=True, fastmath=_FAST, inline="always")
def _hvp_tile(Pt, Vt, inv, i0, lo, m, scale, log2p, coefs, ue, S):
    """The Hessian-vector product's weights of a tile (see
    :func:`_group_tile`): ``A[r, j] = dL/d delta * w`` (paired with V) and
    ``B[r, j] = f w`` (paired with P), ``f = H_delta (J V)`` as in
    :func:`_direct_hvp`; ``W, A, B, D, E = S``."""
    coef_power, coef_square, coef_diag = coefs
    W, A, B, D, E = S[0], S[1], S[2], S[3], S[4]
    _group_weights(inv, i0, lo, m, W)
    _group_distances(Pt, i0, lo, m, A)
    _group_dots(Pt, Vt, i0, lo, m, D)
    for r in range(_GROUP):
        a, b, w, dots, u = A[r, :m], B[r, :m], W[r, :m], D[r, :m], E[r, :m]
        for j in range(m):
            d = a[j] * w[j] - (1.0 if w[j] > 0.0 else 0.0)
            a[j] = d
            z = d * scale
            u[j] = z * z
            b[j] = 1.0
        # b = z^(p-2) by repeated squaring, as in :func:`_block_deltas`.
        for _ in range(log2p - 1):
            if log2p < _FLOOR_FROM:
                for j in range(m):
                    b[j] *= u[j]
                    u[j] *= u[j]
            else:
                for j in range(m):
                    uu = u[j] if u[j] > _FLOOR else 0.0
                    vv = b[j] if b[j] > _FLOOR else 0.0
                    b[j] = vv * uu
                    u[j] = uu * uu
        for j in range(m):
            d, zp2 = a[j], b[j]
            up = d * scale * zp2  # z^(p-1)
            e = 2.0 * w[j] * dots[j]
            a[j] = (coef_power * up + coef_square * d) * w[j]
            b[j] = ((coef_diag * zp2 + coef_square) * e + ue * up) * w[j]


@njit(cache=True, fastmath=_FAST, inline="always")
def _group_accumulate(Ea, Eb, i0, lo, m, A, B, rowA, rowB, colA, colB):
    """Row sums ``rowA[c, r] += sum_j A[r, j] Ea[c, lo + j]`` and column
    sums ``colA[c, lo + j] += sum_r A[r, j] Ea[c, i0 + r]`` (and the same
    for B with Eb), ``Ea`` and ``Eb`` (k + 1, n): transposed coordinates
    and a last one equal to 1 (the plain sums)."""
    i0, i1, i2, i3 = _group_rows(Ea.shape[1], i0)
    a0, a1, a2, a3 = A[0, :m], A[1, :m], A[2, :m], A[3, :m]
    b0, b1, b2, b3 = B[0, :m], B[1, :m], B[2, :m], B[3, :m]
    for c in range(Ea.shape[0]):
        ca, cb = colA[c, lo : lo + m], colB[c, lo : lo + m]
        ra, rb = Ea[c, lo : lo + m], Eb[c, lo : lo + m]
        p0, p1, p2, p3 = Ea[c, i0], Ea[c, i1], Ea[c, i2], Ea[c, i3]
        q0, q1, q2, q3 = Eb[c, i0], Eb[c, i1], Eb[c, i2], Eb[c, i3]
        x0 = 0.0
        x1 = 0.0
        x2 = 0.0
        x3 = 0.0
        y0 = 0.0
        y1 = 0.0
        y2 = 0.0
        y3 = 0.0
        for j in range(m):
            x, y = ra[j], rb[j]
            x0 += a0[j] * x
            x1 += a1[j] * x
            x2 += a2[j] * x
            x3 += a3[j] * x
            y0 += b0[j] * y
            y1 += b1[j] * y
            y2 += b2[j] * y
            y3 += b3[j] * y
            ca[j] += a0[j] * p0 + a1[j] * p1 + a2[j] * p2 + a3[j] * p3
            cb[j] += b0[j] * q0 + b1[j] * q1 + b2[j] * q2 + b3[j] * q3
        rowA[c, 0] += x0
        rowA[c, 1] += x1
        rowA[c, 2] += x2
        rowA[c, 3] += x3
        rowB[c, 0] += y0
        rowB[c, 1] += y1
        rowB[c, 2] += y2
        rowB[c, 3] += y3


@njit(cache=True)
def _group_scratch(k):
    """A chunk's buffers: five (4 x _BLOCK) rows of a tile (weights, the two
    weighted terms and two more for the Hessian-vector product), the
    group's two row sums ((k + 1) x 4) and its stats (3 x 4)."""
    return (
        np.empty((5, _GROUP, _BLOCK)),
        np.empty((k + 1, _GROUP)),
        np.empty((k + 1, _GROUP)),
        np.empty((3, _GROUP)),
    )


@njit(cache=True)
def _chunks(n):
    """``(n_groups, half, n_chunks)``: groups of four rows, group g paired
    with group n_groups - 1 - g for g < half (balanced work), dealt to a
    fixed number of chunks: a power of two (even shares for 2, 4, ...
    threads), 8 or more group pairs each, at most 16. Fixed by n, so a
    result does not depend on the number of threads."""
    n_groups = (n + _GROUP - 1) // _GROUP
    half = (n_groups + 1) // 2
    n_chunks = 2
    while n_chunks < 16 and 16 * n_chunks <= half:
        n_chunks *= 2
    return n_groups, half, n_chunks


@njit(cache=True)
def _chunk_rows(ch, n_groups, half, n_chunks):
    """First rows of chunk ``ch``'s groups, in order: each of its groups g
    (g = ch, ch + n_chunks, ... below half), then g's partner."""
    starts = []
    for g in range(ch, half, n_chunks):
        starts.append(g * _GROUP)
        if n_groups - 1 - g != g:
            starts.append((n_groups - 1 - g) * _GROUP)
    return starts


@njit(cache=True, fastmath=_FAST, inline="always")
def _close_group(i0, n, rowA, rowB, colA, colB):
    """Add the group's row sums to its rows' column accumulators."""
    for r in range(min(_GROUP, n - i0)):
        for c in range(rowA.shape[0]):
            colA[c, i0 + r] += rowA[c, r]
            colB[c, i0 + r] += rowB[c, r]


@njit(cache=True, fastmath=_FAST)
def _group_pass(Pt, Pe, inv, i0, log2p, scale, scratch, colA, colB, tops, pws, sqs):
    """Every pair (i, j > i) of the rows of the group from ``i0``, into the
    chunk's column accumulators ``colA``, ``colB`` ((k + 1, n) each, row k
    the plain sums) and the rows' ``tops``, ``pws``, ``sqs``. ``scratch``
    holds the chunk's buffers (:func:`_group_scratch`)."""
    n = Pt.shape[1]
    S, rowA, rowB, stats = scratch
    rowA[:] = 0.0
    rowB[:] = 0.0
    stats[:] = 0.0
    for lo in range(i0, n, _BLOCK):
        m = min(_BLOCK, n - lo)
        _group_tile(Pt, inv, i0, lo, m, scale, log2p, S, stats)
        _group_accumulate(Pe, Pe, i0, lo, m, S[1], S[2], rowA, rowB, colA, colB)
    _close_group(i0, n, rowA, rowB, colA, colB)
    for r in range(min(_GROUP, n - i0)):
        i = i0 + r
        tops[i], pws[i], sqs[i] = stats[0, r], stats[1, r] * scale, stats[2, r]


@njit(cache=True, fastmath=_FAST)
def _hvp_group_pass(
    Pt, Vt, Pe, Ve, inv, i0, log2p, scale, coefs, ue, scratch, colA, colB
):
    """:func:`_group_pass` for the Hessian-vector product: ``colA`` takes
    the dL/d delta weights against V, ``colB`` the f weights against P."""
    n = Pt.shape[1]
    S, rowA, rowB, _ = scratch
    rowA[:] = 0.0
    rowB[:] = 0.0
    for lo in range(i0, n, _BLOCK):
        m = min(_BLOCK, n - lo)
        _hvp_tile(Pt, Vt, inv, i0, lo, m, scale, log2p, coefs, ue, S)
        _group_accumulate(Ve, Pe, i0, lo, m, S[1], S[2], rowA, rowB, colA, colB)
    _close_group(i0, n, rowA, rowB, colA, colB)


@njit(cache=True, fastmath=_FAST, inline="always")
def _settle_row(col, Et, i, factor, out):
    """``out[c] += factor * (S_i Et[c, i] - A_ci)`` for row i, with the
    chunks' column accumulators ``col`` ((n_chunks, k + 1, n)) summed in
    chunk order: ``A_ci`` over coordinate c, ``S_i`` over the plain sums
    (row k). With ``Et`` the coordinates the weights were paired with, that
    is row i's ``sum_j w_ij (E_i - E_j)``."""
    k = Et.shape[0]
    total = 0.0
    for ch in range(col.shape[0]):
        total += col[ch, k, i]
    for c in range(k):
        acc = 0.0
        for ch in range(col.shape[0]):
            acc += col[ch, c, i]
        out[c] += factor * (total * Et[c, i] - acc)


@njit(cache=True)
def _extended(Pt):
    """``Pt`` with a last row of ones, (k + 1, n)."""
    Pe = np.ones((Pt.shape[0] + 1, Pt.shape[1]))
    Pe[: Pt.shape[0]] = Pt
    return Pe


def _direct_value_and_parts_tiled(Pt, inv, log2p, scale_ref):
    """:func:`_direct_value_and_parts` over the upper triangle only (each
    pair once), for p >= 2, in chunks of groups (:func:`_chunks`) with their
    own column accumulators, summed in chunk order at the end."""
    k, n = Pt.shape
    n_groups, half, n_chunks = _chunks(n)
    colA = np.zeros((n_chunks, k + 1, n))
    colB = np.zeros((n_chunks, k + 1, n))
    tops = np.zeros(n)
    pws = np.zeros(n)
    sqs = np.zeros(n)
    scale = 1.0 / scale_ref
    Pe = _extended(Pt)
    for ch_ in prange(n_chunks):
        ch = np.int64(ch_)  # int64 helpers: one signature each
        scratch = _group_scratch(k)
        for i0 in _chunk_rows(ch, n_groups, half, n_chunks):
            _group_pass(
                Pt, Pe, inv, i0, log2p, scale, scratch, colA[ch], colB[ch],
                tops, pws, sqs,
            )  # fmt: skip
    G1 = np.zeros((n, k))
    G2 = np.zeros((n, k))
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        _settle_row(colA, Pt, i, 1.0, G1[i])
        _settle_row(colB, Pt, i, 1.0, G2[i])
    return _ordered_max(tops), _ordered_sum(pws), _ordered_sum(sqs), G1, G2


@njit(cache=True, fastmath=_FAST)
def _upper_row_ue(Pt, Vt, inv, i, log2p, scale, delta, dots, zp1, zp2, ue):
    """``ue[i]`` = sum over j > i of z_ij^(p-1) (J V)_ij, with (J V)_ij =
    2 inv_ij (P_i - P_j).(V_i - V_j)."""
    n = Pt.shape[1]
    m = n - i - 1
    _block_deltas(Pt, inv, i, i + 1, m, scale, log2p, delta, zp1, zp2)
    _row_dots(Pt, Vt, i, i + 1, n, dots)
    w = inv[i, i + 1 :]
    acc = 0.0
    for j in range(m):
        acc += delta[j] * scale * zp2[j] * w[j] * dots[j]
    ue[i] = 2.0 * acc


def _rank_one_sum(Pt, Vt, inv, log2p, top):
    """``sum_{i < j} z_ij^(p-1) (J V)_ij``, ``z = delta / top``: the scalar of
    the Hessian's rank-one term (:func:`direct_hvp`), one pass over the
    upper triangle."""
    n = Pt.shape[1]
    scale = 1.0 / top
    ue_rows = np.zeros(n)
    for t_ in prange((n + 1) // 2):
        t = np.int64(t_)  # int64 helpers: one signature each
        delta = np.empty(n)
        dots = np.empty(n)
        zp1 = np.empty(n)
        zp2 = np.empty(n)
        _upper_row_ue(Pt, Vt, inv, t, log2p, scale, delta, dots, zp1, zp2, ue_rows)
        if n - 1 - t != t:
            _upper_row_ue(
                Pt, Vt, inv, n - 1 - t, log2p, scale, delta, dots, zp1, zp2, ue_rows
            )
    return _ordered_sum(ue_rows)


def _direct_hvp(Pt, Vt, inv, log2p, top, coef_power, coef_square, ue):
    """Hessian of the objective with respect to P applied to V (n x k), by
    whole rows, given ``ue = coef_rank1 * rank_one_sum(...)``.

    ``dL/d delta = coef_power * (delta / top)^(p-1) + coef_square *
    delta``; the Hessian in delta is
    ``diag(coef_power (p - 1) / top * z^(p-2) + coef_square) + coef_rank1 *
    u u^T`` with ``u = z^(p-1)`` (module docstring).
    """
    k, n = Pt.shape
    scale = 1.0 / top
    coef_diag = coef_power * (2.0**log2p - 1.0) * scale
    out = np.empty((n, k))
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        delta = np.empty(_BLOCK)
        dots = np.empty(_BLOCK)
        zp1 = np.empty(_BLOCK)
        zp2 = np.empty(_BLOCK)
        acc_a = np.zeros(k)
        acc_f = np.zeros(k)
        sum_a = 0.0
        sum_f = 0.0
        for lo in range(0, n, _BLOCK):
            m = min(_BLOCK, n - lo)
            _block_deltas(Pt, inv, i, lo, m, scale, log2p, delta, zp1, zp2)
            _row_dots(Pt, Vt, i, lo, lo + m, dots)
            w = inv[i, lo : lo + m]
            for j in range(m):
                u = delta[j] * scale * zp2[j]  # z^(p-1)
                a = (coef_power * u + coef_square * delta[j]) * w[j]
                e = 2.0 * w[j] * dots[j]
                f = ((coef_diag * zp2[j] + coef_square) * e + ue * u) * w[j]
                delta[j] = a
                dots[j] = f
                sum_a += a
                sum_f += f
            _accumulate(delta, Vt, dots, Pt, lo, m, acc_a, acc_f)
        for c in range(k):
            out[i, c] = 2.0 * (
                sum_a * Vt[c, i] - acc_a[c] + sum_f * Pt[c, i] - acc_f[c]
            )
    return out


def _direct_hvp_tiled(Pt, Vt, inv, log2p, top, coef_power, coef_square, ue):
    """:func:`_direct_hvp` over the upper triangle only, in chunks of groups
    as :func:`_direct_value_and_parts_tiled`."""
    k, n = Pt.shape
    n_groups, half, n_chunks = _chunks(n)
    scale = 1.0 / top
    coefs = (coef_power, coef_square, coef_power * (2.0**log2p - 1.0) * scale)
    colA = np.zeros((n_chunks, k + 1, n))
    colB = np.zeros((n_chunks, k + 1, n))
    Pe, Ve = _extended(Pt), _extended(Vt)
    for ch_ in prange(n_chunks):
        ch = np.int64(ch_)  # int64 helpers: one signature each
        scratch = _group_scratch(k)
        for i0 in _chunk_rows(ch, n_groups, half, n_chunks):
            _hvp_group_pass(
                Pt, Vt, Pe, Ve, inv, i0, log2p, scale, coefs, ue, scratch,
                colA[ch], colB[ch],
            )  # fmt: skip
    out = np.zeros((n, k))
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        _settle_row(colA, Vt, i, 2.0, out[i])
        _settle_row(colB, Pt, i, 2.0, out[i])
    return out


@njit(cache=True, fastmath=_FAST)
def _upper_row_range(Pt, inv, i, buf, los, his):
    """Smallest and largest ratio over the active pairs (i, j > i)."""
    n = Pt.shape[1]
    _row_deltas(Pt, inv, i, i + 1, n, buf)
    b, w = buf[: n - i - 1], inv[i, i + 1 :]
    r_lo, r_hi = np.inf, 0.0
    for j in range(b.size):
        if w[j] > 0.0:
            r_lo = min(r_lo, b[j] + 1.0)
            r_hi = max(r_hi, b[j] + 1.0)
    los[i], his[i] = r_lo, r_hi


def _ratio_range(Pt, inv):
    """Smallest and largest ratio ``||P_i - P_j||^2 * inv_ij`` over the
    active pairs i < j (``inf, 0`` without any)."""
    n = Pt.shape[1]
    los = np.full(n, np.inf)
    his = np.zeros(n)
    for t_ in prange((n + 1) // 2):
        t = np.int64(t_)  # int64 helpers: one signature each
        buf = np.empty(n)
        _upper_row_range(Pt, inv, t, buf, los, his)
        if n - 1 - t != t:
            _upper_row_range(Pt, inv, n - 1 - t, buf, los, his)
    return -_ordered_max(-los), _ordered_max(his)


def _inverse_distances(G, sq, tiny):
    """``(inv, n_active)`` from the Gram matrix ``G`` of points with squared
    norms ``sq``: ``inv_ij = 1 / D_ij`` for the pairs i != j with ``D_ij =
    max(sq_i + sq_j - 2 G_ij, 0) > tiny`` (0 elsewhere), symmetric, taken
    from the upper triangle of G; ``n_active`` the number of such pairs i <
    j. Built without fastmath: the same bits as the torch form
    ``(sq[:, None] + sq[None, :] - 2 G).clamp_min(0)`` and its reciprocal.
    One pass and one n x n array, where the torch form made eight (for 1000
    points, 0.1 s of a fit's set-up, mostly first touches of fresh memory).
    """
    n = G.shape[0]
    inv = np.empty((n, n))
    counts = np.zeros(n, dtype=np.int64)
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        inv[i, i] = 0.0
        count = 0
        for j in range(i + 1, n):
            d = max((sq[i] + sq[j]) - 2.0 * G[i, j], 0.0)
            if d > tiny:
                w = 1.0 / d
                count += 1
            else:
                w = 0.0
            inv[i, j] = w
            inv[j, i] = w
        counts[i] = count
    return inv, counts.sum()


# -- a working set of pairs (CSR) -------------------------------------------
#
# Above ``max_pairs`` the objective runs over a list of pairs that grows
# linearly with n, held as a symmetric CSR matrix (``indptr``, ``indices``,
# ``inv``: each pair i != j stored in row i and in row j). Each row
# computes its own gradient from its stored pairs (every pair twice, no
# write to another row: parallel and independent of the thread count) and
# counts its value terms for j > i only. P is (n, k) C-contiguous here: the
# partners of a row are scattered, and a row of P is k contiguous numbers.


@njit(cache=True, fastmath=_FAST, inline="always")
def _pair_powers(z, log2p):
    """``(z^(p-1), z^(p-2))`` by repeated squaring, with :data:`_FLOOR`."""
    v = 1.0
    s = z * z
    for _ in range(log2p - 1):
        v = v * s if s > _FLOOR else 0.0
        s = s * s if s > _FLOOR else 0.0
    return z * v, v


def _pairs_value_and_parts(P, indptr, indices, inv, log2p, scale_ref, with_parts):
    """:func:`_direct_value_and_parts` over the stored pairs: ``(top,
    power_sum, square_sum, G1, G2)``; without ``with_parts`` G1 and G2 are
    left zero (the value alone)."""
    n, k = P.shape
    G1 = np.zeros((n, k))
    G2 = np.zeros((n, k))
    tops = np.zeros(n)
    pws = np.zeros(n)
    sqs = np.zeros(n)
    scale = 1.0 / scale_ref
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        diff = np.empty(k)
        g1 = np.zeros(k)
        g2 = np.zeros(k)
        top = 0.0
        pw = 0.0
        sq = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            w = inv[e]
            d2 = 0.0
            for c in range(k):
                diff[c] = P[i, c] - P[j, c]
                d2 += diff[c] * diff[c]
            d = d2 * w - 1.0
            z = d * scale
            u, _ = _pair_powers(z, log2p)
            if j > i:
                top = max(top, abs(d))
                pw += u * z
                sq += d * d
            if with_parts:
                a1 = u * w
                a2 = d * w
                for c in range(k):
                    g1[c] += a1 * diff[c]
                    g2[c] += a2 * diff[c]
        G1[i] = g1
        G2[i] = g2
        tops[i], pws[i], sqs[i] = top, pw, sq
    return _ordered_max(tops), _ordered_sum(pws), _ordered_sum(sqs), G1, G2


def _pairs_hvp(P, V, indptr, indices, inv, log2p, top, coefs):
    """:func:`direct_hvp` over the stored pairs (P and V are (n, k)); ``coefs
    = (coef_power, coef_square, coef_rank1)``: first the rank-one term's
    scalar over the pairs i < j, then each row's product."""
    n, k = P.shape
    coef_power, coef_square, coef_rank1 = coefs
    scale = 1.0 / top
    coef_diag = coef_power * (2.0**log2p - 1.0) * scale
    ues = np.zeros(n)
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        acc = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if j > i:
                w = inv[e]
                d2 = 0.0
                dot = 0.0
                for c in range(k):
                    t = P[i, c] - P[j, c]
                    d2 += t * t
                    dot += t * (V[i, c] - V[j, c])
                u, _ = _pair_powers((d2 * w - 1.0) * scale, log2p)
                acc += u * w * dot
        ues[i] = 2.0 * acc
    ue = coef_rank1 * _ordered_sum(ues)
    out = np.zeros((n, k))
    for i_ in prange(n):
        i = np.int64(i_)  # int64 helpers: one signature each
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            w = inv[e]
            d2 = 0.0
            dot = 0.0
            for c in range(k):
                t = P[i, c] - P[j, c]
                d2 += t * t
                dot += t * (V[i, c] - V[j, c])
            d = d2 * w - 1.0
            u, v = _pair_powers(d * scale, log2p)
            a = (coef_power * u + coef_square * d) * w
            f = ((coef_diag * v + coef_square) * 2.0 * w * dot + ue * u) * w
            for c in range(k):
                out[i, c] += 2.0 * (a * (V[i, c] - V[j, c]) + f * (P[i, c] - P[j, c]))
    return out


_LAYER_LOCK = threading.Lock()
_THREAD_SAFE = None


def _parallel_is_thread_safe():
    """Whether numba's threading layer may be entered from several threads
    at once: "omp" and "tbb" may, the fallback "workqueue" aborts."""
    global _THREAD_SAFE
    with _LAYER_LOCK:
        if _THREAD_SAFE is None:
            try:
                from numba.np.ufunc import parallel

                parallel._launch_threads()  # selects the layer
                _THREAD_SAFE = numba.threading_layer() != "workqueue"
            except Exception:  # a numba without this private hook
                _THREAD_SAFE = False
        return _THREAD_SAFE


def _compiled(func, fastmath=_FAST):
    """A kernel with its rows split over numba's threads.

    From the main thread: all of numba's threads. From another thread (a
    threaded ``GridSearchCV``, a dask worker) the same build on one thread
    (``numba.set_num_threads`` is per thread, restored afterwards): its
    siblings already share the cores, and the result is bit for bit the one
    the main thread gets, since every row is computed alone and the rows
    are summed in order. Only where the threading layer is numba's
    "workqueue", which aborts when entered from two threads, does a worker
    thread run a serial build instead (compiled on first use, not cached;
    its sums may round differently).
    """
    parallel = njit(cache=True, parallel=True, fastmath=fastmath)(func)
    serial = njit(fastmath=fastmath)(func)

    def kernel(*args):
        if threading.current_thread() is threading.main_thread():
            return parallel(*args)
        if not _parallel_is_thread_safe():
            return serial(*args)
        previous = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return parallel(*args)
        finally:
            numba.set_num_threads(previous)

    kernel.__doc__ = func.__doc__
    kernel.__name__ = func.__name__.lstrip("_")
    kernel.parallel, kernel.serial = parallel, serial
    return kernel


def _compiled_exact(func):
    """:func:`_compiled` without fastmath (IEEE arithmetic in source order)."""
    return _compiled(func, fastmath=False)


direct_value = _compiled(_direct_value)
direct_value_and_parts_rows = _compiled(_direct_value_and_parts)
direct_value_and_parts_tiled = _compiled(_direct_value_and_parts_tiled)


def direct_value_and_parts(Pt, inv, log2p, scale_ref):
    """The fused pass of :func:`_direct_value_and_parts`: tiled (each pair
    once) while its accumulators stay within :data:`_TILED_MAX`, by whole
    rows otherwise. Both give the same results up to rounding."""
    k, n = Pt.shape
    if (k + 1) * n <= _TILED_MAX and log2p >= 1:
        return direct_value_and_parts_tiled(Pt, inv, log2p, scale_ref)
    return direct_value_and_parts_rows(Pt, inv, log2p, scale_ref)


rank_one_sum = _compiled(_rank_one_sum)
direct_hvp_rows = _compiled(_direct_hvp)
direct_hvp_tiled = _compiled(_direct_hvp_tiled)


def direct_hvp(Pt, Vt, inv, log2p, top, coef_power, coef_square, coef_rank1):
    """Hessian of the objective with respect to P applied to V (n x k): the
    rank-one term's scalar, then one pass, tiled or by whole rows as
    :func:`direct_value_and_parts` (the same results up to rounding)."""
    ue = rank_one_sum(Pt, Vt, inv, log2p, top) * coef_rank1
    k, n = Pt.shape
    if (k + 1) * n <= _TILED_MAX:
        return direct_hvp_tiled(Pt, Vt, inv, log2p, top, coef_power, coef_square, ue)
    return direct_hvp_rows(Pt, Vt, inv, log2p, top, coef_power, coef_square, ue)


ratio_range = _compiled(_ratio_range)
inverse_distances = _compiled_exact(_inverse_distances)

pairs_value_and_parts = _compiled(_pairs_value_and_parts)
pairs_hvp = _compiled(_pairs_hvp)

# The kernel each kind of CPU fit calls first: at set-up for all pairs or a
# block (dense kernels), on the first pass for a working set (pair-list
# kernels). In a fresh environment none is cached, so its absence stands
# for the others of its kind.
_FIRST_FIT_KERNELS = {False: inverse_distances, True: pairs_value_and_parts}


def needs_compiling(working_set=False):
    """Whether the next fit compiles kernels: numba's on-disk cache
    (``NUMBA_CACHE_DIR``, else ``__pycache__``) has no valid entry for the
    first kernel such a fit calls (dense, or a working set's), as in a fresh
    environment or after the sources changed, and this process has not
    compiled it. Reads numba's cache index (a private API): False if it
    cannot be read."""
    kernel = _FIRST_FIT_KERNELS[bool(working_set)]
    try:
        return not kernel.parallel.signatures and not (
            kernel.parallel._cache._cache_file._load_index()
        )
    except Exception:  # pragma: no cover - another numba's cache layout
        return False


# First-call compile times, 2 cores (benchmarks/bench_first_use.py and the
# per-kernel timings in docs/benchmarks.rst): the dense kernels about 30 s,
# the working set's two about 5 s.
_NOTICE = (
    "compiling the projector's kernels for this environment (numba, once: "
    "about {} s on 2 cores; cached on disk for later fits)"
)
_NOTICE_GIVEN = {False: False, True: False}


def compile_notice(working_set=False):
    """The one-line notice that the next fit (dense, or on a working set)
    compiles its kernels, the first time this process asks while
    :func:`needs_compiling` holds; None otherwise (said once per process
    and kind of fit, not per kernel)."""
    working_set = bool(working_set)
    if _NOTICE_GIVEN[working_set] or not needs_compiling(working_set):
        return None
    _NOTICE_GIVEN[working_set] = True
    return _NOTICE.format(5 if working_set else 30)
