"""A measured kernel choice, like FFTW's planner: time the candidates, keep the fastest.

Which CPU kernel is fastest depends on the operator's size against the caches,
the batch size, the dtype, the thread count and on what else the machine is
doing (numba's fork/join suffers when another process holds a core; the
NumPy loop's pool threads do not). Rather than guess, the first call for a
configuration — (shape, dtype, B, thread setting) — runs the candidate
kernels on its own inputs and times them:

* numba's first run in this process for a dtype is untimed (it loads or
  compiles its code and starts its threads); later configurations time it
  from their first run (the NumPy kernels have no such one-time cost);
* then timed rounds, every candidate once per round, the order rotating
  from round to round, so that drifting load hits all alike:
  :data:`TIMED_ROUNDS` of them, more for fast kernels (as many as fit in
  :data:`ROUNDS_BUDGET_S`, at most :data:`MAX_TIMED_ROUNDS`: a 0.1 ms call is
  easily disturbed by a scheduler tick); a candidate more than
  :data:`DROP_FACTOR` × slower than the best stops being timed;
* each timed run follows an untimed run of the same kernel (a *settling*
  run), and a kernel's first :data:`TIMED_ROUNDS` timed runs come in one
  block, the first candidate (numba) before any run of the two BLAS
  products. Switching kernels has a cost no real run pays: a large BLAS
  call leaves OpenBLAS's threads spinning for up to ~0.1 s after it
  returns, and numba's threads then share the cores with them. Timed right
  after two-pass, numba measured 7–12 ms per call at n = 100 against 5 ms
  back to back (2-core VM), and the planner picked the slower kernel in
  about half of the configurations of ``benchmarks/bench_kernels.py``;
* the candidate with the lowest median time is the plan — except that the
  last candidate listed (the fallback: the two BLAS products, the textbook
  code) stays the plan unless another one's median is lower by more than
  10 % (:data:`SWITCH_MARGIN`), so that noise on a near-tie cannot make
  matsense slower than the textbook code. The plan is kept for the life
  of the process (:func:`plans` lists them, :func:`clear_plans` forgets them),
  and the call returns the chosen kernel's result (from its last timed run).

So every call of a configuration, the first included, gets the numbers of
one kernel: within a process the same inputs give bitwise the same results,
as the design asks. (Using each planning run's output for a successive call
would make planning cheaper, but a run would then mix kernels in its first
iterations and differ in the last bits from the next identical run.)
Planning costs the candidates' runs on that first call: about a dozen runs
of the operator, measured by ``benchmarks/bench_iteration.py``. A candidate
that raises is dropped (with a warning). The plan is never consulted inside
:func:`matsense.threads.single_threaded`, where results must not depend on
timing (see :mod:`matsense.operators.dispatch`).
"""

from __future__ import annotations

import statistics
import threading
import time

#: Timed runs per candidate at least.
TIMED_ROUNDS = 3

#: ... and more while a round of timed runs fits this often into this budget (seconds),
ROUNDS_BUDGET_S = 0.005

#: ... but never more than this.
MAX_TIMED_ROUNDS = 15

#: A candidate whose best time exceeds the best candidate's by this factor stops being timed.
DROP_FACTOR = 3.0

#: The fallback candidate (the last one listed: the two BLAS products) keeps the plan unless
#: another one's median is at most this fraction of its own. Timings on a shared machine
#: scatter by ±20 % from call to call; a near-tie decided by that noise could pick a kernel
#: that is in truth slower than the textbook code, which matsense must never be.
SWITCH_MARGIN = 0.9


class Plan:
    """The planning state, then the choice, for one configuration.

    Attributes
    ----------
    key : tuple
        (shape of A, dtype, B, thread setting): the thread setting is
        :func:`matsense.threads.threads_setting` (None: each kernel's default).
    candidates : list of str
        Kernels still in the race (the choice alone once decided).
    samples : dict
        Timed seconds per kernel.
    choice : str or None
        The chosen kernel once planning is over.
    failed : dict
        Kernels that raised, with the error text.
    planning_runs, planning_seconds : int, float
        Kernel runs made while planning and their total time.
    """

    def __init__(self, key, candidates):
        self.key = key
        self.candidates = list(candidates)
        self.samples = {c: [] for c in candidates}
        self.failed = {}
        self.choice = self.candidates[0] if len(self.candidates) == 1 else None
        self.rounds = TIMED_ROUNDS
        self.planning_runs = 0
        self.planning_seconds = 0.0
        self.lock = threading.Lock()  # one thread plans; the others wait for its choice
        #: Kept unless another candidate is clearly faster (:data:`SWITCH_MARGIN`).
        self.fallback = self.candidates[-1]
        self._rounds_set = False

    def next_candidate(self, exclude=(), previous: str | None = None) -> str | None:
        """The candidate with the fewest timed runs, None if all are excluded.

        Ties: ``previous`` (the kernel that just ran) if it is among them — its
        timed run follows its settling run — else the list order rotated by
        the round number, so that no kernel always runs after the same one.
        """
        left = [c for c in self.candidates if c not in exclude]
        if not left:
            return None
        if previous in left and len(self.samples[previous]) < TIMED_ROUNDS:
            return previous  # a kernel's first timed runs in one block (see the module doc)
        fewest = min(len(self.samples[c]) for c in left)
        tied = [c for c in left if len(self.samples[c]) == fewest]
        if previous in tied:
            return previous
        shift = fewest % len(tied)
        return (tied[shift:] + tied[:shift])[0]

    def record(self, name: str, seconds: float, timed: bool) -> None:
        """A planning run of ``name`` took ``seconds``; drop clear losers, decide when done."""
        self.planning_runs += 1
        self.planning_seconds += seconds
        if not timed:
            return
        self.samples[name].append(seconds)
        if any(not self.samples[c] for c in self.candidates):
            return
        if not self._rounds_set:  # every candidate has its first timed run
            self._rounds_set = True
            per_round = sum(self.samples[c][0] for c in self.candidates)
            self.rounds = max(TIMED_ROUNDS, min(MAX_TIMED_ROUNDS, int(ROUNDS_BUDGET_S / per_round)))
        best = min(min(self.samples[c]) for c in self.candidates)
        self.candidates = [c for c in self.candidates if min(self.samples[c]) <= DROP_FACTOR * best]
        if len(self.candidates) == 1 or all(
            len(self.samples[c]) >= self.rounds for c in self.candidates
        ):
            self.choice = self._decide()
            self.candidates = [self.choice]

    def _decide(self) -> str:
        """The candidate with the lowest median, unless the fallback is within the margin."""
        median = {c: statistics.median(self.samples[c]) for c in self.candidates}
        best = min(self.candidates, key=median.__getitem__)
        fallback = self.fallback
        if fallback in median and median[best] > SWITCH_MARGIN * median[fallback]:
            return fallback
        return best

    def drop(self, name: str, error: BaseException) -> None:
        """``name`` raised: out of the race (the last candidate is never dropped)."""
        self.failed[name] = f"{type(error).__name__}: {error}"
        self.candidates.remove(name)
        if len(self.candidates) == 1:
            self.choice = self.candidates[0]

    def summary(self) -> dict:
        """The plan as plain data: choice, median times, planning runs and overhead."""
        medians = {c: statistics.median(s) for c, s in self.samples.items() if s}
        out = {
            "key": self.key,
            "choice": self.choice,
            "median_s": medians,
            "failed": dict(self.failed),
            "planning_runs": self.planning_runs,
            "planning_seconds": self.planning_seconds,
        }
        if self.choice in medians:
            # Planning beyond the one run of the chosen kernel the call needed anyway.
            out["overhead_s"] = self.planning_seconds - medians[self.choice]
        return out


_plans: dict = {}
_plans_lock = threading.Lock()

#: Kernels whose first run in a process (per dtype) pays a one-time cost: not timed.
NEEDS_WARMUP = ("numba",)

# (kernel, dtype) pairs of NEEDS_WARMUP that have run in this process.
_warm: set = set()


def plan_for(key, candidates) -> Plan:
    """The plan of configuration ``key`` (created with ``candidates`` on first use)."""
    plan = _plans.get(key)
    if plan is None:
        with _plans_lock:
            plan = _plans.setdefault(key, Plan(key, candidates))
    return plan


def lookup(key) -> Plan | None:
    return _plans.get(key)


def plans() -> list[dict]:
    """Every plan of this process as :meth:`Plan.summary` dicts."""
    return [plan.summary() for plan in list(_plans.values())]


def clear_plans() -> None:
    """Forget every plan (the next calls plan again, e.g. after the machine's load changed)."""
    with _plans_lock:
        _plans.clear()


def run_planned(plan: Plan, run, on_failure):
    """Serve one call under ``plan``: its choice, after planning it on this call if need be.

    ``run(name)`` computes the result with kernel ``name``; ``on_failure(name,
    error)`` is told about a candidate that raised, once another one has run.
    If every candidate raises, the last error propagates and the plan is left
    undecided, with no candidate dropped: the input, not a kernel, is then at
    fault.
    """
    if plan.choice is not None:
        return run(plan.choice)
    with plan.lock:
        if plan.choice is not None:  # another thread planned meanwhile
            return run(plan.choice)
        last: dict[str, object] = {}
        failed: dict[str, Exception] = {}
        previous: str | None = None
        while plan.choice is None:
            name = plan.next_candidate(exclude=failed, previous=previous)
            if name is None:  # every candidate failed on this input: the input is at fault
                raise list(failed.values())[-1]
            warm = (name, plan.key[1])
            # Timed only right after a run of the same kernel (see the module's docstring).
            timed = name == previous and (name not in NEEDS_WARMUP or warm in _warm)
            t0 = time.perf_counter()
            try:
                last[name] = run(name)
            except Exception as exc:  # noqa: BLE001 - any kernel failure: try the others
                failed[name] = exc
                continue
            seconds = time.perf_counter() - t0
            for bad, error in failed.items():  # one kernel ran: the others are at fault
                if bad in plan.candidates:
                    plan.drop(bad, error)
                    on_failure(bad, error)
            plan.record(name, seconds, timed)
            _warm.add(warm)
            previous = name
        return last[plan.choice] if plan.choice in last else run(plan.choice)
