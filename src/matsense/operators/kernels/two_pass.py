"""The textbook residual and adjoint: two matrix products, A read twice."""

from __future__ import annotations


def two_pass(A, p, y):
    """The textbook r = p Aᵀ − y, s = r A (any array-API backend): two reads of A."""
    r = p @ A.mT - y
    return r, r @ A
