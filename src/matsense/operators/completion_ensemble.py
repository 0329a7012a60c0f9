"""The matrix-completion ensemble: its record and builder, next to :mod:`.completion`.

:data:`COMPLETION` (:mod:`matsense.ensembles`) observes m entries of M* drawn
uniformly without replacement, or each entry with probability ``p`` (the
run key ``p`` replaces ``m``); the operator is
:class:`~matsense.operators.EntryOperator`. (The record lives in this sibling
module because :mod:`.completion` holds the operator's kernels.)

The claims' defaults: completion observes p = :data:`COMPLETION_P` of the
entries unless ``p`` is set, on presets :data:`COMPLETION_SIZE` times larger
in n1 and n2; ``--setting large`` is n = 10⁴ with p = 0.01 (m = 10⁶).
"""

from __future__ import annotations

import numpy as np

from ..ensemble import ClaimDefaults, Ensemble, Param

#: The observed fraction of the entries in the claim experiments when ``p`` is not set.
COMPLETION_P = 2 / 3
#: The claims' presets are this many times larger in n1 and n2 for completion (60 × 60 for
#: the default setting): at 30 × 30 the over-parameterized (k = 4) runs do not recover M*
#: within the budgets even at p = 0.9 (docs/ensembles.md).
COMPLETION_SIZE = 2


def generate(
    n1: int,
    n2: int | None = None,
    *,
    r: int,
    m: int | None = None,
    p: float | None = None,
    singular_values=None,
    kappa: float = 1.0,
    spacing: str = "geometric",
    symmetric: bool = False,
    noise: float = 0.0,
    seed: int = 0,
    max_memory=None,
):
    """The seeded completion problem (:meth:`matsense.Problem.completion` documents it)."""
    from .. import _validate as V
    from ..problems import Problem, check_memory, common_arguments, draw_truth
    from .completion import EntryOperator

    n1, n2, r, sigma, noise, seed = common_arguments(
        n1, n2, r, kappa, singular_values, spacing, symmetric, noise, seed, max_memory
    )
    symmetric = bool(symmetric)  # validated: a bool or a NumPy bool
    if (m is None) == (p is None):
        raise ValueError(
            "completion needs exactly one of m (observed entries) and p (observation probability)"
        )
    if m is not None:
        m = V.int_in_range("m", m, 1, n1 * n2)
        expected = m
    else:
        prob = V.positive_float("p", p)
        if prob > 1:
            raise ValueError(f"p must be in (0, 1], got {prob}")
        expected = int(prob * n1 * n2)
    check_memory("the observed entries (indices and values)", expected * 20, max_memory)
    rng = np.random.default_rng(seed)
    truth = draw_truth(rng, n1, n2, r, sigma, symmetric)
    op = (
        EntryOperator.draw(rng, m, n1, n2)
        if m is not None
        else EntryOperator.bernoulli(rng, prob, n1, n2)
    )
    return Problem.observe(
        op,
        rng,
        truth,
        noise,
        symmetric,
        dict(ensemble="completion", n1=n1, n2=n2, r=r, m=op.m, p=op.m / (n1 * n2), seed=seed),
    )


def check_p(p):
    """p in (0, 1] (the observation probability)."""
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p!r}")
    return p


def observed(n1: int, n2: int, m: int, p: float | None = None) -> int:
    """The number of observed entries: ``m``, or round(p·n1·n2) (at least 1) with ``p``."""
    if p is None:
        return m
    return max(1, min(n1 * n2, round(p * n1 * n2)))


def entry_bytes(n1: int, n2: int, m: int, *, symmetric: bool = False) -> int:
    """Bytes of m observed entries: row and column (int64), position while they are drawn
    and sorted, and value."""
    return 4 * 8 * m


def _from_entries(*args, **kwargs):
    from ..problems import Problem

    return Problem.from_entries(*args, **kwargs)


#: Matrix completion: observed entries, O(m) memory (docs/ensembles.md).
COMPLETION = Ensemble(
    "completion",
    generate,
    from_data=_from_entries,
    data_bytes=entry_bytes,
    work_bytes=lambda m, k: 2 * 8 * m * k,
    count=observed,
    params=(Param("p", "observation probability", check_p, allowed="in (0, 1]", replaces_m=True),),
    help="matrix completion: m observed entries (or each with probability p), O(m) memory",
    claims=ClaimDefaults(
        size=COMPLETION_SIZE,
        params={"p": COMPLETION_P},
        large={"n1": 10_000, "p": 0.01, "m": 1_000_000},
    ),
)
