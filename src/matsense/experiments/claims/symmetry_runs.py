"""The runs and curves C5 and C6 share: the three F Gᵀ starts on the PSD problem
(``asym_on_sym``, with the balanced start's generated imbalance at checkpoints), the parameters
of both claims, and each seed's curves next to C2's X Xᵀ run (:func:`symmetric_problem_curves`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import diagnostics
from ... import init as _init
from ..declare import Param, RunSpec, positive_int, positive_number
from ..runs import LabeledRun, long_record_every


def _check_c5_alpha(name, value, s) -> None:
    from ... import _validate as V

    V.positive_float(name, value)
    if s.c2_alphas is not None and value not in s.c2_alphas:
        raise ValueError(
            f"c5_alpha={value} must be one of c2_alphas={s.c2_alphas}: "
            "C5 and C6 compare against the C2 run at that α"
        )


def _check_c5_iters(name, value, s) -> None:
    positive_int(name, value)
    if s.c2_iters is not None and value > s.c2_iters:
        raise ValueError(
            f"c5_iters={value} must be <= c2_iters={s.c2_iters}: "
            "C5 and C6 compare against the C2 run at the same iteration"
        )


#: The parameters of C5 and C6 (F Gᵀ on the symmetric PSD problem, against C2's X Xᵀ run).
PARAMS = (
    Param(
        "c5_alpha",
        None,
        "float | None",
        "α of the three F Gᵀ starts (None: C2's first α)",
        derive=lambda s: s.c2_alphas[0],
        check=_check_c5_alpha,
    ),
    Param(
        "c5_iters",
        None,
        "int | None",
        "the horizon T of C5/C6 (None: c2_iters)",
        derive=lambda s: s.c2_iters,
        check=_check_c5_iters,
    ),
    Param(
        "c6_tail",
        0.5,
        "float",
        "C6's power law is fitted on t ≥ c6_tail × its window's end",
        check=positive_number,
    ),
    Param(
        "c6_checkpoints",
        40,
        "int",
        "iterations at which the balanced run's generated imbalance is read",
        check=positive_int,
    ),
)


#: The three starts of F Gᵀ on the PSD problem (C5, C6), by label.
ASYM_ON_SYM_LABELS = {
    "small_random": "F Gᵀ, small random (G₀ ~ α/3)",
    "balanced": "F Gᵀ, balanced G₀ = F₀",
    "imbalanced": "F Gᵀ, imbalanced G₀ = F₀/3",
}


def asym_on_sym_inits(sr):
    """[small random, balanced G₀ = F₀, imbalanced G₀ = F₀/3] on the PSD problem, batched
    (the order of :data:`ASYM_ON_SYM_LABELS`)."""
    s = sr.settings
    p = sr.problem(True)
    F_sr, G_sr = _init.small_random(
        p, s.k, s.c5_alpha, ratio=s.ratio, seed=sr.init_seed("asymmetric")
    )
    X0 = _init.symmetric_random(p, s.k, s.c5_alpha, seed=sr.init_seed("symmetric"))
    F0 = np.stack([F_sr, X0, X0])
    G0 = np.stack([G_sr, X0.copy(), X0 * s.ratio])
    return F0, G0


def _asym_on_sym(sr):
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
                float(np.asarray(diagnostics.redundant_imbalance(F, G, s.r))[0])
            )
        return False

    traj = sr.gd(
        sr.problem(True),
        asym_on_sym_inits(sr),
        iters,
        tol=s.exact_tol,
        record_every=long_record_every(s, iters),
        callback=read_imbalance,
    )
    checkpoints = {"balanced": {k: np.asarray(v) for k, v in seen.items()}}
    return LabeledRun(traj, labels, checkpoints)


ASYM_ON_SYM = RunSpec(
    "asym_on_sym",
    _asym_on_sym,
    "c5_iters",
    "GD on F Gᵀ on the PSD problem at "
    "c5_alpha: small random, balanced G₀ = F₀, imbalanced G₀ = F₀/3",
)


@dataclass
class SymmetricProblemCurves:
    """One seed's curves on the PSD problem: the F Gᵀ starts by label, and X Xᵀ (up to T)."""

    seed: int
    asym: LabeledRun  # of asym_on_sym
    xxt_t: np.ndarray
    xxt_err: np.ndarray
    xxt_status: str


def symmetric_problem_curves(sr, settings) -> SymmetricProblemCurves:
    """The shared setup of C5 and C6 for one seed."""
    t, err = sr.get("sym_over").curve(settings.c5_alpha)
    return SymmetricProblemCurves(
        sr.seed, sr.get("asym_on_sym"), t, err, sr.get("sym_over").status(settings.c5_alpha)
    )


def xxt_curves(runs, settings):
    """X Xᵀ curves per seed, cut at the horizon T of C5/C6."""
    T = settings.c5_iters
    xs, ys = [], []
    for sr in runs:
        c = symmetric_problem_curves(sr, settings)
        xs.append(c.xxt_t[c.xxt_t <= T])
        ys.append(c.xxt_err[c.xxt_t <= T])
    return xs, ys
