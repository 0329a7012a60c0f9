"""Sensing operators 𝒜: R^{n1×n2} → R^m (PAPER.md §2)."""

from .dense import DenseOperator

__all__ = ["DenseOperator"]
