"""Methods: one module per algorithm, each a frozen dataclass with init/step."""

from .base import AsymState, Method, SymState, product, sym
from .gd import GD
from .rebalance import RebalancedGD, rebalance
from .apgd import AlternatingPrecGD
from .precgd import PrecGD
from .scaledgd import ScaledGD, ScaledGDLambda
from .svp import SVP

METHODS = {"gd": GD, "rebalanced_gd": RebalancedGD, "scaledgd": ScaledGD,
           "scaledgd_lambda": ScaledGDLambda, "precgd": PrecGD, "apgd": AlternatingPrecGD,
           "svp": SVP}


def get_method(name: str, **params):
    """Build a method by name; unknown names list the known ones."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(METHODS))}"
        ) from None
    return cls(**params)


__all__ = ["GD", "RebalancedGD", "rebalance", "ScaledGD", "ScaledGDLambda", "PrecGD",
           "AlternatingPrecGD", "SVP", "AsymState", "SymState", "Method",
           "product", "sym", "METHODS", "get_method"]
