"""Nuclear-norm minimization (convex relaxation), docs/methods.md — via CVXPY, optional.

    min ‖M‖_*   s.t.  𝒜(M) = y                      (asymmetric)
    min tr(M)   s.t.  𝒜(M) = y,  M ⪰ 0              (symmetric PSD; tr = ‖·‖_* on M ⪰ 0)

Exact recovery under RIP, but the problem is a semidefinite program with an
(n1 + n2)-sized PSD cone and m dense equality constraints with n1·n2 unknowns
each, so it is practical only for small matrices. :func:`nuclear_norm_solve`
refuses sizes above ``max_size`` (n1·n2) instead of hanging, and never
reports a solution the solver marked inaccurate as exact.

Not an iterative method of the driver: a function returning a
:class:`NuclearResult`. Install the extra with ``pip install matsense[cvxpy]``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from .. import backend

DEFAULT_MAX_SIZE = 2500  # n1·n2; a 50×50 problem solves in seconds to a minute with SCS/Clarabel


@dataclass(frozen=True)
class NuclearResult:
    """Outcome of :func:`nuclear_norm_solve`.

    Attributes
    ----------
    M : ndarray (n1, n2) or None
        The solver's solution (None when it returned none).
    status : str
        CVXPY's status: 'optimal', 'optimal_inaccurate', 'infeasible',
        'infeasible_inaccurate', 'unbounded', 'user_limit', ... or
        'solver_error' when the solver failed.
    exact : bool
        True only for status 'optimal'. An 'optimal_inaccurate' solution is
        returned but flagged here (and in ``status``) as not exact.
    solver : str
        Name of the solver that ran.
    seconds : float
        Wall time of setup and solve.
    objective : float or None
        ‖M‖_* (tr M in the PSD setting) at the solution.
    residual_norm : float or None
        ‖𝒜(M) − y‖.
    error, rel_error : float or None
        ‖M − M*‖_F and the relative error, when M* is known.
    message : str
        Human-readable summary.
    """

    M: np.ndarray | None
    status: str
    exact: bool
    solver: str
    seconds: float
    objective: float | None = None
    residual_norm: float | None = None
    error: float | None = None
    rel_error: float | None = None
    message: str = ""

    def as_dict(self) -> dict:
        """JSON-ready summary (without the matrix)."""
        return {
            k: getattr(self, k)
            for k in (
                "status",
                "exact",
                "solver",
                "seconds",
                "objective",
                "residual_norm",
                "error",
                "rel_error",
                "message",
            )
        }


def _import_cvxpy():
    try:
        import cvxpy as cp
    except ImportError:
        raise ImportError(
            "nuclear-norm minimization needs CVXPY, which is not installed: "
            "pip install matsense[cvxpy]"
        ) from None
    return cp


def nuclear_norm_solve(
    problem,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    psd: bool | None = None,
    solver: str | None = None,
    verbose: bool = False,
    **solver_options,
) -> NuclearResult:
    """Solve min ‖M‖_* s.t. 𝒜(M) = y with CVXPY.

    Parameters
    ----------
    problem : Problem
    max_size : int
        Largest n1·n2 accepted (default 2500, e.g. 50×50). Larger problems
        raise ``ValueError`` instead of building an SDP that would take
        hours or exhaust memory; raise the limit knowingly.
    psd : bool, optional
        Constrain M ⪰ 0 (and minimize tr M); default ``problem.symmetric``.
    solver : str, optional
        A CVXPY solver name (e.g. 'CLARABEL', 'SCS'); default CVXPY's choice.
    verbose : bool
        Print the solver's log.
    **solver_options
        Passed to ``cvxpy.Problem.solve`` (e.g. ``max_iters``, ``eps``).
    """
    psd, verbose = _check_args(problem, max_size, psd, solver, verbose)
    cp = _import_cvxpy()
    n1, n2 = problem.shape
    A = backend.to_numpy(problem.operator.as_matrix()).astype(float)  # (m, n1·n2), row-major vec
    y = backend.to_numpy(problem.y).astype(float)
    start = time.perf_counter()
    M, prob = _program(cp, (n1, n2), A, y, psd)
    solver_name = solver or ""
    try:
        with warnings.catch_warnings():
            # "Solution may be inaccurate": reported through ``status`` / ``exact`` instead.
            warnings.filterwarnings(
                "ignore", message="Solution may be inaccurate", category=UserWarning
            )
            prob.solve(solver=solver, verbose=verbose, **solver_options)
        status = str(prob.status)
    except cp.error.SolverError as exc:
        return NuclearResult(
            None,
            "solver_error",
            False,
            solver_name,
            time.perf_counter() - start,
            message=f"solver failed: {exc}",
        )
    seconds = time.perf_counter() - start
    try:
        solver_name = prob.solver_stats.solver_name
    except Exception:  # pragma: no cover - stats are best effort
        pass
    return _result(problem, prob, M.value, A, y, status, solver_name, seconds)


def _program(cp, shape: tuple[int, int], A, y, psd: bool):
    """(M, the CVXPY problem): min tr M over M ⪰ 0 when ``psd``, else min ‖M‖_*; 𝒜(M) = y."""
    if psd:
        M = cp.Variable(shape, PSD=True)
        objective = cp.Minimize(cp.trace(M))
    else:
        M = cp.Variable(shape)
        objective = cp.Minimize(cp.normNuc(M))
    return M, cp.Problem(objective, [A @ cp.vec(M, order="C") == y])


def _check_args(problem, max_size, psd, solver, verbose) -> tuple[bool, bool]:
    """The checks of :func:`nuclear_norm_solve`'s arguments; (psd, verbose) as booleans."""
    V.problem_arg(problem, "nuclear_norm_solve")
    n1, n2 = problem.shape
    max_size = V.int_in_range("max_size", max_size, 1)
    if psd is not None:
        psd = V.strict_bool("psd", psd)
    verbose = V.strict_bool("verbose", verbose)
    if solver is not None and not isinstance(solver, str):
        raise TypeError(
            f"solver must be a CVXPY solver name such as 'CLARABEL' or 'SCS', or "
            f"None, got {solver!r:.40} ({type(solver).__name__})"
        )
    if n1 * n2 > max_size:
        raise ValueError(
            f"nuclear-norm minimization of a {n1}×{n2} matrix (n1·n2 = {n1 * n2}) exceeds "
            f"max_size = {max_size}: the SDP has a {n1 + n2}×{n1 + n2} PSD cone and "
            f"{problem.m} dense constraints over {n1 * n2} unknowns and would not finish in "
            f"reasonable time; use a smaller problem or pass a larger max_size knowingly"
        )
    psd = bool(problem.symmetric) if psd is None else psd
    if psd and n1 != n2:
        raise ValueError(f"psd=True needs a square problem, got shape {(n1, n2)}")
    return psd, verbose


def _result(
    problem, prob, value, A, y, status: str, solver_name: str, seconds: float
) -> NuclearResult:
    """The result of a finished solve: the solution M, its residual, objective and error."""
    if value is None:
        return NuclearResult(
            None,
            status,
            False,
            solver_name,
            seconds,
            message=f"no solution: solver status {status!r}",
        )
    Mv = np.asarray(value, dtype=float)
    exact = status == "optimal"
    residual = float(np.linalg.norm(A @ Mv.reshape(-1) - y))
    err = rel = None
    if problem.has_truth:
        Ms = backend.to_numpy(problem.dense_M_star())
        err = float(np.linalg.norm(Mv - Ms))
        rel = err / float(np.linalg.norm(Ms))
    note = "" if exact else " — NOT exact: the solver reports an inaccurate or failed solve"
    msg = f"status {status} ({solver_name}, {seconds:.2f} s)" + note
    if rel is not None:
        msg += f"; relative error {rel:.2e}"
    return NuclearResult(
        Mv, status, exact, solver_name, seconds, float(prob.value), residual, err, rel, msg
    )
