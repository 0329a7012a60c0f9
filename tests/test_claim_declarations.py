"""A claim owns itself: it declares its parameters (defaults, quick values, ``--set`` names,
rules) and its runs (builder, cost), and the shared settings keep only the problem family
(matsense.experiments.declare). Adding a claim is one module; a run two claims declare is
built once; the ``--set`` names of the built-in claims are the ones users' scripts use."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from matsense import cli
from matsense.experiments import CLAIMS, ClaimSettings, run_claims
from matsense.experiments import declare as D
from matsense.experiments.claims.base import Claim, Measurement, Verdict
from matsense.experiments.reproduction import settings_record
from matsense.experiments.settings import settable_keys

#: ``--set`` keys before the claims declared their parameters (users' scripts use them).
OLD_SETTABLE = (
    "n1",
    "n2",
    "r",
    "m",
    "p",
    "singular_values",
    "k",
    "eta",
    "ratio",
    "alphas",
    "n_seeds",
    "tau",
    "c7_kappas",
    "budget_factor",
    "c2_min_iters",
    "exact_iters",
    "c2_iters",
    "c4_iters",
    "c5_iters",
    "c7_iters",
    "c8_iters",
    "record_every",
    "long_record_every",
)
#: The fields of the settings before (summary.json's "settings" keys).
OLD_FIELDS = (
    "setting",
    "mode",
    "ensemble",
    "p",
    "n1",
    "n2",
    "r",
    "m",
    "singular_values",
    "k",
    "eta",
    "ratio",
    "alphas",
    "c2_alphas",
    "c4_alphas",
    "c5_alpha",
    "c8_alphas",
    "quick_alphas",
    "n_seeds",
    "record_every",
    "long_record_every",
    "divergence_factor",
    "budget_factor",
    "exact_iters",
    "exact_window",
    "exact_tol",
    "c2_iters",
    "c2_min_iters",
    "c2_tail",
    "c4_iters",
    "c4_window",
    "c5_iters",
    "c6_tail",
    "c6_checkpoints",
    "tau",
    "c7_iters",
    "c7_window",
    "c7_tol",
    "c7_kappas",
    "c8_iters",
    "c8_time",
    "c8_checkpoints",
)

BUILT = []


def _toy_run(sr):
    BUILT.append((sr.seed, sr.settings.t9_scale))
    return {"value": sr.settings.t9_scale * sr.settings.t9_steps + sr.seed}


def _double_steps(s):
    return 2 * s.t9_base


TOY_PARAMS = (
    D.Param("t9_scale", 1.0, "float", "a scale", quick=0.5),
    D.Param("t9_base", 3, "int", "a base"),
    D.Param("t9_steps", None, "int | None", "derived: 2 × t9_base", derive=_double_steps),
)
TOY_RUN = D.RunSpec("t9_run", _toy_run, cost="t9_steps")


@dataclass(frozen=True)
class ToyCriteria:
    min_value: float = 0.0


class ToyClaim(Claim):
    title = "a ninth claim, in one module"
    caption = "nothing to draw"
    stem = "toy"
    criteria = ToyCriteria()

    def __init__(self, cid, runs=(TOY_RUN,), parameters=TOY_PARAMS):
        self.id, self.runs, self.parameters = cid, runs, parameters

    def measure(self, runs, settings) -> Measurement:
        values = [sr.get("t9_run")["value"] for sr in runs]
        records = [
            {"seed": sr.seed, "alpha": 0.0, "status": "ok", "value": v}
            for sr, v in zip(runs, values)
        ]
        return Measurement(records, f"values {values}", "> 0", {"values": values})

    def judge(self, m, settings) -> Verdict:
        v = Verdict()
        for rec in m.records:
            v.require(rec["value"] > self.criteria.min_value, "not positive")
        return v

    def panels(self, m, runs, settings) -> list:
        return []


@pytest.fixture
def toys():
    """Two claims T9 and T10 that declare the same run and parameters, registered by hand."""
    claims = [ToyClaim("T9"), ToyClaim("T10", runs=("t9_run",), parameters=())]
    for claim in claims:
        CLAIMS[claim.id] = D.declare(claim)
    BUILT.clear()
    yield claims
    for claim in reversed(claims):
        del CLAIMS[claim.id]
        D.forget(claim)


def test_every_old_set_key_and_settings_key_is_still_there():
    assert set(OLD_SETTABLE) <= set(settable_keys())
    # the paper suite's settings record (summary.json) is exactly the old one; as_dict() also
    # holds the parameters of the other suites' claims (the robust suite's R1–R5)
    settings = ClaimSettings.quick().resolve()
    assert set(settings_record(settings, "paper")) == set(OLD_FIELDS)
    assert set(OLD_FIELDS) <= set(settings.as_dict())


def test_quick_values_come_from_the_claims_and_given_values_win():
    full, quick = ClaimSettings.full(), ClaimSettings.quick()
    assert full.c4_window == (1e-4, 1e-8) and quick.c4_window == (1e-4, 1e-6)
    assert (full.c8_time, quick.c8_time, quick.c7_kappas, quick.c2_min_iters) == (
        150.0,
        45.0,
        (),
        3000,
    )
    assert quick.replace(c4_window=(1e-3, 1e-5)).c4_window == (1e-3, 1e-5)
    assert quick.with_overrides(["c4_window=1e-3,1e-5"]).resolve().c4_window == (1e-3, 1e-5)
    assert ClaimSettings(c4_window=(1e-2, 1e-3)).params == {"c4_window": (1e-2, 1e-3)}


def test_unknown_and_bad_keys_are_clear_errors(capsys, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"unknown setting key 'c4_windw'; allowed: n, n1, .*"
        r"c4_window, .*c8_checkpoints",
    ):
        ClaimSettings.quick().with_overrides(["c4_windw=1,2"])
    with pytest.raises(
        ValueError,
        match=r"c4_window must be two numbers upper,lower with upper "
        r"> lower > 0 .* got \(1e-06, 0.001\)",
    ):
        ClaimSettings.quick().with_overrides(["c4_window=1e-6,1e-3"])
    with pytest.raises(ValueError, match="c8_checkpoints must be >= 1, got 0"):
        ClaimSettings.quick().with_overrides(["c8_checkpoints=0"])
    with pytest.raises(ValueError, match=r"c7_kappas are condition numbers"):
        ClaimSettings.quick().with_overrides(["c7_kappas=0.5"])
    with pytest.raises(TypeError, match="no field or claim parameter 'c4_windw'"):
        ClaimSettings(c4_windw=(1, 2))
    with pytest.raises(AttributeError, match="no field or claim parameter 'c4_windw'"):
        ClaimSettings().c4_windw  # noqa: B018 - the lookup is the test
    code = cli.main(["reproduce", "--quick", "--set", "c4_windw=1,2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("matsense: error: unknown setting key 'c4_windw'; allowed: n, n1")


def test_family_unsets_derived_values_but_keeps_tau():
    s = ClaimSettings.preset("ill-conditioned", quick=True).replace(tau=0.02).resolve()
    f = s.family()
    assert f.alphas is None and f.c4_iters is None and f.c5_alpha is None and f.tau == 0.02
    assert f.c4_window == s.c4_window and f.resolve() == s
    k = s.with_kappa(2.0)
    assert k.singular_values == (1.0, 0.5) and k.tau == 0.02
    assert k.c4_iters == ClaimSettings.quick().replace(tau=0.02).resolve().c4_iters


def test_a_ninth_claim_is_one_module_and_a_shared_run_is_built_once(toys, tmp_path):
    # C1–C8, R1–R5 and the two toys
    assert list(CLAIMS)[-2:] == ["T9", "T10"] and len(CLAIMS) == 15
    s = ClaimSettings.quick().with_overrides(["t9_base=5", "n_seeds=2"]).resolve()
    assert (s.t9_scale, s.t9_base, s.t9_steps) == (0.5, 5, 10)
    assert s.as_dict()["t9_steps"] == 10
    results = run_claims(["T9", "T10"], s, [0, 1], workers=1)
    assert [r.measured for r in results] == ["values [5.0, 6.0]"] * 2
    assert all(r.holds for r in results)
    assert BUILT == [(0, 0.5), (1, 0.5)]  # once per seed, for both claims


def test_declarations_that_clash_are_refused(toys):
    other = D.Param("t9_scale", 2.0, "float")
    with pytest.raises(
        ValueError,
        match="claim T11 declares parameter 't9_scale', which claim T9 declares differently",
    ):
        D.declare(ToyClaim("T11", runs=(), parameters=(other,)))
    with pytest.raises(ValueError, match="claim T11 declares run 't9_run', which claim T9"):
        D.declare(ToyClaim("T11", runs=(D.RunSpec("t9_run", _toy_run, "t9_steps"),), parameters=()))
    with pytest.raises(ValueError, match="parameter 'eta' takes the name of a field"):
        D.declare(ToyClaim("T11", runs=(), parameters=(D.Param("eta", 1.0, "float"),)))
    with pytest.raises(ValueError, match=r"claim T11 reads runs \['nope'\] that no claim declares"):
        D.declare(ToyClaim("T11", runs=("nope",), parameters=()))
    assert "t9_scale" in D.PARAMS and D.PARAMS["t9_scale"] is TOY_PARAMS[0]


def test_rules_that_read_each_other_in_a_circle_are_an_error():
    a = D.Param("t12_a", None, "int | None", derive=lambda s: s.t12_b)
    b = D.Param("t12_b", None, "int | None", derive=lambda s: s.t12_a)
    claim = D.declare(ToyClaim("T12", runs=(), parameters=(a, b)))
    try:
        with pytest.raises(ValueError, match="read each other in a circle"):
            ClaimSettings.quick().resolve()
    finally:
        D.forget(claim)
    assert "t12_a" not in D.PARAMS and json.dumps(ClaimSettings.quick().resolve().as_dict())
