"""Array-backend helpers (NumPy by default, PyTorch optional) via ``array_api_compat``.

Method and operator code never imports NumPy or torch directly for arithmetic:
it asks :func:`namespace` for the array namespace ``xp`` of its inputs, so the
same functions run on NumPy arrays, torch CPU tensors and torch CUDA tensors.

Moving data between backends goes through one validated :class:`Target`
(backend, device, dtype): :func:`target` checks a user's request once, at the
public boundary, and :func:`convert` moves any array there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj, is_torch_array
from array_api_compat import device as _device
from array_api_compat import to_device as _to_device  # noqa: F401  (re-exported)

from . import compat

SUPPORTED_DTYPES = ("float64", "float32")
BACKENDS = ("numpy", "torch")


_NUMPY_NAMESPACE = array_namespace(np.empty(0))


def namespace(*arrays):
    """The array-API namespace of ``arrays`` (NumPy's or torch's compat wrapper).

    Plain NumPy arrays take a fast path (the driver asks several times per
    iteration, and the general lookup costs microseconds each time).
    """
    for a in arrays:
        if type(a) is not np.ndarray:
            return array_namespace(*arrays)
    return _NUMPY_NAMESPACE


def is_array(x) -> bool:
    return is_array_api_obj(x)


def is_numpy(x) -> bool:
    return isinstance(x, np.ndarray)


def device_of(x):
    return _device(x)


def to_numpy(x) -> np.ndarray:
    """Copy any backend array to a NumPy array on the host."""
    if isinstance(x, np.ndarray):
        return x
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_dtype(dtype) -> str:
    """Normalize a dtype (name, NumPy or torch dtype) to 'float64' / 'float32'."""
    name = str(np.dtype(dtype)) if isinstance(dtype, (type, np.dtype)) else str(dtype)
    name = name.replace("torch.", "")
    if name not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(SUPPORTED_DTYPES)}, got {dtype!r}")
    return name


def where_batch(mask, new, old):
    """Select ``new[b]`` where ``mask[b]`` else ``old[b]`` along the leading batch axis."""
    xp = namespace(new, old)
    shape = (mask.shape[0],) + (1,) * (new.ndim - 1)
    return xp.where(xp.reshape(mask, shape), new, old)


# --------------------------------------------------------------- backend targets
@dataclass(frozen=True)
class Target:
    """Where arrays live: backend ('numpy' | 'torch'), device ('cpu' | 'cuda[:i]'), dtype."""

    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"


def _import_torch(why: str):
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{why} needs PyTorch, which is not installed (pip install 'matsense[torch]')"
        ) from None
    return torch


def target(backend: str = "numpy", device: str = "cpu", dtype="float64") -> Target:
    """Validate a (backend, device, dtype) request; raise a one-line ``ValueError`` if impossible.

    Parameters
    ----------
    backend : {'numpy', 'torch'}
    device : {'cpu', 'cuda', 'cuda:<i>'}
        'cuda' needs ``backend='torch'`` and a GPU visible to PyTorch.
    dtype : {'float64', 'float32'} (or the NumPy / torch dtype)
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    dtype = check_dtype(dtype)
    device = str(device)
    is_cuda = device == "cuda" or device.startswith("cuda:")
    if device != "cpu" and not is_cuda:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    if is_cuda and backend != "torch":
        raise ValueError(f"device {device!r} needs backend='torch' (NumPy runs on the CPU only)")
    if backend == "torch":
        torch = _import_torch(f"backend 'torch' (device {device!r})")
        if is_cuda:
            if not torch.cuda.is_available():
                raise ValueError(
                    f"device {device!r} requested but PyTorch sees no CUDA GPU "
                    f"(torch.cuda.is_available() is False); use device='cpu'"
                )
            if device.startswith("cuda:"):
                index = device[5:]
                count = torch.cuda.device_count()
                if not index.isdigit() or int(index) >= count:
                    raise ValueError(
                        f"device {device!r} does not exist; this machine has "
                        f"{count} CUDA device(s): cuda:0..cuda:{count - 1}"
                    )
    return Target(backend, device, dtype)


def target_of(x) -> Target:
    """The :class:`Target` an existing array lives on."""
    if is_torch_array(x):
        dev = x.device
        device = "cpu" if dev.type == "cpu" else str(dev)
        return Target("torch", device, check_dtype(x.dtype))
    return Target("numpy", "cpu", check_dtype(to_numpy(x).dtype))


def convert(x, tgt: Target):
    """``x`` (NumPy array or torch tensor; ``None`` passes) on ``tgt``.

    No copy is made when ``x`` already matches (a NumPy float64 array becomes a
    torch CPU float64 tensor that shares its memory).
    """
    if x is None:
        return None
    if tgt.backend == "numpy":
        return np.ascontiguousarray(to_numpy(x), dtype=tgt.dtype)
    torch = _import_torch("backend 'torch'")
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    return x.to(device=tgt.device, dtype=getattr(torch, tgt.dtype)).contiguous()


def convert_index(x, tgt: Target):
    """An integer index array on ``tgt``'s backend and device (dtype int64)."""
    if tgt.backend == "numpy":
        return np.ascontiguousarray(to_numpy(x), dtype=np.int64)
    torch = _import_torch("backend 'torch'")
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))
    return x.to(device=tgt.device, dtype=torch.int64)


def __getattr__(name):
    # blas_threads_for and SMALL_OPERATOR_BYTES moved to matsense.threads, the home of every
    # thread decision: deprecated here (matsense.compat.DEPRECATED)
    return compat.attribute(__name__, name)
