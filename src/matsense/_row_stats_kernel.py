"""The compiled kernel of :func:`matsense.diagnostics.row_stats` (imported only where numba is).

One call computes a history row's quantities for every trajectory b of a batch:
‖F Gᵀ − M*‖_F, the off-subspace norm, Δ = FᵀF − GᵀG and ‖Δ − Δ₀‖_F, and
σ(F Gᵀ). :func:`kernel` is the entry point; each quantity is one small helper
below, which numba compiles into it (same-file callees: the on-disk cache is
invalidated with this file).

Plain loops, not BLAS: inside a run the row's code is cold, and BLAS calls cost
more there than these loops (measured: 148 vs ~100 µs a row at n = 100). Loops
also where a slice assignment would do: each one compiles to a lot of code (with
eight of them the first compile took 7–8 s, without 3.2–3.5 s). No fast-math
flags: every sum is spelled out in the order written, so the numbers do not
depend on how the helpers are inlined.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Options of the helpers: called only from compiled code (no Python wrappers to compile).
# (numba's stubs omit these two real options: numba.core.options.TargetOptions has them)
_inner = njit(
    cache=True,
    nogil=True,
    no_cpython_wrapper=True,  # type: ignore[call-overload]
    no_cfunc_wrapper=True,
)


@_inner
def _error(F, G, M, b, Gt, row, sq):  # pragma: no cover - compiled
    """‖F_b G_bᵀ − M*‖_F, one row of the product at a time (Gt, row, sq: scratch)."""
    k = F.shape[2]
    n1 = F.shape[1]
    n2 = G.shape[1]
    for p in range(k):  # Gᵀ: the inner loops run over contiguous memory
        for j in range(n2):
            Gt[p, j] = G[b, j, p]
    for j in range(n2):  # squares summed per column: a loop that vectorizes
        sq[j] = 0.0
    for i in range(n1):
        for j in range(n2):
            row[j] = -M[i, j]
        for p in range(k):
            f = F[b, i, p]
            for j in range(n2):
                row[j] += f * Gt[p, j]
        for j in range(n2):
            sq[j] += row[j] * row[j]
    total = 0.0
    for j in range(n2):
        total += sq[j]
    return np.sqrt(total)


@_inner
def _off_subspace(F, G, U, V, b, sides, C):  # pragma: no cover - compiled
    """‖(I − W Wᵀ) Y_b‖_F over (Y, W) = (F, U), and (G, V) when sides = 2 (C: scratch)."""
    k = F.shape[2]
    r = U.shape[1]
    total = 0.0
    for which in range(sides):
        Y = F if which == 0 else G
        W = U if which == 0 else V
        n = Y.shape[1]
        for a in range(r):
            for j in range(k):
                C[a, j] = 0.0
        for i in range(n):
            for a in range(r):
                w = W[i, a]
                for j in range(k):
                    C[a, j] += w * Y[b, i, j]
        for i in range(n):
            for j in range(k):
                v = Y[b, i, j]
                for a in range(r):
                    v -= W[i, a] * C[a, j]
                total += v * v
    return np.sqrt(total)


@_inner
def _imbalance(F, G, b, D):  # pragma: no cover - compiled
    """D = F_bᵀF_b − G_bᵀG_b: + FᵀF, then − GᵀG, term by term."""
    k = F.shape[2]
    for p in range(k):
        for q in range(k):
            D[p, q] = 0.0
    for which in range(2):
        Y = F if which == 0 else G
        sign = 1.0 if which == 0 else -1.0
        for i in range(Y.shape[1]):
            for p in range(k):
                y = sign * Y[b, i, p]
                for q in range(k):
                    D[p, q] += y * Y[b, i, q]


@_inner
def _drift(D, Delta0, b):  # pragma: no cover - compiled
    """‖D − Δ₀_b‖_F."""
    k = D.shape[0]
    total = 0.0
    for p in range(k):
        for q in range(k):
            d = D[p, q] - Delta0[b, p, q]
            total += d * d
    return np.sqrt(total)


@_inner
def _householder_r(Y, b, A, R, which):  # pragma: no cover - compiled
    """R[which] = the R factor of the Householder QR of Y_b (n × k; A: n × k scratch)."""
    n = Y.shape[1]
    k = Y.shape[2]
    for i in range(n):
        for j in range(k):
            A[i, j] = Y[b, i, j]
    for i in range(k):
        for j in range(k):
            R[which, i, j] = 0.0
    for j in range(k):
        s = 0.0
        for i in range(j, n):
            s += A[i, j] * A[i, j]
        norm = np.sqrt(s)
        if norm == 0.0:
            for c in range(j + 1, k):
                R[which, j, c] = A[j, c]
            continue
        alpha = -norm if A[j, j] >= 0.0 else norm
        v0 = A[j, j] - alpha
        vv = s - A[j, j] * A[j, j] + v0 * v0
        A[j, j] = v0
        for c in range(j + 1, k):
            d = 0.0
            for i in range(j, n):
                d += A[i, j] * A[i, c]
            f = 2.0 * d / vv
            for i in range(j, n):
                A[i, c] -= f * A[i, j]
        R[which, j, j] = alpha
        for c in range(j + 1, k):
            R[which, j, c] = A[j, c]


@_inner
def _core(R, symmetric, core):  # pragma: no cover - compiled
    """The k × k core whose singular values are σ(F Gᵀ): R₁ R₂ᵀ, or R for X Xᵀ."""
    k = core.shape[0]
    if symmetric:
        for i in range(k):
            for j in range(k):
                core[i, j] = R[0, i, j]
    else:
        for i in range(k):
            for j in range(k):
                s = 0.0
                for c in range(k):
                    s += R[0, i, c] * R[1, j, c]
                core[i, j] = s


@_inner
def _jacobi(core):  # pragma: no cover - compiled
    """One-sided Jacobi: rotate column pairs of core until orthogonal (at most 100 sweeps)."""
    k = core.shape[0]
    for _ in range(100):
        rotated = False
        for p in range(k - 1):
            for q in range(p + 1, k):
                x = 0.0
                y = 0.0
                g = 0.0
                for i in range(k):
                    x += core[i, p] * core[i, p]
                    y += core[i, q] * core[i, q]
                    g += core[i, p] * core[i, q]
                if g == 0.0 or abs(g) <= 1e-15 * np.sqrt(x * y):
                    continue
                rotated = True
                zeta = (y - x) / (2.0 * g)
                t = (1.0 if zeta >= 0.0 else -1.0) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
                c = 1.0 / np.sqrt(1.0 + t * t)
                sn = c * t
                for i in range(k):
                    mp = core[i, p]
                    mq = core[i, q]
                    core[i, p] = c * mp - sn * mq
                    core[i, q] = sn * mp + c * mq
        if not rotated:
            break


@_inner
def _column_norms(core, out, b, symmetric):  # pragma: no cover - compiled
    """out[b, 3:] = core's column norms, descending (their squares for X Xᵀ: σ(X Xᵀ) = σ(X)²)."""
    k = core.shape[0]
    for j in range(k):  # insertion sort: k is small
        s = 0.0
        for i in range(k):
            s += core[i, j] * core[i, j]
        v = np.sqrt(s)
        i = j
        while i > 0 and out[b, 2 + i] < v:
            out[b, 3 + i] = out[b, 2 + i]
            i -= 1
        out[b, 3 + i] = v
    if symmetric:
        for j in range(k):
            out[b, 3 + j] *= out[b, 3 + j]


@njit(cache=True, nogil=True)
def kernel(F, G, M, U, V, Delta0, symmetric, want_sv, out, Delta):  # pragma: no cover
    """Fill ``out`` (B, 3[+k]) and ``Delta`` (B, k, k) for each trajectory b.

    A part runs when its input is non-empty: M (error, column 0), U
    (off-subspace, column 1), Delta0 (drift, column 2), Delta (Δ itself); and
    want_sv (σ(F Gᵀ), columns 3…, via the R factors of Householder QR:
    σ(F Gᵀ) = σ(R₁R₂ᵀ), σ(X Xᵀ) = σ(R)²). Columns of out it does not fill are NaN.
    """
    B, n1, k = F.shape
    n2 = G.shape[1]
    r = U.shape[1]
    sides = 1 if symmetric else 2
    Gt = np.empty((k, n2))
    row = np.empty(n2)
    sq = np.empty(n2)
    C = np.empty((r, k))
    D = np.empty((k, k))
    A = np.empty((max(n1, n2), k))
    R = np.empty((2, k, k))
    core = np.empty((k, k))
    for b in range(B):
        for c in range(out.shape[1]):
            out[b, c] = np.nan
        if M.shape[0] > 0:
            out[b, 0] = _error(F, G, M, b, Gt, row, sq)
        if U.shape[0] > 0:
            out[b, 1] = _off_subspace(F, G, U, V, b, sides, C)
        if Delta0.shape[0] > 0 or Delta.shape[0] > 0:
            _imbalance(F, G, b, D)
            if Delta.shape[0] > 0:
                for p in range(k):
                    for q in range(k):
                        Delta[b, p, q] = D[p, q]
            if Delta0.shape[0] > 0:
                out[b, 2] = _drift(D, Delta0, b)
        if want_sv:
            for which in range(sides):
                _householder_r(F if which == 0 else G, b, A, R, which)
            _core(R, symmetric, core)
            _jacobi(core)
            _column_norms(core, out, b, symmetric)
