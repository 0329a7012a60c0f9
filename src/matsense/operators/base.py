"""The sensing-operator contract, and the operators stored as one flat matrix.

Convention (docs/conventions.md): 𝒜(M)_i = <A_i, M>/√m, 𝒜*(z) = Σ_i z_i A_i/√m.

:class:`MatrixOperator` is an abstract base class whose abstract methods are
the whole contract (as lineax's ``AbstractLinearOperator``). The factored
calls are the core, batched over a leading axis B: the methods of matsense
only need, for P = F Gᵀ,

    r = 𝒜(F Gᵀ) − y,    S G,    Sᵀ F      (S = 𝒜*(r)),

which :meth:`MatrixOperator.residual_and_grads` returns, so no n1 × n2 matrix
is formed where the ensemble does not need one (rank-one measurements,
matrix completion). The dense calls ``apply`` / ``adjoint`` (on n1 × n2
matrices) exist for every ensemble but refuse sizes above the dense limit
(:data:`matsense.limits.DENSE`, use 'operator') with one clear line;
:meth:`MatrixOperator.forms_dense` says beforehand whether they will.

What an operator can or cannot do is asked of the operator (lineax style), never
found by ``isinstance`` or a size test elsewhere: :meth:`~MatrixOperator.forms_dense`,
:meth:`~MatrixOperator.packs_symmetric` / :meth:`~MatrixOperator.symmetric_packed`,
:meth:`~MatrixOperator.measure_truth`.

:class:`FlatMatrixOperator` stores one (m × d) matrix ``A_flat`` whose row i
is the i-th measurement matrix, already divided by √m and written in some
packed form of length d (the plain flattening for :class:`DenseOperator`, the
weighted upper triangle for :class:`SymmetricOperator`): its residual and
adjoint come from one pass over ``A_flat`` (:mod:`matsense.operators.dispatch`).
"""

from __future__ import annotations

import abc
import copy

from .. import backend, limits
from . import stacking
from .dispatch import planned_kernel, residual_and_adjoint_flat

#: The default largest n1·n2 for which an operator forms n1 × n2 matrices on request, kept for
#: imports; the policy in force is :data:`matsense.limits.DENSE` (``DENSE.operator``).
DENSE_LIMIT = limits.DENSE.operator


class MatrixOperator(abc.ABC):
    """A sensing operator 𝒜: R^{n1×n2} → R^m; the abstract methods are the whole contract.

    Every call is batched over a leading axis B: factors F (B, n1, k) and
    G (B, n2, k), products P (B, n1, n2), measurement vectors z (B, m).
    Subclasses implement the factored calls (``apply_factored``,
    ``adjoint_matmul``, ``adjoint_rmatmul``), the dense ones (``apply``,
    ``adjoint``, for small sizes), ``to`` (another backend) and the
    properties; :meth:`residual_and_grads` (override it for a one-pass
    kernel), :meth:`residual_and_adjoint`, :meth:`as_matrix` and
    :meth:`check_dense` are built on them.
    """

    #: Whether an iteration's work is BLAS calls (more BLAS threads help). False for
    #: operators with a compiled kernel of their own (completion): matsense then runs
    #: NumPy's BLAS on one thread (:func:`matsense.threads.blas_threads_for`).
    blas_bound: bool = True

    # ------------------------------------------------------------ properties
    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, int]:
        """(n1, n2): the shape of the matrices measured."""

    @property
    @abc.abstractmethod
    def m(self) -> int:
        """The number of measurements."""

    @property
    @abc.abstractmethod
    def dtype(self):
        """The dtype of the measurement data."""

    @property
    @abc.abstractmethod
    def nbytes(self) -> int:
        """Bytes of measurement data one iteration reads."""

    @property
    @abc.abstractmethod
    def target(self) -> backend.Target:
        """Where the data lives (backend, device, dtype)."""

    # --------------------------------------------------------- factored calls
    @abc.abstractmethod
    def apply_factored(self, F, G):
        """𝒜(F Gᵀ) for factors F (B, n1, k), G (B, n2, k) → (B, m)."""

    @abc.abstractmethod
    def adjoint_matmul(self, z, G):
        """𝒜*(z) G for z (B, m), G (B, n2, k) → (B, n1, k)."""

    @abc.abstractmethod
    def adjoint_rmatmul(self, z, F):
        """𝒜*(z)ᵀ F for z (B, m), F (B, n1, k) → (B, n2, k)."""

    # ------------------------------------------------------------ dense calls
    @abc.abstractmethod
    def apply(self, P):
        """𝒜(P) for products P (B, n1, n2) → (B, m)."""

    @abc.abstractmethod
    def adjoint(self, z):
        """𝒜*(z) as matrices (B, n1, n2), for z (B, m) (small sizes: :meth:`check_dense`)."""

    @abc.abstractmethod
    def to(self, tgt: backend.Target) -> MatrixOperator:
        """The same operator with its arrays on ``tgt`` (see :func:`matsense.backend.target`)."""

    # ------------------------------------------------------------- built on it
    def residual_and_grads(self, F, G, y, rmap=None):
        """r = 𝒜(F Gᵀ) − y, S G and Sᵀ F with S = 𝒜*(r): (B, m), (B, n1, k), (B, n2, k).

        ``rmap``: a residual map φ (:class:`matsense.losses.ResidualMap`, the robust
        losses): then S = 𝒜*(φ(r)); r is the plain residual either way.
        """
        r = self.apply_factored(F, G) - y
        z = r if rmap is None else rmap(r)
        return r, self.adjoint_matmul(z, G), self.adjoint_rmatmul(z, F)

    def kernel_for(self, B: int = 1) -> str | None:
        """The name of the code :meth:`residual_and_grads` runs for a batch of ``B``.

        Recorded in ``Trajectory.config['kernel']`` and printed by
        ``matsense run -v``. None when the choice is not made yet (the
        planner decides on the first call of a configuration).
        """
        return "factored"

    def residual_and_adjoint(self, P, y, rmap=None):
        """r = 𝒜(P) − y and S = 𝒜*(r) as matrices, for products P (B, n1, n2) (small sizes);
        S = 𝒜*(φ(r)) with a residual map ``rmap``."""
        self.check_dense("residual_and_adjoint (the n1 × n2 matrix 𝒜*(r))")
        r = self.apply(P) - y
        return r, self.adjoint(r if rmap is None else rmap(r))

    def as_matrix(self):
        """The (m, n1·n2) matrix of 𝒜 on row-major flattened matrices (small sizes only)."""
        self.check_dense("as_matrix")
        n1, n2 = self.shape
        xp = backend.namespace(self._probe())
        eye = xp.eye(self.m, dtype=self.dtype, device=backend.device_of(self._probe()))
        rows = [
            xp.reshape(self.adjoint(eye[i : i + 256]), (-1, n1 * n2)) for i in range(0, self.m, 256)
        ]
        return xp.concat(rows, axis=0)

    def forms_dense(self) -> bool:
        """Whether this operator forms n1 × n2 matrices (``adjoint``, ``residual_and_adjoint``,
        ``as_matrix``) at its size: the dense limit (:data:`matsense.limits.DENSE`)."""
        return limits.DENSE.allows(self.shape, "operator")

    def check_dense(self, what: str) -> None:
        """ValueError (one line) when an n1 × n2 matrix of this operator would be too large."""
        if not self.forms_dense():
            n1, n2 = self.shape
            limit = limits.DENSE.operator
            raise ValueError(
                f"{what} needs n1 × n2 = {n1} × {n2} matrices, more than matsense forms "
                f"({limit} entries, {limit * 8 / 2**30:.1f} GiB in float64); this "
                f"ensemble works with factors: use the factored calls (residual_and_grads)"
            )

    def packs_symmetric(self) -> bool:
        """Whether :meth:`symmetric_packed` exists: the measurement matrices' symmetric parts
        can be stored packed (the dense Gaussian operators)."""
        return False

    def symmetric_packed(self) -> MatrixOperator:
        """This operator's symmetric part stored packed (half the bytes; see
        :class:`~matsense.operators.SymmetricOperator`); ValueError where there is none."""
        raise ValueError(
            f"{type(self).__name__} has no packed symmetric form (only dense "
            "measurement matrices have one)"
        )

    def measure_truth(self, U, sigma, V, dense=None):
        """𝒜(M*) of shape (m,) for M* = U diag(σ) Vᵀ (``dense``: M* formed, or None).

        From the factors, O(m(n1 + n2)r) or O(mr); the flat operators measure the dense M*
        when it is given (their y as before the factored interface)."""
        return self.apply_factored((U * sigma)[None], V[None])[0]

    def _probe(self):
        """Any array of the operator (to find its namespace and device)."""
        raise NotImplementedError

    # ------------------------------------------------------ stacked evaluation
    def stack_key(self, request):
        """Requests (:class:`~matsense.operators.stacking.Evaluation`) with equal keys are
        answered together by one :meth:`evaluate_stacked` call; None: this operator answers
        ``request`` only alone (through the problem). Default: (r, S G, Sᵀ F) requests with the
        same factor shapes, stacked along the batch axis every call has."""
        return stacking.factor_key(request)

    def evaluate_stacked(self, requests, y) -> list:
        """The answers of ``requests`` (one :meth:`stack_key`) from one operator call, in order,
        each what ``problem.evaluate(request)`` gives alone (see :mod:`~.stacking`)."""
        return stacking.stacked_factors(self, requests, y)


class FlatMatrixOperator(MatrixOperator):
    """𝒜(P) = pack(P) A_flatᵀ, 𝒜*(z) = unpack(z A_flat): the measurement data as one matrix.

    Attributes
    ----------
    A_flat : array (m, d)
        Scaled, packed measurement matrices (NumPy array or torch tensor).
    block_rows : int or None
        Rows of ``A_flat`` per block of the one-pass CPU kernel; ``None`` picks
        it from the cache size (see :mod:`matsense.operators.blocking`).
    """

    block_rows: int | None = None

    def __init__(self, A_flat, n1: int, n2: int):
        self.A_flat = A_flat
        self.n1, self.n2 = int(n1), int(n2)

    # ------------------------------------------------------------ the packing
    def pack(self, P):
        """Products (B, n1, n2) → rows (B, d) such that 𝒜(P) = pack(P) A_flatᵀ."""
        raise NotImplementedError

    def unpack(self, s):
        """Packed adjoint (B, d) → matrices (B, n1, n2)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- queries
    @property
    def shape(self) -> tuple[int, int]:
        return (self.n1, self.n2)

    @property
    def m(self) -> int:
        return int(self.A_flat.shape[0])

    @property
    def dtype(self):
        return self.A_flat.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of measurement data read by one pass (the memory-bound floor's numerator)."""
        return int(self.A_flat.shape[0] * self.A_flat.shape[1] * self.A_flat.dtype.itemsize)

    @property
    def target(self) -> backend.Target:
        return backend.target_of(self.A_flat)

    def _probe(self):
        return self.A_flat

    # ---------------------------------------------------------------- algebra
    def apply(self, P):
        """𝒜(P) for a batch ``P`` of shape (B, n1, n2) → (B, m)."""
        return self.pack(P) @ self.A_flat.mT

    def adjoint(self, z):
        """𝒜*(z) for a batch ``z`` of shape (B, m) → (B, n1, n2)."""
        return self.unpack(z @ self.A_flat)

    def apply_factored(self, F, G):
        return self.apply(F @ G.mT)

    def adjoint_matmul(self, z, G):
        return self.adjoint(z) @ G

    def adjoint_rmatmul(self, z, F):
        return self.adjoint(z).mT @ F

    def measure_truth(self, U, sigma, V, dense=None):
        if dense is None:
            return super().measure_truth(U, sigma, V)
        return self.apply(dense[None])[0]

    def residual_and_adjoint(self, P, y, rmap=None):
        """Residual r = 𝒜(P) − y and S = 𝒜*(r) for a batch of products.

        One pass over ``A_flat`` on NumPy for small batches (cache-blocked),
        two matrix products otherwise. Returns ``(r, S)`` with shapes (B, m)
        and (B, n1, n2). With a residual map ``rmap`` S = 𝒜*(φ(r)), same kernels.
        """
        if rmap is not None:
            r, s = residual_and_adjoint_flat(self.A_flat, self.pack(P), y, self.block_rows, rmap)
            return r, self.unpack(s)
        r, s = residual_and_adjoint_flat(self.A_flat, self.pack(P), y, self.block_rows)
        return r, self.unpack(s)

    def kernel_for(self, B: int = 1) -> str | None:
        """'numba', 'numpy' (one-pass loop), 'two-pass' or 'triton': see
        :func:`matsense.operators.dispatch.planned_kernel`."""
        return planned_kernel(self, B)

    def residual_and_grads(self, F, G, y, rmap=None):
        """r, S G, Sᵀ F from one pass over ``A_flat`` (the residual and adjoint kernel);
        S = 𝒜*(φ(r)) with a residual map ``rmap``."""
        if rmap is not None:
            r, S = self.residual_and_adjoint(F @ G.mT, y, rmap)
            return r, S @ G, S.mT @ F
        r, S = self.residual_and_adjoint(F @ G.mT, y)
        return r, S @ G, S.mT @ F

    def stack_key(self, request):
        """On NumPy: every request, of any k, shares one call on the stacked products F Gᵀ
        (which gives S itself too, so SVP's request stacks as well)."""
        key = stacking.product_key(request)
        return key if key is not None else super().stack_key(request)

    def evaluate_stacked(self, requests, y) -> list:
        """One pass over ``A_flat`` for the stacked products (on NumPy), else the default."""
        if self.stack_key(requests[0]) == stacking.PRODUCTS:
            return stacking.stacked_products(self, requests, y)
        return super().evaluate_stacked(requests, y)

    def as_matrix(self):
        """The (m, n1·n2) matrix of 𝒜 on row-major flattened matrices."""
        xp = backend.namespace(self.A_flat)
        return xp.reshape(self.unpack(self.A_flat), (self.m, self.n1 * self.n2))

    # ------------------------------------------------------------- conversion
    def _convert(self, tgt: backend.Target) -> dict:
        """Converted array attributes (subclasses with index arrays add theirs)."""
        return {"A_flat": backend.convert(self.A_flat, tgt)}

    def to(self, tgt: backend.Target) -> FlatMatrixOperator:
        """The same operator with its arrays on ``tgt`` (see :func:`matsense.backend.target`)."""
        new = copy.copy(self)
        new.__dict__.update(self._convert(tgt))
        return new
