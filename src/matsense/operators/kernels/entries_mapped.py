"""Matrix completion's one-pass kernel with a residual map φ (robust losses, imported with numba).

The kernels of :mod:`.entries` with one change: after the residual
r_i = c ⟨F[rows_i], G[cols_i]⟩ − y_i is stored, the adjoint receives c·φ(r_i)
instead of c·r_i (φ from :func:`._rmap.rmap`: ``(code, a, delta)``):

    (S G)[rows_i] += c φ(r_i) G[cols_i],   (Sᵀ F)[cols_i] += c φ(r_i) F[rows_i].

Same layout, the same fma chains in the same order, hence the same
independence of the thread count. The plain :mod:`.entries` kernels stay the
ℓ2 path, untouched.
"""

from __future__ import annotations

from numba import njit, prange

from ._rmap import rmap
from .entries import LANES, vfma, vload, vsplat, vstore, vsum4, vzero


@njit(nogil=True, cache=True, inline="always")
def _entry_m(c, Fb, Gb, Sb, Tb, y, r, b, i, a, e, R, code, sa, delta):  # pragma: no cover
    """One entry whose rows are R ≤ 4 registers (as :func:`.entries._entry`, with φ)."""
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
    w = vsplat(c * rmap(res, code, sa, delta))
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
def _entry_loop_m(c, Fb, Gb, Sb, Tb, y, r, b, i, a, e, kp, code, sa, delta):  # pragma: no cover
    """One entry, any kp (as :func:`.entries._entry_loop`, with φ)."""
    acc = vzero()
    for j in range(0, kp, LANES):
        acc = vfma(vload(Fb, a + j), vload(Gb, e + j), acc)
    res = c * vsum4(acc) - y[b, i]
    r[b, i] = res
    w = vsplat(c * rmap(res, code, sa, delta))
    for j in range(0, kp, LANES):
        vstore(Sb, a + j, vfma(w, vload(Gb, e + j), vload(Sb, a + j)))
        vstore(Tb, e + j, vfma(w, vload(Fb, a + j), vload(Tb, e + j)))


@njit(nogil=True, cache=True)
def block_m(rows, cols, c, Fp, Gp, y, r, SGp, StFp, lo, hi, q0, q1, kp, phi):  # pragma: no cover
    """:func:`.entries.block` with φ = ``phi`` (code, a, delta)."""
    code, sa, delta = phi
    for b in range(Fp.shape[0]):
        Fb = Fp[b]
        Gb = Gp[b]
        Sb = SGp[b]
        Tb = StFp[b]
        for q in range(q0, q1):
            if kp == 12:
                for i in range(lo[q], hi[q]):
                    _entry_m(
                        c,
                        Fb,
                        Gb,
                        Sb,
                        Tb,
                        y,
                        r,
                        b,
                        i,
                        rows[i] * 12,
                        cols[i] * 12,
                        3,
                        code,
                        sa,
                        delta,
                    )
            elif kp == 8:
                for i in range(lo[q], hi[q]):
                    _entry_m(
                        c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 8, cols[i] * 8, 2, code, sa, delta
                    )
            elif kp == 4:
                for i in range(lo[q], hi[q]):
                    _entry_m(
                        c, Fb, Gb, Sb, Tb, y, r, b, i, rows[i] * 4, cols[i] * 4, 1, code, sa, delta
                    )
            elif kp == 16:
                for i in range(lo[q], hi[q]):
                    _entry_m(
                        c,
                        Fb,
                        Gb,
                        Sb,
                        Tb,
                        y,
                        r,
                        b,
                        i,
                        rows[i] * 16,
                        cols[i] * 16,
                        4,
                        code,
                        sa,
                        delta,
                    )
            else:
                for i in range(lo[q], hi[q]):
                    _entry_loop_m(
                        c,
                        Fb,
                        Gb,
                        Sb,
                        Tb,
                        y,
                        r,
                        b,
                        i,
                        rows[i] * kp,
                        cols[i] * kp,
                        kp,
                        code,
                        sa,
                        delta,
                    )


@njit(nogil=True, cache=True)
def serial_m(rows, cols, c, Fp, Gp, y, r, SGp, StFp, tiles, kp, phi):  # pragma: no cover
    """:func:`.entries.serial` with φ."""
    block_m(
        rows,
        cols,
        c,
        Fp,
        Gp,
        y,
        r,
        SGp,
        StFp,
        tiles[:-1],
        tiles[1:],
        0,
        tiles.shape[0] - 1,
        kp,
        phi,
    )


@njit(parallel=True, nogil=True, cache=True)
def wavefront_m(rows, cols, c, Fp, Gp, y, r, SGp, StFp, seg, groups, kp, phi):  # pragma: no cover
    """:func:`.entries.wavefront` with φ (the same schedule: the same bits at any thread count)."""
    P = seg.shape[0] - 1
    Q = groups.shape[0] - 1
    for s in range(P + Q - 1):
        i0 = max(0, s - Q + 1)
        i1 = min(P, s + 1)
        for i in prange(i0, i1):
            j = s - i
            block_m(
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
                phi,
            )


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def generic_m(rows, cols, c, F, G, y, r, SG, StF, phi):  # pragma: no cover - compiled
    """:func:`.entries.generic` (any float dtype, serial) with φ."""
    code, sa, delta = phi
    B, _, k = F.shape
    for b in range(B):
        for i in range(rows.shape[0]):
            a = rows[i]
            e = cols[i]
            v = 0.0
            for j in range(k):
                v += F[b, a, j] * G[b, e, j]
            res = c * v - y[b, i]
            r[b, i] = res
            w = c * rmap(res, code, sa, delta)
            for j in range(k):
                SG[b, a, j] += w * G[b, e, j]
                StF[b, e, j] += w * F[b, a, j]


class MappedCalls:
    """``serial``, ``wavefront`` and ``generic`` of :mod:`.entries`' signatures, with φ = ``rmap``
    (a :class:`matsense.losses.ResidualMap`) bound: what the completion operator calls."""

    def __init__(self, rmap):
        self.phi = (int(rmap.code), float(rmap.scale), float(rmap.delta))

    def serial(self, *args):
        serial_m(*args, self.phi)

    def wavefront(self, *args):
        wavefront_m(*args, self.phi)

    def generic(self, *args):
        generic_m(*args, self.phi)
