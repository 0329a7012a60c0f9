"""Methods: one module per algorithm, each a frozen dataclass with init/step."""

from .base import AsymState, Method, SymState, product, sym
from .gd import GD
from .rebalance import RebalancedGD, rebalance

METHODS = {"gd": GD, "rebalanced_gd": RebalancedGD}


def get_method(name: str, **params):
    """Build a method by name; unknown names list the known ones."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(METHODS))}"
        ) from None
    return cls(**params)


__all__ = ["GD", "RebalancedGD", "rebalance", "AsymState", "SymState", "Method",
           "product", "sym", "METHODS", "get_method"]
