"""The measurement ensembles: adjoint identities, factored calls against the dense formulas,
batching, seeding and bad input (docs/ensembles.md)."""

import numpy as np
import pytest

import matsense as ms
from matsense.operators import (
    DenseOperator,
    EntryOperator,
    MatrixOperator,
    RankOneOperator,
    SymmetricOperator,
)
from matsense.operators import completion as completion_module


def _operators():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 7, 60)
    cols = rng.integers(0, 5, 60)
    return {
        "dense": DenseOperator(rng.standard_normal((40, 7, 5))),
        "symmetric": SymmetricOperator.from_dense(DenseOperator(rng.standard_normal((40, 6, 6)))),
        "rank-one": RankOneOperator(rng.standard_normal((50, 7)), rng.standard_normal((50, 5))),
        "rank-one-sym": RankOneOperator(rng.standard_normal((50, 6))),
        "completion": EntryOperator.draw(rng, 25, 7, 5),
        "completion-dup": EntryOperator(rows, cols, (7, 5), allow_duplicates=True),
    }


OPERATORS = _operators()


@pytest.fixture(params=sorted(OPERATORS))
def op(request):
    return OPERATORS[request.param]


def test_every_operator_is_a_matrix_operator(op):
    assert isinstance(op, MatrixOperator)


def test_adjoint_identity(op):
    rng = np.random.default_rng(1)
    n1, n2 = op.shape
    M = rng.standard_normal((3, n1, n2))
    z = rng.standard_normal((3, op.m))
    lhs = np.sum(op.apply(M) * z, axis=-1)
    rhs = np.sum(M * op.adjoint(z), axis=(-2, -1))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_factored_calls_equal_the_dense_formulas(op):
    rng = np.random.default_rng(2)
    n1, n2 = op.shape
    B, k = 3, 4
    F = rng.standard_normal((B, n1, k))
    G = rng.standard_normal((B, n2, k))
    y = rng.standard_normal(op.m)
    A = op.as_matrix()  # (m, n1·n2), from the dense calls
    P = F @ G.mT
    r_ref = P.reshape(B, -1) @ A.T - y
    S_ref = (r_ref @ A).reshape(B, n1, n2)
    r, SG, StF = op.residual_and_grads(F, G, y)
    scale = np.abs(S_ref).max() * max(n1, n2) * k
    np.testing.assert_allclose(r, r_ref, atol=1e-12 * np.abs(r_ref).max())
    np.testing.assert_allclose(SG, S_ref @ G, atol=1e-12 * scale)
    np.testing.assert_allclose(StF, S_ref.mT @ F, atol=1e-12 * scale)
    np.testing.assert_allclose(op.apply_factored(F, G), op.apply(P), atol=1e-12 * np.abs(P).max())
    np.testing.assert_allclose(op.adjoint_matmul(r, G), SG, atol=1e-12 * scale)
    np.testing.assert_allclose(op.adjoint_rmatmul(r, F), StF, atol=1e-12 * scale)


def test_batched_equals_one_by_one(op):
    rng = np.random.default_rng(3)
    n1, n2 = op.shape
    F = rng.standard_normal((4, n1, 3))
    G = rng.standard_normal((4, n2, 3))
    y = rng.standard_normal(op.m)
    together = op.residual_and_grads(F, G, y)
    for b in range(4):
        alone = op.residual_and_grads(F[b : b + 1], G[b : b + 1], y)
        for t, a in zip(together, alone):
            np.testing.assert_allclose(t[b : b + 1], a, rtol=1e-13, atol=1e-13)


def test_symmetric_factors_give_symmetric_gradient(op):
    """For X Xᵀ the methods average S X and Sᵀ X: the gradient of ¼‖𝒜(X Xᵀ) − y‖²."""
    n1, n2 = op.shape
    if n1 != n2:
        pytest.skip("square operators only")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1, n1, 2))
    y = rng.standard_normal(op.m)
    r, SX, StX = op.residual_and_grads(X, X, y)
    S = op.adjoint(r)
    np.testing.assert_allclose(
        (SX + StX) / 2, (S + S.mT) / 2 @ X, atol=1e-12 * np.abs(S).max() * 10
    )


def test_completion_kernel_matches_the_sparse_fallback(monkeypatch):
    rng = np.random.default_rng(5)
    op = EntryOperator.draw(rng, 200, 30, 20)
    F = rng.standard_normal((2, 30, 4))
    G = rng.standard_normal((2, 20, 4))
    y = rng.standard_normal(op.m)
    compiled = op.residual_and_grads(F, G, y)
    monkeypatch.setattr(completion_module, "_entries_kernel", lambda: None)
    fallback = op.residual_and_grads(F, G, y)
    for a, b in zip(compiled, fallback):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_completion_scaling_is_isotropic_in_expectation():
    """c = √(n1 n2 / m): 𝒜*𝒜(M) averages to M over uniform samples."""
    n1, n2, m = 6, 5, 15
    M = np.random.default_rng(6).standard_normal((1, n1, n2))
    total = np.zeros_like(M)
    draws = 400
    rng = np.random.default_rng(7)
    for _ in range(draws):
        op = EntryOperator.draw(rng, m, n1, n2)
        total += op.adjoint(op.apply(M))
    np.testing.assert_allclose(total / draws, M, atol=0.25 * np.abs(M).max())


def test_rank_one_scaling_is_isotropic_in_expectation():
    rng = np.random.default_rng(8)
    n1, n2, m = 4, 3, 20000
    op = RankOneOperator.draw(rng, m, n1, n2)
    M = rng.standard_normal((1, n1, n2))
    np.testing.assert_allclose(op.adjoint(op.apply(M)), M, atol=0.1 * np.abs(M).max())


# ------------------------------------------------------------------ problems
@pytest.mark.parametrize(
    "ensemble, kw",
    [
        ("gaussian", dict(m=300)),
        ("symmetric-gaussian", dict(m=300)),
        ("rank-one", dict(m=300)),
        ("completion", dict(m=100)),
        ("completion", dict(p=0.5)),
    ],
)
def test_generated_problems_are_seeded_and_observe_m_star(ensemble, kw):
    a = ms.Problem.generate(ensemble, 12, r=2, seed=3, **kw)
    b = ms.Problem.generate(ensemble, 12, r=2, seed=3, **kw)
    c = ms.Problem.generate(ensemble, 12, r=2, seed=4, **kw)
    assert a.meta["ensemble"] == ensemble
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)
    M = a.dense_M_star()
    np.testing.assert_allclose(a.operator.apply(M[None])[0], a.y, atol=1e-12)


def test_noise_on_every_ensemble():
    for ens, kw in [("rank-one", dict(m=300)), ("completion", dict(m=100))]:
        clean = ms.Problem.generate(ens, 10, r=2, seed=0, **kw)
        noisy = ms.Problem.generate(ens, 10, r=2, seed=0, noise=0.1, **kw)
        gap = noisy.y - clean.y
        assert 0.05 < np.std(gap) < 0.2


def test_large_problems_keep_m_star_as_factors():
    p = ms.Problem.completion(3000, r=2, m=20000, seed=0)
    assert p.M_star is None and p.has_truth
    assert p.U_star.shape == (3000, 2)
    F0, G0 = ms.init.small_random(p, k=2, alpha=0.1, seed=1)
    traj = ms.run(p, ms.GD(step_size=0.3), init=(F0, G0), iters=3)
    assert np.all(np.isfinite(traj.history["error"]))


def test_from_rank_one_and_from_entries_agree_with_generated():
    gen = ms.Problem.rank_one(8, r=2, m=120, seed=1)
    own = ms.Problem.from_rank_one(gen.operator.a, gen.operator.b, gen.y, gen.dense_M_star())
    np.testing.assert_array_equal(own.y, gen.y)
    rng = np.random.default_rng(2)
    M = rng.standard_normal((6, 5))
    rows, cols = np.divmod(rng.choice(30, size=18, replace=False), 5)
    prob = ms.Problem.from_entries(rows, cols, M[rows, cols], (6, 5), M_star=M)
    np.testing.assert_allclose(prob.operator.apply(M[None])[0], prob.y, atol=1e-14)


@pytest.mark.parametrize(
    "ensemble, kw, k, tol",
    [
        ("rank-one", dict(m=400), 2, 1e-9),
        ("completion", dict(p=0.5), 2, 1e-9),
        ("symmetric-gaussian", dict(m=400), 2, 1e-9),
    ],
)
def test_gd_recovers_m_star_on_each_ensemble(ensemble, kw, k, tol):
    p = ms.Problem.generate(
        ensemble,
        16,
        r=2,
        singular_values=[1, 0.5],
        seed=0,
        symmetric=ensemble == "symmetric-gaussian",
        **kw,
    )
    if p.symmetric:
        init = ms.init.symmetric_random(p, k=k, alpha=0.05, seed=1)
    else:
        init = ms.init.small_random(p, k=k, alpha=0.05, seed=1)
    traj = ms.run(p, ms.GD(step_size=0.3), init=init, iters=4000, tol=tol)
    assert traj.status == "converged", (traj.status, traj.history["rel_error"][-1])


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: EntryOperator([0, 7], [0, 1], (7, 5)), r"rows must be in \[0, 7\)"),
        (lambda: EntryOperator([0, 1], [0, 5], (7, 5)), r"cols must be in \[0, 5\)"),
        (
            lambda: EntryOperator([0, 0], [1, 1], (7, 5)),
            r"entry \(0, 1\) is observed more than once",
        ),
        (lambda: EntryOperator([0, 1], [1], (7, 5)), "same length"),
        (lambda: EntryOperator([0.5], [1], (7, 5)), "integers"),
        (lambda: EntryOperator([0], [1], (7, 0)), "shape must be a pair of positive integers"),
        (lambda: EntryOperator([], [], (7, 5)), "at least one observed entry"),
        (lambda: ms.Problem.completion(10, r=2, p=1.5), r"p must be in \(0, 1\]"),
        (lambda: ms.Problem.completion(10, r=2, p=0.0), "p"),
        (lambda: ms.Problem.completion(10, r=2, m=101), "m"),
        (lambda: ms.Problem.completion(10, r=2), "exactly one of m"),
        (lambda: ms.Problem.completion(10, r=2, m=10, p=0.1), "exactly one of m"),
        (
            lambda: ms.Problem.from_rank_one(np.ones((5, 3)), np.ones((4, 3)), np.ones(5)),
            "one row per",
        ),
        (lambda: ms.Problem.from_rank_one(np.ones((5, 3)), None, np.ones(4)), "one entry per"),
        (
            lambda: ms.Problem.from_rank_one(
                np.ones((5, 3)), None, np.ones(5), M_star=np.ones((3, 4))
            ),
            "M_star must have shape",
        ),
        (lambda: ms.Problem.from_entries([0, 1], [0, 1], [1.0], (3, 3)), "one entry per"),
        (lambda: ms.Problem.generate("poisson", 10, r=2, m=10), "unknown ensemble 'poisson'"),
        (lambda: ms.Problem.gaussian(6, 4, r=2, m=10, ensemble="symmetric"), "n1 == n2"),
    ],
)
def test_bad_input_is_one_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dense_calls_refuse_huge_shapes():
    op = EntryOperator.draw(np.random.default_rng(0), 10, 100_000, 100_000)
    with pytest.raises(ValueError, match="n1 × n2"):
        op.adjoint(np.ones((1, 10)))
