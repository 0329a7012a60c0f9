"""Deprecated home of the one-pass CPU kernels: a re-export kept for one release.

The code now lives by job:

* :mod:`matsense.operators.dispatch` — which kernel runs (``residual_and_adjoint_flat``);
* :mod:`matsense.operators.kernels` — the numba kernel, the NumPy loop, the two-pass code;
* :mod:`matsense.operators.blocking` — cache sizes and the NumPy loop's block size;
* :mod:`matsense.threads` — usable cores, BLAS limits, ``single_threaded()``, kernel threads.

Import from those modules; this one will be removed.
"""

from ..threads import (THREADED_MIN_BYTES, kernel_threads, single_threaded,  # noqa: F401
                       usable_cores)
from ..threads import numpy_blas_controller as _blas_controller  # noqa: F401
from ..threads import single_blas_thread as _single_blas_thread  # noqa: F401
from .blocking import block_rows_for, default_block_bytes, last_level_cache_bytes  # noqa: F401
from .dispatch import (FUSED_MAX_BATCH, KERNELS, residual_and_adjoint_flat,  # noqa: F401
                       selected_kernel)
from .kernels.numba_kernel import fused_numba, numba_available  # noqa: F401
from .kernels.numpy_loop import fused_numpy  # noqa: F401
from .kernels.two_pass import two_pass  # noqa: F401
