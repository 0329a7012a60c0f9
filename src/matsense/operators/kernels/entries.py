"""The compiled one-pass kernel of matrix completion (imported only where numba is).

For the entries (rows_i, cols_i) in the operator's stored order (column tile,
row, column) and each trajectory b, one pass computes

    r_i = c ⟨F[rows_i], G[cols_i]⟩ − y_i,
    (S G)[rows_i] += c r_i G[cols_i],   (Sᵀ F)[cols_i] += c r_i F[rows_i].

**Layout.** The factors come as rows of ``kp`` = ⌈k/8⌉·8 float64 (zero-padded,
64-byte aligned: :func:`matsense.operators.completion._padded`), so every row
is ``kp/8`` whole ``<8 x double>`` registers (:mod:`._simd`) and no load
crosses a cache line. Numba's own vectorization of the k-loops (k a run-time
value, 10 in the benchmarks) left them scalar: 30 scalar loads, stores and
multiply-adds per entry, ~2× slower (docs/performance.md).

**Summation order — the same bits whatever the threads.** No fast-math flags:
each operation is spelled out. The dot product is the lane-wise fma chain
over the ``kp/8`` registers, then the lanes added as
``((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7))`` (:func:`vsum_halves`); each row
of S G receives its terms in increasing column order and each row of Sᵀ F in
increasing row order, one fma per term, whatever the thread count: the
parallel driver only changes *which thread* adds a term and *when*, never the
order of the terms of one output row (see :func:`wavefront`).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ._simd import LANES, f64x8, vfma, vload, vsplat, vstore, vzero

_i32 = ir.IntType(32)


def _lanes(builder, v, idx):
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_i32, len(idx)), idx))


@intrinsic
def vsum_halves(typingctx, v):
    """The sum of the lanes, always as ``((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7))``.

    Three vector adds (halves, then quarters, then the last pair) instead of
    seven scalar ones after eight extractions (:func:`._simd.vsum`): measured
    ~15 % of the completion kernel's time at k = 10.
    """
    if v != f64x8 or LANES != 8:  # pragma: no cover - typing
        return None

    def codegen(context, builder, signature, args):
        x = args[0]
        s4 = builder.fadd(_lanes(builder, x, [0, 1, 2, 3]), _lanes(builder, x, [4, 5, 6, 7]))
        s2 = builder.fadd(_lanes(builder, s4, [0, 1]), _lanes(builder, s4, [2, 3]))
        return builder.fadd(builder.extract_element(s2, ir.Constant(_i32, 0)),
                            builder.extract_element(s2, ir.Constant(_i32, 1)))

    return types.float64(f64x8), codegen


@njit(nogil=True, cache=True, inline="always")
def _entry(c, Fb, Gb, Sb, Tb, y, r, b, i, a, e, kp):  # pragma: no cover - compiled
    """One entry, any kp (a loop over the registers of a row)."""
    acc = vzero()
    for j in range(0, kp, LANES):
        acc = vfma(vload(Fb, a + j), vload(Gb, e + j), acc)
    res = c * vsum_halves(acc) - y[b, i]
    r[b, i] = res
    w = vsplat(c * res)
    for j in range(0, kp, LANES):
        vstore(Sb, a + j, vfma(w, vload(Gb, e + j), vload(Sb, a + j)))
        vstore(Tb, e + j, vfma(w, vload(Fb, a + j), vload(Tb, e + j)))


@njit(nogil=True, cache=True, inline="always")
def _entry16(c, Fb, Gb, Sb, Tb, y, r, b, i, a, e):  # pragma: no cover - compiled
    """One entry, kp = 16 (9 ≤ k ≤ 16) unrolled: the same operations as :func:`_entry`."""
    f0 = vload(Fb, a)
    f1 = vload(Fb, a + 8)
    g0 = vload(Gb, e)
    g1 = vload(Gb, e + 8)
    res = c * vsum_halves(vfma(f1, g1, vfma(f0, g0, vzero()))) - y[b, i]
    r[b, i] = res
    w = vsplat(c * res)
    vstore(Sb, a, vfma(w, g0, vload(Sb, a)))
    vstore(Sb, a + 8, vfma(w, g1, vload(Sb, a + 8)))
    vstore(Tb, e, vfma(w, f0, vload(Tb, e)))
    vstore(Tb, e + 8, vfma(w, f1, vload(Tb, e + 8)))


@njit(nogil=True, cache=True, inline="always")
def _entry8(c, Fb, Gb, Sb, Tb, y, r, b, i, a, e):  # pragma: no cover - compiled
    """One entry, kp = 8 (k ≤ 8): the same operations as :func:`_entry`."""
    f0 = vload(Fb, a)
    g0 = vload(Gb, e)
    res = c * vsum_halves(vfma(f0, g0, vzero())) - y[b, i]
    r[b, i] = res
    w = vsplat(c * res)
    vstore(Sb, a, vfma(w, g0, vload(Sb, a)))
    vstore(Tb, e, vfma(w, f0, vload(Tb, e)))


@njit(nogil=True, cache=True)
def block(rows, cols, c, Fp, Gp, y, r, SGp, StFp, lo, hi, q0, q1, kp):  # pragma: no cover
    """The entries ``lo[q] ≤ i < hi[q]`` of the tiles ``q0 ≤ q < q1``, every trajectory.

    ``Fp``, ``Gp``, ``SGp``, ``StFp``: (B, n·kp) padded rows; ``y``, ``r``: (B, m).
    kp = 8 and 16 (k ≤ 16, the common sizes) are unrolled: ~20 % faster at k = 10
    than the loop over registers, with the same operations in the same order.
    """
    B = Fp.shape[0]
    for b in range(B):
        Fb = Fp[b]
        Gb = Gp[b]
        Sb = SGp[b]
        Tb = StFp[b]
        for q in range(q0, q1):
            if kp == 16:
                for i in range(lo[q], hi[q]):
                    _entry16(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 16, cols[i] * 16)
            elif kp == 8:
                for i in range(lo[q], hi[q]):
                    _entry8(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 8, cols[i] * 8)
            else:
                for i in range(lo[q], hi[q]):
                    _entry(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * kp, cols[i] * kp, kp)


@njit(nogil=True, cache=True)
def serial(rows, cols, c, Fp, Gp, y, r, SGp, StFp, tiles, kp):  # pragma: no cover
    """All entries in the stored order on the calling thread (``tiles``: the tiles' starts)."""
    block(rows, cols, c, Fp, Gp, y, r, SGp, StFp, tiles[:-1], tiles[1:], 0,
          tiles.shape[0] - 1, kp)


@njit(parallel=True, nogil=True, cache=True)
def wavefront(rows, cols, c, Fp, Gp, y, r, SGp, StFp, seg, groups, kp):  # pragma: no cover
    """All entries on numba's threads, block (row range i, tile group j) by anti-diagonal.

    ``seg[i, q]``: the first entry of tile q whose row is in range i or later
    (``seg[0]`` the tiles' starts, ``seg[-1]`` their ends); ``groups[j]``: the
    first tile of group j. Block (i, j) writes the rows of S G in range i and
    the rows of Sᵀ F in the tiles of group j; the blocks of one anti-diagonal
    i + j = s share neither, so they run at once, and (i, j) runs after
    (i, j − 1) and (i − 1, j): each output row gets its terms in the stored
    order, as in :func:`serial`.
    """
    P = seg.shape[0] - 1
    Q = groups.shape[0] - 1
    for s in range(P + Q - 1):
        i0 = max(0, s - Q + 1)
        i1 = min(P, s + 1)
        for i in prange(i0, i1):
            j = s - i
            block(rows, cols, c, Fp, Gp, y, r, SGp, StFp, seg[i], seg[i + 1], groups[j],
                  groups[j + 1], kp)


# 'reassoc'/'contract' as before the padded kernel: LLVM's choice of lanes for the
# k-loops. Kept for float32 (and any dtype but float64), serial.
@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def generic(rows, cols, c, F, G, y, r, SG, StF):  # pragma: no cover - compiled
    """The scalar one-pass kernel for any float dtype (serial; F, G as (B, n, k))."""
    B, _, k = F.shape
    m = rows.shape[0]
    for b in range(B):
        for i in range(m):
            a = rows[i]
            e = cols[i]
            v = 0.0
            for j in range(k):
                v += F[b, a, j] * G[b, e, j]
            res = c * v - y[b, i]
            r[b, i] = res
            w = c * res
            for j in range(k):
                SG[b, a, j] += w * G[b, e, j]
                StF[b, e, j] += w * F[b, a, j]
