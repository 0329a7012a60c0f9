"""Fuzz campaign of issue #13: bad inputs and faults against the API, the CLI and the store.

Every case runs in its own process (its own session, so that nothing it starts can outlive
it unnoticed) under ``RLIMIT_AS`` = 4 GiB and a time limit, and is classified as

* **clean** — a one-line ``ValueError``/``TypeError`` raised by matsense itself (API), one
  line ``matsense: error: ...`` and exit status 2 (CLI), or a correct result where the input
  was valid (checked: finite histories, a bool ``symmetric``, a store whose runs all have
  their history after a resume, ...);
* **traceback** — any other exception, or a traceback / a multi-line error on stderr;
* **silent-wrong** — bad input accepted, or a result that fails its check;
* **hang** — the time limit passed.

Processes left alive by a case (anything in its session after it exits) are counted as
``leaked`` and killed.

    python benchmarks/fuzz_reliability.py                    # all cases (570), this checkout
    python benchmarks/fuzz_reliability.py --quick            # every 5th case (a few minutes)
    python benchmarks/fuzz_reliability.py --src /other/src   # another checkout's matsense
    python benchmarks/fuzz_reliability.py --only 'api:run' --limit 10 --json out.json

Results (2026-12-02, 511 cases, 2 shared cores, --jobs 3):

    before (main at da2f0e4):  clean 425, traceback 38, silent-wrong 47, hang 1; 0 left behind
    after  (branch h-rel):     clean 509, traceback  2, silent-wrong  0, hang 0; 0 left behind

The two remaining tracebacks were Problem.generate('rank-one' | 'completion'): their operator
modules were not in that branch yet. Rerun on main with them (2026-12-03, quiet 2 cores,
--jobs 2, 190 s):

    main at 1075af5:           clean 511, traceback  0, silent-wrong  0, hang 0; 0 left behind

Round 3 (issue #21, 2026-12-05, 2 shared cores, --jobs 2). The script gained 59 cases (570
in all): a run diverging at its start, every public function of ``diagnostics`` with
mismatched shapes, ``nuclear_norm_solve``'s arguments, the per-ensemble memory estimate;
completion and rank-one sweeps at scale; a full disk (``RLIMIT_FSIZE``) under ``reproduce``,
``compare``, ``sweep`` and ``run``; SIGKILL / SIGTERM of ``reproduce`` and ``compare`` (kind
``fault``); two commands into one ``--out``; a sweep resumed after a full disk:

    511 cases, main at 34294fc (before): clean 511, traceback  0, silent-wrong  0, hang 0
    570 cases, main at 34294fc (before): clean 537, traceback 17, silent-wrong 16, hang 0
    570 cases, main at 0a659a4:          clean 568, traceback  0, silent-wrong  2, hang 0
    570 cases, main at 3b09c83 (after):  clean 570, traceback  0, silent-wrong  0, hang 0
    (0 processes left behind in every run)

At 0a659a4 the two left were full disks under ``reproduce --workers 2`` and ``compare`` on
a fresh checkout: numba's own kernel cache write failed inside the computation (fixed in
961b250: the cache is best effort).

The exit status is 0 whatever the counts (a report, not a gate); ``--strict`` makes it 1
when a case is not clean or leaked a process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAP_BYTES = 4 << 30
OUTCOMES = ("clean", "traceback", "silent-wrong", "hang")


@dataclass
class Case:
    id: str
    kind: str                    # 'api' | 'cli' | 'store'
    code: str = ""               # api: Python that sets `result` (or raises)
    argv: list = field(default_factory=list)   # cli: arguments of `python -m matsense`
    expect: str = "error"        # 'error' | 'ok' | 'either'
    check: str = ""              # api: expression on `result` that must be true when it returns
    env: dict = field(default_factory=dict)
    timeout: float = 60.0
    setup: str = ""              # store: damage to apply (see _store_case)
    action: str = ""             # store: 'verify' | 'resume' | 'kill'; fault: see run_fault
    fsize: int = 0               # cli: RLIMIT_FSIZE in bytes (a full disk), 0 = none


# --------------------------------------------------------------------- the API cases
PRELUDE = """
import math, warnings
import numpy as np
import matsense as ms
from matsense import Problem, init
from matsense.config import RunConfig
rng = np.random.default_rng(0)
A0 = rng.standard_normal((40, 5, 5))
def P(**kw):
    return Problem.gaussian(6, r=2, m=100, **kw)
def PS(**kw):
    return Problem.gaussian(6, r=2, m=100, symmetric=True, **kw)
def I(p, alpha=0.1, k=2):
    return init.small_random(p, k=k, alpha=alpha)
def finite_history(t):
    for key, v in t.history.items():
        a = np.asarray(v, dtype=float)
        if not np.isfinite(a).all():
            return False
    return True
"""

API_HARNESS = r"""
import json, os, sys, traceback
case = json.loads(os.environ["FUZZ_CASE"])
ns = {}
out = {}
try:
    exec(compile(case["prelude"], "<prelude>", "exec"), ns)
    exec(compile(case["code"], "<case>", "exec"), ns)
    out["raised"] = None
    if case["check"]:
        out["check"] = bool(eval(case["check"], ns))
except BaseException as exc:  # noqa: BLE001
    tb = traceback.extract_tb(exc.__traceback__)
    last = tb[-1].filename if tb else ""
    out["raised"] = type(exc).__name__
    out["value_or_type"] = isinstance(exc, (ValueError, TypeError))
    out["from_matsense"] = "/matsense/" in last.replace(os.sep, "/")
    out["where"] = f"{last}:{tb[-1].lineno}" if tb else ""
    out["message"] = str(exc)[:400]
print("FUZZ-RESULT " + json.dumps(out))
"""


def _api(id, code, expect="error", check=""):
    return Case(id, "api", code=code, expect=expect, check=check)


def api_cases() -> list[Case]:
    cases = []
    # Problem.gaussian: each bad argument on its own
    bad = {
        "n1": ["0", "-1", "2.5", "'10'", "None", "True", "10**20", "float('nan')"],
        "r": ["0", "7", "-1", "2.0", "None", "'2'"],
        "m": ["0", "-5", "1e3", "'100'", "None", "10**12"],
        "kappa": ["0.5", "float('inf')", "float('nan')", "-1", "'2'", "1j", "0"],
        "noise": ["-1", "float('nan')", "float('inf')", "1e308", "'0'", "1j"],
        "seed": ["-1", "1.5", "'0'", "None", "[1, 2]"],
        "symmetric": ["'no'", "'false'", "'yes'", "0", "1", "None", "'True'", "[True]"],
        "singular_values": ["[1e300, 1e-300]", "[1, -1]", "[float('nan'), 1]", "[1]", "'12'",
                            "[1, 0]", "[[1, 2]]", "[1, float('inf')]", "['a', 'b']"],
        "spacing": ["'log'", "None", "1"],
        "ensemble": ["'bad'", "None"],
        "max_memory": ["'abc'", "-1", "0", "'1K'", "True", "'-2G'"],
    }
    for arg, values in bad.items():
        for v in values:
            kwargs = {"r": "2", "m": "100"}
            kwargs[arg] = v
            n1 = kwargs.pop("n1", "6")
            call = f"Problem.gaussian({n1}, " + ", ".join(f"{k}={x}" for k, x in kwargs.items()) + ")"
            cases.append(_api(f"api:gaussian:{arg}={v}", f"result = {call}"))
    cases += [
        _api("api:gaussian:n2-mismatch-symmetric", "result = Problem.gaussian(6, 7, r=2, m=100, symmetric=True)"),
        _api("api:gaussian:huge-10x1e7", "result = Problem.gaussian(10, r=2, m=10**7)"),
        # 2.9 GB: fits under the 4 GiB cap or not, depending on the interpreter's own size
        _api("api:gaussian:6x1e7", "result = Problem.gaussian(6, r=2, m=10**7)", "either",
             "result.m == 10**7"),
        _api("api:gaussian:huge-1e5x900", "result = Problem.gaussian(100_000, r=2, m=900)"),
        _api("api:gaussian:huge-300x1e4", "result = Problem.gaussian(300, r=2, m=10_000)"),
        _api("api:gaussian:huge-2000x200", "result = Problem.gaussian(2000, r=2, m=200)"),
        _api("api:gaussian:np-bool", "result = P(symmetric=np.bool_(False))", "ok",
             "result.symmetric is False"),
        _api("api:gaussian:np-int", "result = Problem.gaussian(np.int64(6), r=np.int32(2), m=100)",
             "ok", "result.shape == (6, 6)"),
        _api("api:gaussian:symmetric-true", "result = PS()", "ok",
             "result.symmetric is True and np.allclose(result.M_star, result.M_star.T)"),
        _api("api:gaussian:generate-bad", "result = Problem.generate('nope', 6, r=2, m=100)"),
        _api("api:gaussian:generate-kw", "result = Problem.generate('gaussian', 6, r=2, m=100, bogus=1)"),
    ]
    # from_arrays
    fa = {
        "A-2d": "Problem.from_arrays(np.ones((5, 5)), np.zeros(5))",
        "A-4d": "Problem.from_arrays(np.ones((2, 5, 5, 1)), np.zeros(2))",
        "A-empty": "Problem.from_arrays(np.ones((0, 5, 5)), np.zeros(0))",
        "A-f16": "Problem.from_arrays(A0.astype(np.float16), np.zeros(40))",
        "A-complex": "Problem.from_arrays(A0 + 1j, np.zeros(40))",
        "A-object": "Problem.from_arrays(A0.astype(object), np.zeros(40))",
        "A-str": "Problem.from_arrays(A0.astype(str), np.zeros(40))",
        "A-longdouble": "Problem.from_arrays(A0.astype(np.longdouble), np.zeros(40))",
        "A-nan": "Problem.from_arrays(np.where(A0 > 2, np.nan, A0), np.zeros(40))",
        "A-inf": "Problem.from_arrays(np.where(A0 > 2, np.inf, A0), np.zeros(40))",
        "A-None": "Problem.from_arrays(None, np.zeros(40))",
        "A-ragged": "Problem.from_arrays([[[1, 2]], [[1]]], np.zeros(2))",
        "y-len": "Problem.from_arrays(A0, np.zeros(39))",
        "y-2d": "Problem.from_arrays(A0, np.zeros((40, 1)))",
        "y-f16": "Problem.from_arrays(A0, np.zeros(40, np.float16))",
        "y-nan": "Problem.from_arrays(A0, np.full(40, np.nan))",
        "y-inf": "Problem.from_arrays(A0, np.full(40, np.inf))",
        "y-str": "Problem.from_arrays(A0, 'zeros')",
        "M-shape": "Problem.from_arrays(A0, np.zeros(40), M_star=np.zeros((4, 5)))",
        "M-nan": "Problem.from_arrays(A0, np.zeros(40), M_star=np.full((5, 5), np.nan))",
        "M-f16": "Problem.from_arrays(A0, np.zeros(40), M_star=np.zeros((5, 5), np.float16))",
        "M-1d": "Problem.from_arrays(A0, np.zeros(40), M_star=np.zeros(25))",
        "sym-no": "Problem.from_arrays(A0, np.zeros(40), symmetric='no')",
        "sym-false": "Problem.from_arrays(A0, np.zeros(40), symmetric='false')",
        "sym-1": "Problem.from_arrays(A0, np.zeros(40), symmetric=1)",
        "sym-rect": "Problem.from_arrays(np.ones((3, 4, 5)), np.zeros(3), symmetric=True)",
    }
    for name, call in fa.items():
        cases.append(_api(f"api:from_arrays:{name}", f"result = {call}"))
    cases += [
        _api("api:from_arrays:zero-truth",
             "p = Problem.from_arrays(A0, np.zeros(40), M_star=np.zeros((5, 5)))\n"
             "result = ms.run(p, ms.GD(), I(p), 5)", "ok",
             "finite_history(result) and np.isfinite(result.summary()[0]['final_rel_error'])"),
        _api("api:from_arrays:float32",
             "p = Problem.from_arrays(A0.astype(np.float32), np.zeros(40, np.float32))\n"
             "result = ms.run(p, ms.GD(), I(p), 3)", "either", "finite_history(result)"),
        _api("api:from_arrays:int", "result = Problem.from_arrays(np.ones((3, 2, 2), int), [1, 2, 3])",
             "ok", "result.y.dtype == np.float64"),
        _api("api:from_arrays:np-bool-sym",
             "result = Problem.from_arrays(A0, np.zeros(40), symmetric=np.bool_(False))", "ok",
             "result.symmetric is False"),
    ]
    # dtypes of every array of from_arrays: floats other than float32/64 refused, integers
    # and bools converted to float64
    shapes = {"A": "A0", "y": "np.zeros(40)", "M_star": "np.zeros((5, 5))"}
    for which in shapes:
        for dtype, expect in (("np.float16", "error"), ("np.complex64", "error"),
                              ("np.complex128", "error"), ("np.longdouble", "error"),
                              ("object", "error"), ("str", "error"), ("np.int8", "ok"),
                              ("np.uint64", "ok"), ("bool", "ok"), ("np.float32", "either")):
            args = dict(shapes)
            args[which] = f"{shapes[which]}.astype({dtype})"
            code = (f"p = Problem.from_arrays({args['A']}, {args['y']}, M_star={args['M_star']})\n"
                    "result = ms.run(p, ms.GD(), I(p), 3)")
            cases.append(_api(f"api:dtype:{which}={dtype}", code, expect,
                              "finite_history(result)"))
    # builders whose operators are not in this tree yet report it; their names are public
    for ens in ("rank-one", "completion", "symmetric-gaussian"):
        cases.append(_api(f"api:generate:{ens}",
                          f"p = Problem.generate({ens!r}, 6, r=2, m=30)\n"
                          "result = ms.run(p, ms.GD(), I(p), 3)", "ok", "finite_history(result)"))
    # ms.run arguments
    runs = {
        "problem-None": "ms.run(None, ms.GD(), I(P()), 3)",
        "problem-str": "ms.run('p', ms.GD(), I(P()), 3)",
        "problem-int": "ms.run(42, ms.GD(), I(P()), 3)",
        "method-str": "ms.run(P(), 'gd', I(P()), 3)",
        "method-class": "ms.run(P(), ms.GD, I(P()), 3)",
        "method-object": "ms.run(P(), object(), I(P()), 3)",
        "method-None": "ms.run(P(), None, I(P()), 3)",
        "init-None": "ms.run(P(), ms.GD(), None, 3)",
        "init-shape": "ms.run(P(), ms.GD(), (np.ones((5, 2)), np.ones((6, 2))), 3)",
        "init-k0": "ms.run(P(), ms.GD(), (np.ones((6, 0)), np.ones((6, 0))), 3)",
        "init-k-big": "ms.run(P(), ms.GD(), (np.ones((6, 9)), np.ones((6, 9))), 3)",
        "init-nan": "ms.run(P(), ms.GD(), (np.full((6, 2), np.nan), np.ones((6, 2))), 3)",
        "init-f16": "ms.run(P(), ms.GD(), tuple(f.astype(np.float16) for f in I(P())), 3)",
        "init-3tuple": "ms.run(P(), ms.GD(), (np.ones((6, 2)),) * 3, 3)",
        "init-X-asym": "ms.run(P(), ms.GD(), np.ones((6, 2)) * 0.1, 3)",
        "init-str": "ms.run(P(), ms.GD(), 'small', 3)",
        "init-complex": "ms.run(P(), ms.GD(), (np.ones((6, 2)) * 1j, np.ones((6, 2))), 3)",
        "iters-neg": "ms.run(P(), ms.GD(), I(P()), -1)",
        "iters-float": "ms.run(P(), ms.GD(), I(P()), 1.5)",
        "iters-str": "ms.run(P(), ms.GD(), I(P()), '10')",
        "iters-huge": "ms.run(P(), ms.GD(), I(P()), 10**12)",
        "tol-0": "ms.run(P(), ms.GD(), I(P()), 3, tol=0)",
        "tol-neg": "ms.run(P(), ms.GD(), I(P()), 3, tol=-1)",
        "tol-nan": "ms.run(P(), ms.GD(), I(P()), 3, tol=float('nan'))",
        "tol-str": "ms.run(P(), ms.GD(), I(P()), 3, tol='1e-3')",
        "record_every-0": "ms.run(P(), ms.GD(), I(P()), 3, record_every=0)",
        "divergence-0": "ms.run(P(), ms.GD(), I(P()), 3, divergence_factor=0)",
        "divergence-nan": "ms.run(P(), ms.GD(), I(P()), 3, divergence_factor=float('nan'))",
        "callback-42": "ms.run(P(), ms.GD(), I(P()), 3, callback=42)",
        "callback-str": "ms.run(P(), ms.GD(), I(P()), 3, callback='stop')",
        "record-bogus": "ms.run(P(), ms.GD(), I(P()), 3, record=['bogus'])",
        "record-int": "ms.run(P(), ms.GD(), I(P()), 3, record=42)",
        "max_memory-bad": "ms.run(P(), ms.GD(), I(P()), 3, max_memory='x')",
        "max_memory-tiny": "ms.run(P(), ms.GD(), I(P()), 3, max_memory=100)",
        "together-None": "ms.run_together(None, [(ms.GD(), I(P()))], 3)",
        "together-class": "ms.run_together(P(), [(ms.GD, I(P()))], 3)",
        "together-iters": "ms.run_together(P(), [(ms.GD(), I(P()))], [3, 4])",
        "together-stack": "ms.run_together(P(), [(ms.GD(), I(P()))], 3, max_stack=0)",
    }
    for name, call in runs.items():
        cases.append(_api(f"api:run:{name}", f"result = {call}"))
    # divergence and overflow: a clean refusal, or a run whose history is all finite
    div = {
        "alpha-1e150": "p = P(); result = ms.run(p, ms.GD(), I(p, 1e150), 10)",
        "alpha-1e50": "p = P(); result = ms.run(p, ms.GD(), I(p, 1e50), 10)",
        "step-1e10": "p = P(); result = ms.run(p, ms.GD(step_size=1e10), I(p), 10)",
        "step-1e300": "p = P(); result = ms.run(p, ms.GD(step_size=1e300), I(p), 10)",
        "sigma-1e300": "p = P(singular_values=[1e300, 1e-300]); result = ms.run(p, ms.GD(), I(p), 10)",
        "sigma-1e150": "p = P(singular_values=[1e150, 1e-150]); result = ms.run(p, ms.GD(), I(p), 10)",
        "sigma-1e100": "p = P(singular_values=[1e100, 1]); result = ms.run(p, ms.GD(), I(p), 10)",
        "noise-1e308": "p = P(noise=1e308); result = ms.run(p, ms.GD(), I(p), 10)",
        "noise-1e150": "p = P(noise=1e150); result = ms.run(p, ms.GD(), I(p), 10)",
        "noise-1e200": "p = P(noise=1e200); result = ms.run(p, ms.GD(), I(p), 10)",
        "kappa-1e300": "p = P(kappa=1e300); result = ms.run(p, ms.GD(), I(p), 10)",
        "tiny-alpha": "p = P(); result = ms.run(p, ms.GD(), I(p, 1e-300), 10)",
        "batch-mixed": "p = P(); result = ms.run(p, ms.GD(), init.small_random(p, 2, [0.1, 1e50]), 10)[1]",
        "rebalanced-big-step": "p = P(); result = ms.run(p, ms.RebalancedGD(step_size=1e6), I(p), 10)",
        "scaledgd-big-step": "p = P(); result = ms.run(p, ms.get_method('scaled_gd', step_size=1e8), I(p), 10)",
        "sym-X-big": "p = PS(); result = ms.run(p, ms.GD(step_size=1e9), init.symmetric_random(p, 2, 0.1), 10)",
    }
    for name, code in div.items():
        cases.append(_api(f"api:diverge:{name}", code, "either", "finite_history(result)"))
    # init functions
    inits = {
        "problem-None": "init.small_random(None, k=2, alpha=0.1)",
        "alpha-1j": "init.small_random(P(), k=2, alpha=1j)",
        "alpha-empty": "init.small_random(P(), k=2, alpha=[])",
        "alpha-str": "init.small_random(P(), k=2, alpha='0.1')",
        "alpha-nan": "init.small_random(P(), k=2, alpha=float('nan'))",
        "alpha-neg": "init.small_random(P(), k=2, alpha=-1)",
        "alpha-0": "init.small_random(P(), k=2, alpha=0)",
        "alpha-list-nan": "init.small_random(P(), k=2, alpha=[0.1, float('nan')])",
        "alpha-2d": "init.small_random(P(), k=2, alpha=[[0.1]])",
        "alpha-None": "init.small_random(P(), k=2, alpha=None)",
        "k-0": "init.small_random(P(), k=0, alpha=0.1)",
        "k-big": "init.small_random(P(), k=100, alpha=0.1)",
        "k-float": "init.small_random(P(), k=2.5, alpha=0.1)",
        "k-str": "init.small_random(P(), k='2', alpha=0.1)",
        "ratio-0": "init.small_random(P(), k=2, alpha=0.1, ratio=0)",
        "ratio-nan": "init.small_random(P(), k=2, alpha=0.1, ratio=float('nan'))",
        "normalization": "init.small_random(P(), k=2, alpha=0.1, normalization='x')",
        "seed-neg": "init.small_random(P(), k=2, alpha=0.1, seed=-1)",
        "seed-float": "init.small_random(P(), k=2, alpha=0.1, seed=1.5)",
        "seed-mismatch": "init.small_random(P(), k=2, alpha=[0.1, 0.2], seed=[1, 2, 3])",
        "seed-empty": "init.small_random(P(), k=2, alpha=0.1, seed=[])",
        "balanced-rect": "init.balanced(Problem.gaussian(6, 5, r=2, m=100), 2, 0.1)",
        "symmetric-rect": "init.symmetric_random(Problem.gaussian(6, 5, r=2, m=100), 2, 0.1)",
        "spectral-None": "init.spectral(None, 2)",
        "spectral-k0": "init.spectral(P(), 0)",
        "zeros-str": "init.zeros('p', 2)",
        "get-bogus": "init.get_init('bogus')",
    }
    for name, call in inits.items():
        cases.append(_api(f"api:init:{name}", f"result = {call}"))
    # methods and the rebalancing transform
    methods = {
        "gd-step-0": "ms.GD(step_size=0)", "gd-step-neg": "ms.GD(step_size=-1)",
        "gd-step-nan": "ms.GD(step_size=float('nan'))", "gd-step-str": "ms.GD(step_size='0.3')",
        "gd-step-1j": "ms.GD(step_size=1j)", "gd-step-inf": "ms.GD(step_size=float('inf'))",
        "gd-bogus": "ms.GD(bogus=1)",
        "rgd-beta-0": "ms.RebalancedGD(beta=0)", "rgd-beta-nan": "ms.RebalancedGD(beta=float('nan'))",
        "rgd-tau-neg": "ms.RebalancedGD(tau=-1)", "rgd-transform": "ms.RebalancedGD(transform='x')",
        "get-bogus": "ms.get_method('bogus')", "get-kw": "ms.get_method('gd', bogus=1)",
        "get-None": "ms.get_method(None)",
        "scaled-step-neg": "ms.get_method('scaled_gd', step_size=-1)",
        "precgd-nan": "ms.get_method('prec_gd', step_size=float('nan'))",
        "rebalance-beta-0": "ms.methods.rebalance(np.ones((5, 2)), np.ones((4, 2)), 0)",
        "rebalance-beta-neg": "ms.methods.rebalance(np.ones((5, 2)), np.ones((4, 2)), -1.0)",
        "rebalance-beta-nan": "ms.methods.rebalance(np.ones((5, 2)), np.ones((4, 2)), float('nan'))",
        "rebalance-beta-tiny": "ms.methods.rebalance(np.ones((5, 2)), np.ones((4, 2)), 1e-320)",
        "rebalance-shapes": "ms.methods.rebalance(np.ones((5, 2)), np.ones((4, 3)), 1.0)",
        "rebalance-None": "ms.methods.rebalance(None, np.ones((4, 2)), 1.0)",
    }
    for name, call in methods.items():
        cases.append(_api(f"api:method:{name}", f"result = {call}"))
    cases.append(_api("api:method:rebalance-ok",
                      "F, G = np.ones((5, 2)), np.arange(8.).reshape(4, 2)\n"
                      "result = ms.methods.rebalance(F, G, 2.0)", "ok",
                      "np.allclose(result[0] @ result[1].T, np.ones((5, 2)) @ np.arange(8.).reshape(4, 2).T)"))
    # configurations
    conf = {
        "sym-no": "{'symmetric': 'no'}", "sym-1": "{'symmetric': 1}",
        "n1-str": "{'n1': '10'}", "n1-float": "{'n1': 10.0}", "unknown": "{'bogus': 1}",
        "alpha-str": "{'alpha': 'x'}", "method-bogus": "{'method': 'bogus'}",
        "init-bogus": "{'init': 'bogus'}", "step-str": "{'step_size': 'x'}",
        "twice": "{'problem': {'n1': 6}, 'n1': 7}", "not-dict": "[1, 2]",
        "section-scalar": "{'problem': 5}", "sv-str": "{'singular_values': 'x'}",
        "dtype-f16": "{'dtype': 'float16'}", "backend-bogus": "{'backend': 'bogus'}",
    }
    for name, d in conf.items():
        code = (f"cfg = RunConfig.from_dict({d})\n"
                "p = cfg.build_problem(); result = ms.run(p, cfg.build_method(), cfg.build_init(p), 3)")
        cases.append(_api(f"api:config:{name}", code))
    for name, d in {"k-too-big": "{'n1': 6, 'r': 1, 'm': 60, 'k': 9}",
                    "r-too-big": "{'n1': 6, 'r': 9, 'm': 60, 'k': 2}",
                    "iters-neg": "{'n1': 6, 'r': 1, 'm': 60, 'iters': -1}",
                    "huge": "{'n1': 10, 'r': 1, 'm': 10**7, 'k': 1}"}.items():
        code = (f"cfg = RunConfig.from_dict({d})\n"
                "p = cfg.build_problem(); result = ms.run(p, cfg.build_method(), cfg.build_init(p), cfg.iters)")
        cases.append(_api(f"api:config:{name}", code))
    # environment variables read by the kernels
    tiny_run = "p = P(); result = ms.run(p, ms.GD(), I(p), 3)"
    for kernel in ("auto", "numba", "numpy", "two-pass"):
        for threads in ("-1", "abc", "0", "1.5"):
            c = _api(f"api:env:kernel={kernel},threads={threads}", tiny_run)
            c.env = {"MATSENSE_KERNEL": kernel, "MATSENSE_THREADS": threads}
            cases.append(c)
    for name, env in {"kernel-bogus": {"MATSENSE_KERNEL": "bogus"},
                      "blas-x": {"MATSENSE_BLAS_THREADS": "x"},
                      "blas-0": {"MATSENSE_BLAS_THREADS": "0"},
                      "maxmem-abc": {"MATSENSE_MAX_MEMORY": "abc"},
                      "maxmem-neg": {"MATSENSE_MAX_MEMORY": "-1"},
                      "maxmem-1K": {"MATSENSE_MAX_MEMORY": "1K"}}.items():
        c = _api(f"api:env:{name}", "p = Problem.gaussian(60, r=2, m=2000); result = ms.run(p, ms.GD(), I(p), 3)")
        c.env = env
        cases.append(c)
    c = _api("api:env:triton-numpy",
             "with warnings.catch_warnings(record=True) as w:\n"
             "    warnings.simplefilter('always')\n"
             "    p = P(); ms.run(p, ms.GD(), I(p), 3); ms.run(p, ms.GD(), I(p), 3)\n"
             "result = [str(x.message) for x in w if 'triton' in str(x.message)]",
             "ok", "len(result) == 1 and 'instead' in result[0]")
    c.env = {"MATSENSE_KERNEL": "triton"}
    cases.append(c)
    cases += round3_api_cases()
    return cases


def round3_api_cases() -> list[Case]:
    """Issue #21: a run diverging at its start, diagnostics' shapes, nuclear_norm_solve's
    arguments, the per-ensemble memory estimate."""
    cases = [
        _api("api:diverge:factor-1e-300",
             "p = P(); result = ms.run(p, ms.GD(), I(p), 30, divergence_factor=1e-300)", "ok",
             "str(result.status) == 'diverged' and result.history['iteration'].tolist() == [0] "
             "and finite_history(result) and len(result.to_frame()) == 1 "
             "and math.isfinite(result.summary()[0]['final_error'])"),
        _api("api:diverge:factor-0.9-batch",
             "p = P(); s, r = init.spectral(p, 2), I(p)\n"
             "result = ms.run(p, ms.GD(), (np.stack([s[0], r[0]]), np.stack([s[1], r[1]])), 5, "
             "divergence_factor=0.9)", "ok",
             "[len(t.history['iteration']) for t in result] == [6, 1] "
             "and str(result.status[1]) == 'diverged' and len(result.summary()) == 2"),
        _api("api:diverge:empty-record",
             "from matsense.trajectory import RunRecord, Trajectory\n"
             "st = np.array([ms.Status.DIVERGED], dtype=object)\n"
             "result = Trajectory(RunRecord((np.zeros((1, 3, 1)),) * 2, st, np.zeros(1, int), "
             "0.0, {}, np.zeros(0, bool), {}))", "ok",
             "result.history['iteration'].shape == (0,) "
             "and math.isnan(result.summary()[0]['final_residual_norm'])"),
    ]
    F, G3 = "np.ones((1, 3, 2))", "np.ones((1, 3, 3))"
    diag = {
        "error-shapes": f"ms.diagnostics.error(np.ones((1, 3, 3)), np.ones((4, 4)))",
        "error-factors": f"ms.diagnostics.error({F}, {F}, np.ones((3, 3)))",
        "error-None": "ms.diagnostics.error(None, np.ones((3, 3)))",
        "imbalance-k": f"ms.diagnostics.imbalance({F}, {G3})",
        "imbalance-batch": "ms.diagnostics.imbalance(np.ones((2, 3, 2)), np.ones((3, 3, 2)))",
        "imbalance-list": f"ms.diagnostics.imbalance([[1.0]], {F})",
        "drift-delta0": f"ms.diagnostics.imbalance_drift({F}, {F}, np.ones((3, 3)))",
        "off-U": f"ms.diagnostics.off_subspace(({F}, {F}), np.ones((4, 2)), np.ones((3, 2)))",
        "off-V": f"ms.diagnostics.off_subspace(({F}, {F}), np.ones((3, 2)), np.ones((5, 2)))",
        "off-not-tuple": f"ms.diagnostics.off_subspace({F}, np.ones((3, 2)), None)",
        "psv-k": f"ms.diagnostics.product_singular_values(({F}, {G3}))",
        "redundant-k": f"ms.diagnostics.redundant_imbalance({F}, {G3}, 1)",
        "redundant-r": f"ms.diagnostics.redundant_imbalance({F}, {F}, 5)",
        "redundant-r-str": f"ms.diagnostics.redundant_imbalance({F}, {F}, '1')",
        "row-k": f"ms.diagnostics.row_stats(({F}, {G3}))",
        "row-M": f"ms.diagnostics.row_stats(({F}, {F}), M_star=np.ones((4, 4)))",
        "row-U": f"ms.diagnostics.row_stats(({F}, {F}), U=np.ones((4, 2)), V=np.ones((3, 2)))",
        "row-U-no-V": f"ms.diagnostics.row_stats(({F}, {F}), U=np.ones((3, 2)))",
        "row-delta0": f"ms.diagnostics.row_stats(({F}, {F}), Delta0=np.ones((1, 3, 3)))",
        "factor-stats-U": f"ms.diagnostics.factor_stats({F}, {F}, np.ones((4, 2)), np.ones((3, 2)))",
        "loss-str": "ms.diagnostics.loss('a', True)",
        "loss-flag": "ms.diagnostics.loss(1.0, 'yes')",
        "product-k": f"ms.diagnostics.product(({F}, {G3}))",
        "truth-rows": "p = Problem.gaussian(1100, 1000, r=2, m=50, max_memory='1G')\n"
                      "t = ms.diagnostics.Truth.of(p, np.ones((1, 1100, 2)))\n"
                      "t.error((np.ones((1, 1000, 2)), np.ones((1, 1000, 2))))",
    }
    for name, call in diag.items():
        *pre, last = call.split("\n")
        cases.append(_api(f"api:diagnostics:{name}", "\n".join(pre + [f"result = {last}"])))
    cases.append(_api("api:diagnostics:broadcast-delta0-ok",
                      "F = np.random.default_rng(0).standard_normal((2, 3, 5, 2))\n"
                      "D0 = ms.diagnostics.imbalance(F[0, :1], F[1, :1])\n"
                      "result = ms.diagnostics.imbalance_drift(F[0], F[1], D0)", "ok",
                      "result.shape == (3,) and abs(result[0]) < 1e-12"))
    nuc = {"None": "None", "str": "'p'", "int": "42", "psd-str": "P(), psd='no'",
           "verbose-str": "P(), verbose='yes'", "solver-int": "P(), solver=3",
           "max-size-0": "P(), max_size=0"}
    for name, args in nuc.items():
        cases.append(_api(f"api:nuclear:{name}",
                          f"from matsense.methods.nuclear import nuclear_norm_solve\n"
                          f"result = nuclear_norm_solve({args})"))
    for ens, n1, m in (("completion", 20_000, 400_000), ("rank-one", 1000, 20_000)):
        c = _api(f"api:config:memory-{ens}-{n1}",
                 f"cfg = RunConfig.from_dict({{'ensemble': {ens!r}, 'n1': {n1}, 'r': 2, "
                 f"'m': {m}, 'k': 3, 'iters': 3}})\ncfg.check_memory(4)\n"
                 "result = cfg.memory_bytes(4)", "ok", "0 < result < 2**31")
        c.env = {"MATSENSE_MAX_MEMORY": "2G"}
        cases.append(c)
    c = _api("api:config:memory-gaussian-20000",
             "RunConfig.from_dict({'n1': 20000, 'r': 2, 'm': 400000, 'k': 3}).check_memory(1)")
    c.env = {"MATSENSE_MAX_MEMORY": "2G"}
    cases.append(c)
    return cases


# --------------------------------------------------------------------- the CLI cases
TINY = ["--n1", "6", "--r", "1", "--m", "60", "--k", "1", "--iters", "3", "--no-progress"]

BAD_TOML = {
    "syntax": "n1 = = 6\n",
    "unknown": "n1 = 6\nbogus = 1\n",
    "sym-str": "n1 = 6\nr = 1\nm = 60\nk = 1\nsymmetric = \"no\"\n",
    "sym-int": "n1 = 6\nr = 1\nm = 60\nk = 1\nsymmetric = 0\n",
    "n1-str": "n1 = \"6\"\n",
    "dup": "n1 = 6\nn1 = 7\n",
    "dup-section": "n1 = 6\n[problem]\nn1 = 7\n",
    "method": "method = \"bogus\"\n",
    "step": "n1 = 6\nr = 1\nm = 60\nk = 1\n[method]\nstep_size = -1\n",
    "k-big": "n1 = 6\nr = 1\nm = 60\nk = 9\n",
    "huge": "n1 = 100\nr = 1\nm = 100000\nk = 1\n",
    "binary": "\x00\x01\x02",
    "empty-list": "n1 = 6\nsingular_values = []\n",
}

BAD_SPECS = {
    "syntax": "[base\nn1 = 6\n",
    "unknown-table": "[bogus]\nx = 1\n",
    "grid-scalar": "[base]\nn1 = 6\n[grid]\nalpha = 0.1\n",
    "grid-sym-str": "[base]\nn1 = 6\nr = 1\nm = 60\nk = 1\n[grid]\nsymmetric = [true, \"no\"]\n",
    "zip-unequal": "[base]\nn1 = 6\n[[zip]]\nm = [60, 70]\nalpha = [0.1]\n",
    "twice": "[base]\nalpha = 0.1\n[grid]\nalpha = [0.1, 0.2]\n",
    "max-batch-0": "[sweep]\nmax_batch = 0\n[base]\nn1 = 6\n",
    "rate-window": "[sweep]\nrate_window = [1e-12, 1e-4]\n[base]\nn1 = 6\n",
    "unknown-key": "[base]\nbogus = 1\n",
    "method-param": "[base]\nmethod = \"gd\"\ntau = 0.1\n",
    "empty-grid": "[base]\nn1 = 6\n[grid]\nalpha = []\n",
    "binary": "\x00\x01",
}


def _cli(id, argv, expect="error", timeout=90.0, env=None):
    return Case(id, "cli", argv=list(argv), expect=expect, timeout=timeout, env=env or {})


def cli_cases() -> list[Case]:
    cases = []
    bad_run = {
        "n1": ["0", "-1", "abc", "1e3"], "r": ["0", "100"], "m": ["0", "-3", "1000000000"],
        "kappa": ["0", "nan", "inf", "-2"], "noise": ["-1", "nan", "1e308"],
        "alpha": ["0", "-1", "nan", "inf"], "k": ["0", "100"], "iters": ["-1", "x"],
        "tol": ["0", "-1", "nan"], "record-every": ["0"], "method": ["bogus"],
        "init": ["bogus"], "normalization": ["bogus"], "step-size": ["0", "nan", "-1"],
        "backend": ["bogus"], "dtype": ["float16", "int8"], "seed": ["-1", "1.5"],
        "init-seed": ["-1"], "ratio": ["0", "nan"], "max-memory": ["abc", "0", "1K", "-1G"],
    }
    for flag, values in bad_run.items():
        for v in values:
            argv = [a for a in TINY]
            if f"--{flag}" in argv:
                i = argv.index(f"--{flag}")
                argv[i + 1] = v
            else:
                argv += [f"--{flag}", v]
            cases.append(_cli(f"cli:run:--{flag}={v}", ["run", *argv]))
    cases += [
        _cli("cli:run:n1-100-m-1e5", ["run", "--n1", "100", "--m", "100000", "--no-progress"]),
        _cli("cli:run:symmetric=yes", ["run", *TINY, "--symmetric=yes"]),
        _cli("cli:run:param-bogus", ["run", *TINY, "--param", "bogus=1"]),
        _cli("cli:run:param-str", ["run", *TINY, "--param", "step_size=\"x\""]),
        _cli("cli:run:param-twice", ["run", *TINY, "--step-size", "0.1", "--param", "step_size=0.2"]),
        _cli("cli:run:param-noeq", ["run", *TINY, "--param", "step_size"]),
        _cli("cli:run:unknown-flag", ["run", *TINY, "--bogus"]),
        _cli("cli:run:abbrev", ["run", "--n", "6"]),
        _cli("cli:run:device-cuda9", ["run", *TINY, "--device", "cuda:9"]),
        _cli("cli:run:out-txt", ["run", *TINY, "--out", "{tmp}/x.txt"]),
        _cli("cli:run:out-through-file", ["run", *TINY, "--out", "{file}/x.csv"]),
        _cli("cli:run:out-deep-through-file", ["run", *TINY, "--out", "{file}/a/b/x.csv"]),
        _cli("cli:run:out-is-dir", ["run", *TINY, "--out", "{dir}"]),
        _cli("cli:run:out-dir-csv", ["run", *TINY, "--out", "{dir}.csv/"], expect="either"),
        _cli("cli:run:out-proc", ["run", *TINY, "--out", "/proc/fuzz/x.csv"]),
        _cli("cli:run:figure-through-file", ["run", *TINY, "--figure", "{file}/x.png"]),
        _cli("cli:run:figure-jpg", ["run", *TINY, "--figure", "{tmp}/x.jpg"]),
        _cli("cli:run:config-missing", ["run", "--config", "{tmp}/missing.toml"]),
        _cli("cli:run:config-dir", ["run", "--config", "{dir}"]),
        _cli("cli:run:config-file-in-path", ["run", "--config", "{file}/x.toml"]),
        _cli("cli:run:ok", ["run", *TINY, "--out", "{tmp}/new/x.csv"], expect="ok"),
        _cli("cli:run:alpha-1e150", ["run", *TINY, "--alpha", "1e150"], expect="either"),
        _cli("cli:run:step-1e10", ["run", *TINY, "--step-size", "1e10"], expect="ok"),
        _cli("cli:none", [], expect="usage"),
        _cli("cli:bogus-command", ["bogus"]),
    ]
    for name, text in BAD_TOML.items():
        cases.append(_cli(f"cli:run:toml:{name}", ["run", "--config", f"{{toml:{name}}}", "--no-progress"]))
    rep = {
        "seeds-0": ["--seeds", "0"], "workers-0": ["--workers", "0"], "claims-C9": ["--claims", "C9"],
        "claims-empty": ["--claims", ","], "setting-bogus": ["--setting", "bogus"],
        "set-bogus": ["--set", "bogus=1"], "set-n1-str": ["--set", "n1=abc"],
        "set-noeq": ["--set", "n1"], "out-through-file": ["--out", "{file}/x"],
        "out-file": ["--out", "{file}"], "max-memory": ["--max-memory", "x"],
        "out-proc": ["--out", "/proc/fuzz"],
    }
    for name, extra in rep.items():
        cases.append(_cli(f"cli:reproduce:{name}", ["reproduce", "--quick", "--no-progress", *extra]))
    comp = {"seeds-0": ["--seeds", "0"], "workers-0": ["--workers", "0"],
            "out-through-file": ["--out", "{file}/x"], "out-file": ["--out", "{file}"],
            "max-memory": ["--max-memory", "x"], "seeds-str": ["--seeds", "x"]}
    for name, extra in comp.items():
        cases.append(_cli(f"cli:compare:{name}", ["compare", "--quick", *extra]))
    for name in BAD_SPECS:
        cases.append(_cli(f"cli:sweep:spec:{name}",
                          ["sweep", f"{{spec:{name}}}", "--out", "{tmp}/store", "--no-progress"]))
    sweep = {
        "missing-spec": ["sweep", "{tmp}/missing.toml", "--out", "{tmp}/s"],
        "no-out": ["sweep", "{spec:ok}"],
        "workers-neg": ["sweep", "{spec:ok}", "--out", "{tmp}/s", "--workers", "-1"],
        "max-batch-0": ["sweep", "{spec:ok}", "--out", "{tmp}/s", "--max-batch", "0"],
        "out-through-file": ["sweep", "{spec:ok}", "--out", "{file}/x"],
        "out-file": ["sweep", "{spec:ok}", "--out", "{file}"],
        "out-proc": ["sweep", "{spec:ok}", "--out", "/proc/fuzz"],
        "verify-missing": ["sweep", "--verify", "{tmp}/missing"],
        "verify-file": ["sweep", "--verify", "{file}"],
        "verify-and-out": ["sweep", "--verify", "{dir}", "--out", "{tmp}/s"],
        "verify-empty-dir": ["sweep", "--verify", "{dir}"],
        "executor-bogus": ["sweep", "{spec:ok}", "--out", "{tmp}/s", "--executor", "bogus"],
        "spec-is-dir": ["sweep", "{dir}", "--out", "{tmp}/s"],
        "max-memory": ["sweep", "{spec:ok}", "--out", "{tmp}/s", "--max-memory", "x"],
        "nothing": ["sweep"],
    }
    for name, argv in sweep.items():
        cases.append(_cli(f"cli:sweep:{name}", argv))
    grid_bad = {"n1": ["\"x\"", "-1", "true", "0"], "r": ["\"x\"", "0", "99"],
                "m": ["\"x\"", "0", "-5"], "kappa": ["\"x\"", "0.5", "-1"],
                "noise": ["\"x\"", "-1", "nan", "inf"], "alpha": ["\"x\"", "0", "-1", "inf"],
                "k": ["\"x\"", "0", "99"], "iters": ["\"x\"", "-1"],
                "symmetric": ["\"no\"", "1", "\"true\""], "seed": ["\"x\"", "-1", "1.5"],
                "step_size": ["\"x\"", "0", "-1", "nan"], "record_every": ["0", "\"x\""],
                "dtype": ["\"float16\"", "\"bogus\""], "init": ["\"bogus\""]}
    for key, values in grid_bad.items():
        for v in values:
            name = f"grid-{key}={v}".replace('"', "")
            BAD_SPECS[name] = (f"[base]\nn1 = 6\nr = 1\nm = 60\nk = 1\niters = 3\n"
                               f"[grid]\n{key} = [{v}]\n")
            cases.append(_cli(f"cli:sweep:spec:{name}",
                              ["sweep", f"{{spec:{name}}}", "--out", "{tmp}/store", "--workers",
                               "0", "--no-progress"], expect="refused"))
    cases.append(_cli("cli:sweep:too-large-point",
                      ["sweep", "{spec:huge}", "--out", "{tmp}/s", "--workers", "0", "--no-progress"],
                      expect="failed-run"))
    cases.append(_cli("cli:sweep:ok", ["sweep", "{spec:ok}", "--out", "{tmp}/s", "--workers", "0",
                                       "--no-progress"], expect="ok"))
    plot = {
        "missing-dir": ["plot", "{tmp}/missing", "--x", "alpha", "--y", "rate"],
        "dir-is-file": ["plot", "{file}", "--x", "alpha", "--y", "rate"],
        "out-through-file": ["plot", "{dir}", "--x", "alpha", "--y", "rate", "--out", "{file}/p.png"],
        "no-x": ["plot", "{dir}", "--y", "rate"],
        "empty-dir": ["plot", "{dir}", "--x", "alpha", "--y", "rate"],
    }
    for name, argv in plot.items():
        cases.append(_cli(f"cli:plot:{name}", argv))
    cases += round3_cli_cases()
    return cases


SCALE_SPECS = {  # issue #21: matrix-free sweeps at sizes they handle (2 GiB limit)
    "completion-20000": "[base]\nensemble = \"completion\"\nn1 = 20000\nr = 2\nm = 400000\n"
                        "k = 3\niters = 3\nalpha = 0.001\nstep_size = 0.1\n"
                        "[grid]\ninit_seed = [0, 1]\n",
    "rank-one-1000": "[base]\nensemble = \"rank-one\"\nn1 = 1000\nr = 2\nm = 20000\nk = 3\n"
                     "iters = 3\n[grid]\ninit_seed = [0, 1]\n",
}
#: A sweep whose history parts (~5 kB each) do not fit under the file-size limit of its case.
DISK_SPEC = "[sweep]\nmax_batch = 1\n[base]\nn1 = 8\nr = 1\nm = 80\nk = 2\n[grid]\niters = [5, 3000]\n"


def round3_cli_cases() -> list[Case]:
    """Issue #21: matrix-free sweeps at scale; a full disk (RLIMIT_FSIZE) under each command."""
    BAD_SPECS.update(SCALE_SPECS, disk=DISK_SPEC)
    cases = []
    for name in SCALE_SPECS:
        cases.append(_cli(f"cli:sweep:scale:{name}",
                          ["sweep", f"{{spec:{name}}}", "--out", "{tmp}/s", "--workers", "0",
                           "--no-progress"], expect="complete", timeout=180,
                          env={"MATSENSE_MAX_MEMORY": "2G"}))
    full = {
        "reproduce": (["reproduce", "--quick", "--claims", "C1", "--workers", "1",
                       "--no-progress", "--out", "{tmp}/out"], 20_000),
        "reproduce-workers": (["reproduce", "--quick", "--claims", "C1,C4", "--workers", "2",
                               "--no-progress", "--out", "{tmp}/out"], 20_000),
        "compare": (["compare", "--quick", "--workers", "1", "--out", "{tmp}/out"], 30_000),
        "compare-curves": (["compare", "--quick", "--workers", "2", "--out", "{tmp}/out"],
                           300_000),
        "sweep": (["sweep", "{spec:disk}", "--out", "{tmp}/out", "--workers", "0",
                   "--no-progress"], 60_000),
        "sweep-workers": (["sweep", "{spec:disk}", "--out", "{tmp}/out", "--workers", "2",
                           "--no-progress"], 60_000),
        "run-csv": (["run", *TINY, "--iters", "30", "--out", "{tmp}/out/x.csv"], 300),
        "run-parquet": (["run", *TINY, "--iters", "30", "--out", "{tmp}/out/x.parquet"], 300),
    }
    for name, (argv, fsize) in full.items():
        c = _cli(f"cli:full-disk:{name}", argv, expect="disk-full", timeout=300)
        c.fsize = fsize
        cases.append(c)
    return cases


# --------------------------------------------------------------------- the store cases
STORE_SPEC = ("[base]\nn1 = 6\nr = 1\nm = 60\nk = 1\niters = 20\nrecord_every = 5\n"
              "[grid]\nalpha = [0.1, 0.05, 0.02]\nseed = [0, 1]\n")
DAMAGE = ["none", "truncate-history", "garbage-history", "delete-history", "empty-history",
          "truncate-runs", "garbage-runs", "delete-runs", "big-part-number", "stray-file",
          "garbage-store-json", "delete-store-json", "truncate-spec", "stray-tmp",
          "history-into-runs"]


def store_cases() -> list[Case]:
    cases = []
    for damage in DAMAGE:
        for action in ("verify", "resume", "load"):
            cases.append(Case(f"store:{damage}:{action}", "store", setup=damage, action=action,
                              expect="ok", timeout=120.0))
    for when in (0.5, 2.0, 4.0):
        cases.append(Case(f"store:kill-after-{when}s", "store", setup=str(when), action="kill",
                          expect="ok", timeout=180.0))
    return cases


def all_cases() -> list[Case]:
    return api_cases() + cli_cases() + store_cases() + fault_cases()


# --------------------------------------------------------------------- running a case
def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))


class Leaks:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    def sweep(self, pgid: int, grace: float = 5.0) -> int:
        """Kill what is left of session ``pgid`` after ``grace`` seconds (helpers such as
        multiprocessing's resource tracker exit just after their parent); the number found."""
        deadline = time.monotonic() + grace
        alive = _session_members(pgid)
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = _session_members(pgid)
        if alive:
            with self.lock:
                self.count += len(alive)
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return len(alive)


def _session_members(sid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":  # field 6 (session)
                out.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _spawn(argv, env, timeout, cwd, leaks: Leaks, fsize: int = 0):
    """Run argv in its own session under the memory cap (and the file-size limit ``fsize``:
    a full disk); (rc or None on timeout, out, err, leaked)."""
    def limits():
        _limits()
        if fsize:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=limits, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    leaked = leaks.sweep(proc.pid)
    return rc, out, err, leaked


def _environment(src: str, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATSENSE_")}
    env["PYTHONPATH"] = src
    env["MPLBACKEND"] = "Agg"
    env["PYTHONWARNINGS"] = "ignore::RuntimeWarning"
    env.update(extra)
    return env


def _one_error_line(err: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("matsense: warning:")]
    return len(lines) == 1 and re.match(r"matsense( [\w-]+)?: error: ", lines[0]) is not None


SIGNATURE_ERRORS = (r"unexpected keyword argument|missing \d+ required|takes \d+ positional|"
                    r"takes from \d+ to \d+ positional|positional arguments? but")


def run_api(case: Case, src: str, work: Path, leaks: Leaks) -> dict:
    env = _environment(src, case.env)
    env["FUZZ_CASE"] = json.dumps({"prelude": PRELUDE, "code": case.code, "check": case.check})
    rc, out, err, leaked = _spawn([sys.executable, "-c", API_HARNESS], env, case.timeout, work,
                                  leaks)
    if rc is None:
        return {"outcome": "hang", "leaked": leaked}
    line = next((ln for ln in out.splitlines() if ln.startswith("FUZZ-RESULT ")), None)
    if line is None:
        return {"outcome": "traceback", "detail": f"rc={rc}: {err.strip()[-300:]}",
                "leaked": leaked}
    res = json.loads(line[len("FUZZ-RESULT "):])
    if res["raised"] is not None:
        # A TypeError of the call itself (an unknown keyword, a missing argument) is Python's
        # own boundary check, with a clear one-line message: clean wherever it is raised.
        signature = res["raised"] == "TypeError" and re.search(SIGNATURE_ERRORS, res["message"])
        clean = (res["value_or_type"] and (res["from_matsense"] or signature)
                 and "\n" not in res["message"]
                 and res["message"].strip() != "" and case.expect in ("error", "either"))
        return {"outcome": "clean" if clean else "traceback",
                "detail": f"{res['raised']}: {res['message'][:200]} [{res['where']}]",
                "leaked": leaked}
    if case.expect == "error":
        return {"outcome": "silent-wrong", "detail": "bad input accepted", "leaked": leaked}
    if case.check and not res.get("check"):
        return {"outcome": "silent-wrong", "detail": f"check failed: {case.check}",
                "leaked": leaked}
    return {"outcome": "clean", "detail": "ok", "leaked": leaked}


def _prepare_cli(case: Case, work: Path) -> list[str]:
    somefile = work / "somefile"
    somefile.write_text("a regular file\n")
    folder = work / "folder"
    folder.mkdir(exist_ok=True)
    specs = dict(BAD_SPECS, ok="[base]\nn1 = 6\nr = 1\nm = 60\nk = 1\niters = 3\n"
                                "[grid]\nalpha = [0.1, 0.05]\n",
                 huge="[base]\nn1 = 6\nr = 1\nk = 1\niters = 3\n[grid]\nm = [60, 10000000]\n")
    argv = []
    for arg in case.argv:
        m = re.fullmatch(r"\{(toml|spec):([^}]+)\}", arg)
        if m:
            kind, name = m.groups()
            path = work / f"{kind}-{name}.toml"
            path.write_text((BAD_TOML if kind == "toml" else specs)[name])
            argv.append(str(path))
            continue
        argv.append(arg.format(tmp=work, file=somefile, dir=folder))
    return argv


def run_cli(case: Case, src: str, work: Path, leaks: Leaks) -> dict:
    argv = _prepare_cli(case, work)
    env = _environment(src, case.env)
    rc, out, err, leaked = _spawn([sys.executable, "-m", "matsense", *argv], env, case.timeout,
                                  work, leaks, case.fsize)
    if rc is None:
        return {"outcome": "hang", "leaked": leaked}
    detail = f"rc={rc}: {err.strip()[-300:]}"
    if case.expect == "disk-full":
        return _disk_full_outcome(rc, out, err, work, leaked)
    if case.expect == "complete":  # a sweep that must run every point: exit 0, 0 failed
        ok = rc == 0 and " 0 failed" in out and "Traceback" not in err
        return {"outcome": "clean" if ok else ("traceback" if "Traceback" in err
                                               else "silent-wrong"),
                "detail": detail + out[-300:], "leaked": leaked}
    if "Traceback (most recent call last)" in err or rc not in (0, 1, 2):
        return {"outcome": "traceback", "detail": detail, "leaked": leaked}
    if case.expect == "usage":  # no command: the usage on stderr, exit 2
        ok = rc == 2 and err.startswith("usage: matsense")
        return {"outcome": "clean" if ok else "silent-wrong", "detail": detail, "leaked": leaked}
    if case.expect == "refused":  # a spec error (exit 2, one line) or failed runs (exit 1)
        ok = (rc == 2 and _one_error_line(err)) or (rc == 1 and " failed" in out
                                                      and "0 failed" not in out)
        return {"outcome": "clean" if ok else "silent-wrong", "detail": detail + out[-300:],
                "leaked": leaked}
    if case.expect == "failed-run":
        ok = rc == 1 and "would take" in out and "Traceback" not in out
        return {"outcome": "clean" if ok else "silent-wrong", "detail": detail + out[-300:],
                "leaked": leaked}
    if rc == 2:
        clean = _one_error_line(err) and case.expect in ("error", "either")
        return {"outcome": "clean" if clean else ("traceback" if not _one_error_line(err)
                                                  else "silent-wrong"),
                "detail": detail, "leaked": leaked}
    if rc == 0:
        if case.expect == "error":
            return {"outcome": "silent-wrong", "detail": "bad input accepted: " + out[-200:],
                    "leaked": leaked}
        bad = re.search(r"\b(inf|nan)\b", out.lower())
        return {"outcome": "silent-wrong" if bad else "clean", "detail": out[-200:],
                "leaked": leaked}
    # rc == 1: a command that ran and reported failures (sweep) or 'unavailable'
    if case.expect == "error" and _one_error_line(err):
        return {"outcome": "clean", "detail": detail, "leaked": leaked}
    return {"outcome": "silent-wrong" if case.expect == "error" else "clean", "detail": detail,
            "leaked": leaked}


def _disk_full_outcome(rc, out, err, work: Path, leaked: int) -> dict:
    """A full disk: exit 2 with one line naming a path under the case's folder; no
    temporary file left, and every summary.json / compare.json / report.html there whole."""
    detail = f"rc={rc}: {err.strip()[-300:]}"
    if "Traceback (most recent call last)" in err:
        return {"outcome": "traceback", "detail": detail, "leaked": leaked}
    problems = []
    if rc != 2 or not _one_error_line(err):
        problems.append("not one error line with exit 2")
    else:
        named = re.search(r"could not write (\S+): ", err)
        inside = named and (work / named.group(1)).resolve().is_relative_to(work.resolve())
        if not inside or (work / named.group(1)).resolve() == work.resolve():
            problems.append("the error does not name the file")
    problems += _incomplete_results(work)
    return {"outcome": "clean" if not problems else "silent-wrong",
            "detail": "; ".join(problems) + " | " + detail + out[-200:], "leaked": leaked}


def _incomplete_results(folder: Path) -> list[str]:
    """Result files under ``folder`` that look complete but are not (or temp files left)."""
    problems = [f"temp file left: {p.name}" for p in folder.rglob(".*.tmp")]
    for p in list(folder.rglob("summary.json")) + list(folder.rglob("compare.json")):
        try:
            json.loads(p.read_text())
        except ValueError:
            problems.append(f"truncated {p.name}")
    for p in folder.rglob("report.html"):
        if not p.read_text(errors="replace").rstrip().endswith("</html>"):
            problems.append(f"truncated {p.name}")
    return problems


# ------------------------------------------------------------------------ fault cases
FAULT_COMMANDS = {
    "reproduce": ["reproduce", "--quick", "--workers", "2", "--no-progress", "--out", "out"],
    "compare": ["compare", "--quick", "--workers", "2", "--out", "out"],
}


def fault_cases() -> list[Case]:
    """Issue #21: SIGKILL / SIGTERM of reproduce and compare, two reproduce runs into one
    --out, a sweep on a full disk resumed once space is back."""
    cases = []
    for command in FAULT_COMMANDS:
        for sig in ("SIGKILL", "SIGTERM"):
            for when in (2.0, 5.0):
                cases.append(Case(f"fault:{command}:{sig}-after-{when}s", "fault", setup=sig,
                                  action=f"signal:{command}:{when}", expect="ok",
                                  timeout=180.0))
    cases.append(Case("fault:reproduce:two-into-one-out", "fault", action="concurrent",
                      expect="ok", timeout=300.0))
    cases.append(Case("fault:compare:two-into-one-out", "fault", action="concurrent-compare",
                      expect="ok", timeout=300.0))
    cases.append(Case("fault:sweep:full-disk-then-resume", "fault", action="full-disk",
                      expect="ok", timeout=300.0))
    return cases


def _signal_command(case: Case, src: str, work: Path, leaks: Leaks) -> dict:
    _, command, when = case.action.split(":")
    signum = getattr(signal, case.setup)
    proc = subprocess.Popen([sys.executable, "-m", "matsense", *FAULT_COMMANDS[command]],
                            env=_environment(src, {}), cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_limits,
                            start_new_session=True)
    time.sleep(float(when))
    finished_first = proc.poll() is not None
    if not finished_first:
        proc.send_signal(signum)
    try:  # returns once every holder of the pipes (workers, helpers) has closed them
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"outcome": "hang", "detail": "pipes still open 30 s after the signal",
                "leaked": leaks.sweep(proc.pid)}
    leaked = leaks.sweep(proc.pid, grace=10.0)  # nothing may be left 10 s after the signal
    problems = _incomplete_results(work)
    if "Traceback (most recent call last)" in err:
        return {"outcome": "traceback", "detail": err[-300:], "leaked": leaked}
    if finished_first:
        problems += [] if proc.returncode == 0 else [f"finished with rc={proc.returncode}"]
    elif signum == signal.SIGTERM:  # 143 with one line; -15 if it came before any handler
        if not (proc.returncode == -signal.SIGTERM or (
                proc.returncode == 143
                and err.strip().splitlines()[-1:] == ["matsense: terminated (SIGTERM)"])):
            problems.append(f"SIGTERM: rc={proc.returncode}, stderr {err.strip()[-120:]!r}")
    elif proc.returncode != -signal.SIGKILL:
        problems.append(f"SIGKILL: rc={proc.returncode}")
    return {"outcome": "clean" if not problems else "silent-wrong",
            "detail": "; ".join(problems) or ("finished before the signal" if finished_first
                                              else f"rc={proc.returncode}"),
            "leaked": leaked}


def _concurrent(case: Case, src: str, work: Path, leaks: Leaks) -> dict:
    """Two commands into one --out at once: each completes or is refused in one line."""
    if case.action == "concurrent":
        argv = ["reproduce", "--quick", "--claims", "C1,C2", "--workers", "1", "--no-progress",
                "--out", "out"]
    else:
        argv = ["compare", "--quick", "--workers", "1", "--out", "out"]
    env = _environment(src, {})
    procs = [subprocess.Popen([sys.executable, "-m", "matsense", *argv], env=env, cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=_limits, start_new_session=True) for _ in range(2)]
    results = [p.communicate(timeout=case.timeout) for p in procs]
    leaked = sum(leaks.sweep(p.pid) for p in procs)
    problems = _incomplete_results(work)
    rcs = [p.returncode for p in procs]
    for p, (_, err) in zip(procs, results):
        if "Traceback (most recent call last)" in err:
            return {"outcome": "traceback", "detail": err[-300:], "leaked": leaked}
        if p.returncode not in (0, 2) or (p.returncode == 2 and not _one_error_line(err)):
            problems.append(f"rc={p.returncode}: {err.strip()[-150:]}")
    if 0 not in rcs:
        problems.append("neither completed")
    if case.action == "concurrent" and not problems:
        claims = [c["id"] for c in json.loads((work / "out" / "summary.json").read_text())["claims"]]
        if claims != ["C1", "C2"]:
            problems.append(f"summary.json holds {claims}")
    return {"outcome": "clean" if not problems else "silent-wrong",
            "detail": "; ".join(problems) or f"rc={rcs}", "leaked": leaked}


def _full_disk_sweep(case: Case, src: str, work: Path, leaks: Leaks) -> dict:
    """A sweep stopped by a full disk: one line, the store verifies healthy, and the same
    command with space back finishes every run once."""
    (work / "spec.toml").write_text(DISK_SPEC)
    env = _environment(src, {})
    sweep = [sys.executable, "-m", "matsense", "sweep", "spec.toml", "--out", "store",
             "--workers", "2", "--no-progress"]
    rc, out, err, leaked = _spawn(sweep, env, case.timeout, work, leaks, fsize=60_000)
    if rc is None:
        return {"outcome": "hang", "leaked": leaked}
    res = _disk_full_outcome(rc, out, err, work, leaked)
    if res["outcome"] != "clean":
        return res
    rc, out, err, more = _spawn([sys.executable, "-m", "matsense", "sweep", "--verify", "store"],
                                env, case.timeout, work, leaks)
    leaked += more
    if rc != 0:
        return {"outcome": "silent-wrong", "detail": f"verify rc={rc}: {out[-200:]}{err[-200:]}",
                "leaked": leaked}
    rc, out, err, more = _spawn(sweep, env, case.timeout, work, leaks)
    leaked += more
    state, why = _store_state(src, work / "store", work, leaks)
    ok = rc == 0 and state is not None and state["runs"] == state["ids"] == state["with_history"] == 2
    return {"outcome": "clean" if ok else "silent-wrong", "detail": f"rc={rc} {state or why}",
            "leaked": leaked}


def run_fault(case: Case, src: str, work: Path, leaks: Leaks) -> dict:
    if case.action.startswith("signal:"):
        return _signal_command(case, src, work, leaks)
    if case.action.startswith("concurrent"):
        return _concurrent(case, src, work, leaks)
    return _full_disk_sweep(case, src, work, leaks)


# ------------------------------------------------------------------------ store cases
_TEMPLATE_LOCK = threading.Lock()


def _template_store(src: str, base: Path, leaks: Leaks) -> Path:
    """A finished sweep (6 runs, one batch per run) to copy and damage (built once)."""
    with _TEMPLATE_LOCK:
        return _build_template(src, base, leaks)


def _build_template(src: str, base: Path, leaks: Leaks) -> Path:
    tpl = base / "template"
    if (tpl / "store").exists():
        return tpl
    tpl.mkdir(parents=True, exist_ok=True)
    (tpl / "spec.toml").write_text(STORE_SPEC)
    rc, out, err, _ = _spawn([sys.executable, "-m", "matsense", "sweep", "spec.toml", "--out",
                              "store", "--workers", "0", "--max-batch", "1", "--no-progress"],
                             _environment(src, {}), 300, tpl, leaks)
    if rc != 0:
        raise SystemExit(f"could not build the template store (rc={rc}): {err[-2000:]}")
    return tpl


def _damage(store: Path, how: str) -> None:
    hist = sorted((store / "history").glob("part-*"))
    runs = sorted((store / "runs").glob("part-*"))
    if how == "truncate-history":
        data = hist[0].read_bytes()
        hist[0].write_bytes(data[: len(data) // 2])
    elif how == "garbage-history":
        hist[0].write_bytes(b"not parquet at all" * 10)
    elif how == "delete-history":
        hist[0].unlink()
    elif how == "empty-history":
        hist[0].write_bytes(b"")
    elif how == "truncate-runs":
        data = runs[0].read_bytes()
        runs[0].write_bytes(data[: len(data) // 2])
    elif how == "garbage-runs":
        runs[0].write_bytes(b"PAR1garbagePAR1")
    elif how == "delete-runs":
        runs[0].unlink()
    elif how == "big-part-number":
        for folder in ("runs", "history"):
            for part in sorted((store / folder).glob("part-*"))[-1:]:
                tail = part.name.split("-", 2)[2]
                part.rename(part.with_name(f"part-100000000-{tail}"))
    elif how == "stray-file":
        (store / "runs" / "notes.txt").write_text("hello\n")
    elif how == "garbage-store-json":
        (store / "store.json").write_text("{not json")
    elif how == "delete-store-json":
        (store / "store.json").unlink()
    elif how == "truncate-spec":
        for spec in (store / "specs").glob("*"):
            spec.write_text(spec.read_text()[:10])
    elif how == "stray-tmp":
        (store / "runs" / ".part-00000099-abc.parquet.tmp").write_bytes(b"partial")
    elif how == "history-into-runs":
        shutil.copy(hist[0], runs[0])


CHECK_LOAD = r"""
import json, sys
import matsense as ms
r = ms.load(sys.argv[1])
runs = r.runs
hist = r.history
counts = hist.groupby("run_id").size().to_dict() if len(hist) else {}
print("FUZZ-STORE " + json.dumps({"runs": int(len(runs)), "ids": int(runs.run_id.nunique()),
      "with_history": int(sum(counts.get(i, 0) > 0 for i in runs.run_id))}))
"""


def _store_state(src, store, work, leaks):
    rc, out, err, _ = _spawn([sys.executable, "-c", CHECK_LOAD, str(store)],
                             _environment(src, {}), 120, work, leaks)
    line = next((ln for ln in out.splitlines() if ln.startswith("FUZZ-STORE ")), None)
    if rc != 0 or line is None:
        return None, err.strip()[-300:]
    return json.loads(line[len("FUZZ-STORE "):]), ""


def run_store(case: Case, src: str, work: Path, leaks: Leaks, base: Path) -> dict:
    tpl = _template_store(src, base, leaks)
    store = work / "store"
    shutil.copytree(tpl / "store", store)
    shutil.copy(tpl / "spec.toml", work / "spec.toml")
    env = _environment(src, {})
    sweep = [sys.executable, "-m", "matsense", "sweep", "spec.toml", "--out", "store",
             "--workers", "2", "--max-batch", "1", "--no-progress"]
    if case.action == "kill":
        shutil.rmtree(store)
        proc = subprocess.Popen(sweep, env=env, cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=_limits, start_new_session=True)
        time.sleep(float(case.setup))
        proc.kill()                       # SIGKILL of the parent only
        proc.communicate()
        deadline = time.monotonic() + 10  # its workers must follow it within 10 s
        while time.monotonic() < deadline and _session_members(proc.pid):
            time.sleep(0.2)
        leaked = leaks.sweep(proc.pid)
        rc, out, err, leaked2 = _spawn(sweep, env, case.timeout, work, leaks)
        leaked += leaked2
        if rc is None:
            return {"outcome": "hang", "leaked": leaked}
        if "Traceback" in err or rc != 0:
            return {"outcome": "traceback", "detail": f"resume rc={rc}: {err[-300:]}",
                    "leaked": leaked}
        state, why = _store_state(src, store, work, leaks)
        ok = state is not None and state["runs"] == state["ids"] == state["with_history"] == 6
        return {"outcome": "clean" if ok else "silent-wrong", "detail": str(state or why),
                "leaked": leaked}
    _damage(store, case.setup)
    if case.action == "verify":
        rc, out, err, leaked = _spawn([sys.executable, "-m", "matsense", "sweep", "--verify",
                                       "store"], env, case.timeout, work, leaks)
        if rc is None:
            return {"outcome": "hang", "leaked": leaked}
        if "Traceback" in err or rc not in (0, 1, 2):
            return {"outcome": "traceback", "detail": err[-300:], "leaked": leaked}
        # part numbers past 8 digits are read like any other (the store's counter has no width)
        harmless = case.setup in ("none", "stray-file", "stray-tmp", "truncate-spec",
                                  "big-part-number")
        if rc == 0 and not harmless:
            return {"outcome": "silent-wrong", "detail": "damaged store reported healthy: "
                    + out[-200:], "leaked": leaked}
        if rc == 2 and not _one_error_line(err):
            return {"outcome": "traceback", "detail": err[-300:], "leaked": leaked}
        return {"outcome": "clean", "detail": f"rc={rc}", "leaked": leaked}
    if case.action == "resume":
        rc, out, err, leaked = _spawn(sweep, env, case.timeout, work, leaks)
        if rc is None:
            return {"outcome": "hang", "leaked": leaked}
        if "Traceback" in err or rc not in (0, 1, 2):
            return {"outcome": "traceback", "detail": err[-300:], "leaked": leaked}
        if rc == 2:
            return {"outcome": "clean" if _one_error_line(err) else "traceback",
                    "detail": err[-300:], "leaked": leaked}
        state, why = _store_state(src, store, work, leaks)
        ok = state is not None and state["runs"] == state["ids"] == state["with_history"] == 6
        return {"outcome": "clean" if ok else "silent-wrong",
                "detail": f"rc={rc} {state or why}", "leaked": leaked}
    # load: ms.load on the damaged store: a warning or a clean error, never a traceback;
    # runs it returns must not be duplicated
    state, why = _store_state(src, store, work, leaks)
    if state is None:
        clean = bool(re.search(r"^(ValueError|FileNotFoundError|NotADirectoryError)", why.splitlines()[-1] if why else "", re.M))
        return {"outcome": "clean" if clean else "traceback", "detail": why, "leaked": 0}
    ok = state["runs"] == state["ids"]
    return {"outcome": "clean" if ok else "silent-wrong", "detail": str(state), "leaked": 0}


def run_case(case: Case, src: str, base: Path, leaks: Leaks) -> dict:
    work = Path(tempfile.mkdtemp(prefix="case-", dir=base))
    start = time.perf_counter()
    try:
        if case.kind == "api":
            res = run_api(case, src, work, leaks)
        elif case.kind == "cli":
            res = run_cli(case, src, work, leaks)
        elif case.kind == "fault":
            res = run_fault(case, src, work, leaks)
        else:
            res = run_store(case, src, work, leaks, base)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.update(id=case.id, kind=case.kind, seconds=round(time.perf_counter() - start, 2))
    return res


def select(cases, *, quick=False, only=None, limit=None):
    if only:
        cases = [c for c in cases if re.search(only, c.id)]
    if quick:
        cases = cases[::5]
    if limit is not None:
        cases = cases[:limit]
    return cases


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=str(ROOT / "src"),
                    help="the matsense source folder to test (PYTHONPATH of every case)")
    ap.add_argument("--quick", action="store_true", help="every 5th case (a few minutes)")
    ap.add_argument("--only", metavar="REGEX", help="cases whose id matches")
    ap.add_argument("--limit", type=int, metavar="N", help="the first N selected cases")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--json", metavar="FILE", type=Path, help="write every case's result")
    ap.add_argument("--list", action="store_true", help="print the case ids and exit")
    ap.add_argument("--show", type=int, default=15, metavar="N",
                    help="print the first N cases of each bad outcome (default 15)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a case is not clean or leaked a process")
    args = ap.parse_args(argv)
    cases = select(all_cases(), quick=args.quick, only=args.only, limit=args.limit)
    if args.list:
        print("\n".join(c.id for c in cases))
        return 0
    leaks = Leaks()
    base = Path(tempfile.mkdtemp(prefix="matsense-fuzz-"))
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(lambda c: run_case(c, args.src, base, leaks), cases))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    counts = {o: sum(r["outcome"] == o for r in results) for o in OUTCOMES}
    by_kind = {k: {o: sum(r["outcome"] == o and r["kind"] == k for r in results) for o in OUTCOMES}
               for k in ("api", "cli", "store", "fault")}
    leaked_cases = sum(r.get("leaked", 0) > 0 for r in results)
    for outcome in OUTCOMES[1:]:
        bad = [r for r in results if r["outcome"] == outcome]
        for r in bad[: args.show]:
            print(f"{outcome:12s} {r['id']}: {r.get('detail', '')}"[:400])
    print(f"src {args.src}: {len(results)} cases in {time.perf_counter() - start:.0f} s")
    for kind, c in by_kind.items():
        print(f"  {kind:5s} " + ", ".join(f"{o} {n}" for o, n in c.items()))
    print("total: " + ", ".join(f"{o} {n}" for o, n in counts.items())
          + f"; processes left behind: {leaks.count} (by {leaked_cases} cases)")
    if args.json:
        args.json.write_text(json.dumps({"src": args.src, "counts": counts, "by_kind": by_kind,
                                         "leaked": leaks.count, "results": results}, indent=1))
    if args.strict and (counts["clean"] != len(results) or leaks.count):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
