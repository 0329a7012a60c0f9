"""Methods: one module per algorithm, each a frozen dataclass with init/step.

:data:`METHODS` maps each method's ``name`` to its class; a method of your own
needs no entry here to run (``ms.run`` takes any object with the protocol of
:class:`~matsense.methods.base.Method`). Methods of other packages join it through
the entry-point group ``matsense.methods`` (:mod:`matsense.plugins`, docs/plugins.md).
"""

from .. import plugins
from .apgd import AlternatingPrecGD
from .base import AsymState, Method, Phase, SymState, param, phases_of, product, sym
from .gd import GD
from .precgd import PrecGD
from .rebalance import RebalancedGD, rebalance
from .scaledgd import ScaledGD, ScaledGDLambda
from .scaledsm import ScaledSM
from .subgm import SubGM
from .svp import SVP

#: name -> method class: the built-ins, then the installed plugins (read on first use).
METHODS = plugins.Registry(
    "method",
    {
        cls.name: cls
        for cls in (
            GD,
            RebalancedGD,
            ScaledGD,
            ScaledGDLambda,
            PrecGD,
            AlternatingPrecGD,
            SVP,
            SubGM,
            ScaledSM,
        )
    },
    plugins.check_method,
)


def get_method(name: str, **params):
    """Build a method by name; unknown names list the known ones."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise METHODS.unknown(
            name, f"unknown method {name!r}; known methods: {', '.join(sorted(METHODS))}"
        ) from None
    return cls(**params)


__all__ = [
    "GD",
    "RebalancedGD",
    "rebalance",
    "ScaledGD",
    "ScaledGDLambda",
    "PrecGD",
    "AlternatingPrecGD",
    "SVP",
    "SubGM",
    "ScaledSM",
    "AsymState",
    "SymState",
    "Method",
    "Phase",
    "param",
    "phases_of",
    "product",
    "sym",
    "METHODS",
    "get_method",
]
