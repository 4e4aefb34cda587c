"""Learning a k x d projection that preserves the pairwise distances of data.

Two formulations, both optimised to a certified SOSP by :func:`minimize`:

* ``direct``: a smooth maximum of the pair distortions
  ``delta_ij = ||A (x_i - x_j)||^2 / ||x_i - x_j||^2 - 1`` over A, started
  from a Gaussian projection, with the power ``p`` of the power mean raised
  in stages (8, 32, 128) and the best iterate kept;
* ``derandomize`` (the derandomization paper): a Gaussian sampler
  ``A = M + sigma Z`` whose expected smoothed count of violated pairs plus
  ``alpha * sigma^2`` is minimised; at an SOSP the noise scale ``sigma``
  collapses and ``M`` is a deterministic projection.

Only the row space of the centred data matters (A acts on differences), so
the optimisation runs over ``A = A0 + C V^T`` with V an orthonormal basis of
that row space (``r <= min(n, d)`` columns): the Gaussian start is kept
unchanged on the orthogonal complement, which is what new points see there.
The points are projected once (``P = X A^T``, n x k) and the pair norms
come from P, never from an n^2 x d difference array: on the CPU from its k
coordinates in the compiled kernels of :mod:`._jl_kernels`, elsewhere from
Gram matrices (``||P_i - P_j||^2 = G_ii + G_jj - 2 G_ij``).

Above ``max_pairs`` pairs, ``direct`` on the CPU works on a working set of
pairs (:func:`_fit_pairs`): random partners, nearest neighbours and the
violators that blocked scans find, on at most a sample of the points plus
the violators' endpoints; the reported max is exact over all pairs up to
``_EXACT_REPORT`` points and over the pairs checked above, with a
confidence bound from a uniform sample (:func:`_final_report`).
"""

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from scipy import linalg
from scipy.special import roots_genlaguerre

from sklearn_derand._sosp import _jl_kernels
from sklearn_derand._sosp._utils import make_generator, to_numpy
from sklearn_derand._sosp.curvature import certify
from sklearn_derand._sosp.optimize import minimize
from sklearn_derand._sosp.smoothing import expected_smoothed_step_of_square

__all__ = ["DistortionProblem", "JLResult", "fit_projection"]

_P_STAGES = (8.0, 32.0, 128.0)
_STAGE_SHARE = (0.3, 0.3, 0.4)
_ROUND = 30  # iterations per block of points before it is refreshed


def _stage_budgets(max_iter, shares=_STAGE_SHARE):
    """Iterations of each stage: the shares of max_iter, rounded so that they
    add up to max_iter exactly, the first stage at least 1 (a stage with 0 is
    skipped)."""
    cumulative = np.cumsum(shares)
    bounds = [0, *(round(c * max_iter) for c in cumulative)]
    bounds[-1] = max_iter
    budgets = [hi - lo for lo, hi in itertools.pairwise(bounds)]
    if budgets[0] == 0:
        budgets[0] = 1
        budgets[budgets.index(max(budgets[1:]), 1)] -= 1
    return budgets


_PRUNE = 1.5  # a first stage ending above 1.5 * target is judged infeasible


def _sqdist_inplace(G, sa, sb):
    """``max(sa_i + sb_j - 2 G_ij, 0)`` in G's memory."""
    return G.mul_(-2.0).add_(sa[:, None]).add_(sb[None, :]).clamp_min_(0.0)


def _nan_range(T):
    """Smallest and largest entry of T ignoring NaN (``inf, 0`` if all are)."""
    finite = T.nan_to_num(nan=math.inf)
    lo = float(finite.min()) if finite.numel() else math.inf
    hi = float(T.nan_to_num(nan=0.0).max()) if T.numel() else 0.0
    return lo, hi


class DistortionProblem:
    """Training points in row-space coordinates, and the pairs to preserve.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    fit_mask : ndarray of bool of shape (n,)
        Points whose pairs are fitted; the others (if any) are validation
        points, judged on their pairs with every point.
    max_pairs : int
        Largest number of pairs handled at once. Below it all fitted pairs
        are used (one n x n Gram matrix); above it a block of rows against
        all points, refreshed toward the worst pairs at each stage.
    device : torch.device
    seed : int
        For the rows of a block.
    sparse : sparse matrix of shape (n, d), optional
        The same points uncentred (``X`` plus a constant row) with few
        nonzeros: images ``X A^T`` are then formed through it (see
        :class:`_SparseImages`). By default the sparse ``X`` itself.
    working_set : bool, default=False
        Above ``max_pairs`` on the CPU, work on a working set of pairs
        (:func:`_fit_pairs`: ``csr``, ``keys``, ``points``) instead of
        blocks ("direct" only).
    """

    def __init__(
        self, X, fit_mask, max_pairs, device, seed, sparse=None, working_set=False
    ):
        self.device = device
        self.X = X
        n, d = X.shape
        self.n, self.d = n, d
        self.rng = np.random.RandomState(seed)
        self._reduce(X)
        if sparse is None and sp.issparse(X):
            sparse = X
        self.sparse = None
        if sparse is not None and _SparseImages.pays(sparse, self.rank, device):
            self.sparse = _SparseImages(sparse)
        self.fit_idx = np.flatnonzero(fit_mask)
        self.val_idx = np.flatnonzero(~fit_mask)
        n_fit = self.fit_idx.size
        self.n_pairs = n_fit * (n_fit - 1) // 2
        self.dense = self.n_pairs <= max_pairs
        # Block of b points: b (b - 1) / 2 <= max_pairs pairs among them.
        self.block_size = min(
            n_fit, max(2, int((1 + math.sqrt(1 + 8 * max_pairs)) / 2))
        )
        opts = {"dtype": torch.float64, "device": device}
        self.Yt = torch.as_tensor(self.Y, **opts)
        self.csr = None
        # Above max_pairs on the CPU, "direct" works on a set of pairs that
        # grows like n (see :func:`_fit_pairs`); elsewhere on blocks.
        self.working_set = self.uses_working_set(n_fit, max_pairs, device, working_set)
        if self.working_set:
            self.points = torch.arange(n, device=device)
            self.inv_sym = self._inv_sym = self._torch_pairs = None
            self.scale_hint = None
            self.n_active = 0
            self.exact_scan = n_fit <= _EXACT_SCAN
            self.val_csr = None
        elif self.dense:
            self.set_points(self.fit_idx)
        else:
            self.set_points(
                self.rng.choice(self.fit_idx, size=self.block_size, replace=False)
            )

    @staticmethod
    def uses_working_set(n_fit, max_pairs, device, working_set=True):
        """Whether a problem of ``n_fit`` fitted points works on a working
        set of pairs: above ``max_pairs`` pairs, on the CPU, when asked
        (``"direct"``)."""
        return (
            working_set
            and n_fit * (n_fit - 1) // 2 > max_pairs
            and (device.type == "cpu")
        )

    # -- reduction to the row space -------------------------------------
    def _reduce(self, X):
        n, d = X.shape
        mean = np.asarray(X.mean(axis=0)).ravel()
        if d <= n:
            # Principal axes from the d x d scatter matrix (eigh: 0.09 s
            # against 0.29 s for the SVD of 1000 x 1000 data), coordinates
            # by projection, so Y_i - Y_j = (x_i - x_j) V exactly.
            # No centred copy of X: (X - 1 m)^T (X - 1 m) = X^T X - n m m^T
            # and (X - 1 m) V = X V - 1 (m V).
            Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
            lam, V = np.linalg.eigh(Xd.T @ Xd - n * np.outer(mean, mean))
            top = lam[-1] if lam.size else 0.0
            keep = lam > max(top, 0.0) * 1e-10
            V = np.ascontiguousarray(V[:, keep][:, ::-1])
            self.Y = Xd @ V
            self.Y -= mean @ V
            self._basis = ("V", V)
        else:
            K = X @ X.T
            K = K.toarray() if sp.issparse(K) else np.asarray(K)
            K = np.asarray(K, dtype=np.float64)
            # Double centring, H K H with H = I - 1/n, in place, without
            # the two n x n products (5 s at n = 5000); eigh reads one
            # triangle and may overwrite K. Two n x n arrays at a time (K
            # and the eigenvectors, then those and the kept ones) where a
            # centred copy, its symmetrised copy and numpy's eigh held five.
            col = K.mean(axis=0)
            K -= col[None, :]
            K -= col[:, None]
            K += col.mean()
            lam, U = linalg.eigh(K, overwrite_a=True, check_finite=False)
            del K
            top = lam[-1] if lam.size else 0.0
            keep = lam > max(top, 0.0) * 1e-10
            kept = np.flatnonzero(keep)[::-1]
            lam = lam[kept]
            self.Y = np.empty((n, kept.size))  # C order; U is Fortran's
            np.take(U, kept, axis=1, out=self.Y)
            del U
            self.Y *= np.sqrt(lam)
            # The basis of the row space is X^T (Y / lam): kept as lam.
            self._basis = ("X", lam)
        self.rank = self.Y.shape[1]
        scale = float(np.max((self.Y**2).sum(1))) if self.Y.size else 1.0
        self.tiny = max(scale, 1e-300) * 1e-12

    def components(self, A0, C):
        """A = A0 + C V^T as a numpy (k, d) array."""
        kind, basis = self._basis
        if kind == "V":
            return A0 + C @ basis.T
        coef = (C / basis) @ self.Y.T  # (k, n): C (Y / lam)^T
        X = self.X
        return A0 + np.asarray((X.T @ coef.T).T)

    # -- the working set of pairs (large n, see _fit_pairs) ---------------
    def pair_sqdist(self, rows, cols, Z=None, chunk=2**20):
        """Squared distances ``||z_i - z_j||^2`` of the pairs (rows[t],
        cols[t]) in chunks, z the rows of Z (by default the row-space
        coordinates, giving ``||x_i - x_j||^2``)."""
        if Z is None and self.sparse is not None:
            return self._sparse_pair_sqdist(rows, cols, chunk)
        Z = self.Y if Z is None else Z
        out = np.empty(rows.size)
        step = max(1, chunk // max(Z.shape[1], 1))
        for lo in range(0, rows.size, step):
            diff = Z[rows[lo : lo + step]] - Z[cols[lo : lo + step]]
            out[lo : lo + step] = np.einsum("ij,ij->i", diff, diff)
        return out

    def _sparse_pair_sqdist(self, rows, cols, chunk):
        """:meth:`pair_sqdist` of the data through its sparse copy (the
        distances do not depend on centring): ``s_i + s_j - 2 x_i.x_j``."""
        S = self.sparse.S
        sq = self._sparse_sq
        out = np.empty(rows.size)
        step = max(1, chunk // 64)
        for lo in range(0, rows.size, step):
            i, j = rows[lo : lo + step], cols[lo : lo + step]
            dots = np.asarray(S[i].multiply(S[j]).sum(1)).ravel()
            out[lo : lo + step] = np.maximum(sq[i] + sq[j] - 2.0 * dots, 0.0)
        return out

    @functools.cached_property
    def _sparse_sq(self):
        """Squared norms of the rows of the sparse data."""
        S = self.sparse.S
        return np.asarray(S.multiply(S).sum(1)).ravel()

    def _csr(self, rows, cols, known=None, points=None):
        """The distinct pairs i != j among (rows, cols) and the ``known``
        ``(keys, inv)``, at a distance above ``tiny``, on the points
        ``points`` plus their endpoints: ``(keys, inv, points, csr)``, with
        key ``i * n + j`` for i < j (sorted), their inverse squared
        distances, the points (sorted) and the symmetric CSR matrix of the
        inverse distances over them (local indices, each pair in both
        rows). Distances are computed for new pairs only."""
        lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
        keys = np.unique(lo[lo != hi].astype(np.int64) * self.n + hi[lo != hi])
        if known is not None:
            keys = keys[~np.isin(keys, known[0], assume_unique=True)]
        d = self.pair_sqdist(keys // self.n, keys % self.n)
        keep = d > self.tiny
        keys, w = keys[keep], 1.0 / d[keep]
        if known is not None:
            keys, w = np.concatenate([known[0], keys]), np.concatenate([known[1], w])
            order = np.argsort(keys, kind="stable")
            keys, w = keys[order], w[order]
        i, j = keys // self.n, keys % self.n
        parts = [i, j] if points is None else [points, i, j]
        points = np.unique(np.concatenate(parts))
        i, j = np.searchsorted(points, i), np.searchsorted(points, j)
        S = sp.csr_matrix(
            (np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))),
            shape=(points.size, points.size),
        )
        csr = (S.indptr.astype(np.int64), S.indices.astype(np.int64), S.data)
        return keys, w, points, csr

    def set_pairs(self, rows, cols, points=None):
        """Add the pairs (rows[t], cols[t]) to the working set (duplicates
        and pairs at distance 0 are dropped); the active points become the
        earlier ones, ``points`` and the new pairs' endpoints."""
        known = None
        if self.csr is not None:
            known = (self.keys, self.key_inv)
            old = self.points.cpu().numpy()
            points = old if points is None else np.concatenate([old, points])
        self.keys, self.key_inv, points, self.csr = self._csr(rows, cols, known, points)
        self.points = torch.as_tensor(points, device=self.device)
        self.n_active = self.keys.size
        self.scale_hint = None

    def sample_rows(self, n_pairs, pool=None):
        """All points of ``pool`` (by default the fitted points), or a
        random subset of them (sorted) whose pairs with the whole pool
        number about ``n_pairs``."""
        pool = self.fit_idx if pool is None else pool
        size = max(1, min(pool.size, n_pairs // max(pool.size - 1, 1)))
        if size == pool.size:
            return pool
        return np.sort(self.rng.choice(pool, size=size, replace=False))

    def random_partners(self, points, per_point, pool):
        """``per_point`` partners for each of ``points``, drawn uniformly
        from ``pool``: the arrays (rows, cols)."""
        rows = np.repeat(points, per_point)
        return rows, pool[self.rng.randint(pool.size, size=rows.size)]

    def set_validation_pairs(self, n_pairs, n_sample, n_points):
        """Validation pairs for early stopping: those of the validation
        points with all points if they are at most ``n_pairs``, else (a
        sample) about ``n_sample`` pairs of random
        validation points with random points, on at most ``n_points``
        points (whose images each iteration computes): ``val_points``
        (global indices) and ``val_csr`` over them."""
        every = np.arange(self.n)
        if self.val_idx.size * self.n <= n_pairs:
            rows = np.repeat(self.val_idx, self.n)
            cols = np.tile(every, self.val_idx.size)
        else:
            half = max(1, n_points // 2)
            val = self.val_idx
            if val.size > half:
                val = self.rng.choice(val, size=half, replace=False)
            pool = every
            if pool.size > half:
                pool = self.rng.choice(pool, size=half, replace=False)
            per_point = max(1, n_sample // val.size)
            rows, cols = self.random_partners(val, per_point, pool)
        _, _, self.val_points, self.val_csr = self._csr(rows, cols)

    def pairs_max(self, P, csr=None):
        """Max |distortion| over the working set (or the pairs of ``csr``),
        P the images of its points."""
        csr = self.csr if csr is None else csr
        if csr is None or csr[1].size == 0:
            return 0.0
        rows = np.ascontiguousarray(P.detach().numpy())
        return _jl_kernels.pairs_value_and_parts(rows, *csr, 1, 1.0, False)[0]

    def scan(
        self,
        P,
        rows,
        n_worst=0,
        n_near=0,
        above=-1.0,
        fast=False,
        exact_range=False,
        cols=None,
        chunk=2**20,
    ):
        """Blocked scan of the pairs ``rows x fitted points`` under the
        images P: never more than ``chunk`` pairs at once (matrix products
        of the k-dimensional images and of the row-space coordinates).

        Returns ``(lo, hi, worst, near)`` (``cols`` instead of all fitted
        points, if given): the smallest and largest ratio
        ``||P_i - P_j||^2 / ||x_i - x_j||^2`` seen, each row's ``n_worst``
        partners of largest |distortion| if above ``above`` and its
        ``n_near`` nearest fitted points, as (rows, cols) arrays. Unless
        ``exact_range``, lo and hi are clipped to include 1 (enough for the
        max distortion ``max(hi - 1, 1 - lo)``, one pass fewer). ``fast``
        computes in float32 (for finding violators; pairs closer than 1 %
        of the largest norm are then left out, their distances too inexact).
        """
        cols = self.fit_idx if cols is None else cols
        cols = torch.as_tensor(cols, device=self.device)
        dtype = torch.float32 if fast else torch.float64
        P = P.detach().to(dtype)
        Y = self.Yt.to(dtype) if self.sparse is None else None
        every = cols.numel() == self.n  # all points, in order: no copies
        Pc = P if every else P[cols]
        sparse_rows = None
        if self.sparse is not None:  # distances from the sparse data
            sparse_rows = self.sparse.S
            sparse_cols = sparse_rows[cols.cpu().numpy()].T.tocsr()
            gy_all = torch.from_numpy(self._sparse_sq).to(dtype)
            gy = gy_all[cols]
        else:
            Yc = Y if every else Y[cols]
            gy = (Yc * Yc).sum(1)
        gp = (Pc * Pc).sum(1)
        gy_max = gy.max() if gy.numel() else 0.0
        # Rows that are the columns themselves: each pair once, a block of
        # rows against the columns from its own first row on (half the
        # products); nearest neighbours need every column.
        triangle = (
            not n_near
            and rows.size == cols.numel()
            and np.array_equal(rows, cols.cpu().numpy())
        )
        lo, hi = math.inf, 0.0
        worst, near = [], []
        start = 0
        while start < rows.size:
            first = start if triangle else 0
            step = max(1, chunk // max(cols.numel() - first, 1))
            r = torch.as_tensor(rows[start : start + step], device=self.device)
            start += step
            Pr = P[r]
            block_cols, block_gy, block_gp = cols[first:], gy[first:], gp[first:]
            if sparse_rows is None:
                Yr = Y[r]
                sy = (Yr * Yr).sum(1)
                D = _sqdist_inplace(Yr @ Yc[first:].T, sy, block_gy)
            else:  # through the sparse data: a few nonzeros per row
                rr = r.cpu().numpy()
                G = (sparse_rows[rr] @ sparse_cols[:, first:]).toarray()
                sy = gy_all[r]
                D = _sqdist_inplace(torch.from_numpy(G).to(dtype), sy, block_gy)
            if fast:
                skip = D <= (1e-4 * (sy + gy_max)).clamp_min_(self.tiny)[:, None]
            else:
                skip = D <= self.tiny
            ratio = _sqdist_inplace(Pr @ Pc[first:].T, (Pr * Pr).sum(1), block_gp)
            ratio.div_(D.clamp_min_(self.tiny))
            if exact_range:
                block_lo, block_hi = _nan_range(ratio.masked_fill_(skip, math.nan))
                ratio.nan_to_num_(1.0)
            else:  # skipped pairs count as ratio 1: lo <= 1 <= hi
                block_lo, block_hi = ratio.masked_fill_(skip, 1.0).aminmax()
                block_lo, block_hi = float(block_lo), float(block_hi)
            lo, hi = min(lo, block_lo), max(hi, block_hi)
            if n_worst:
                dev = ratio.sub_(1.0).abs_()
                top = dev.topk(min(n_worst, block_cols.numel()), dim=1)
                keep = top.values > above
                pair_rows = r[:, None].expand_as(keep)[keep]
                worst.append((pair_rows, block_cols[top.indices[keep]]))
            if n_near:
                D.masked_fill_(skip, math.inf)
                idx = D.topk(min(n_near, cols.numel()), dim=1, largest=False).indices
                near.append((r[:, None].expand_as(idx), cols[idx]))

        def flat(found):
            if not found:
                return np.zeros(0, np.int64), np.zeros(0, np.int64)
            return tuple(
                torch.cat([part[t].reshape(-1) for part in found]).cpu().numpy()
                for t in (0, 1)
            )

        return lo, hi, flat(worst), flat(near)

    # -- pairs ------------------------------------------------------------
    @staticmethod
    def _sqdist(Pa, Pb, sa, sb):
        return (sa[:, None] + sb[None, :] - 2.0 * Pa @ Pb.T).clamp_min(0.0)

    def set_points(self, points):
        """The active pairs are all pairs of distinct points among ``points``."""
        points = np.sort(np.asarray(points))
        self.points = torch.as_tensor(points, device=self.device)
        Yb = self.Yt if points.size == self.n else self.Yt[self.points]
        sq = (Yb * Yb).sum(1)
        self.scale_hint = None  # last max |delta| seen by the fused kernel
        self._torch_pairs = None
        if self.device.type == "cpu":
            # The compiled kernels scan whole rows of a symmetric matrix.
            inv_sym, n_active = _jl_kernels.inverse_distances(
                (Yb @ Yb.T).numpy(), sq.numpy(), self.tiny
            )
            self.inv_sym, self._inv_sym, self.n_active = inv_sym, inv_sym, int(n_active)
            return
        D = self._sqdist(Yb, Yb, sq, sq)
        upper = torch.ones_like(D, dtype=torch.bool).triu(1)
        mask = upper & (D > self.tiny)
        inv = torch.where(mask, 1.0 / D.clamp_min(self.tiny), torch.zeros_like(D))
        self._torch_pairs = (mask, mask.to(torch.float64), inv)
        self.inv_sym = None
        self.n_active = int(mask.sum())

    def _pairs(self):
        """``(mask, mask_f, inv)`` of the torch forms: the active pairs i < j,
        as booleans and floats, and their inverse squared distances (0
        elsewhere); on the CPU the upper triangle of ``inv_sym``, made on
        first use (``derandomize`` and the reference form use them; from
        the matrix ``set_points`` made, whatever ``inv_sym`` holds now)."""
        if self._torch_pairs is None:
            inv = torch.from_numpy(np.triu(self._inv_sym, 1))
            mask = inv > 0.0
            self._torch_pairs = (mask, mask.to(torch.float64), inv)
        return self._torch_pairs

    @property
    def compiled(self):
        """Whether the compiled kernels serve the objective: the dense pairs
        of a block on the CPU (``inv_sym``) or a working set (``csr``)."""
        return self.inv_sym is not None or self.csr is not None

    mask = property(lambda self: self._pairs()[0])
    mask_f = property(lambda self: self._pairs()[1])
    inv = property(lambda self: self._pairs()[2])

    def distortion_matrix(self, Pb):
        """Signed distortions of the active pairs (zeros elsewhere).

        ``Pb`` holds the images of the active points (``P[self.points]``).
        """
        G = Pb @ Pb.T
        g = torch.diagonal(G)
        return (g[:, None] + g[None, :] - 2.0 * G) * self.inv - self.mask_f

    def validation_max(self, P, max_pairs=None):
        """Max |distortion| over the pairs of validation points with all;
        above ``max_pairs`` such pairs, over those of random validation
        points (about ``max_pairs``)."""
        rows = self.val_idx
        if max_pairs is not None and rows.size * self.n > max_pairs:
            size = max(1, max_pairs // self.n)
            rows = np.sort(self.rng.choice(rows, size=size, replace=False))
        return self._max_over(P, rows, np.arange(self.n))[0]

    def all_points_max(self, P):
        """Max |distortion| over all pairs of the n points (validation
        points included), in chunks."""
        every = np.arange(self.n)
        return self._max_over(P, every, every)[0]

    def all_pairs_max(self, P, rows_out=0):
        """Max |distortion| over all fitted pairs (chunked, no gradient).

        With ``rows_out > 0`` also return the fitted points that take part in
        the worst pairs, for refreshing a block.
        """
        if self.dense and self.inv_sym is not None and not rows_out:
            lo, hi = self._kernel_ratio_range(P[self.points])
            return max(hi - 1.0, 1.0 - lo) if hi > 0.0 else 0.0
        if self.working_set:
            lo, hi = self.scan(P, self.sample_rows(_START_PAIRS), fast=True)[:2]
            return max(hi - 1.0, 1.0 - lo) if hi > 0.0 else 0.0
        value, worst = self._max_over(P, self.fit_idx, self.fit_idx)
        if not rows_out:
            return value
        order = np.argsort(-worst, kind="stable")[:rows_out]
        return value, self.fit_idx[order]

    def pca_distortion(self, k):
        """Max distortion over fitted pairs of PCA to k components, rescaled
        by its best single factor: (b - a) / (b + a) for ratios in [a, b].
        """
        return _rescaled_distortion(*self.pca_ratio_range(k))

    def pca_ratio_range(self, k, chunk=512):
        """Smallest and largest ratio ``||Yk_i - Yk_j||^2 / ||Y_i - Y_j||^2``
        over the fitted pairs, Yk the first k principal components.

        The row-space coordinates are principal components, sorted.
        """
        if self.dense and self.inv_sym is not None:
            return self._kernel_ratio_range(self.Yt[self.points, :k])
        if self.working_set:
            rows = self.sample_rows(_START_PAIRS)
            return self.scan(self.Yt[:, :k], rows, exact_range=True, fast=True)[:2]
        idx = torch.as_tensor(self.fit_idx, device=self.device)
        Y = self.Yt[idx]
        Yk = Y[:, :k]
        lo, hi = math.inf, 0.0
        gy, gk = (Y * Y).sum(1), (Yk * Yk).sum(1)
        for start in range(0, Y.shape[0], chunk):
            stop = min(start + chunk, Y.shape[0])
            D = self._sqdist(Y[start:stop], Y, gy[start:stop], gy)
            Dk = self._sqdist(Yk[start:stop], Yk, gk[start:stop], gk)
            rows = torch.arange(start, stop, device=self.device)
            ok = (D > self.tiny) & (
                rows[:, None] < torch.arange(Y.shape[0], device=self.device)[None, :]
            )
            if ok.any():
                ratio = Dk[ok] / D[ok]
                lo, hi = min(lo, float(ratio.min())), max(hi, float(ratio.max()))
        return lo, hi

    def _kernel_ratio_range(self, Pb):
        """Smallest and largest ratio over the active pairs (compiled)."""
        return _jl_kernels.ratio_range(_transposed(Pb), self.inv_sym)

    def _max_over(self, P, rows, cols, chunk=512):
        """Max |distortion| of pairs rows x cols, and the max per row."""
        if rows.size == 0 or cols.size == 0:
            return 0.0, np.zeros(rows.size)
        P = P.detach()
        cols_t = torch.as_tensor(cols, device=self.device)
        Pc, Yc = P[cols_t], self.Yt[cols_t]
        gpc, gyc = (Pc * Pc).sum(1), (Yc * Yc).sum(1)
        worst = []
        for start in range(0, rows.size, chunk):
            r = torch.as_tensor(rows[start : start + chunk], device=self.device)
            Pr, Yr = P[r], self.Yt[r]
            PD = self._sqdist(Pr, Pc, (Pr * Pr).sum(1), gpc)
            D = self._sqdist(Yr, Yc, (Yr * Yr).sum(1), gyc)
            ok = (D > self.tiny) & (r[:, None] != cols_t[None, :])
            dist = torch.where(
                ok, (PD / D.clamp_min(self.tiny) - 1.0).abs(), torch.zeros_like(D)
            )
            worst.append(dist.max(dim=1).values)
        worst = torch.cat(worst).cpu().numpy()
        return float(worst.max()), worst


@dataclass
class JLResult:
    """Outcome of :func:`fit_projection` (numpy only)."""

    components: np.ndarray
    distortion: float
    n_iter: int
    converged: bool
    grad_norm: float
    min_eig: float
    loss_curve: list = field(repr=False)
    sigma: float = 0.0
    sigma_curve: list = field(default_factory=list, repr=False)
    validation_distortion: float | None = None
    message: str = ""
    distortion_curve: list = field(default_factory=list, repr=False)
    report: "ScanReport | None" = None


def _on_row_space(problem, A0):
    """A0 restricted to the row space: B = A0 V (k x r); for the Gram
    reduction V = X^T coef, so B = (X A0^T)^T coef."""
    kind, basis = problem._basis
    if kind == "V":
        return A0 @ basis
    return np.asarray(problem.X @ A0.T).T @ problem.Y / basis


def _isometry_on_row_space(problem, A0):
    """Exact zero-distortion map when k >= rank: replace A0 on the row space
    by the nearest isometry (polar factor of A0 V), keep it elsewhere."""
    B = _on_row_space(problem, A0)
    U, _, Wt = np.linalg.svd(B, full_matrices=False)
    # A = A0 + (Q - B) V^T maps the row space isometrically (Q orthonormal
    # columns, the polar factor of B: the smallest change to A0).
    return problem.components(A0, U @ Wt - B)


def pca_start(problem, A0):
    """Row-space coefficients C making ``A0 + C V^T`` the first k principal
    directions times the factor that best centres their pair ratios, and
    the max training distortion of that projection (``(b - a) / (b + a)``
    for ratios in [a, b]). Off the row space the matrix stays A0."""
    k, r = A0.shape[0], problem.rank
    lo, hi = problem.pca_ratio_range(k)
    scale = math.sqrt(2.0 / (lo + hi)) if hi > 0.0 else 1.0
    E = np.zeros((k, r))
    E[np.arange(min(k, r)), np.arange(min(k, r))] = scale
    return E - _on_row_space(problem, A0), _rescaled_distortion(lo, hi)


def _rescaled_distortion(lo, hi):
    """Max distortion of pair ratios in [lo, hi] after the best single
    rescaling: (hi - lo) / (hi + lo); 0 without pairs, 1 if all collapse."""
    if hi == 0.0:
        return 0.0 if lo == math.inf else 1.0
    return (hi - lo) / (hi + lo)


def fit_projection(
    problem,
    A0,
    *,
    method="direct",
    init="gaussian",
    alpha=1.0,
    eps=0.1,
    max_iter=500,
    tol=1e-4,
    n_iter_no_change=20,
    solver=None,
    init_noise=0.5,
    n_quadrature=8,
    target=None,
    early_stopping=False,
    seed=0,
    verbose=0,
):
    """Learn a projection starting from the Gaussian matrix ``A0`` (k x d).

    ``init`` (``"direct"`` only): start from A0 (``"gaussian"``), from the
    rescaled principal directions of :func:`pca_start` (``"pca"``), or from
    whichever of the two has the lower max training distortion
    (``"best"``); A0 is kept off the row space either way. ``target``: stop
    as soon as the max training distortion is at or below it (used by the
    search for the smallest n_components). Returns a :class:`JLResult`.
    """
    k = A0.shape[0]
    device = problem.device
    opts = {"dtype": torch.float64, "device": device}
    generator = make_generator(seed)
    if problem.n_pairs == 0 or (problem.n_active == 0 and not problem.working_set):
        return JLResult(
            A0.copy(),
            0.0,
            1,
            True,
            0.0,
            0.0,
            [],
            message="no pairs of distinct points to preserve",
        )
    if k >= problem.rank and method == "direct":
        A = _isometry_on_row_space(problem, A0)
        return JLResult(
            A,
            _exact_max(problem, A),
            1,
            True,
            0.0,
            0.0,
            [],
            message="k >= rank of the data: exact isometry on its span",
        )
    P0 = torch.as_tensor(
        problem.X @ A0.T
        if not sp.issparse(problem.X)
        else np.asarray(problem.X @ A0.T),
        **opts,
    )
    P0 = P0 - P0.mean(0)  # translation does not change distances
    Y = problem.Yt
    if method == "direct":
        C0 = None
        if init != "gaussian":
            C0, pca_max = pca_start(problem, A0)
            if init == "best":
                if early_stopping:
                    # Judged on validation pairs: on sparse data the PCA
                    # start maps held-out points' own directions to 0
                    # (distortion 1, which no fitted pair's gradient moves).
                    with torch.no_grad():
                        P_pca = P0 + Y @ torch.as_tensor(C0, **opts).T
                    if problem.validation_max(
                        P0, _START_PAIRS
                    ) <= problem.validation_max(P_pca, _START_PAIRS):
                        C0 = None
                elif problem.all_pairs_max(P0) <= pca_max:
                    C0 = None
        fit = _fit_pairs if problem.working_set else _fit_direct
        return fit(
            problem,
            A0,
            P0,
            Y,
            C0=C0,
            alpha=alpha,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            solver=solver or "lbfgs",
            target=target,
            early_stopping=early_stopping,
            generator=generator,
            verbose=verbose,
            opts=opts,
        )
    return _fit_derandomize(
        problem,
        A0,
        P0,
        Y,
        alpha=alpha,
        eps=eps,
        max_iter=max_iter,
        tol=tol,
        n_iter_no_change=n_iter_no_change,
        solver=solver or "adam",
        init_noise=init_noise,
        n_quadrature=n_quadrature,
        target=target,
        early_stopping=early_stopping,
        generator=generator,
        verbose=verbose,
        opts=opts,
    )


def _exact_max(problem, A):
    """Max |distortion| of A over all pairs of the n points (validation
    points included), in chunks."""
    P = torch.as_tensor(
        np.asarray(problem.X @ A.T), dtype=torch.float64, device=problem.device
    )
    return problem.all_points_max(P - P.mean(0))


def _better(score, train, best_score, best_train):
    """Whether an iterate beats the best so far: a lower score, or the same
    score (validation maxima can tie, e.g. pairs mapped to one point) with
    a lower training max."""
    return score < best_score or (score == best_score and train < best_train)


class _Tracker:
    """Keeps the best iterate (by training or validation max distortion) and
    decides when progress has stalled or the target is met.

    Progress is a relative improvement of at least ``tol`` of the best
    score, or, when the score is the training max (no validation) and the
    caller passes the objective ``loss`` (``direct`` does), of the best
    loss: the max can sit on a plateau while the objective falls. With
    sparse data the PCA start maps some pairs to (nearly) one point; their
    distortion, the max, is then about 1 and moves only once the other
    pairs' steps have turned the matrix, which took 15 to 18 iterations on
    13 draws of sklearn's sparse setting and more than the 20 of patience
    at 0.5 % nonzeros (1000 x 1000, k = 10: the fit stopped at distortion
    1.0, against 0.613 now; see the sparse table of
    ``benchmarks/bench_jl.py``). With ``early_stopping`` the objective
    counts too (on that plateau the validation max is stuck at 1 as well;
    with validation scores alone the default fit of such data returned
    the start, distortion 1.0), and the iterate kept is the best on the
    validation pairs.
    """

    def __init__(self, tol, n_iter_no_change, target, use_validation):
        self.tol = tol
        self.patience = n_iter_no_change
        self.target = target
        self.use_validation = use_validation
        self.best = math.inf
        self.best_train = math.inf
        self.best_val = None
        self.best_params = None
        self.stall = 0
        self.best_loss = math.inf
        self.reached = False

    def offer(self, train_max, params, val_max=None, loss=None):
        score = val_max if self.use_validation else train_max
        progress = score < self.best * (1.0 - self.tol)
        if loss is not None:
            progress = progress or loss < self.best_loss * (1.0 - self.tol)
            self.best_loss = min(self.best_loss, loss)
        self.stall = 0 if progress else self.stall + 1
        if _better(score, train_max, self.best, self.best_train):
            self.best = score
            self.best_train = train_max
            self.best_val = val_max
            self.best_params = {k: v.detach().clone() for k, v in params.items()}
        if self.target is not None and score <= self.target:
            self.reached = True
        return self.reached or self.stall >= self.patience


class _Variable:
    """What ``direct`` optimises, and the images of the points it gives.

    By default the row-space coefficients C (k x r), with images ``P0 + Y
    C^T``. With sparse data (``problem.sparse``) the change of the matrix
    itself, ``B = V C^T`` (d x k, ``A = A0 + B^T``), with images ``P0 + (X -
    mean) B`` formed through the sparse matrix. V having orthonormal columns
    and every gradient ``(X - mean)^T G`` lying in their span, L-BFGS takes
    the same steps in B as in C (up to rounding), without the two dense
    (n, r) x (r, k) products per iteration.
    """

    def __init__(self, problem, A0, P0, Y, C):
        self.problem, self.P0, self.Y = problem, P0, Y
        self.sparse = problem.sparse
        if self.sparse is None:
            self.start = {"C": C}
        else:
            B = problem.components(np.zeros_like(A0), to_numpy(C)).T
            self.start = {"B": torch.as_tensor(B, dtype=P0.dtype)}

    def images(self, params):
        """Images of all n points."""
        if self.sparse is None:
            return torch.addmm(self.P0, self.Y, params["C"].T)
        return self.P0 + _SparseProduct.apply(params["B"], self.sparse)

    def images_of(self, points):
        """``params -> images of the points`` (global indices)."""
        idx = torch.as_tensor(points)
        P0b = self.P0[idx]
        if self.sparse is None:
            Yb = self.Y[idx]
            return lambda params: torch.addmm(P0b, Yb, params["C"].T)
        block = self.sparse.rows(np.asarray(points))
        return lambda params: P0b + _SparseProduct.apply(params["B"], block)

    def coefficient_map(self):
        """``(images, pullback)`` as in :meth:`active`, through the row-space
        coefficients C (the variable itself, or the certificate's)."""
        points = self.problem.points
        if points.numel() == self.problem.n:  # all points: no copies
            P0b, Yb = self.P0, self.Y
        else:
            P0b, Yb = self.P0[points], self.Y[points]
        return (
            lambda params: torch.addmm(P0b, Yb, params["C"].T),
            lambda G: {"C": (Yb.T @ G).T},
        )

    def active(self):
        """``(images, pullback)`` for the active points (the current block):
        ``params -> their images`` and ``G -> {name: G pulled back to the
        variable}``, the chain rule of ``images`` for a gradient ``G`` in
        the images (what autograd would give, for callers that bypass it)."""
        points = self.problem.points
        if self.sparse is None:
            return self.coefficient_map()
        if points.numel() == self.problem.n:
            P0b, block = self.P0, self.sparse
        else:
            P0b, block = self.P0[points], self.sparse.rows(points.cpu().numpy())

        def pullback(G):
            return {"B": torch.from_numpy(block.transposed_product(G.numpy()))}

        return lambda params: P0b + _SparseProduct.apply(params["B"], block), pullback

    def coefficients(self, params):
        """The row-space coefficients C of ``params`` (for B, of its
        projection on the row space: ``C = diag(1 / lambda) Y^T (X - mean)
        B``, lambda the squared column norms of Y)."""
        if self.sparse is None:
            return params["C"]
        with torch.no_grad():
            XB = _SparseProduct.apply(params["B"], self.sparse)
            return (self.Y.T @ XB / (self.Y * self.Y).sum(0)[:, None]).T


class _SparseImages:
    """Products with the centred data through a sparse matrix of it.

    ``S`` holds the points plus a constant row (the uncentred data, say);
    ``(X - mean) B = S B - 1 (mean_S^T B)`` and ``(X - mean)^T G = S^T G -
    mean_S (1^T G)``, with the column means of S. scipy's CSR products are
    serial, hence the same bits in any thread.
    """

    # Sparse products pay when the nonzeros are this many times fewer than
    # the n * r entries of Y: with 1000 x 1000 data and k = 10, scipy's
    # product took 0.04 ms at 1 % nonzeros and 0.28 ms at 10 %, the dense
    # (1000, 999) x (999, 10) one 0.3 ms.
    _SAVING = 8

    def __init__(self, S, mean=None):
        S = sp.csr_matrix(S, dtype=np.float64)
        S.sum_duplicates()
        self.S, self.St = S, S.T.tocsr()
        self.mean = np.asarray(S.mean(axis=0)).ravel() if mean is None else mean

    def rows(self, points):
        """The same products for the points ``points`` only."""
        return _SparseImages(self.S[points], self.mean)

    @classmethod
    def pays(cls, S, rank, device):
        n, d = S.shape
        return (
            device.type == "cpu"
            and S.nnz * cls._SAVING <= n * rank
            # B (d x k) not much larger than C (r x k): at 5000 tf-idf-like
            # rows in d = 20,000 (rank 4999, 0.2 % nonzeros, k = 50) the
            # sparse products (with the scans' distances, see :meth:`scan`)
            # took the fit from 113 s to 63 s; L-BFGS on the 10^6 entries of
            # B then costs about as much as the objective.
            and d <= 8 * max(rank, 1)
        )

    def product(self, B):
        return self.S @ B - self.mean @ B

    def transposed_product(self, G):
        return self.St @ G - np.outer(self.mean, G.sum(axis=0))


class _SparseProduct(torch.autograd.Function):
    """``(X - mean) B`` through :class:`_SparseImages` (first derivatives
    only: the certificate works in the coefficients C)."""

    @staticmethod
    def forward(ctx, B, images):
        ctx.images = images
        return torch.from_numpy(images.product(B.detach().numpy()))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        return torch.from_numpy(ctx.images.transposed_product(G.numpy())), None


def _stage_objective(problem, images, pullback, p, alpha, state):
    """``(objective, value_and_grad)`` of one stage for :func:`minimize`:
    the direct objective of the active pairs as a function of the variable
    (``images``: params -> images of the active points; ``pullback``: their
    gradient -> the variable's), each recording the max |delta| it saw in
    ``state["train_max"]``. ``value_and_grad`` (None without compiled
    kernels) takes the gradient in the images from the compiled pass and
    applies the chain rule with one product, without autograd's
    bookkeeping: the same iterates, digits fits (k = 16, 32) in 0.25 and
    0.44 s against 0.30 and 0.50 s."""

    def objective(params):
        value, top = _DirectObjective.apply(images(params), problem, p, alpha)
        state["train_max"] = float(top)
        return value

    if not problem.compiled:
        return objective, None

    def value_and_grad(params):
        with torch.no_grad():
            Pb = images(params)
        stats, gP = _kernel_value_and_gradient(Pb, problem, p, alpha)
        state["train_max"] = float(stats[4])
        value = _direct_value(stats, p, alpha, problem.n_active)
        return Pb.new_tensor(value), pullback(gP)

    return objective, value_and_grad


def _fit_direct(
    problem,
    A0,
    P0,
    Y,
    *,
    C0=None,
    alpha,
    max_iter,
    tol,
    n_iter_no_change,
    solver,
    target,
    early_stopping,
    generator,
    verbose,
    opts,
):
    """Power-mean minimax over the pairs, p raised in stages.

    With all pairs at once (dense) each stage is one run. With a block of
    rows, each stage is a sequence of rounds: optimise on the block, measure
    the exact max over all pairs, move the block toward the worst points.
    The best iterate is chosen on the exact (or validation) max distortion.
    """
    k = A0.shape[0]
    C = torch.zeros(k, problem.rank, **opts) if C0 is None else C0
    C = torch.as_tensor(C, **opts)
    variable = _Variable(problem, A0, P0, Y, C)
    params = variable.start
    state = {"train_max": math.inf}
    loss_curve = []
    distortion_curve = []
    n_iter = 0
    res = None
    # The start is a candidate too: the result is never worse than it on
    # the training pairs (or, with early stopping, on the validation pairs).
    with torch.no_grad():
        P_start = variable.images(params)
    train = problem.all_pairs_max(P_start)
    val = problem.validation_max(P_start) if early_stopping else None
    best = {
        "score": val if early_stopping else train,
        "train": train,
        "val": val,
        "params": params,
    }
    reached = False
    budgets = _stage_budgets(max_iter)
    for p, budget in zip(_P_STAGES, budgets):
        if budget == 0:
            continue
        n_rounds = 1 if problem.dense else max(1, math.ceil(budget / _ROUND))
        for round_ in range(n_rounds):
            if not problem.dense and (round_ > 0 or p != _P_STAGES[0]):
                _refresh_block(problem, variable.images(params))
            images, pullback = variable.active()

            objective, value_and_grad = _stage_objective(
                problem, images, pullback, p, alpha, state
            )

            tracker = _Tracker(
                tol, n_iter_no_change, target if problem.dense else None, early_stopping
            )

            def callback(info, tracker=tracker, p=p):
                distortion_curve.append(state["train_max"])
                val = None
                if early_stopping:
                    with torch.no_grad():
                        val = problem.validation_max(variable.images(info.params))
                stop = tracker.offer(state["train_max"], info.params, val, info.loss)
                if verbose >= 2 and info.n_iter % 50 == 0:
                    extra = "" if val is None else f", validation max {val:.4f}"
                    print(
                        f"  [p={p:g}] iter {info.n_iter}: loss {info.loss:.5f}, "
                        f"max distortion {state['train_max']:.4f}{extra}"
                    )
                return stop

            round_budget = budget if problem.dense else min(_ROUND, budget)
            res = minimize(
                objective,
                params,
                method=solver,
                rho=1e-7,
                max_iter=round_budget,
                generator=generator,
                callback=callback,
                max_lanczos=20,
                certify_at_end=False,
                value_and_grad=value_and_grad,
            )
            n_iter += res.n_iter
            loss_curve.extend(res.loss_curve)
            params = tracker.best_params or res.params
            if problem.dense:
                train, val = tracker.best_train, tracker.best_val
            else:
                P = variable.images(params)
                train = problem.all_pairs_max(P)
                val = problem.validation_max(P) if early_stopping else None
            score = val if early_stopping else train
            if _better(score, train, best["score"], best["train"]):
                best = {"score": score, "train": train, "val": val, "params": params}
            reached = target is not None and score <= target
            if reached:
                break
        if verbose:
            print(
                f"stage p={p:g}: best max distortion {best['train']:.4f} "
                f"({res.message})"
            )
        if reached:
            break
        if target is not None and best["score"] > _PRUNE * target:
            # The later stages improve the first stage's max by ~20-30%:
            # this k cannot reach the target (used by the n_components search).
            break
        params = best["params"]
    stopped_early = "callback" in res.message or res.converged
    message = res.message
    if message.startswith("reached max_iter"):
        # res counted one stage's (or round's) share, not the caller's max_iter
        message = f"the stages used all {sum(budgets)} iterations of max_iter"
    if early_stopping:
        # The fit judged validation pairs; report the training max over all
        # points' pairs (validation points included), as without it.
        with torch.no_grad():
            best["train"] = problem.all_points_max(variable.images(best["params"]))
    # One certificate, at the returned (best) iterate, for the last stage's
    # objective as a function of the row-space coefficients C.
    C = variable.coefficients(best["params"])
    images, _ = variable.coefficient_map()

    def last_objective(params):
        return _DirectObjective.apply(images(params), problem, p, alpha)[0]

    cert = certify(last_objective, {"C": C}, 1e-7, max_lanczos=20, generator=generator)
    A = problem.components(A0, to_numpy(C))
    return JLResult(
        components=A,
        distortion=best["train"],
        n_iter=n_iter,
        converged=reached or stopped_early,
        grad_norm=cert.grad_norm,
        min_eig=cert.min_eig,
        loss_curve=loss_curve,
        validation_distortion=best["val"],
        message=message,
        distortion_curve=distortion_curve,
    )


# The working set (:func:`_fit_pairs`): per fitted point, random partners and
# nearest neighbours to start with, then at every scan the partners of
# largest distortion of each scanned point.
_N_RANDOM = 8
_N_NEAR = 8
_N_WORST = 8
# Iterations between scans. On 10^4 mixture points (d = 300, k = 32,
# random_state 0, 1, 2) every 25 gave max distortion 0.473-0.476 in 21-24
# s, every 50 0.57-0.69; 25 then 50 in the second stage 0.472-0.495 in
# 19-20 s but, on 3000 points, 0.997 at k = 8 (the start: every scan found
# pairs 10-50 % above the set's max) against 0.865 with 25; 50 only after
# a scan within 10 % of the set's max, 0.937 there, and 5 % off the time
# at 10^4.
_PAIR_ROUND = 25
# Stages of p: on 10^4 points of a 20-cluster mixture (d = 300, k = 32) the
# first stage at p = 8 left the max above the start's (0.97 against 0.95),
# the working set missing most violators; from p = 32, 0.476 against 0.567
# with the three stages, and 0.67 with p = 128 alone.
_PAIR_STAGES = (32.0, 128.0)
_PAIR_SHARE = (0.3, 0.7)
# Fitted points up to which every scan covers all pairs; above, each scan
# covers random rows, about _SCAN_PAIRS pairs.
_EXACT_SCAN = 20_000
# Fitted points the working set starts on (a random sample above).
_ACTIVE_POINTS = 20_000
# Fitted points up to which the reported distortion is the exact max over
# all pairs (one blocked scan in float64 at the end).
_EXACT_REPORT = 30_000
_SCAN_PAIRS = 10**8
# The start (the better of the Gaussian and the PCA start, the PCA factor)
# is judged on the pairs of random rows, about this many.
_START_PAIRS = 10**7
# Validation pairs (early stopping with a working set): all pairs of the
# validation points with all points up to 10^6 of them; above, 2.5 * 10^5
# pairs among at most 5000 points (each iteration's validation max: images
# of those points and one pass over the pairs).
_VALIDATION_PAIRS = 10**6
_VALIDATION_SAMPLE = 250_000
_VALIDATION_POINTS = 5000


@dataclass
class ScanReport:
    """What the final scan of a working-set fit checked (numpy only)."""

    exact: bool
    n_checked: int
    n_sampled: int = 0
    n_exceed: int = 0


def _scan_rows(problem):
    """The rows of one scan: all fitted points up to _EXACT_SCAN of them,
    else random rows whose pairs number about _SCAN_PAIRS."""
    return problem.sample_rows(
        problem.n_pairs * 2 if problem.exact_scan else _SCAN_PAIRS
    )


def _scanned(n_points, n_rows):
    """Distinct pairs a scan of ``n_rows`` of ``n_points`` points against
    all of them covers."""
    return n_rows * (n_points - 1) - n_rows * (n_rows - 1) // 2


# Pairs of the uniform sample behind the sampled report (large n).
_SAMPLE_PAIRS = 10**6


def _final_report(problem, P):
    """``(distortion, ScanReport)`` of the images P of all n points, over
    all their pairs (validation points included), in float64.

    Up to _EXACT_REPORT points, the exact max (blocked scan). Above, the max
    over the pairs checked: the working set and the pairs of random rows
    with all points; then, on a fresh uniform sample of _SAMPLE_PAIRS pairs
    (not used for that max), how many exceed it, for a confidence bound on
    the share of all pairs above it.
    """
    n = problem.n
    every = np.arange(n)
    if n <= _EXACT_REPORT:
        lo, hi = problem.scan(P, every, cols=every)[:2]
        value = max(hi - 1.0, 1.0 - lo) if hi > 0.0 else 0.0
        return value, ScanReport(True, n * (n - 1) // 2)
    rows = problem.sample_rows(_SCAN_PAIRS, pool=every)
    lo, hi = problem.scan(P, rows, cols=every)[:2]
    value = max(hi - 1.0, 1.0 - lo, problem.pairs_max(P[problem.points]))
    # Distinct pairs checked: those of the scanned rows, plus the working
    # set's pairs that touch none of them.
    in_rows = np.zeros(n, dtype=bool)
    in_rows[rows] = True
    i, j = problem.keys // n, problem.keys % n
    outside = int(np.count_nonzero(~(in_rows[i] | in_rows[j])))
    n_checked = _scanned(n, rows.size) + outside
    a = problem.rng.randint(n, size=_SAMPLE_PAIRS)
    c = problem.rng.randint(n - 1, size=_SAMPLE_PAIRS)
    c += c >= a
    D = problem.pair_sqdist(a, c)
    ok = D > problem.tiny
    a, c, D = a[ok], c[ok], D[ok]
    ratio = problem.pair_sqdist(a, c, P.detach().numpy()) / D
    n_exceed = int(np.count_nonzero(np.abs(ratio - 1.0) > value))
    return value, ScanReport(False, n_checked, a.size, n_exceed)


def _fit_pairs(
    problem,
    A0,
    P0,
    Y,
    *,
    C0=None,
    alpha,
    max_iter,
    tol,
    n_iter_no_change,
    solver,
    target,
    early_stopping,
    generator,
    verbose,
    opts,
):
    """:func:`_fit_direct` on a working set of pairs (large n).

    The objective runs over a set of pairs held as a sparse matrix
    (compiled kernels, cost linear in its size) on a set of active points:
    up to ``_ACTIVE_POINTS`` fitted points (all of them, or a random
    sample), each with ``_N_RANDOM`` random partners and its ``_N_NEAR``
    nearest neighbours among them. After every ``_PAIR_ROUND`` iterations
    a blocked scan (all fitted points up to ``_EXACT_SCAN``, random rows of
    them above) adds, for each point it covers, the ``_N_WORST`` partners
    of largest distortion above 0.9 of the set's max, and their endpoints
    become active. Each stage of p runs rounds until one stalls with no
    violator outside the set; the iterate kept is the best on the scans
    (exact max when they cover all pairs), the start included.
    """
    k = A0.shape[0]
    C = torch.zeros(k, problem.rank, **opts) if C0 is None else C0
    C = torch.as_tensor(C, **opts)
    variable = _Variable(problem, A0, P0, Y, C)
    params = variable.start
    fit_idx = problem.fit_idx

    def log(message):
        if verbose:
            print(message, flush=True)

    with torch.no_grad():
        P = variable.images(params)
    sample = fit_idx
    if fit_idx.size > _ACTIVE_POINTS:
        sample = np.sort(problem.rng.choice(fit_idx, _ACTIVE_POINTS, replace=False))
    lo, hi, worst, near = problem.scan(
        P, sample, _N_WORST, _N_NEAR, fast=True, cols=sample
    )
    rows = [*problem.random_partners(sample, _N_RANDOM, sample), worst, near]
    scan_rows = _scan_rows(problem)
    if sample.size < fit_idx.size:  # the start on the scans of the rounds
        lo, hi, worst, _ = problem.scan(P, scan_rows, _N_WORST, fast=True)
        rows.append(worst)
    start = max(hi - 1.0, 1.0 - lo)
    problem.set_pairs(
        np.concatenate([rows[0]] + [r[0] for r in rows[2:]]),
        np.concatenate([rows[1]] + [r[1] for r in rows[2:]]),
        points=sample,
    )
    val_images = None
    if early_stopping:
        problem.set_validation_pairs(
            _VALIDATION_PAIRS, _VALIDATION_SAMPLE, _VALIDATION_POINTS
        )
        val_images = variable.images_of(problem.val_points)

    def validation(params):
        with torch.no_grad():
            return problem.pairs_max(val_images(params), problem.val_csr)

    log(
        f"working set: {problem.n_active:,} pairs on {problem.points.numel():,} "
        f"points, of {problem.n_pairs:,} pairs; start: max distortion "
        f"{start:.4f} over {_scanned(fit_idx.size, scan_rows.size):,} pairs"
    )
    val = validation(params) if early_stopping else None
    best = {
        "score": val if early_stopping else start,
        "train": start,
        "val": val,
        "params": params,
    }
    state = {"train_max": math.inf}
    loss_curve, distortion_curve = [], []
    n_iter = 0
    stopped = reached = False
    budgets = _stage_budgets(max_iter, _PAIR_SHARE)
    for p, budget in zip(_PAIR_STAGES, budgets):
        used = 0
        stopped = False
        while used < budget and not stopped:
            round_budget = min(_PAIR_ROUND, budget - used)
            images, pullback = variable.active()

            objective, value_and_grad = _stage_objective(
                problem, images, pullback, p, alpha, state
            )

            tracker = _Tracker(tol, n_iter_no_change, None, early_stopping)

            def callback(info, tracker=tracker):
                distortion_curve.append(state["train_max"])
                val = validation(info.params) if early_stopping else None
                return tracker.offer(state["train_max"], info.params, val, info.loss)

            res = minimize(
                objective,
                params,
                method=solver,
                rho=1e-7,
                max_iter=round_budget,
                generator=generator,
                callback=callback,
                max_lanczos=20,
                certify_at_end=False,
                value_and_grad=value_and_grad,
            )
            used += res.n_iter
            n_iter += res.n_iter
            loss_curve.extend(res.loss_curve)
            # The candidate is the round's best iterate (on the validation
            # pairs, or on the working set). With validation the next round
            # goes on from the last iterate: from the candidate it would
            # retrace the same steps whenever validation did not improve.
            candidate = tracker.best_params or res.params
            params = res.params if early_stopping else candidate
            with torch.no_grad():
                P = variable.images(params)
            n_before = problem.n_active
            set_max = problem.pairs_max(P[problem.points])
            scan_rows = _scan_rows(problem)
            # Violators: each scanned point's worst partners above 0.9 of
            # the set's max (float32: violators need no exact ratios).
            lo, hi, worst, _ = problem.scan(
                P, scan_rows, _N_WORST, above=0.9 * set_max, fast=True
            )
            scanned = max(hi - 1.0, 1.0 - lo)
            train = seen = max(set_max, scanned)
            problem.set_pairs(*worst)
            if early_stopping:  # the candidate's training max is not scanned
                val, train = tracker.best_val, math.nan
                score = val
            else:
                val, score = None, train
            if _better(score, train, best["score"], best["train"]):
                best = {
                    "score": score,
                    "train": train,
                    "val": val,
                    "params": candidate,
                }
            # A round that stalled with no violator outside the set ends
            # the stage; so does reaching the target.
            stopped = res.n_iter < round_budget and scanned <= set_max * (1.0 + tol)
            reached = target is not None and best["score"] <= target
            stopped = stopped or reached
            log(
                f"  [p={p:g}] {n_iter} iterations: max distortion {seen:.4f} "
                f"(working set {set_max:.4f}, scan {scanned:.4f}); "
                f"{problem.n_active - n_before:,} pairs added, "
                f"{problem.n_active:,} in the set on {problem.points.numel():,} points"
            )
        log(
            f"stage p={p:g}: best max distortion {best['score']:.4f}"
            + (" (validation pairs)" if early_stopping else "")
        )
        if not early_stopping:
            params = best["params"]
        if reached:
            break
    message = (
        "the target distortion was reached"
        if reached
        else "every stage stalled"
        if stopped
        else f"the stages used all {max_iter} iterations of max_iter"
    )
    C = variable.coefficients(best["params"])
    coef_images, _ = variable.coefficient_map()

    def last_objective(params):
        return _DirectObjective.apply(coef_images(params), problem, p, alpha)[0]

    cert = certify(last_objective, {"C": C}, 1e-7, max_lanczos=20, generator=generator)
    A = problem.components(A0, to_numpy(C))
    with torch.no_grad():
        distortion, report = _final_report(problem, variable.images(best["params"]))
    log(
        f"max distortion {distortion:.4f} "
        + (
            "(exact, all pairs)"
            if report.exact
            else f"over {report.n_checked:,} pairs checked; {report.n_exceed} of "
            f"{report.n_sampled:,} other random pairs above it"
        )
    )
    return JLResult(
        components=A,
        distortion=distortion,
        n_iter=n_iter,
        converged=stopped,
        report=report,
        grad_norm=cert.grad_norm,
        min_eig=cert.min_eig,
        loss_curve=loss_curve,
        validation_distortion=best["val"],
        message=message,
        distortion_curve=distortion_curve,
    )


def _refresh_block(problem, P):
    """Block mode: half the points from the worst pairs, half at random."""
    size = problem.block_size
    _, worst = problem.all_pairs_max(P, rows_out=max(1, size // 2))
    rest = np.setdiff1d(problem.fit_idx, worst)
    extra = problem.rng.choice(
        rest, size=min(rest.size, size - worst.size), replace=False
    )
    problem.set_points(np.concatenate([worst, extra]))


def _distortion_loss_terms(Pb, inv, mask_f, p, alpha, n_active):
    """Differentiable reference form of the direct objective (autograd)."""
    G = Pb @ Pb.T
    g = torch.diagonal(G)
    delta = (g[:, None] + g[None, :] - 2.0 * G) * inv - mask_f
    top = delta.detach().abs().max().clamp_min(1e-300)
    q = (delta / top) ** 2
    for _ in range(round(math.log2(p)) - 1):
        q = q * q
    power_mean = top * (q.sum() / n_active) ** (1.0 / p)
    return power_mean + alpha * (delta * delta).sum() / n_active


def _kernel_coefs(scale, mean, p, alpha, n_active):
    """Coefficients of dL/d delta and of the rank-one Hessian term for the
    compiled kernels (:mod:`._jl_kernels`, whose docstring writes ``top``
    for ``scale``: any positive scale gives the same derivatives), with
    ``mean`` the mean of (delta / scale)^p."""
    if mean <= 0.0:  # every distortion is zero: the power mean is flat
        return 0.0, 2.0 * alpha / n_active, 0.0
    coef_power = mean ** (1.0 / p - 1.0) / n_active
    coef_rank1 = (1.0 - p) * mean ** (1.0 / p - 2.0) / (n_active * n_active * scale)
    return coef_power, 2.0 * alpha / n_active, coef_rank1


def _transposed(T):
    """(k, n) C-contiguous numpy copy of an (n, k) CPU tensor, as the
    compiled kernels take it."""
    return np.ascontiguousarray(T.detach().numpy().T)


def _compiled_layout(Pb, problem):
    """The images as the compiled kernels take them: (k, n) transposed for
    the dense pairs of a block, (n, k) rows for a working set of pairs."""
    if problem.csr is not None:
        return np.ascontiguousarray(Pb.detach().numpy())
    return _transposed(Pb)


def _compiled_value(X, problem, log2p, scale=None):
    """``(top, power_sum, square_sum)`` over the active pairs (compiled);
    the power sum of (delta / scale)^p, scale the max |delta| by default."""
    if problem.csr is None:
        if scale is None:
            return _jl_kernels.direct_value(X, problem.inv_sym, log2p)
        return _jl_kernels.direct_value_and_parts(X, problem.inv_sym, log2p, scale)[:3]
    if scale is None:
        top = _jl_kernels.pairs_value_and_parts(X, *problem.csr, 1, 1.0, False)[0]
        if log2p == 0:
            return top, 0.0, 0.0
        scale = max(top, 1e-300)
    return _jl_kernels.pairs_value_and_parts(X, *problem.csr, log2p, scale, False)[:3]


def _compiled_parts(X, problem, log2p, scale):
    """Value statistics and the two gradient parts (n x k), see
    :func:`._jl_kernels.direct_value_and_parts`."""
    if problem.csr is None:
        return _jl_kernels.direct_value_and_parts(X, problem.inv_sym, log2p, scale)
    return _jl_kernels.pairs_value_and_parts(X, *problem.csr, log2p, scale, True)


def _kernel_stats(Pb, problem, p):
    """``(X, scale, mean, square_sum, top)`` (compiled): the images in the
    kernels' layout, the scale of the power mean (here the max |delta|),
    the mean of (delta / scale)^p, the sum of delta^2 and the max |delta|."""
    X = _compiled_layout(Pb, problem)
    top, power_sum, square_sum = _compiled_value(X, problem, round(math.log2(p)))
    scale = max(top, 1e-300)
    return X, scale, power_sum / problem.n_active, square_sum, top


# The fused pass scales the powers by the previous max |delta|; it is redone
# with the new max when that moved by more than this factor (keeping
# (delta / scale)^128 far from overflow and underflow).
_SCALE_DRIFT = 8.0


def _kernel_value_and_gradient(Pb, problem, p, alpha):
    """Stats as in :func:`_kernel_stats` and the gradient in P, in one
    compiled pass (1.7 ms for 1000 points, k = 10, against 1.2 + 2.1 ms for
    the value pass and a separate gradient pass)."""
    X = _compiled_layout(Pb, problem)
    log2p = round(math.log2(p))
    scale = problem.scale_hint
    if scale is None:
        scale = max(_compiled_value(X, problem, 0)[0], 1e-300)
    parts = _compiled_parts(X, problem, log2p, scale)
    top = parts[0]
    if not (scale / _SCALE_DRIFT <= top <= scale * _SCALE_DRIFT or top == 0.0):
        # The max moved too far: redo with the max this pass found.
        scale = max(top, 1e-300)
        parts = _compiled_parts(X, problem, log2p, scale)
    top, power_sum, square_sum, G1, G2 = parts
    problem.scale_hint = max(top, 1e-300)
    mean = power_sum / problem.n_active
    gradient = _combine_parts(G1, G2, scale, mean, p, alpha, problem.n_active)
    return (X, scale, mean, square_sum, top), gradient


def _direct_value(stats, p, alpha, n_active):
    """The direct objective from the stats of the compiled passes."""
    _, scale, mean, square_sum, _ = stats
    return scale * mean ** (1.0 / p) + alpha * square_sum / n_active


class _DirectObjective(torch.autograd.Function):
    """Power mean of |delta| (p a power of two) + alpha * mean(delta^2).

    Returns the value and (non-differentiable) the max |delta| of the
    active pairs. Same value as :func:`_distortion_loss_terms`. On the CPU
    the compiled kernels of :mod:`._jl_kernels` give the value alone (1.2
    ms for 1000 points and k = 10), the value with its gradient when one
    will be asked for (one pass, 1.7 ms, the gradient kept for the
    backward) and Hessian-vector products (3.4 ms), against 20 ms for
    torch's forward and backward and 90 ms for an autograd HVP.
    Elsewhere the backward is hand-written in torch: dL/dP = 2 (diag(W 1) -
    W) P with W = (dL/ddelta * inv) symmetrised, and when a graph is
    requested through it (Hessian-vector products), it defers to the
    autograd form.
    """

    @staticmethod
    def forward(ctx, Pb, problem, p, alpha):
        ctx.problem, ctx.p, ctx.alpha = problem, p, alpha
        n_active = problem.n_active
        if problem.compiled:
            if ctx.needs_input_grad[0]:
                ctx.stats, ctx.grad = _kernel_value_and_gradient(Pb, problem, p, alpha)
            else:
                ctx.stats, ctx.grad = _kernel_stats(Pb, problem, p), None
            value = _direct_value(ctx.stats, p, alpha, n_active)
            top = ctx.stats[4]
            ctx.save_for_backward(Pb)
            top = Pb.new_tensor(top)
            ctx.mark_non_differentiable(top)
            return Pb.new_tensor(value), top
        G = Pb @ Pb.T
        g = torch.diagonal(G)
        delta = (g[:, None] + g[None, :] - 2.0 * G).mul_(problem.inv)
        delta.sub_(problem.mask_f)
        top = delta.abs().max().clamp_min(1e-300)
        q = (delta / top) ** 2
        for _ in range(round(math.log2(p)) - 1):
            q = q * q  # (delta / top)^p
        mean = q.sum() / n_active
        value = top * mean ** (1.0 / p) + alpha * (delta * delta).sum() / n_active
        ctx.save_for_backward(Pb, delta, top, mean)
        ctx.mark_non_differentiable(top)
        return value, top

    @staticmethod
    def backward(ctx, grad, _grad_top):
        problem, p, alpha = ctx.problem, ctx.p, ctx.alpha
        n_active = problem.n_active
        if problem.compiled:
            (Pb,) = ctx.saved_tensors
            if torch.is_grad_enabled():
                gP = _DirectGradient.apply(Pb, problem, p, alpha, ctx.stats, ctx.grad)
            else:
                gP = ctx.grad
            return grad * gP, None, None, None
        Pb, delta, top, mean = ctx.saved_tensors
        if torch.is_grad_enabled():
            # A graph through the gradient is wanted (Hessian-vector
            # products): recompute with autograd from the saved input.
            value = _distortion_loss_terms(
                Pb, problem.inv, problem.mask_f, p, alpha, n_active
            )
            (gP,) = torch.autograd.grad(value, Pb, create_graph=True)
            return grad * gP, None, None, None
        # d/d delta of top * mean^(1/p) is mean^(1/p - 1) (delta/top)^(p-1) / n;
        # z^(p-1) = z * z^2 * z^4 * ... * z^(p/2), by repeated squaring.
        z = delta / top
        dL = z.clone()
        for _ in range(round(math.log2(p)) - 1):
            z = z * z
            dL *= z
        dL *= mean ** (1.0 / p - 1.0) / n_active
        dL += (2.0 * alpha / n_active) * delta
        W = dL.mul_(problem.inv)
        W = W + W.T
        gP = 2.0 * (W.sum(1)[:, None] * Pb - W @ Pb)
        return grad * gP, None, None, None


def _combine_parts(G1, G2, scale, mean, p, alpha, n_active):
    """The gradient ``2 (coef_power G1 + coef_square G2)`` (in G1's memory)."""
    coef_power, coef_square, _ = _kernel_coefs(scale, mean, p, alpha, n_active)
    G1 *= 2.0 * coef_power
    G1 += (2.0 * coef_square) * G2
    return torch.from_numpy(G1)


class _DirectGradient(torch.autograd.Function):
    """The gradient of :class:`_DirectObjective` in P (already computed by
    its forward's fused pass), whose own backward is the compiled
    Hessian-vector product: what autograd needs for the curvature
    certificate, with no graph through the n x n passes."""

    @staticmethod
    def forward(ctx, Pb, problem, p, alpha, stats, gradient):
        ctx.problem, ctx.p, ctx.alpha, ctx.stats = problem, p, alpha, stats
        return gradient.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, V):
        problem, p, alpha = ctx.problem, ctx.p, ctx.alpha
        X, scale, mean = ctx.stats[:3]
        coefs = _kernel_coefs(scale, mean, p, alpha, problem.n_active)
        log2p = round(math.log2(p))
        if problem.csr is not None:
            V = np.ascontiguousarray(V.numpy())
            hv = _jl_kernels.pairs_hvp(X, V, *problem.csr, log2p, scale, coefs)
        else:
            Vt = _transposed(V)
            hv = _jl_kernels.direct_hvp(X, Vt, problem.inv_sym, log2p, scale, *coefs)
        return torch.from_numpy(hv), None, None, None, None, None


def _fit_derandomize(
    problem,
    A0,
    P0,
    Y,
    *,
    alpha,
    eps,
    max_iter,
    tol,
    n_iter_no_change,
    solver,
    init_noise,
    n_quadrature,
    target,
    early_stopping,
    generator,
    verbose,
    opts,
):
    """The paper's formulation: a Gaussian sampler A = M + sigma Z.

    Per pair with unit difference u, ||A u||^2 = (||M u|| + sigma g)^2 +
    sigma^2 c with g ~ N(0, 1) and c ~ chi2_{k-1} independent. The smoothed
    violation indicator (C2 cubic ramps of width eps / 4 inside the band
    [1 - eps, 1 + eps]) is integrated exactly over g and by generalised
    Gauss-Laguerre over c: no Monte Carlo noise. The noise scale is
    ``sigma = sigma0 * t`` with t the optimised parameter (starting at 1), so
    the penalty alpha * sigma^2 acts on the sampler's own scale.
    """
    k = A0.shape[0]
    beta = float(init_noise)
    sigma0 = beta / math.sqrt(k)
    M0 = math.sqrt(max(1.0 - beta * beta, 0.0))
    if k > 1:
        nodes, weights = roots_genlaguerre(n_quadrature, (k - 1) / 2.0 - 1.0)
        c_nodes = torch.as_tensor(2.0 * nodes, **opts)
        c_weights = torch.as_tensor(weights / weights.sum(), **opts)
    else:
        c_nodes = torch.zeros(1, **opts)
        c_weights = torch.ones(1, **opts)
    width = eps / 4.0
    low, high = 1.0 - eps, 1.0 + eps - width
    params0 = {"C": torch.zeros(k, problem.rank, **opts), "t": torch.ones(1, **opts)}
    tracker = _Tracker(tol, n_iter_no_change, target, early_stopping)
    state = {"train_max": math.inf}
    sigma_curve = []

    P0b, Yb = M0 * P0[problem.points], Y[problem.points]

    def objective(params):
        delta = problem.distortion_matrix(P0b + Yb @ params["C"].T)
        state["train_max"] = float(delta.detach().abs().max())
        r2 = (delta + 1.0)[problem.mask]
        # ||M u|| smoothed at 0 (the expectation is even in it): sqrt alone
        # has an infinite derivative there, e.g. at the paper's start M = 0.
        r = torch.sqrt(r2.clamp_min(0.0) + 1e-16)[:, None]
        sigma = sigma0 * params["t"].abs()
        shift = sigma * sigma * c_nodes
        inside = expected_smoothed_step_of_square(
            r, sigma, low - shift, width
        ) - expected_smoothed_step_of_square(r, sigma, high - shift, width)
        violated = 1.0 - inside @ c_weights
        return violated.mean() + alpha * (sigma * sigma).sum()

    distortion_curve = []

    def callback(info):
        sigma = sigma0 * float(info.params["t"].abs())
        sigma_curve.append(sigma)
        distortion_curve.append(state["train_max"])
        val = None
        if early_stopping:
            with torch.no_grad():
                val = problem.validation_max(M0 * P0 + Y @ info.params["C"].T)
        # Candidates are judged on their mean M (the deterministic answer).
        stop = tracker.offer(state["train_max"], info.params, val)
        if verbose >= 2 and info.n_iter % 50 == 0:
            print(
                f"  iter {info.n_iter}: loss {info.loss:.5f}, sigma {sigma:.5f}, "
                f"max distortion of M {state['train_max']:.4f}"
            )
        # Only stop on stalling once the sampler is (nearly) deterministic.
        return tracker.reached or (stop and sigma <= 1e-3 * max(sigma0, 1e-12))

    lr = 1e-3 if solver == "adam" else None
    # The noise scale t is one number that must travel from 1 to 0, while C
    # has k * rank entries; Adam moves each coordinate by about lr per step.
    res = minimize(
        objective,
        params0,
        method=solver,
        rho=1e-6,
        lr=lr,
        lr_scale={"t": 3.0},
        max_iter=max_iter,
        generator=generator,
        callback=callback,
        max_lanczos=20,
    )
    # The paper's answer is the final (derandomized) mean; with early
    # stopping, the iterate best on validation pairs, with its own sigma.
    chosen = (
        tracker.best_params if early_stopping and tracker.best_params else res.params
    )
    components = problem.components(M0 * A0, to_numpy(chosen["C"]))
    sigma = sigma0 * float(chosen["t"].abs())
    distortion = _exact_max(problem, components)
    if verbose:
        print(
            f"derandomize: {res.n_iter} iterations, sigma {sigma0:.4f} -> "
            f"{sigma:.2e}, max distortion of the mean {distortion:.4f}"
        )
    return JLResult(
        components=components,
        distortion=distortion,
        n_iter=res.n_iter,
        converged=res.converged or tracker.reached or "callback" in res.message,
        grad_norm=res.grad_norm,
        min_eig=res.min_eig,
        loss_curve=res.loss_curve,
        sigma=sigma,
        sigma_curve=sigma_curve,
        validation_distortion=tracker.best_val if early_stopping else None,
        message=res.message,
        distortion_curve=distortion_curve,
    )
