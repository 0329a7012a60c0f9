"""Singular value projection, SVP (Jain, Meka & Dhillon 2010), docs/methods.md.

    M ← P_k(M − η 𝒜*(𝒜(M) − y)),    P_k = best rank-k approximation (truncated SVD)

SVP works on the matrix M, not on factors; to share the driver and the
diagnostics with the factored methods the iterate is stored as the factors
F = U_k √Σ_k, G = V_k √Σ_k of its rank-k SVD, so F Gᵀ = M. The standard start is
M_0 = 0 (pass zero factors, :func:`matsense.init.zeros`); the first step then
gives P_k(η 𝒜*(y)), a scaled spectral initialization.

For the symmetric PSD setting (factors ``(X,)``) the projection is onto PSD
matrices of rank <= k: with the eigendecomposition sym(M − η S) = Σ λ_i u_i u_iᵀ,
keep the k largest and X = U_k √max(λ_k, 0).

Cost per iteration: one operator pass plus a dense SVD (eigh) of an n1×n2
matrix, O(n1 n2 min(n1, n2)) — cheap next to the O(m n1 n2) pass when m ≫ n.
Where the operator does not form n1 × n2 matrices
(:meth:`~matsense.operators.MatrixOperator.forms_dense`: above the dense limit,
:data:`matsense.limits.DENSE`; matrix-free ensembles at large sizes, NumPy) the
top-k SVD of F Gᵀ − η 𝒜*(r) is computed by ARPACK (``scipy.sparse.linalg.svds``) on that
matrix as a linear operator, x ↦ F(Gᵀx) − η 𝒜*(r)x, without forming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import backend
from ..operators.stacking import Evaluation
from .base import AsymState, Method, SymState, param, positive, residual_norm, sym


def svp_project(M, k: int):
    """P_k(M) as factors (U_k √Σ_k, V_k √Σ_k), batched over the leading axis."""
    xp = backend.namespace(M)
    U, s, Vh = xp.linalg.svd(M, full_matrices=False)
    root = xp.sqrt(s[..., :k])[..., None, :]
    return U[..., :k] * root, Vh[..., :k, :].mT * root


def svp_project_psd(M, k: int):
    """Best PSD rank-k approximation of sym(M) as X = U_k √max(λ_k, 0)."""
    xp = backend.namespace(M)
    w, Q = xp.linalg.eigh(sym(M))  # ascending
    n = w.shape[-1]
    top_w = xp.flip(w[..., n - k :], axis=-1)
    top_Q = xp.flip(Q[..., n - k :], axis=-1)
    return top_Q * xp.sqrt(xp.clip(top_w, min=0.0))[..., None, :]


@dataclass(frozen=True)
class SVP(Method):
    """SVP: projected gradient descent onto rank-k matrices, M ← P_k(M − η 𝒜*(𝒜(M) − y)).

    The rank k is the number of columns of the initial factors. Geometric
    convergence under RIP of order 2k (with a small enough constant) for
    η ≈ 1/(1 + δ_2k) (our 𝒜 has E[𝒜*𝒜] = I).

    Parameters
    ----------
    step_size : float
        η > 0 (default 0.5: with m = 5nr measurements η = 1 diverges, η = 0.7
        converges for k = r but diverges for k = 2r; see docs/methods.md).
    """

    name = "svp"
    step_size: float = param(0.5, positive, "step size η")

    def request(self, problem, state):
        """r and S = 𝒜*(r) at P = F Gᵀ (X Xᵀ) where the operator forms n1 × n2 matrices;
        else r, S G, Sᵀ F (the matrix-free step)."""
        F, G = (state.X, state.X) if isinstance(state, SymState) else (state.F, state.G)
        return Evaluation(F, G, adjoint=problem.operator.forms_dense())

    def advance(self, problem, state, answer):
        if not problem.operator.forms_dense():
            return self._step_matrix_free(problem, state, answer[0])
        r, S, P = answer
        M = P - self.step_size * S
        k = state[0].shape[-1]
        if isinstance(state, SymState):
            new = SymState(svp_project_psd(M, k))
        else:
            new = AsymState(*svp_project(M, k))
        return new, residual_norm(r)

    def _step_matrix_free(self, problem, state, r):
        """P_k(F Gᵀ − η 𝒜*(r)) by ARPACK on the matrix as a linear operator (NumPy only)."""
        import numpy as np
        from scipy.sparse.linalg import LinearOperator, svds

        sym_ = isinstance(state, SymState)
        F, G = (state.X, state.X) if sym_ else (state.F, state.G)
        if not isinstance(F, np.ndarray):
            raise ValueError("SVP on problems above the dense limit runs on NumPy only")
        eta, k = self.step_size, F.shape[-1]
        n1, n2 = problem.shape
        outs = []
        for b in range(F.shape[0]):
            Fb, Gb, rb = F[b], G[b], r[b : b + 1]

            def mv(x, Fb=Fb, Gb=Gb, rb=rb):
                x = np.asarray(x).reshape(n2, -1)
                return Fb @ (Gb.T @ x) - eta * problem.adjoint_matmul(rb, x[None])[0]

            def rmv(x, Fb=Fb, Gb=Gb, rb=rb):
                x = np.asarray(x).reshape(n1, -1)
                return Gb @ (Fb.T @ x) - eta * problem.adjoint_rmatmul(rb, x[None])[0]

            lin = LinearOperator(
                (n1, n2), matvec=mv, rmatvec=rmv, matmat=mv, rmatmat=rmv, dtype=F.dtype
            )
            U, s, Vt = svds(lin, k=k, random_state=0)
            order = np.argsort(s)[::-1]
            U, s, Vt = U[:, order], s[order], Vt[order]
            if sym_:  # PSD projection of the symmetric part: keep the non-negative directions
                sign = np.sign(np.sum(U * Vt.T, axis=0))
                s = np.where(sign > 0, s, 0.0)
            root = np.sqrt(s)
            outs.append((U * root, Vt.T * root))
        if sym_:
            return SymState(np.stack([o[0] for o in outs])), residual_norm(r)
        return (
            AsymState(np.stack([o[0] for o in outs]), np.stack([o[1] for o in outs])),
            residual_norm(r),
        )
