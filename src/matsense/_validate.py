"""Validation at the public boundary.

Every check raises :class:`ValueError` whose message names the offending value
and the accepted range, so that bad input never surfaces as a traceback from
deep inside NumPy.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import backend


class ArgumentTypeError(ValueError, TypeError):
    """A public argument of the wrong kind (None for a problem, a class for a method, ...).

    Both a :class:`ValueError` (what every other bad input raises, and what the
    command line reports in one line) and a :class:`TypeError`.
    """


#: Floating dtypes the library computes in; integer and bool arrays become float64.
FLOAT_DTYPES = ("float32", "float64")


def positive_float(name: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, requiring it finite and > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def int_in_range(name: str, value, lo: int, hi: int | None = None) -> int:
    """Return ``value`` as an int, requiring ``lo <= value <= hi``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def strict_bool(name: str, value) -> bool:
    """``value`` as a bool, accepting only True/False (and NumPy bools): a string such as
    "no" or "false" is an error, never silently true."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def finite_array(name: str, arr):
    """Raise if ``arr`` holds NaN or infinity; return it unchanged."""
    xp = backend.namespace(arr)
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"{name} must be finite; it contains NaN or infinity")
    return arr


def ndim_in(name: str, arr, allowed: tuple[int, ...]):
    if arr.ndim not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
            f"got shape {tuple(arr.shape)}"
        )
    return arr


def real_array(name: str, value):
    """Coerce array-likes (lists, NumPy arrays) to a float64 NumPy array; pass backend arrays."""
    if backend.is_array(value) and not isinstance(value, np.ndarray):
        return backend_dtype_ok(name, value)
    if value is None:
        raise ArgumentTypeError(f"{name} must be an array of real numbers, got None")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - defensive
        raise ValueError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real, got complex dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    elif arr.dtype.name not in FLOAT_DTYPES:
        raise ValueError(
            f"{name} must be float32 or float64 (integers are converted to "
            f"float64), got dtype {arr.dtype}: convert it, e.g. "
            f"np.asarray({name}, dtype=np.float64)"
        )
    return arr


def backend_dtype_ok(name: str, arr):
    """A backend array (torch, ...) must be float32 or float64 too."""
    dtype = str(getattr(arr, "dtype", "")).rsplit(".", 1)[-1]
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got dtype {dtype}")
    return arr


class ProblemBase:
    """What :func:`problem_arg` accepts: :class:`~matsense.problems.Problem` derives from it.

    It lives here so that this module, which ``problems`` imports for its checks, never
    imports ``problems`` back (no import cycle, not even a lazy one).
    """

    __slots__ = ()


def problem_arg(problem, where: str = "run"):
    """``problem`` must be a :class:`~matsense.problems.Problem`."""
    if not isinstance(problem, ProblemBase):
        raise ArgumentTypeError(
            f"{where}: problem must be a matsense Problem (e.g. Problem.gaussian(30, r=2, "
            f"m=900)), got {_describe(problem)}"
        )
    return problem


def method_arg(method, where: str = "run"):
    """``method`` must be a method *instance* with init/step/factors (not its class, not a name)."""
    if isinstance(method, type):
        name = method.__name__
        raise ArgumentTypeError(
            f"{where}: method must be an instance, got the class {name}: instantiate it, "
            f"e.g. {name}() or {name}(step_size=0.3)"
        )
    if isinstance(method, str):
        raise ArgumentTypeError(
            f"{where}: method must be a method object such as ms.GD(step_size=0.3), got the "
            f"string {method!r}: build one by name with ms.get_method({method!r})"
        )
    missing = [a for a in ("init", "step", "factors") if not callable(getattr(method, a, None))]
    if missing:
        raise ArgumentTypeError(
            f"{where}: method must be a method object such as ms.GD(step_size=0.3) (with "
            f"init/step/factors), got {_describe(method)}"
        )
    return method


def _describe(value) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def not_in_worker_bootstrap(what: str) -> None:
    """RuntimeError if called while a spawned worker process imports the main module.

    Worker processes (sweeps, ``reproduce``) are *spawned*: each re-imports the
    calling script. Without an ``if __name__ == "__main__":`` guard, the script's
    top level would run again in every worker — duplicating the work and writing to
    the same output folder. Stop that at once, with the fix in the message.
    """
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            f"{what} was called while a worker process was importing the main script: "
            'guard the script\'s entry point with `if __name__ == "__main__":` '
            "(worker processes are spawned and re-import it)"
        )
