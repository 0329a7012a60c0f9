"""Deprecated home of the one-pass CPU kernels; every name here goes away in 0.3.0.

The code now lives by job:

* :mod:`matsense.operators.dispatch` — which kernel runs (``residual_and_adjoint_flat``);
* :mod:`matsense.operators.kernels` — the numba kernel, the NumPy loop, the two-pass code;
* :mod:`matsense.operators.blocking` — cache sizes and the NumPy loop's block size;
* :mod:`matsense.threads` — usable cores, BLAS limits, ``single_threaded()``, kernel threads.

Import from those modules. The old names still answer, with a ``DeprecationWarning``
(the table: :data:`matsense.compat.DEPRECATED`).
"""

from .. import compat


def __getattr__(name):
    return compat.attribute(__name__, name)


def __dir__():
    return compat.names(__name__)
