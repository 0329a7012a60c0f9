"""Matrix completion: observed entries, stored as indices, matrix-free.

Convention (docs/conventions.md): with Ω = {(rows_i, cols_i)} the m observed
entries of an n1 × n2 matrix,

    𝒜(M)_i = c · M[rows_i, cols_i],     𝒜*(z) = c Σ_i z_i e_{rows_i} e_{cols_i}ᵀ,
    c = √(n1 n2 / m),

so that 𝒜*𝒜 = I in expectation when Ω is sampled uniformly. The factored
calls cost O(m k) and never form an n1 × n2 matrix:

    r_i = c ⟨F[rows_i], G[cols_i]⟩ − y_i,   (S G)[a] = c Σ_{rows_i = a} r_i G[cols_i],
    (Sᵀ F)[b] = c Σ_{cols_i = b} r_i F[rows_i].

On NumPy one call of :meth:`EntryOperator.residual_and_grads` is one compiled
pass over the entries (numba, :mod:`.kernels.entries`): the factors copied
into zero-padded rows of whole 4-lane registers, every multiply-add an
explicit fma. Large operators run it on numba's threads in a wavefront over
blocks (row range × group of column tiles) that never share an output row,
so the results are **bitwise the same whatever the thread count** (and the
same as one thread). Without numba, and for the single calls, the adjoint is
a ``scipy.sparse`` CSR product whose structure is built once. On torch the
entries are processed in chunks with ``index_add_``.

Entries are stored in *column tiles*: sorted by (column // TILE_COLUMNS, row,
column), ``order`` mapping the user's order to it, as ``int32`` indices where
n1, n2 < 2³¹ (8 bytes per entry). Within a tile the rows of F and S G are
swept in order and the rows of G and Sᵀ F touched stay in the core's L2
cache. Each row of S G receives its terms in increasing column order and
each row of Sᵀ F in increasing row order, so the results do not depend on
the tile width either (tested).
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

from .. import backend
from ..threads import numba_module, numba_threads, numba_usable
from .base import MatrixOperator
from .kernels.numba_kernel import _numba_lock
from .padding import _index_dtype, _padded, _unpad, _zeros_padded

#: Entries per chunk of the chunked (NumPy fallback / torch) gathers: bounds the m × k temporaries.
CHUNK = 2**16

#: Columns per tile of the stored order (the rows of G and Sᵀ F a tile touches stay in L2).
TILE_COLUMNS = 4096


def _tiles(n2: int) -> int:
    return (n2 - 1) // TILE_COLUMNS + 1


def _tiles_of(n2: int, width: int) -> int:
    return (n2 - 1) // width + 1


def _tile_key(flat: np.ndarray, n2: int) -> np.ndarray:
    """The column tile of each row-major position, in the smallest unsigned dtype (radix sort)."""
    key = flat % n2
    key //= TILE_COLUMNS
    tiles = _tiles(n2)
    dtype = np.uint8 if tiles <= 2**8 else np.uint16 if tiles <= 2**16 else np.int64
    return key.astype(dtype, copy=False)


def _tile_sort_inplace(flat: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Row-major positions ``flat`` sorted in place into the stored order (tile, row, column).

    Memory: one temporary of ``flat``'s size (the tile is folded into the sort key).
    """
    N = n1 * n2
    tiles = _tiles(n2)
    if tiles == 1:
        flat.sort()
    elif tiles * N < 2**62:
        key = flat % n2
        key //= TILE_COLUMNS
        key *= N
        flat += key
        del key
        flat.sort()
        np.remainder(flat, N, out=flat)
    else:  # pragma: no cover - n1·n2 beyond 2^62 / tiles
        flat.sort()
        flat[:] = flat[np.argsort(_tile_key(flat, n2), kind="stable")]
    return flat


@functools.lru_cache(maxsize=1)
def _entries_kernel():
    """The compiled kernels (:mod:`.kernels.entries`), or None when numba cannot be used."""
    if numba_module() is None:
        return None
    from .kernels import entries

    return entries


#: Lanes of the kernel's registers: the factors' rows are padded to a multiple of this.
LANES = 4

#: Tile groups per thread in the parallel schedule (more groups: shorter start and end of
#: the wavefront, more fork/joins).
GROUPS_PER_THREAD = 4


def _index_array(name: str, values, bound: int, axis: str) -> np.ndarray:
    arr = np.asarray(backend.to_numpy(values) if backend.is_array(values) else values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of {axis} indices, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= bound):
        bad = int(arr[(arr < 0) | (arr >= bound)][0])
        raise ValueError(
            f"{name} must be in [0, {bound}) ({axis} indices of the "
            f"{'n1' if axis == 'row' else 'n2'} = {bound} {axis}s), got {bad}"
        )
    return arr


class EntryOperator(MatrixOperator):
    """𝒜(M)_i = √(n1·n2/m) · M[rows_i, cols_i] for the observed entries (rows_i, cols_i).

    Parameters
    ----------
    rows, cols : int arrays, shape (m,)
        The observed positions, in any order (stored by column tile, row, then
        column — see the module's docs; ``order`` gives the permutation, so
        ``values[order]`` are in the operator's order).
    shape : (n1, n2)
    allow_duplicates : bool
        Whether a position may be observed twice (then it counts twice).
    """

    #: One iteration is the compiled pass over the entries, no BLAS call (one BLAS thread).
    blas_bound = False

    def __init__(self, rows, cols, shape, *, allow_duplicates: bool = False):
        if (
            not isinstance(shape, (tuple, list))
            or len(shape) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape)
            or min(shape) < 1
        ):
            raise ValueError(f"shape must be a pair of positive integers (n1, n2), got {shape!r}")
        n1, n2 = int(shape[0]), int(shape[1])
        rows = _index_array("rows", rows, n1, "row")
        cols = _index_array("cols", cols, n2, "column")
        if rows.shape != cols.shape:
            raise ValueError(
                f"rows and cols must have the same length, got {rows.size} and {cols.size}"
            )
        if rows.size == 0:
            raise ValueError("completion needs at least one observed entry, got none")
        flat = rows * n2 + cols
        order = np.argsort(flat, kind="stable")
        flat = flat[order]
        if not isinstance(allow_duplicates, (bool, np.bool_)):
            raise ValueError(f"allow_duplicates must be True or False, got {allow_duplicates!r}")
        if not allow_duplicates and flat.size > 1:
            same = np.flatnonzero(flat[1:] == flat[:-1])
            if same.size:
                a, b = divmod(int(flat[same[0]]), n2)
                raise ValueError(
                    f"entry ({a}, {b}) is observed more than once; pass "
                    f"allow_duplicates=True to count repeated entries"
                )
        if _tiles(n2) > 1:
            tiled = np.argsort(_tile_key(flat, n2), kind="stable")
            order, flat = order[tiled], flat[tiled]
        self.order = order
        self._set(flat, n1, n2)

    def _set(self, flat, n1: int, n2: int) -> None:
        """rows, cols from row-major positions ``flat`` (in the stored order), int32 where
        n1, n2 < 2³¹, converted in chunks (no temporary of ``flat``'s size)."""
        m = flat.shape[0]
        rows = np.empty(m, dtype=_index_dtype(n1))
        cols = np.empty(m, dtype=_index_dtype(n2))
        for i in range(0, m, 2**20):
            part = flat[i : i + 2**20]
            np.floor_divide(part, n2, out=rows[i : i + 2**20], casting="unsafe")
            np.remainder(part, n2, out=cols[i : i + 2**20], casting="unsafe")
        self.rows, self.cols = rows, cols
        self.n1, self.n2 = n1, n2
        self.scale = math.sqrt(n1 * n2 / m)
        self.tile_columns = TILE_COLUMNS  # the tile width of the stored order
        self._csr = None
        self._plans: dict = {}

    @classmethod
    def _sorted(cls, flat: np.ndarray, n1: int, n2: int) -> EntryOperator:
        """The operator of distinct positions ``flat`` (int64; sorted and reused in place)."""
        op = cls.__new__(cls)
        op.order = None  # type: ignore[assignment]  # no permutation: already in tile order
        op._set(_tile_sort_inplace(flat, n1, n2), n1, n2)
        return op

    @classmethod
    def draw(cls, rng: np.random.Generator, m: int, n1: int, n2: int) -> EntryOperator:
        """m distinct entries drawn uniformly without replacement."""
        if not 1 <= m <= n1 * n2:
            raise ValueError(f"m must be in [1, n1·n2 = {n1 * n2}], got {m}")
        flat = rng.choice(n1 * n2, size=m, replace=False)
        return cls._sorted(flat.astype(np.int64, copy=False), n1, n2)

    @classmethod
    def bernoulli(cls, rng: np.random.Generator, p: float, n1: int, n2: int) -> EntryOperator:
        """Each entry observed independently with probability p (at least one entry).

        Drawn as m ~ Binomial(n1·n2, p) and then m distinct uniform entries:
        the same distribution, in O(m) memory.
        """
        if not 0 < p <= 1:
            raise ValueError(f"p must be in (0, 1], got {p}")
        m = max(1, int(rng.binomial(n1 * n2, p)))
        return cls.draw(rng, m, n1, n2)

    # ------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        return (self.n1, self.n2)

    @property
    def m(self) -> int:
        return int(self.rows.shape[0])

    @property
    def dtype(self):
        return getattr(self, "_dtype", np.dtype(np.float64))

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.cols.nbytes)

    @property
    def target(self) -> backend.Target:
        return getattr(self, "_target", backend.Target("numpy", "cpu", "float64"))

    @property
    def p(self) -> float:
        """The observed fraction m/(n1·n2)."""
        return self.m / (self.n1 * self.n2)

    def _probe(self):
        return backend.convert(np.zeros(1), self.target)

    def _numpy(self, *arrays) -> bool:
        return all(isinstance(x, np.ndarray) for x in arrays)

    # --------------------------------------------------------- factored calls
    def apply_factored(self, F, G):
        xp = backend.namespace(F)
        out = xp.empty((F.shape[0], self.m), dtype=F.dtype, device=backend.device_of(F))
        for i in range(0, self.m, CHUNK):
            sl = slice(i, i + CHUNK)
            out[:, sl] = xp.sum(F[:, self.rows[sl], :] * G[:, self.cols[sl], :], axis=-1)
        out *= self.scale
        return out

    def _pattern(self):
        """(permutation to row-major order or None, indices, indptr) of Ω's CSR structure (NumPy)."""
        if self._csr is None:
            if self.n2 <= self.tile_columns:  # one tile: the stored order is row-major
                perm, cols, rows = None, self.cols, self.rows
            else:
                perm = np.argsort(self.rows, kind="stable")
                cols, rows = self.cols[perm], self.rows[perm]
            self._csr = (perm, cols, np.searchsorted(rows, np.arange(self.n1 + 1)))
        return self._csr

    def _sparse(self, z_b):
        from scipy import sparse

        perm, cols, indptr = self._pattern()
        data = z_b * self.scale if perm is None else z_b[perm] * self.scale
        return sparse.csr_matrix((data, cols, indptr), shape=(self.n1, self.n2))

    def _accumulate(self, z, X, out_rows: int, scatter, gather):
        """Σ_i c z_i X[gather_i] added into row scatter_i (torch, chunked)."""
        xp = backend.namespace(X)
        out = xp.zeros(
            (X.shape[0], out_rows, X.shape[-1]), dtype=X.dtype, device=backend.device_of(X)
        )
        for i in range(0, self.m, CHUNK):
            sl = slice(i, i + CHUNK)
            out.index_add_(1, scatter[sl], (z[:, sl, None] * self.scale) * X[:, gather[sl], :])
        return out

    def adjoint_matmul(self, z, G):
        if self._numpy(z, G):
            return np.stack([self._sparse(z[b]) @ G[b] for b in range(z.shape[0])])
        return self._accumulate(z, G, self.n1, self.rows, self.cols)

    def adjoint_rmatmul(self, z, F):
        if self._numpy(z, F):
            return np.stack([self._sparse(z[b]).T @ F[b] for b in range(z.shape[0])])
        return self._accumulate(z, F, self.n2, self.cols, self.rows)

    def kernel_for(self, B: int = 1) -> str | None:
        """'numba-entries' (the compiled one-pass kernel) or 'sparse' (scipy.sparse / scatter-add)."""
        compiled = self._numpy(self.rows) and _entries_kernel() is not None
        return "numba-entries" if compiled else "sparse"

    def residual_and_grads(self, F, G, y, rmap=None):
        """r, S G, Sᵀ F in one pass over the entries (compiled on NumPy when numba is there).

        float64: the padded-register kernel, on several threads for operators of
        :data:`~matsense.threads.THREADED_MIN_BYTES` and more (``MATSENSE_THREADS``
        fixes the count) with results bitwise independent of it; other dtypes:
        the scalar kernel, serial. With a residual map ``rmap`` (robust losses)
        S = 𝒜*(φ(r)), by the same kernels with φ (:mod:`.kernels.entries_mapped`).
        """
        kernels = _entries_kernel() if self._numpy(F, G) else None
        if kernels is None:
            if rmap is not None:
                return super().residual_and_grads(F, G, y, rmap)
            return super().residual_and_grads(F, G, y)
        if rmap is not None:  # the kernels' twins with φ; None keeps the ℓ2 kernels themselves
            from .kernels.entries_mapped import MappedCalls

            kernels = MappedCalls(rmap)
        B, n1, k = F.shape
        n2 = G.shape[1]
        yb = np.broadcast_to(np.asarray(y, dtype=F.dtype), (B, self.m))
        r = np.empty((B, self.m), dtype=F.dtype)
        if F.dtype != np.float64 or G.dtype != np.float64:
            F = np.ascontiguousarray(F)
            G = F if G is F else np.ascontiguousarray(G)
            SG = np.zeros(F.shape, dtype=F.dtype)
            StF = np.zeros(G.shape, dtype=F.dtype)
            kernels.generic(self.rows, self.cols, self.scale, F, G, yb, r, SG, StF)
            return r, SG, StF
        kp = -(-k // LANES) * LANES
        Fp = _padded(F, kp)
        Gp = Fp if G is F else _padded(G, kp)
        SGp = _zeros_padded(B, n1, kp)
        StFp = _zeros_padded(B, n2, kp)
        threads = self._kernel_threads()
        if threads == 1:
            kernels.serial(
                self.rows, self.cols, self.scale, Fp, Gp, yb, r, SGp, StFp, self._tile_starts(), kp
            )
        else:
            numba = numba_module()
            seg, groups = self._schedule(threads)
            with _numba_lock:
                saved = numba.get_num_threads()
                if threads != saved:
                    numba.set_num_threads(threads)
                try:
                    kernels.wavefront(
                        self.rows, self.cols, self.scale, Fp, Gp, yb, r, SGp, StFp, seg, groups, kp
                    )
                finally:
                    if threads != saved:
                        numba.set_num_threads(saved)
        return r, _unpad(SGp, n1, k, kp), _unpad(StFp, n2, k, kp)

    def _kernel_threads(self) -> int:
        """Threads of the compiled pass: 1 where numba's pool cannot be used (a forked
        child), for one tile of columns, or below the size where threads pay."""
        if len(self._tile_starts()) <= 2 or not numba_usable():
            return 1
        fixed = numba_threads(self.nbytes)
        numba = numba_module()
        count = numba.get_num_threads() if fixed is None else fixed
        return max(1, min(int(count), numba.config.NUMBA_NUM_THREADS))

    def _plan_cache(self) -> dict:
        """Index structures derived from rows and cols (NumPy only), built on first use."""
        return self.__dict__.setdefault("_plans", {})

    def _tile_starts(self) -> np.ndarray:
        """The first entry of each column tile in the stored order, and m (int64)."""
        starts = self._plan_cache().get("tiles")
        if starts is None:
            tiles = _tiles_of(self.n2, self.tile_columns)
            if tiles == 1:
                starts = np.array([0, self.m], dtype=np.int64)
            else:
                tile = np.floor_divide(self.cols, self.tile_columns)
                starts = np.searchsorted(tile, np.arange(tiles + 1)).astype(np.int64)
                del tile
            self._plan_cache()["tiles"] = starts
        return starts

    def _schedule(self, threads: int):
        """(seg, groups) of :func:`.kernels.entries.wavefront` for ``threads`` threads.

        ``threads`` ranges of rows and up to ``GROUPS_PER_THREAD·threads`` groups of
        tiles, each with about the same number of entries. Any split gives the same
        results; this one only balances the threads.
        """
        plan = self._plan_cache().get(("schedule", threads))
        if plan is None:
            starts = self._tile_starts()
            tiles = starts.shape[0] - 1
            counts = np.bincount(self.rows, minlength=self.n1)
            cum = np.concatenate([[0], np.cumsum(counts)])
            bounds = np.searchsorted(cum, np.linspace(0, self.m, threads + 1), side="left")
            bounds = np.clip(bounds, 0, self.n1)
            bounds[0], bounds[-1] = 0, self.n1
            seg = np.empty((threads + 1, tiles), dtype=np.int64)
            for q in range(tiles):
                lo, hi = starts[q], starts[q + 1]
                seg[:, q] = lo + np.searchsorted(self.rows[lo:hi], bounds)
            groups = np.searchsorted(
                starts, np.linspace(0, self.m, min(tiles, GROUPS_PER_THREAD * threads) + 1)
            )
            groups = np.unique(np.clip(groups, 0, tiles))
            groups[0], groups[-1] = 0, tiles
            plan = (seg, groups.astype(np.int64))
            self._plan_cache()[("schedule", threads)] = plan
        return plan

    def gauss_newton_block_max(self, F, G):
        """max(λ_max(H_FF), λ_max(H_GG)) per trajectory, exactly (see :mod:`matsense.curvature`).

        Entry sampling makes both Gauss–Newton blocks block-diagonal by rows:
        H_FF[a] = c² Σ_{(a, b) ∈ Ω} G[b] G[b]ᵀ and H_GG[b] = c² Σ_{(a, b) ∈ Ω} F[a] F[a]ᵀ,
        k × k each; computed as one sparse product Ω (F ⊗ F) per block, O(m k²).
        """
        from scipy import sparse

        F, G = backend.to_numpy(F), backend.to_numpy(G)
        rows, cols = backend.to_numpy(self.rows), backend.to_numpy(self.cols)
        omega = sparse.csr_matrix(
            (np.full(rows.shape[0], self.scale**2), (rows, cols)), shape=(self.n1, self.n2)
        )
        out = np.empty(F.shape[0])
        for b in range(F.shape[0]):
            k = F.shape[-1]
            H_FF = omega @ (G[b][:, :, None] * G[b][:, None, :]).reshape(self.n2, k * k)
            H_GG = omega.T @ (F[b][:, :, None] * F[b][:, None, :]).reshape(self.n1, k * k)
            out[b] = max(np.linalg.eigvalsh(H.reshape(-1, k, k))[:, -1].max() for H in (H_FF, H_GG))
        return out

    # ------------------------------------------------------------ dense calls
    def apply(self, P):
        return P[:, self.rows, self.cols] * self.scale

    def adjoint(self, z):
        self.check_dense("the adjoint as n1 × n2 matrices")
        if self._numpy(z):
            return np.stack([self._sparse(z[b]).toarray() for b in range(z.shape[0])])
        xp = backend.namespace(z)
        out = xp.zeros((z.shape[0], self.n1 * self.n2), dtype=z.dtype, device=backend.device_of(z))
        out.index_add_(1, self.rows * self.n2 + self.cols, z * self.scale)
        return xp.reshape(out, (z.shape[0], self.n1, self.n2))

    # ------------------------------------------------------------- conversion
    def to(self, tgt: backend.Target) -> EntryOperator:
        new = copy.copy(self)
        new.rows = backend.convert_index(self.rows, tgt)
        new.cols = backend.convert_index(self.cols, tgt)
        new._target = tgt  # type: ignore[attr-defined]  # read back by `target` (getattr)
        new._dtype = backend.convert(np.zeros(1), tgt).dtype  # type: ignore[attr-defined]
        new._csr = None
        new._plans = {}
        return new
