"""The runs behind the claims, one seed at a time, computed once and shared.

Several claims read the same trajectories (C5 and C6 compare with the X Xᵀ run
of C2; C7 contrasts with the plain-GD runs of C4), so :class:`SeedRuns` builds
each named run on first use and caches it. Every run advances all the
trajectories that share its problem as one batch (leading axis B): the α
values of a claim, or the three initializations of C5/C6.

=================  ============================================================
run name           what it is
=================  ============================================================
``sym_exact``      GD on X Xᵀ, k = r, every α                         (C1)
``sym_over``       GD on X Xᵀ, k > r, ``c2_alphas``                  (C2, C5, C6)
``asym_exact``     GD on F Gᵀ, k = r, every α                         (C3)
``asym_over``      GD on F Gᵀ, k > r, ``c4_alphas``, stops at the    (C4, C7)
                   window's lower end
``asym_on_sym``    GD on F Gᵀ on the PSD problem, α = ``c5_alpha``:   (C5, C6)
                   [small random (G₀ at α/3, independent),
                   balanced G₀ = F₀, imbalanced G₀ = F₀/3]
``rebalanced``     RebalancedGD on F Gᵀ, k > r, every α               (C7)
``exact_reference`` GD on F Gᵀ, k = r, from the first r columns of    (C7)
                   the start of ``rebalanced``
``exact_balanced`` the same, balanced once at its τ-crossing           (C7, reported)
``drift``          DriftBoundGD at η, η/2, η/4, ``c8_alphas``         (C8)
=================  ============================================================

X₀ of ``sym_over`` at ``c5_alpha`` is the F₀ = G₀ of the balanced run (same
seed, same draw), and every F Gᵀ run on the asymmetric problem starts from the
same draw scaled by α, so C4, C7 and C8 compare like with like.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import diagnostics
from .. import init as _init
from ..methods import GD, RebalancedGD
from ..operators import single_threaded
from ..problems import Problem
from ..run import run, run_together
from ..threads import usable_cores
from ..trajectory import BatchTrajectory, Trajectory
from .drift import run_checkpoints
from .settings import ClaimSettings, init_seed


class LabeledRun:
    """A batched run whose trajectories are addressed by label: an α, or a name.

    ``run[label]`` is that trajectory (a :class:`~matsense.trajectory.Trajectory`);
    ``run.curve(label, key)`` its recorded (iterations, values); ``run.traj`` the
    whole :class:`~matsense.trajectory.BatchTrajectory`. Claims never depend on
    the order in which a builder stacked its trajectories.
    """

    def __init__(self, traj: BatchTrajectory, labels, checkpoints: dict | None = None):
        labels = tuple(labels)
        if len(labels) != traj.batch_size or len(set(labels)) != len(labels):
            raise ValueError(f"need {traj.batch_size} distinct labels, got {labels}")
        self.traj = traj
        self.labels = labels
        #: label -> {quantity: array} read at checkpoints during the run (by a callback)
        self.checkpoints = checkpoints or {}

    def index(self, label) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"no trajectory labelled {label!r}; labels: {self.labels}") from None

    def __getitem__(self, label) -> Trajectory:
        return self.traj[self.index(label)]

    def curve(self, label, key: str = "error"):
        """(iterations, values) of trajectory ``label`` where it was recorded (floats)."""
        h = self[label].history
        return np.asarray(h["iteration"], dtype=float), np.asarray(h[key], dtype=float)

    def status(self, label) -> str:
        return str(self[label].status)

    def extra(self, label, name: str, default=None):
        return self[label].extras.get(name, default)


class SeedRuns:
    """The problems and runs of one seed (built lazily, cached)."""

    def __init__(self, settings: ClaimSettings, seed: int, log=None):
        self.settings = settings.resolve()
        self.seed = int(seed)
        self.log = log
        self.seconds: dict[str, float] = {}
        self._problems: dict[bool, Problem] = {}
        self._runs: dict[str, object] = {}

    # ------------------------------------------------------------- problems
    def problem(self, symmetric: bool) -> Problem:
        """The seed's PSD problem (n1 × n1) or general problem (n1 × n2)."""
        if symmetric not in self._problems:
            self._problems[symmetric] = self.settings.make_problem(symmetric, self.seed)
        return self._problems[symmetric]

    def init_seed(self, role: str) -> int:
        return init_seed(self.seed, role)

    # ----------------------------------------------------------------- runs
    def get(self, name: str):
        if name not in self._runs:
            try:
                builder = RUNS[name]
            except KeyError:
                raise ValueError(f"unknown run {name!r}; known: {', '.join(RUNS)}") from None
            start = time.perf_counter()
            # One BLAS / kernel thread, wherever the run is built (this process or a worker
            # of compute_runs): the same bits for any number of workers.
            with single_threaded():
                self._runs[name] = builder(self)
            self.seconds[name] = time.perf_counter() - start
            if self.log is not None:
                self.log(f"seed {self.seed}: run {name} took {self.seconds[name]:.1f} s")
        return self._runs[name]

    def _gd(self, problem, init, iters, *, tol=None, record_every=None, method=None,
            callback=None):
        s = self.settings
        return run(problem, method or GD(s.eta), init, iters, tol=tol,
                   record_every=s.record_every if record_every is None else record_every,
                   divergence_factor=s.divergence_factor, callback=callback)


def _batch(values, seed):
    values = [float(v) for v in values]
    return values, [seed] * len(values)


def _sym_exact(sr: SeedRuns):
    s = sr.settings
    p = sr.problem(True)
    alphas, seeds = _batch(s.alphas, sr.init_seed("symmetric"))
    X0 = _init.symmetric_random(p, s.r, alphas, seed=seeds)
    return LabeledRun(sr._gd(p, X0, s.exact_iters, tol=s.exact_tol), alphas)


def _long_record_every(s, iters: int) -> int:
    """Record stride of long runs: ``long_record_every``, coarser beyond 20 000 iterations."""
    return max(s.long_record_every, iters // 2000)


def _sym_over(sr: SeedRuns):
    s = sr.settings
    p = sr.problem(True)
    alphas, seeds = _batch(s.c2_alphas, sr.init_seed("symmetric"))
    X0 = _init.symmetric_random(p, s.k, alphas, seed=seeds)
    return LabeledRun(sr._gd(p, X0, s.c2_iters, record_every=_long_record_every(s, s.c2_iters)),
                      alphas)


def _asym_exact(sr: SeedRuns):
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = _batch(s.alphas, sr.init_seed("asymmetric"))
    traj = sr._gd(p, _init.small_random(p, s.r, alphas, ratio=s.ratio, seed=seeds), s.exact_iters,
                  tol=s.exact_tol)
    return LabeledRun(traj, alphas)


def _asym_over(sr: SeedRuns):
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = _batch(s.c4_alphas, sr.init_seed("asymmetric"))
    # Stop each trajectory just below the fit window: the window is relative to the
    # starting error, which is ‖M*‖_F up to O(α²), so this tol is on the same scale.
    tol = s.c4_window[1] / 2
    traj = sr._gd(p, _init.small_random(p, s.k, alphas, ratio=s.ratio, seed=seeds), s.c4_iters,
                  tol=tol,
                  record_every=_long_record_every(s, s.c4_iters))
    return LabeledRun(traj, alphas)


#: The three starts of F Gᵀ on the PSD problem (C5, C6), by label.
ASYM_ON_SYM_LABELS = {
    "small_random": "F Gᵀ, small random (G₀ ~ α/3)",
    "balanced": "F Gᵀ, balanced G₀ = F₀",
    "imbalanced": "F Gᵀ, imbalanced G₀ = F₀/3",
}


def asym_on_sym_inits(sr: SeedRuns):
    """[small random, balanced G₀ = F₀, imbalanced G₀ = F₀/3] on the PSD problem, batched
    (the order of :data:`ASYM_ON_SYM_LABELS`)."""
    s = sr.settings
    p = sr.problem(True)
    F_sr, G_sr = _init.small_random(p, s.k, s.c5_alpha, ratio=s.ratio,
                                    seed=sr.init_seed("asymmetric"))
    X0 = _init.symmetric_random(p, s.k, s.c5_alpha, seed=sr.init_seed("symmetric"))
    F0 = np.stack([F_sr, X0, X0])
    G0 = np.stack([G_sr, X0.copy(), X0 * s.ratio])
    return F0, G0


def _asym_on_sym(sr: SeedRuns):
    """The three starts, and the generated imbalance of the balanced one at checkpoints.

    The balanced start has Δ₀ = 0; GD generates imbalance (C8). Its smallest
    eigenvalue on the k − r redundant directions sets when a linear rate can take
    over from the 1/t decay (see :func:`matsense.diagnostics.redundant_imbalance`).
    """
    s = sr.settings
    labels = tuple(ASYM_ON_SYM_LABELS)
    balanced = labels.index("balanced")
    iters = s.c5_iters
    marks = set(np.unique(np.round(np.geomspace(1, iters, s.c6_checkpoints)).astype(int)).tolist())
    seen = {"iteration": [], "redundant_imbalance": []}

    def read_imbalance(t, info):
        rows = list(info["rows"])
        if t in marks and balanced in rows:
            F, G = (f[rows.index(balanced)][None] for f in info["factors"])
            seen["iteration"].append(t)
            seen["redundant_imbalance"].append(
                float(np.asarray(diagnostics.redundant_imbalance(F, G, s.r))[0]))
        return False

    traj = sr._gd(sr.problem(True), asym_on_sym_inits(sr), iters, tol=s.exact_tol,
                  record_every=_long_record_every(s, iters), callback=read_imbalance)
    checkpoints = {"balanced": {k: np.asarray(v) for k, v in seen.items()}}
    return LabeledRun(traj, labels, checkpoints)


def _rebalanced(sr: SeedRuns):
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = _batch(s.alphas, sr.init_seed("asymmetric"))
    method = RebalancedGD(step_size=s.eta, tau=s.tau)
    traj = sr._gd(p, _init.small_random(p, s.k, alphas, ratio=s.ratio, seed=seeds), s.c7_iters,
                  tol=s.c7_tol, method=method)
    return LabeledRun(traj, alphas)


def _exact_reference(sr: SeedRuns):
    """GD with k = r from the first r columns of the start of ``rebalanced`` (C7's reference)."""
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = _batch(s.alphas, sr.init_seed("asymmetric"))
    F0, G0 = _init.small_random(p, s.k, alphas, ratio=s.ratio, seed=seeds)
    return LabeledRun(sr._gd(p, (F0[..., :s.r], G0[..., :s.r]), s.exact_iters, tol=s.exact_tol),
                      alphas)


def _exact_balanced(sr: SeedRuns):
    """``exact_reference`` balanced once at its own τ-crossing (k = r: every direction is signal):
    the exact-parameterization rate without the start's imbalance, which at small σ_r slows k = r
    GD itself (docs/rebalance_study.md); C7 reports its ratio to it next to the judged one."""
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = _batch(s.alphas, sr.init_seed("asymmetric"))
    F0, G0 = _init.small_random(p, s.k, alphas, ratio=s.ratio, seed=seeds)
    method = RebalancedGD(step_size=s.eta, tau=s.tau, transform="balanced", rank=s.r,
                          diagnostics=False)
    return LabeledRun(sr._gd(p, (F0[..., :s.r], G0[..., :s.r]), s.exact_iters, tol=s.exact_tol,
                             method=method), alphas)


def _rebalancing_kappas(sr: SeedRuns):
    """The fix across condition numbers: for each κ of ``c7_kappas`` (σ geometric, the family's
    α and budgets derived for that κ), rebalanced GD, plain GD and k = r GD from the same start,
    run together (one stacked operator pass per iteration)."""
    s = sr.settings
    out = []
    for kappa in s.c7_kappas:
        sk = s.with_kappa(kappa)
        p = sk.make_problem(False, sr.seed)
        a = sk.alphas[0]
        F0, G0 = _init.small_random(p, sk.k, a, ratio=sk.ratio, seed=sr.init_seed("asymmetric"))
        runs = [(RebalancedGD(step_size=sk.eta, tau=sk.tau), (F0, G0)), (GD(sk.eta), (F0, G0)),
                (GD(sk.eta), (F0[:, :sk.r], G0[:, :sk.r]))]
        iters = max(sk.c7_iters, sk.exact_iters, sk.c4_iters)
        trs = run_together(p, runs, iters, tol=sk.c7_tol, record_every=sk.record_every,
                           divergence_factor=sk.divergence_factor)
        out.append({"kappa": float(kappa), "alpha": a, "singular_values": list(sk.singular_values),
                    "rebalanced": trs[0], "plain": trs[1], "exact": trs[2]})
    return out


def drift_checkpoints(iters: int, n: int) -> np.ndarray:
    """About ``n`` iterations from 1 to ``iters``, geometrically spaced (the drift builds up early)."""
    return np.unique(np.round(np.geomspace(1, iters, n)).astype(int))


def _drift(sr: SeedRuns):
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = _batch(s.c8_alphas, sr.init_seed("asymmetric"))
    init = _init.small_random(p, s.k, alphas, ratio=s.ratio, seed=seeds)
    ck = drift_checkpoints(s.c8_iters, s.c8_checkpoints)
    full = run_checkpoints(p, init, s.eta, ck, divergence_factor=s.divergence_factor)
    half = run_checkpoints(p, init, s.eta / 2, 2 * ck, divergence_factor=s.divergence_factor)
    quarter = run_checkpoints(p, init, s.eta / 4, 4 * ck, divergence_factor=s.divergence_factor)
    return {"eta": full, "half": half, "quarter": quarter, "labels": tuple(alphas)}


RUNS = {
    "sym_exact": _sym_exact,
    "sym_over": _sym_over,
    "asym_exact": _asym_exact,
    "asym_over": _asym_over,
    "asym_on_sym": _asym_on_sym,
    "rebalanced": _rebalanced,
    "exact_reference": _exact_reference,
    "exact_balanced": _exact_balanced,
    "rebalancing_kappas": _rebalancing_kappas,
    "drift": _drift,
}


def stderr_log(message: str) -> None:
    print(f"[matsense reproduce] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------ parallel runs
#: Rough relative cost of each run (iterations × batch), to start the longest first.
_COST = {"asym_over": "c4_iters", "sym_over": "c2_iters", "asym_on_sym": "c5_iters",
         "drift": "c8_iters", "rebalanced": "c7_iters", "sym_exact": "exact_iters",
         "asym_exact": "exact_iters", "exact_reference": "exact_iters",
         "exact_balanced": "exact_iters",
         "rebalancing_kappas": "c4_iters"}


def _compute_one(settings: ClaimSettings, seed: int, name: str, progress: bool):
    """Worker: build run ``name`` of ``seed``."""
    sr = SeedRuns(settings, seed, stderr_log if progress else None)
    return sr.get(name), sr.seconds[name]


def _build_here(tasks, log) -> None:
    """Build ``tasks`` in this process; a run that raises is left unbuilt (see compute_runs)."""
    for sr, name in tasks:
        if name in sr._runs:
            continue
        try:
            sr.get(name)
        except Exception as exc:  # noqa: BLE001 - rebuilt (and reported) by its claim
            if log is not None:
                log(f"seed {sr.seed}: run {name} failed ({type(exc).__name__}: {exc})")


def compute_runs(runs: list, names, workers: int | None = None, progress: bool = False) -> int:
    """Build the runs ``names`` of every :class:`SeedRuns` in ``runs``, in parallel.

    Each (seed, run) is one task for a pool of ``workers`` processes (default:
    the usable cores, at most the number of tasks; 1 = in this process),
    longest first. Every run computes with one BLAS and kernel thread
    (:meth:`SeedRuns.get` uses :func:`~matsense.operators.single_threaded`)
    in this process or a worker alike, so the results are bitwise the same
    whatever ``workers`` is. A run that raises is left unbuilt: the claim that
    needs it builds it again and reports the error as its own. If the pool
    itself cannot run (no processes allowed here, a worker killed), the runs
    it did not finish are built in this process.

    Worker processes are *spawned* (:func:`matsense.workers.process_pool`:
    they exit when this process dies; ``KeyboardInterrupt`` or SIGTERM —
    raised as :class:`matsense.workers.Terminated` — stops them and
    propagates): a script that calls this (or ``reproduce``) with ``workers``
    > 1 must guard its entry point with ``if __name__ == "__main__":``.
    Returns the number of processes used.
    """
    tasks = [(sr, name) for name in names for sr in runs if name not in sr._runs]
    if workers is None:
        workers = min(usable_cores(), len(tasks))
    workers = int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    log = runs[0].log if runs else None
    if workers == 1 or len(tasks) < 2:
        _build_here(tasks, log)
        return 1
    settings = runs[0].settings
    tasks.sort(key=lambda task: -getattr(settings, _COST[task[1]]))
    import concurrent.futures as cf

    from ..sweep.executors import single_thread_env
    from ..workers import process_pool

    failed = set()
    try:
        # Spawned workers (a fresh interpreter each: no inherited threads or numba pool),
        # started during the submits with one BLAS / OpenMP / numba thread each. The pool
        # is supervised: its workers die with this process (even kill -9), and Ctrl-C or
        # SIGTERM here terminates them instead of waiting for every run to finish.
        with process_pool(workers) as pool:
            with single_thread_env():
                futures = {pool.submit(_compute_one, settings, sr.seed, name, log is not None):
                           (sr, name) for sr, name in tasks}
            for fut in cf.as_completed(futures):
                sr, name = futures[fut]
                try:
                    sr._runs[name], sr.seconds[name] = fut.result()
                except cf.process.BrokenProcessPool:
                    raise
                except Exception as exc:  # noqa: BLE001 - rebuilt (and reported) by its claim
                    failed.add((sr.seed, name))
                    if log is not None:
                        log(f"seed {sr.seed}: run {name} failed in a worker "
                            f"({type(exc).__name__}: {exc})")
    except Exception as exc:  # noqa: BLE001 - the pool, not a run: build the rest here
        if log is not None:
            log(f"worker processes unavailable ({type(exc).__name__}: {exc}); building the "
                "remaining runs in this process (from a script? guard its entry point with "
                "`if __name__ == \"__main__\":`)")
        _build_here([(sr, name) for sr, name in tasks if (sr.seed, name) not in failed], log)
        return 1
    return workers
