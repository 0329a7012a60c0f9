"""The residual map φ of the robust losses as a scalar numba function (inlined into the tiles).

``rmap(t, code, a, delta)`` is φ(t) for one residual t, the same numbers as
:class:`matsense.losses.ResidualMap` computes with NumPy:

* code 1 (ℓ1): a·sign(t) — 0 where t = 0 (the honest sub-gradient), NaN stays NaN;
* code 2 (Huber): a·clip(t, −delta, delta).

No fast-math: the comparisons and the one multiplication are exact, so φ(r)
is NumPy's ``sign(r) * a`` / ``clip(r, -delta, delta) * a`` (up to the sign of a zero).

numba's cache is keyed on the calling module's source file only: after changing
this function, clear the caches of ``_numba_tiles_mapped`` and ``entries_mapped``
(e.g. touch both files).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def rmap(t, code, a, delta):  # pragma: no cover - compiled
    """φ(t): ``a·sign(t)`` (code 1) or ``a·clip(t, −delta, delta)`` (code 2).

    Branch-free on the sign of t (residual signs are random: a branch on them
    mispredicts half the time and doubled the completion kernel's time); the
    only branch, on NaN, is never taken in a healthy run.
    """
    if t != t:
        return t
    if code == 1:
        return a * ((t > 0.0) * 1.0 - (t < 0.0) * 1.0)
    return a * min(max(t, -delta), delta)
