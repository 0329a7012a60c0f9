"""The robust breakdown picture on one command: run a phase sweep spec, draw the phase diagram
(final relative error over p_s × its other grid key, one panel per method), write its numbers.

    python examples/robust_phase.py --out results/robust_phase [--quick]        # p_s × m/(nr)
    python examples/robust_phase.py --spec examples/robust_phase_k.toml \
        --out results/robust_phase_k                                            # p_s × k

The spec's [grid] has ``outlier_fraction`` and one other key: ``m`` (drawn as m/(nr),
examples/robust_phase.toml) or ``k`` (examples/robust_phase_k.toml); its [[zip]] pairs each
method with its settings. Writes DIR/phase.png and DIR/phase.json (the error per method, p_s
and the other key) next to the sweep store; a run that diverged counts as error 1 (ℓ2 GD under outliers: its minimizer is far from
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
#: --quick: p_s ∈ {0, 0.1, 0.3}, these values of the other grid key, 300 iterations.
QUICK = {"m": [240, 600], "k": [2, 4]}
LABELS = {("subgm", "l2"): "ℓ2 GD", ("subgm", "l1"): "ℓ1 SubGM (geometric)",
          ("scaledsm", "l1"): "ScaledSM (Polyak)"}


def spec_dict(quick: bool, path: Path = SPEC) -> dict:
    import tomllib

    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    if quick:
        key = x_key(spec)
        spec["grid"] = {"outlier_fraction": [0.0, 0.1, 0.3], key: QUICK[key]}
        spec["base"]["iters"] = 300
    return spec


def x_key(spec: dict) -> str:
    """The grid key next to ``outlier_fraction``: 'm' or 'k' (ValueError otherwise)."""
    keys = [key for key in spec["grid"] if key != "outlier_fraction"]
    if len(keys) != 1 or keys[0] not in QUICK or "outlier_fraction" not in spec["grid"]:
        raise ValueError(f"a phase spec's [grid] is outlier_fraction and one of "
                         f"{', '.join(QUICK)}, got {list(spec['grid'])}")
    return keys[0]


def table(runs, n: int, r: int, key: str = "m") -> dict:
    """{method label: {"p_s": [...], "m_over_nr" (or "k"): [...], "error": [[...]]}} from the
    runs."""
    runs = runs.assign(outlier_fraction=runs["outlier_fraction"].fillna(0.0))
    err = np.where(runs["status"] == "diverged", 1.0, runs["final_rel_error"].astype(float))
    runs = runs.assign(err=np.minimum(err, 1.0))
    out = {}
    for (method, loss), label in LABELS.items():
        part = runs[(runs["method"] == method) & (runs["loss"] == loss)]
        grid = part.pivot_table(index="outlier_fraction", columns=key, values="err")
        columns = ({"m_over_nr": [m / (n * r) for m in grid.columns]} if key == "m"
                   else {key: [int(v) for v in grid.columns]})
        out[label] = {"p_s": grid.index.tolist(), **columns, "error": grid.to_numpy().tolist()}
    return out


def x_of(d: dict) -> tuple[str, list]:
    """(axis label, values) of a table entry's other key."""
    return ("m/(nr)", d["m_over_nr"]) if "m_over_nr" in d else ("factor width k", d["k"])


def draw(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(4.2 * len(data), 3.6), sharey=True,
                             constrained_layout=True)
    for ax, (label, d) in zip(np.atleast_1d(axes), data.items()):
        img = ax.imshow(np.log10(np.maximum(np.asarray(d["error"]), 1e-16)), origin="lower",
                        aspect="auto", vmin=-12, vmax=0, cmap="viridis")
        xlabel, xs = x_of(d)
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
        ax.set_yticks(range(len(d["p_s"])), [f"{v:g}" for v in d["p_s"]])
        ax.set_xlabel(xlabel)
        ax.set_title(label)
    np.atleast_1d(axes)[0].set_ylabel("outlier fraction p_s")
    fig.colorbar(img, ax=axes, label="log10 final relative error")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=SPEC,
                    help="the phase sweep spec (default examples/robust_phase.toml)")
    ap.add_argument("--out", type=Path, default=Path("results/robust_phase"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    data = spec_dict(args.quick, args.spec)
    run_sweep(load_spec(data), args.out, workers=args.workers, progress="off")
    runs, _ = load(args.out)
    data = table(runs, data["base"]["n1"], data["base"]["r"], x_key(data))
    (args.out / "phase.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    draw(data, args.out / "phase.png")
    for label, d in data.items():
        xlabel, xs = x_of(d)
        print(label)
        print(f"  p_s \\ {xlabel} " + " ".join(f"{v:8g}" for v in xs))
        for p, row in zip(d["p_s"], d["error"]):
            print(f"  {p:12g} " + " ".join(f"{e:8.1e}" for e in row))
    print(f"wrote {args.out / 'phase.png'} and {args.out / 'phase.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
