"""Array-backend helpers (NumPy by default, PyTorch optional) via ``array_api_compat``.

Method and operator code never imports NumPy or torch directly for arithmetic:
it asks :func:`namespace` for the array namespace ``xp`` of its inputs, so the
same functions run on NumPy arrays, torch CPU tensors and torch CUDA tensors.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj, is_torch_array
from array_api_compat import device as _device
from array_api_compat import to_device as _to_device  # noqa: F401  (re-exported)

SUPPORTED_DTYPES = ("float64", "float32")


def namespace(*arrays):
    """The array-API namespace of ``arrays`` (NumPy's or torch's compat wrapper)."""
    return array_namespace(*arrays)


def is_array(x) -> bool:
    return is_array_api_obj(x)


def device_of(x):
    return _device(x)


def to_numpy(x) -> np.ndarray:
    """Copy any backend array to a NumPy array on the host."""
    if isinstance(x, np.ndarray):
        return x
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_dtype(dtype: str) -> str:
    name = str(dtype).replace("torch.", "")
    if name not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(SUPPORTED_DTYPES)}, got {dtype!r}")
    return name


def where_batch(mask, new, old):
    """Select ``new[b]`` where ``mask[b]`` else ``old[b]`` along the leading batch axis."""
    xp = namespace(new, old)
    shape = (mask.shape[0],) + (1,) * (new.ndim - 1)
    return xp.where(xp.reshape(mask, shape), new, old)
