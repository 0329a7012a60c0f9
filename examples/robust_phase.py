"""The robust breakdown picture on one command: run examples/robust_phase.toml, draw the phase
diagram (final relative error over p_s × m/(nr), one panel per method) and write its numbers.

    python examples/robust_phase.py --out results/robust_phase [--quick]

Writes DIR/phase.png and DIR/phase.json (the error per method, p_s and m) next to the sweep
store; a run that diverged counts as error 1 (ℓ2 GD under outliers: its minimizer is far from
M*, the driver stops it when the error grows). --quick: a 3 × 2 corner of the grid, 300
iterations (seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from matsense.sweep import load, load_spec, run_sweep

SPEC = Path(__file__).with_name("robust_phase.toml")
LABELS = {("subgm", "l2"): "ℓ2 GD", ("subgm", "l1"): "ℓ1 SubGM (geometric)",
          ("scaledsm", "l1"): "ScaledSM (Polyak)"}


def spec_dict(quick: bool) -> dict:
    import tomllib

    spec = tomllib.loads(SPEC.read_text(encoding="utf-8"))
    if quick:
        spec["grid"] = {"outlier_fraction": [0.0, 0.1, 0.3], "m": [240, 600]}
        spec["base"]["iters"] = 300
    return spec


def table(runs, n: int, r: int) -> dict:
    """{method label: {"p_s": [...], "m_over_nr": [...], "error": [[...]]}} from the runs."""
    runs = runs.assign(outlier_fraction=runs["outlier_fraction"].fillna(0.0))
    err = np.where(runs["status"] == "diverged", 1.0, runs["final_rel_error"].astype(float))
    runs = runs.assign(err=np.minimum(err, 1.0))
    out = {}
    for (method, loss), label in LABELS.items():
        part = runs[(runs["method"] == method) & (runs["loss"] == loss)]
        grid = part.pivot_table(index="outlier_fraction", columns="m", values="err")
        out[label] = {"p_s": grid.index.tolist(),
                      "m_over_nr": [m / (n * r) for m in grid.columns],
                      "error": grid.to_numpy().tolist()}
    return out


def draw(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(4.2 * len(data), 3.6), sharey=True,
                             constrained_layout=True)
    for ax, (label, d) in zip(np.atleast_1d(axes), data.items()):
        img = ax.imshow(np.log10(np.maximum(np.asarray(d["error"]), 1e-16)), origin="lower",
                        aspect="auto", vmin=-12, vmax=0, cmap="viridis")
        ax.set_xticks(range(len(d["m_over_nr"])), [f"{v:g}" for v in d["m_over_nr"]])
        ax.set_yticks(range(len(d["p_s"])), [f"{v:g}" for v in d["p_s"]])
        ax.set_xlabel("m/(nr)")
        ax.set_title(label)
    np.atleast_1d(axes)[0].set_ylabel("outlier fraction p_s")
    fig.colorbar(img, ax=axes, label="log10 final relative error")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/robust_phase"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    spec = load_spec(spec_dict(args.quick))
    run_sweep(spec, args.out, workers=args.workers, progress="off")
    runs, _ = load(args.out)
    base = spec_dict(args.quick)["base"]
    data = table(runs, base["n1"], base["r"])
    (args.out / "phase.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    draw(data, args.out / "phase.png")
    for label, d in data.items():
        print(label)
        print("  p_s \\ m/(nr) " + " ".join(f"{v:8g}" for v in d["m_over_nr"]))
        for p, row in zip(d["p_s"], d["error"]):
            print(f"  {p:12g} " + " ".join(f"{e:8.1e}" for e in row))
    print(f"wrote {args.out / 'phase.png'} and {args.out / 'phase.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
