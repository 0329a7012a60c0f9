"""When matsense forms an n1 × n2 matrix: the one "dense limit" policy.

Three sizes, one test. An n1 × n2 matrix is formed densely only up to a number
of entries, and which number depends on what the matrix is for:

``operator`` (2²⁶ entries, 512 MiB in float64)
    Operators form n1 × n2 matrices on request (𝒜*(r), ``as_matrix``, the dense
    SVD of SVP, the spectral initialization's 𝒜*(y)). Above it they refuse
    with one line (:meth:`~matsense.operators.MatrixOperator.check_dense`)
    and the methods that can use the factored calls do
    (:meth:`~matsense.operators.MatrixOperator.forms_dense`).
``truth`` (2²² entries, 32 MiB)
    A generated problem stores its ground truth M* as a dense array next to its
    factors; above it only the factors (``Problem.S_star``).
``error`` (2²⁰ entries, 8 MiB)
    The diagnostics compute ‖F Gᵀ − M*‖_F from a known dense M* (forming F Gᵀ
    costs less than two QR factorizations); above it from M*'s factors.

:data:`DENSE` is the policy in force; :meth:`DenseLimits.allows` is the one
"is it dense?" test. Tests that need another policy replace :data:`DENSE`
(``monkeypatch.setattr(limits, "DENSE", DENSE.replace(operator=10))``): every
reader looks it up at call time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

USES = ("operator", "truth", "error")


@dataclass(frozen=True)
class DenseLimits:
    """The largest n1·n2 formed densely, per use (see the module docstring)."""

    operator: int = 2**26
    truth: int = 2**22
    error: int = 2**20

    def allows(self, shape, use: str = "operator") -> bool:
        """Whether an n1 × n2 matrix (``shape`` = (n1, n2), extra leading axes ignored) is
        formed densely for ``use`` ('operator', 'truth' or 'error')."""
        if use not in USES:
            raise ValueError(f"use must be one of {', '.join(USES)}, got {use!r}")
        n1, n2 = shape[-2], shape[-1]
        return int(n1) * int(n2) <= getattr(self, use)

    def replace(self, **changes) -> DenseLimits:
        return dataclasses.replace(self, **changes)


#: The policy in force (read at call time).
DENSE = DenseLimits()


def dense_ok(shape, use: str = "operator") -> bool:
    """``DENSE.allows(shape, use)`` with the policy in force now."""
    return DENSE.allows(shape, use)


__all__ = ["DenseLimits", "DENSE", "dense_ok", "USES"]
