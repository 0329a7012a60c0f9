"""The compiled one-pass kernel of matrix completion (imported only where numba is).

For the entries (rows_i, cols_i) in the operator's stored order (column tile,
row, column) and each trajectory b, one pass computes

    r_i = c ⟨F[rows_i], G[cols_i]⟩ − y_i,
    (S G)[rows_i] += c r_i G[cols_i],   (Sᵀ F)[cols_i] += c r_i F[rows_i].

**Layout.** The factors come as rows of ``kp`` = ⌈k/4⌉·4 float64 (zero-padded,
64-byte aligned: :func:`matsense.operators.completion._padded`), so every row
is ``kp/4`` whole ``<4 x double>`` registers (:data:`f64x4`, 32 bytes: no load
crosses a cache line). Numba's own vectorization of the k-loops (k a run-time
value, 10 in the benchmarks) left them scalar: 30 scalar loads, stores and
multiply-adds per entry, ~2× slower; 8-lane registers (rows padded to 16 at
k = 10) were ~1.4× slower than 4-lane ones (rows of 12): the pass sweeps the
rows of F and S G once per column tile, so the padding is memory traffic
(docs/performance.md).

**Summation order — the same bits whatever the threads.** No fast-math flags:
each operation is spelled out. The dot product is the lane-wise fma chain
over the ``kp/4`` registers, then the lanes added as ``(v0+v2) + (v1+v3)``
(:func:`vsum4`); each row of S G receives its terms in increasing column order
and each row of Sᵀ F in increasing row order, one fma per term, whatever the
thread count: the parallel driver only changes *which thread* adds a term and
*when*, never the order of the terms of one output row (see :func:`wavefront`).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

#: Lanes of a register: rows of the factors are padded to a multiple of this.
LANES = 4
_double = ir.DoubleType()
_vector = ir.VectorType(_double, LANES)
_i32 = ir.IntType(32)


class F64x4(types.Type):
    """numba type of a ``<4 x double>`` register value (one AVX2 register)."""

    def __init__(self):
        super().__init__(name="F64x4")


f64x4 = F64x4()


@register_model(F64x4)
class _F64x4Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _vector)


def _pointer(context, builder, arrty, arr, j):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [j]), _vector.as_pointer())


def _flat_float64(arr) -> bool:
    return (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and arr.layout == "C"
        and arr.dtype == types.float64
    )


@intrinsic
def vload(typingctx, arr, j):
    """``arr[j:j+4]`` (1-D C-contiguous float64; no bounds check, any alignment)."""
    if not _flat_float64(arr) or not isinstance(j, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(_pointer(context, builder, signature.args[0], *args), align=8)

    return f64x4(arr, j), codegen


@intrinsic
def vstore(typingctx, arr, j, v):
    """``arr[j:j+4] = v`` (as :func:`vload`)."""
    if not _flat_float64(arr) or not isinstance(j, types.Integer) or v != f64x4:
        return None

    def codegen(context, builder, signature, args):
        builder.store(
            args[2], _pointer(context, builder, signature.args[0], args[0], args[1]), align=8
        )
        return context.get_dummy_value()

    return types.void(arr, j, v), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """Lane-wise ``a*b + c``, each lane rounded once (``llvm.fma``)."""
    if not (a == b == c == f64x4):
        return None

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_vector, [_vector] * 3), f"llvm.fma.v{LANES}f64"
        )
        return builder.call(fn, args)

    return f64x4(f64x4, f64x4, f64x4), codegen


@intrinsic
def vsplat(typingctx, x):
    """The float64 ``x`` in every lane."""

    def codegen(context, builder, signature, args):
        v = builder.insert_element(
            ir.Constant(_vector, ir.Undefined), args[0], ir.Constant(_i32, 0)
        )
        return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_i32, LANES), [0] * LANES))

    return f64x4(types.float64), codegen


@intrinsic
def vzero(typingctx):
    """All lanes 0.0."""

    def codegen(context, builder, signature, args):
        return ir.Constant(_vector, [0.0] * LANES)

    return f64x4(), codegen


@intrinsic
def vsum4(typingctx, v):
    """The sum of the lanes, always as ``(v0+v2) + (v1+v3)`` (one vector add, one scalar)."""
    if v != f64x4:
        return None

    def codegen(context, builder, signature, args):
        x = args[0]
        pair = ir.VectorType(_i32, 2)
        s2 = builder.fadd(
            builder.shuffle_vector(x, x, ir.Constant(pair, [0, 1])),
            builder.shuffle_vector(x, x, ir.Constant(pair, [2, 3])),
        )
        return builder.fadd(
            builder.extract_element(s2, ir.Constant(_i32, 0)),
            builder.extract_element(s2, ir.Constant(_i32, 1)),
        )

    return types.float64(f64x4), codegen


@njit(nogil=True, cache=True, inline="always")
def _entry(c, Fb, Gb, Sb, Tb, y, r, b, i, a, e, R):  # pragma: no cover - compiled
    """One entry whose rows are R ≤ 4 registers, unrolled (inlined where R is a constant)."""
    z = vzero()
    f0, g0 = vload(Fb, a), vload(Gb, e)
    f1 = g1 = f2 = g2 = f3 = g3 = z
    acc = vfma(f0, g0, z)
    if R > 1:
        f1, g1 = vload(Fb, a + 4), vload(Gb, e + 4)
        acc = vfma(f1, g1, acc)
    if R > 2:
        f2, g2 = vload(Fb, a + 8), vload(Gb, e + 8)
        acc = vfma(f2, g2, acc)
    if R > 3:
        f3, g3 = vload(Fb, a + 12), vload(Gb, e + 12)
        acc = vfma(f3, g3, acc)
    res = c * vsum4(acc) - y[b, i]
    r[b, i] = res
    w = vsplat(c * res)
    vstore(Sb, a, vfma(w, g0, vload(Sb, a)))
    vstore(Tb, e, vfma(w, f0, vload(Tb, e)))
    if R > 1:
        vstore(Sb, a + 4, vfma(w, g1, vload(Sb, a + 4)))
        vstore(Tb, e + 4, vfma(w, f1, vload(Tb, e + 4)))
    if R > 2:
        vstore(Sb, a + 8, vfma(w, g2, vload(Sb, a + 8)))
        vstore(Tb, e + 8, vfma(w, f2, vload(Tb, e + 8)))
    if R > 3:
        vstore(Sb, a + 12, vfma(w, g3, vload(Sb, a + 12)))
        vstore(Tb, e + 12, vfma(w, f3, vload(Tb, e + 12)))


@njit(nogil=True, cache=True, inline="always")
def _entry_loop(c, Fb, Gb, Sb, Tb, y, r, b, i, a, e, kp):  # pragma: no cover - compiled
    """One entry, any kp (k > 16): the same operations as :func:`_entry`, in a loop."""
    acc = vzero()
    for j in range(0, kp, LANES):
        acc = vfma(vload(Fb, a + j), vload(Gb, e + j), acc)
    res = c * vsum4(acc) - y[b, i]
    r[b, i] = res
    w = vsplat(c * res)
    for j in range(0, kp, LANES):
        vstore(Sb, a + j, vfma(w, vload(Gb, e + j), vload(Sb, a + j)))
        vstore(Tb, e + j, vfma(w, vload(Fb, a + j), vload(Tb, e + j)))


@njit(nogil=True, cache=True)
def block(rows, cols, c, Fp, Gp, y, r, SGp, StFp, lo, hi, q0, q1, kp):  # pragma: no cover
    """The entries ``lo[q] ≤ i < hi[q]`` of the tiles ``q0 ≤ q < q1``, every trajectory.

    ``Fp``, ``Gp``, ``SGp``, ``StFp``: (B, n·kp) padded rows; ``y``, ``r``: (B, m).
    kp ≤ 16 (k ≤ 16, the common sizes) is unrolled (with 8-lane registers that was ~20 %
    faster than the loop over registers), with the same operations in the same order.
    """
    B = Fp.shape[0]
    for b in range(B):
        Fb = Fp[b]
        Gb = Gp[b]
        Sb = SGp[b]
        Tb = StFp[b]
        for q in range(q0, q1):
            if kp == 12:
                for i in range(lo[q], hi[q]):
                    _entry(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 12, cols[i] * 12, 3)
            elif kp == 8:
                for i in range(lo[q], hi[q]):
                    _entry(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 8, cols[i] * 8, 2)
            elif kp == 4:
                for i in range(lo[q], hi[q]):
                    _entry(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 4, cols[i] * 4, 1)
            elif kp == 16:
                for i in range(lo[q], hi[q]):
                    _entry(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 16, cols[i] * 16, 4)
            else:
                for i in range(lo[q], hi[q]):
                    _entry_loop(c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * kp, cols[i] * kp, kp)


@njit(nogil=True, cache=True)
def serial(rows, cols, c, Fp, Gp, y, r, SGp, StFp, tiles, kp):  # pragma: no cover
    """All entries in the stored order on the calling thread (``tiles``: the tiles' starts)."""
    block(rows, cols, c, Fp, Gp, y, r, SGp, StFp, tiles[:-1], tiles[1:], 0, tiles.shape[0] - 1, kp)


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
            block(
                rows,
                cols,
                c,
                Fp,
                Gp,
                y,
                r,
                SGp,
                StFp,
                seg[i],
                seg[i + 1],
                groups[j],
                groups[j + 1],
                kp,
            )


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
