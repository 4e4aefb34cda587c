"""Compiled MAXCUT kernels (numba): mixing-method sweeps and tabu search.

Mixing sweeps (CPU path of the SDP): Gauss-Seidel updates
``v_i <- -normalize(sum_j w_ij v_j)`` node by node in the given order. In
colour-class order this is exactly the torch block update (nodes of a class
share no edge), without a library call per class: on G1 (53 classes) a
sweep costs about 1 ms instead of about 6 ms.

Tabu search: the kernel works on a CSR weight matrix and sides ``s in {-1, +1}^n`` and
keeps the gain ``g_i = s_i (W s)_i`` of flipping each node (flipping i adds
``g_i`` to the cut). A step flips the best non-tabu node (ties broken
uniformly at random), or a tabu node when that flip beats the best cut seen
(aspiration). The search runs in phases; each phase clears the tabu list
and takes the next tabu tenure from a portfolio, because no single tenure
suits every graph (in our runs n/10 found the best known cuts of the
toroidal G11/G12 but lost 0.2 % on G1, n/30 the reverse). Restarting each
phase from the best sides seen measured no better (99.71 % against 99.75 %
of the best known cuts on G11-G21 and G51-G54, 3 seeds each). Randomness
comes from a xorshift generator seeded by the caller, so a run is
reproducible and touches no global random state.

With integer weights (multiples of one unit) the gains are integers, and
``tabu_bucket_kernel`` makes the same moves with the nodes kept in buckets by
gain: a flip costs O(degree) bucket moves instead of the O(n) scan of
``tabu_kernel`` (G12: 82 against 1206 ns per flip; G81, 20,000 nodes: 143
against 29,741 ns).
"""

import numpy as np
from numba import njit, uint64


@njit(cache=True, inline="always")
def _next(state):
    x = state[0]
    x ^= x << uint64(13)
    x ^= x >> uint64(7)
    x ^= x << uint64(17)
    state[0] = x
    return x


@njit(cache=True)
def _seeded(seed):
    """State of the xorshift generator for ``seed`` (never zero)."""
    state = np.empty(1, dtype=np.uint64)
    state[0] = uint64(seed) * uint64(6364136223846793005) + uint64(1442695040888963407)
    if state[0] == 0:
        state[0] = uint64(88172645463325252)
    return state


@njit(cache=True, inline="always")
def _tabu_until(step, tenure, state):
    """Last step at which a node flipped now stays tabu, plus one:
    ``step + tenure + U{1..max(tenure / 4, 2)}``."""
    spread = max(tenure // 4, 2)
    return step + tenure + 1 + np.int64(_next(state) % uint64(spread))


@njit(cache=True, inline="always")
def _phase_tenure(step, phase, tenures, tenure, tabu_until):
    """The tenure for ``step``: at the start of each phase the next one of
    the portfolio, with the tabu list cleared."""
    if step > 0 and step % phase == 0:
        tabu_until[:] = 0
        return tenures[(step // phase) % tenures.shape[0]]
    return tenure


@njit(cache=True, inline="always")
def _keep_best(delta, best_delta, s, best_s, tol):
    """The best cut change so far, copying the sides when ``delta`` beats it."""
    if delta > best_delta + tol:
        best_s[:] = s
        return delta
    return best_delta


@njit(cache=True, inline="always")
def _flip(i, s, gain, indptr, indices, data):
    """Flip node i, update the gains of its neighbours; return the cut change."""
    si = s[i]
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        gain[j] -= 2.0 * s[j] * data[p] * si
    change = gain[i]
    gain[i] = -change
    s[i] = -si
    return change


@njit(cache=True)
def tabu_kernel(
    indptr, indices, data, s, max_iter, tenures, phase, seed, tol, step0, tabu_until
):
    """Tabu search from ``s`` (modified in place); return (best sides, gain).

    Steps ``step0 .. step0 + max_iter - 1`` of a search whose tabu list
    ``tabu_until`` (step until which each node is tabu, in place) and phase
    schedule carry over between calls, so a search run in slices makes the
    moves of one long run, up to the random tie-breaking (one generator per
    call) and the gains recomputed at each call.
    """
    n = s.shape[0]
    state = _seeded(seed)
    gain = np.empty(n)
    for i in range(n):
        acc = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * s[indices[p]]
        gain[i] = s[i] * acc
    best_s = s.copy()
    delta = 0.0
    best_delta = 0.0
    tenure = tenures[(step0 // phase) % tenures.shape[0]]
    for step in range(step0, step0 + max_iter):
        tenure = _phase_tenure(step, phase, tenures, tenure, tabu_until)
        free_i, free_g, free_ties = -1, -np.inf, 0
        tabu_i, tabu_g, tabu_ties = -1, -np.inf, 0
        # Running argmax of the free and of the tabu nodes, ties (within
        # tol) broken uniformly at random. Written out for both rather than
        # through a shared helper returning a tuple: numba compiled that form
        # 8.6 times slower (6.2 s against 0.72 s for 625,000 flips on G1).
        for i in range(n):
            g = gain[i]
            if tabu_until[i] > step:
                if g > tabu_g + tol:
                    tabu_i, tabu_g, tabu_ties = i, g, 1
                elif g > tabu_g - tol:
                    tabu_ties += 1
                    if _next(state) % uint64(tabu_ties) == 0:
                        tabu_i = i
            elif g > free_g + tol:
                free_i, free_g, free_ties = i, g, 1
            elif g > free_g - tol:
                free_ties += 1
                if _next(state) % uint64(free_ties) == 0:
                    free_i = i
        i = free_i
        if tabu_i >= 0 and (
            free_i < 0 or (tabu_g > free_g and delta + tabu_g > best_delta + tol)
        ):
            i = tabu_i
        delta += _flip(i, s, gain, indptr, indices, data)
        tabu_until[i] = _tabu_until(step, tenure, state)
        best_delta = _keep_best(delta, best_delta, s, best_s, tol)
    return best_s, best_delta


@njit(cache=True, inline="always")
def _move(i, shift, bucket_of, elems, loc, start):
    """Move node i by ``shift`` buckets, one boundary swap per bucket."""
    b = bucket_of[i]
    while shift > 0:
        q = start[b + 1] - 1  # last slot of bucket b
        other = elems[q]
        p = loc[i]
        elems[p] = other
        loc[other] = p
        elems[q] = i
        loc[i] = q
        start[b + 1] = q  # i is now the first of bucket b + 1
        b += 1
        shift -= 1
    while shift < 0:
        q = start[b]  # first slot of bucket b
        other = elems[q]
        p = loc[i]
        elems[p] = other
        loc[other] = p
        elems[q] = i
        loc[i] = q
        start[b] = q + 1  # i is now the last of bucket b - 1
        b -= 1
        shift += 1
    bucket_of[i] = b


@njit(cache=True)
def tabu_bucket_kernel(
    indptr, indices, units, s, max_iter, tenures, phase, seed, unit, step0, tabu_until
):
    """Tabu search for integer weights ``unit * units`` (same moves and
    random tie-breaking as :func:`tabu_kernel`) with gains kept in buckets:
    a flip costs O(degree) bucket moves instead of an O(n) scan."""
    n = s.shape[0]
    state = _seeded(seed)
    gain = np.empty(n, dtype=np.int64)
    reach = 0
    for i in range(n):
        acc = 0
        total = 0
        for p in range(indptr[i], indptr[i + 1]):
            acc += units[p] * np.int64(s[indices[p]])
            total += abs(units[p])
        gain[i] = np.int64(s[i]) * acc
        reach = max(reach, total)
    n_buckets = 2 * reach + 1
    # Counting sort of the nodes by bucket (gain + reach).
    bucket_of = gain + reach
    start = np.zeros(n_buckets + 1, dtype=np.int64)
    for i in range(n):
        start[bucket_of[i] + 1] += 1
    for b in range(n_buckets):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    elems = np.empty(n, dtype=np.int64)
    loc = np.empty(n, dtype=np.int64)
    for i in range(n):
        q = fill[bucket_of[i]]
        elems[q] = i
        loc[i] = q
        fill[bucket_of[i]] += 1
    top = n_buckets - 1
    best_s = s.copy()
    delta = 0
    best_delta = 0
    tenure = tenures[(step0 // phase) % tenures.shape[0]]
    for step in range(step0, step0 + max_iter):
        tenure = _phase_tenure(step, phase, tenures, tenure, tabu_until)
        # Best free node: highest bucket holding one, uniform among them
        # (a few random draws, then an exact count). Buckets above it hold
        # tabu nodes only; the highest of them gives the aspiration move.
        while start[top] == start[top + 1]:
            top -= 1
        free_i = -1
        tabu_i = -1
        b = top
        while b >= 0 and free_i < 0:
            lo, size = start[b], start[b + 1] - start[b]
            if size == 0:
                b -= 1
                continue
            for _ in range(8):
                cand = elems[lo + np.int64(_next(state) % uint64(size))]
                if tabu_until[cand] <= step:
                    free_i = cand
                    break
            if free_i < 0:
                count = 0
                for q in range(lo, lo + size):
                    if tabu_until[elems[q]] <= step:
                        count += 1
                if count > 0:
                    pick = np.int64(_next(state) % uint64(count))
                    for q in range(lo, lo + size):
                        if tabu_until[elems[q]] <= step:
                            if pick == 0:
                                free_i = elems[q]
                                break
                            pick -= 1
                elif tabu_i < 0:
                    tabu_i = elems[lo + np.int64(_next(state) % uint64(size))]
            b -= 1
        i = free_i
        if tabu_i >= 0 and (free_i < 0 or delta + gain[tabu_i] > best_delta):
            i = tabu_i
        si = np.int64(s[i])
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            change = -2 * np.int64(s[j]) * units[p] * si
            gain[j] += change
            _move(j, change, bucket_of, elems, loc, start)
            if bucket_of[j] > top:
                top = bucket_of[j]
        g = gain[i]
        delta += g
        gain[i] = -g
        _move(i, -2 * g, bucket_of, elems, loc, start)
        if bucket_of[i] > top:
            top = bucket_of[i]
        s[i] = -s[i]
        tabu_until[i] = _tabu_until(step, tenure, state)
        best_delta = _keep_best(delta, best_delta, s, best_s, 0)
    return best_s, best_delta * unit


@njit(cache=True)
def mixing_sweeps(indptr, indices, data, V, order, n_sweeps):
    """``n_sweeps`` mixing sweeps over the nodes in ``order`` (V in place)."""
    rank = V.shape[1]
    g = np.empty(rank, dtype=V.dtype)
    for _ in range(n_sweeps):
        for i in order:
            g[:] = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                w = data[p]
                j = indices[p]
                for r in range(rank):
                    g[r] += w * V[j, r]
            norm = 0.0
            for r in range(rank):
                norm += g[r] * g[r]
            if norm > 0.0:
                scale = -1.0 / np.sqrt(norm)
                for r in range(rank):
                    V[i, r] = g[r] * scale
