"""The reference figures of docs/methods.md and how a measured record compares with them."""

from __future__ import annotations

from .. import ensembles
from .entries import CompareSettings

#: The setting the reference runs used: (n, r, m_factor, spacing, tol), on the default
#: ensemble (:data:`matsense.ensembles.DEFAULT`, dense Gaussian).
REFERENCE_SETTING = (100, 5, 5, "linear", 1e-10)


def reference_figure(settings: CompareSettings, key: str, kappa: float, k: int):
    """The reference figure for this record, or None where docs/methods.md gives none.

    Returns a dict with 'text' and, where a number exists, 'iterations'
    (a value or a (lo, hi) range), 'not_reached_in' (a budget), or
    'rel_error' and 'at_iteration'.
    """
    if (
        (
            settings.n,
            settings.r,
            settings.m_factor,
            settings.spacing,
            settings.tol,
        )
        != REFERENCE_SETTING
        or settings.ensemble != ensembles.DEFAULT
        or settings.outliers()
    ):
        return None  # the reference runs: clean problems, dense Gaussian (robust keys: none)
    r = settings.r
    if key == "scaledgd" and k == r:
        return {"text": "252–271 iterations (κ ∈ {1, 10, 100})", "iterations": (252, 271)}
    if key == "gd" and k == r:
        ref = {1.0: 273, 10.0: 1424}.get(float(kappa))
        if ref is not None:
            return {"text": f"{ref} iterations", "iterations": ref}
        if float(kappa) == 100.0:
            return {
                "text": "not reached in 3000 iterations",
                "iterations": None,
                "not_reached_in": 3000,
            }
    if key == "precgd" and k == 2 * r:
        return {"text": "264–281 iterations (κ ∈ {1, 10, 100})", "iterations": (264, 281)}
    if key == "gd_sym" and k == 2 * r:
        return {
            "text": "rel. error still ≈ 3e-4 after 4000 iterations",
            "rel_error": 3e-4,
            "at_iteration": 4000,
        }
    return None


def reference_check(ref, rec) -> str | None:
    """'within ±20%', 'outside ±20%', 'agrees (not reached)', … — or None without a reference."""
    if ref is None:
        return None
    its = rec["iterations_to_tol"]
    if "not_reached_in" in ref:
        return (
            "agrees (not reached)"
            if its is None or its > ref["not_reached_in"]
            else f"disagrees (reached in {its})"
        )
    if "rel_error" in ref:
        err = rec["final_rel_error"]
        if rec["status"] == "converged":
            return "disagrees (converged)"
        ratio = err / ref["rel_error"]
        return f"same order (×{ratio:.2g})" if 0.1 <= ratio <= 10 else f"differs (×{ratio:.2g})"
    target = ref["iterations"]
    if its is None:
        return "outside ±20% (not reached)"
    lo, hi = target if isinstance(target, tuple) else (target, target)
    return "within ±20%" if 0.8 * lo <= its <= 1.2 * hi else "outside ±20%"
