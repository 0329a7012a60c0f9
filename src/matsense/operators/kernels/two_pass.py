"""The textbook residual and adjoint: two matrix products, A read twice."""

from __future__ import annotations


def two_pass(A, p, y, rmap=None):
    """The textbook r = p Aᵀ − y, s = r A (any array-API backend): two reads of A.

    With a residual map φ (:class:`matsense.losses.ResidualMap`): s = φ(r) A.
    """
    r = p @ A.mT - y
    return r, (r if rmap is None else rmap(r)) @ A
