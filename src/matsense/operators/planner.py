"""A measured kernel choice, like FFTW's planner: time the candidates, keep the fastest.

Which CPU kernel is fastest depends on the operator's size against the caches,
the batch size, the dtype, the thread count and on what else the machine is
doing (numba's fork/join suffers when another process holds a core; the
NumPy loop's pool threads do not). Rather than guess, the first calls for a
configuration — (shape, dtype, B, thread setting) — run the candidate
kernels in turn and time them:

* a candidate's first call in this process for a dtype is untimed (numba
  loads or compiles its code, BLAS and the thread pools start); later
  configurations time it from their first call;
* rounds 1..:data:`TIMED_ROUNDS`: every candidate once per round,
  interleaved, so drifting load hits all alike; after each round a
  candidate more than :data:`DROP_FACTOR` × slower than the best stops
  being timed;
* then the candidate with the lowest median time is the plan, kept for the
  life of the process (:func:`plans` lists them, :func:`clear_plans` forgets
  them).

Every planning call returns its kernel's result — the kernels agree to
rounding — so planning costs only the difference between the slower
candidates and the best over a dozen calls. A candidate that raises is
dropped (with a warning) and the call is served by the next one. The plan is
never consulted inside :func:`matsense.threads.single_threaded`, where
results must not depend on timing (see :mod:`matsense.operators.dispatch`).
"""

from __future__ import annotations

import statistics
import threading
import time

#: Timed calls per candidate (after one untimed warm-up call).
TIMED_ROUNDS = 3

#: A candidate whose best time exceeds the best candidate's by this factor stops being timed.
DROP_FACTOR = 3.0


class Plan:
    """The planning state, then the choice, for one configuration.

    Attributes
    ----------
    key : tuple
        (shape of A, dtype, B, thread setting): the thread setting is
        :func:`matsense.threads.threads_setting` (None: each kernel's default).
    candidates : list of str
        Kernels still being timed.
    samples : dict
        Timed seconds per kernel.
    choice : str or None
        The chosen kernel once planning is over.
    failed : dict
        Kernels that raised, with the error text.
    planning_calls, planning_seconds : int, float
        Calls served while planning and their total time.
    """

    def __init__(self, key, candidates):
        self.key = key
        self.candidates = list(candidates)
        self.samples = {c: [] for c in candidates}
        self.runs = {c: 0 for c in candidates}
        self.failed = {}
        self.choice = self.candidates[0] if len(self.candidates) == 1 else None
        self.planning_calls = 0
        self.planning_seconds = 0.0
        self._lock = threading.Lock()

    def next_candidate(self, exclude=()) -> str | None:
        """The candidate with the fewest runs (ties: list order); None when none is left."""
        with self._lock:
            if self.choice is not None:
                return None
            left = [c for c in self.candidates if c not in exclude]
            if not left:
                return None
            name = min(left, key=lambda c: self.runs[c])
            self.runs[name] += 1
            return name

    def record(self, name: str, seconds: float, timed: bool) -> None:
        """One planning call by ``name`` took ``seconds``; decide once every round is in."""
        with self._lock:
            self.planning_calls += 1
            self.planning_seconds += seconds
            if self.choice is not None or name not in self.candidates:
                return
            if timed:
                self.samples[name].append(seconds)
            sampled = [c for c in self.candidates if self.samples[c]]
            if len(sampled) == len(self.candidates):
                best = min(min(self.samples[c]) for c in sampled)
                self.candidates = [c for c in self.candidates
                                   if min(self.samples[c]) <= DROP_FACTOR * best]
            if len(self.candidates) == 1 or all(len(self.samples[c]) >= TIMED_ROUNDS
                                                for c in self.candidates):
                self.choice = min(self.candidates, key=lambda c: statistics.median(self.samples[c]))


    def drop(self, name: str, error: BaseException) -> None:
        with self._lock:
            self.failed[name] = f"{type(error).__name__}: {error}"
            if name in self.candidates and len(self.candidates) > 1:
                self.candidates.remove(name)
            if len(self.candidates) == 1:
                self.choice = self.candidates[0]

    def summary(self) -> dict:
        """The plan as plain data: choice, median times, planning calls and overhead."""
        with self._lock:
            medians = {c: statistics.median(s) for c, s in self.samples.items() if s}
            out = {"key": self.key, "choice": self.choice, "median_s": medians,
                   "failed": dict(self.failed), "planning_calls": self.planning_calls,
                   "planning_seconds": self.planning_seconds}
            if self.choice in medians:
                # What planning cost beyond running the chosen kernel for those calls.
                out["overhead_s"] = self.planning_seconds - self.planning_calls * medians[self.choice]
            return out


_plans: dict = {}
_plans_lock = threading.Lock()

# (kernel, dtype) pairs that have run in this process: their one-time costs are paid.
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
    """Serve one call under ``plan``: its choice, or the next candidate while planning.

    ``run(name)`` computes the result with kernel ``name``; ``on_failure(name,
    error)`` is told about a candidate that raised once another one has served
    the call (if every candidate raises, the last error propagates and the plan
    is left as it was: the input, not a kernel, is then at fault).
    """
    if plan.choice is not None:
        return run(plan.choice)
    failures = []
    while True:
        name = plan.next_candidate(exclude={n for n, _ in failures})
        if name is None:
            if plan.choice is not None and plan.choice not in {n for n, _ in failures}:
                return run(plan.choice)  # another thread finished planning meanwhile
            raise failures[-1][1]
        warm = (name, plan.key[1])
        timed = warm in _warm
        t0 = time.perf_counter()
        try:
            out = run(name)
        except Exception as exc:  # noqa: BLE001 - any kernel failure: try the next one
            failures.append((name, exc))
            continue
        plan.record(name, time.perf_counter() - t0, timed)
        _warm.add(warm)
        for failed, exc in failures:
            plan.drop(failed, exc)
            on_failure(failed, exc)
        return out
