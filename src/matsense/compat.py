"""Every deprecated name of matsense in one place, with the release that removes it.

Old names keep working until their removal release, with a :class:`DeprecationWarning`
that names the new home. A module that keeps old names does not define them; it
forwards the lookup here from its module-level ``__getattr__`` (PEP 562)::

    from .. import compat

    def __getattr__(name):
        return compat.attribute(__name__, name)

:data:`DEPRECATED` is the one table of deprecated Python names and
:data:`DEPRECATED_FLAGS` the one table of deprecated command-line spellings
(:mod:`matsense.cli` reads it). To deprecate a name: move the code to its new
home, add a row here and forward ``__getattr__`` as above. To remove one at its
release: delete the row (and the ``__getattr__`` when the module has no row left).

This module imports nothing from matsense at import time: it sits below every
module that forwards to it.
"""

from __future__ import annotations

import importlib
import warnings
from typing import NamedTuple

#: The release that removes what this release deprecates (one release of warnings).
NEXT_REMOVAL = "0.3.0"

_THREADS = "matsense.threads"
_DISPATCH = "matsense.operators.dispatch"
_BLOCKING = "matsense.operators.blocking"
_KERNELS = "matsense.operators.kernels"


class Alias(NamedTuple):
    """A deprecated name: where its value lives now, the release that removes it, and what
    to do instead when that is not simply "use the new name"."""

    target: str  # "module:name", or "module:function()" for a value computed on use
    removal: str
    instead: str | None = None


#: Deprecated Python names: (module, old name) -> :class:`Alias`.
DEPRECATED: dict[tuple[str, str], Alias] = {
    # operators/_fused.py: the one-pass CPU kernels now live by job.
    **{
        ("matsense.operators._fused", name): Alias(f"{target}:{name}", NEXT_REMOVAL)
        for target, names in (
            (_THREADS, ("THREADED_MIN_BYTES", "kernel_threads", "single_threaded", "usable_cores")),
            (_BLOCKING, ("block_rows_for", "default_block_bytes", "last_level_cache_bytes")),
            (
                _DISPATCH,
                ("FUSED_MAX_BATCH", "KERNELS", "residual_and_adjoint_flat", "selected_kernel"),
            ),
            (f"{_KERNELS}.numba_kernel", ("fused_numba", "numba_available")),
            (f"{_KERNELS}.numpy_loop", ("fused_numpy",)),
            (f"{_KERNELS}.two_pass", ("two_pass",)),
        )
        for name in names
    },
    # backend.py: every thread decision lives in matsense.threads.
    ("matsense.backend", "blas_threads_for"): Alias(f"{_THREADS}:blas_threads_for", NEXT_REMOVAL),
    ("matsense.backend", "SMALL_OPERATOR_BYTES"): Alias(
        f"{_THREADS}:SMALL_OPERATOR_BYTES", NEXT_REMOVAL
    ),
    ("matsense.experiments", "CRITERIA"): Alias(
        "matsense.experiments.claims:flat_criteria()",
        NEXT_REMOVAL,
        "use matsense.experiments.CLAIMS[claim_id].criteria",
    ),
    ("matsense.methods.base", "step_size"): Alias(
        "matsense.methods.base:_step_size",
        NEXT_REMOVAL,
        "declare the step size as a field param(..., positive) of the method",
    ),
}

#: Old spellings of command-line flags, still accepted with a one-line warning:
#: (command, flag) -> (what to use instead, removal release).
DEPRECATED_FLAGS: dict[tuple[str, str], tuple[str, str]] = {
    ("compare", "--progress"): (
        (
            "progress is shown by default when stderr is a terminal, "
            "like every other command; --no-progress turns it off"
        ),
        NEXT_REMOVAL,
    ),
}


def attribute(module: str, name: str):
    """The value of the deprecated ``module.name``, with a :class:`DeprecationWarning`.

    Raises the :class:`AttributeError` Python would (``module`` has no ``name``)
    for a name that is not in :data:`DEPRECATED`.
    """
    try:
        alias = DEPRECATED[(module, name)]
    except KeyError:
        raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
    home, _, attr = alias.target.partition(":")
    instead = alias.instead or f"use {home}.{attr}"
    warnings.warn(
        f"{module}.{name} is deprecated and will be removed in matsense {alias.removal}: {instead}",
        DeprecationWarning,
        stacklevel=3,
    )
    if attr.endswith("()"):  # a value computed on use (a view built from the new home)
        return getattr(importlib.import_module(home), attr[:-2])()
    return getattr(importlib.import_module(home), attr)


def names(module: str) -> list[str]:
    """The deprecated names ``module`` still answers (for its ``__dir__``)."""
    return sorted(name for mod, name in DEPRECATED if mod == module)
