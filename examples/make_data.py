"""Example data sets for ``matsense run --data``: one file of each format, no download.

    python examples/make_data.py --out data
    matsense run --data data/ratings.csv --k 4 --step-size 5e-4 --iters 5000 --tol 1e-8
    matsense run --data data/ratings.npz --k 4 --step-size 5e-4 --iters 5000 --tol 1e-8
    matsense run --data data/dense.npz --k 2 --iters 2000 --tol 1e-10
    matsense run --data data/rank_one.npz --k 2 --iters 2000 --tol 1e-10

* ``ratings.csv`` / ``ratings.parquet`` — a synthetic ratings table: 200 users × 150 items,
  ratings = tastes × profiles on 3 factors plus a mean of 3.5 (so they look like 1–5 stars;
  rank 4, hence k = 4), a quarter of them observed; columns ``row`` (user), ``col`` (item),
  ``value`` (rating).
  ``ratings.npz`` holds the same entries as ``rows``, ``cols``, ``values``, ``shape`` with the
  full table as ``M_star``, so the run reports its error on the ratings nobody gave.
  The table's σ₁ is about 600 (the mean), so the step is about 0.3/σ₁ rather than the 0.3
  of the unit-norm problems.
* ``dense.npz`` — ``A`` (m × n1 × n2 Gaussian matrices), ``y`` = 𝒜(M*), ``M_star`` (rank 2).
* ``rank_one.npz`` — ``a``, ``b`` (m × n1, m × n2), ``y`` = 𝒜(M*), ``M_star`` (rank 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def ratings(rng, users=200, items=150, factors=3, observed=0.25):
    tastes = rng.standard_normal((users, factors))
    profiles = rng.standard_normal((items, factors)) * 0.6
    table = 3.5 + tastes @ profiles.T      # rank factors + 1 (the mean)
    rows, cols = np.nonzero(rng.random(table.shape) < observed)
    return table, rows, cols


def low_rank(rng, n1=30, n2=20, r=2):
    M = rng.standard_normal((n1, r)) @ rng.standard_normal((r, n2))
    return M / np.linalg.norm(M, 2)        # σ₁ = 1: the default step size 0.3 is safe


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data"), help="folder (default data)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    table, rows, cols = ratings(rng)
    frame = pd.DataFrame({"row": rows, "col": cols, "value": table[rows, cols]})
    frame.to_csv(args.out / "ratings.csv", index=False)
    frame.to_parquet(args.out / "ratings.parquet", index=False)
    np.savez(args.out / "ratings.npz", rows=rows, cols=cols, values=table[rows, cols],
             shape=np.array(table.shape), M_star=table)

    M = low_rank(rng)
    m = 600
    A = rng.standard_normal((m, *M.shape))
    np.savez(args.out / "dense.npz", A=A, y=np.einsum("kij,ij->k", A, M) / np.sqrt(m), M_star=M)
    a, b = rng.standard_normal((m, M.shape[0])), rng.standard_normal((m, M.shape[1]))
    np.savez(args.out / "rank_one.npz", a=a, b=b, y=np.einsum("ki,ij,kj->k", a, M, b) / np.sqrt(m),
             M_star=M)
    for name in ("ratings.csv", "ratings.parquet", "ratings.npz", "dense.npz", "rank_one.npz"):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
