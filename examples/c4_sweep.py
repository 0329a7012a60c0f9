"""Claim C4 from Python: run the sweep, load the store, fit rate ∝ α^p per k, plot.

    python examples/c4_sweep.py --out results/c4            # the full sweep (a few minutes)
    python examples/c4_sweep.py --out /tmp/c4 --quick       # seconds: fewer iterations, k = 3

The same as ``matsense sweep examples/c4_sweep.toml --out DIR`` followed by
``matsense plot DIR --x alpha --y rate --hue k --logx --logy``, plus a table of
the fitted exponent p per k (expected ≈ 2: the rate is of order η·λ_min(Δ_0) ∝ α²).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import numpy as np

from matsense.sweep import load, load_spec, plot_store, run_sweep

SPEC = Path(__file__).with_name("c4_sweep.toml")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/c4"), help="results store")
    ap.add_argument("--quick", action="store_true",
                    help="k = 3, α ∈ {0.08, 0.04}, one seed, 3000 iterations (a smoke run)")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    args = ap.parse_args(argv)

    data = tomllib.loads(SPEC.read_text())
    if args.quick:
        data["sweep"]["name"] = "c4-quick"
        data["base"]["iters"] = 3000
        data["grid"].update(k=[3], alpha=[0.08, 0.04], init_seed=[0])
    spec = load_spec(data)
    print(f"{len(spec)} runs -> {args.out}")
    print(run_sweep(spec, args.out, workers=args.workers))

    runs, _ = load(args.out, history=False)
    ok = runs[runs["status"] != "failed"]
    print(f"\n{'k':>3} " + " ".join(f"α={a:<9g}" for a in sorted(ok["alpha"].unique(), reverse=True))
          + "  exponent p (rate ∝ α^p)")
    for k, group in ok.groupby("k"):
        med = group.groupby("alpha")["rate"].median().sort_index(ascending=False)
        good = med[np.isfinite(med) & (med > 0)]
        p = np.polyfit(np.log(good.index), np.log(good.to_numpy()), 1)[0] if len(good) >= 2 else np.nan
        print(f"{k:>3} " + " ".join(f"{v:<11.3e}" for v in med) + f"  {p:.2f}")
    figure = args.out / "rate-vs-alpha.png"
    plot_store(args.out, "alpha", "rate", hue="k", logx=True, logy=True, out=figure)
    print(f"\nwrote {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
