"""The operator evaluations a method's step asks for, and answering several in one call.

A method names the first operator evaluation of its step as an
:class:`Evaluation` (``method.request(problem, state)``) and takes the answer
in ``method.advance(problem, state, answer)``; ``problem.evaluate(request)``
answers one request. :func:`matsense.run_together` collects the requests of
several runs and answers those an operator can stack
(:meth:`~matsense.operators.MatrixOperator.stack_key`) with one call of
:meth:`~matsense.operators.MatrixOperator.evaluate_stacked`: the driver names
no operator class and never guesses what a method will ask.

Answers: ``(r, S G, Sᵀ F)`` for ``Evaluation(F, G)`` and ``(r, S, P)`` for
``Evaluation(F, G, adjoint=True)``, with r = 𝒜(P) − y, P = F Gᵀ, S = 𝒜*(r)
(for X Xᵀ pass F = G = X).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import backend


class Evaluation(NamedTuple):
    """One operator evaluation at the factors F (B, n1, k), G (B, n2, k).

    ``adjoint=False``: r = 𝒜(F Gᵀ) − y, S G and Sᵀ F (what gradient methods need, no
    n1 × n2 matrix); ``adjoint=True``: r, the matrices S = 𝒜*(r) and P = F Gᵀ (small
    sizes; what SVP needs).
    """

    F: Any
    G: Any
    adjoint: bool = False

    @property
    def batch(self) -> int:
        """B, the number of trajectories the request is for."""
        return int(self.F.shape[0])


#: The stack key of requests answered through their products F Gᵀ (any k shares a call).
PRODUCTS = ("products",)


def factor_key(request: Evaluation):
    """Key of the default stacking: (r, S G, Sᵀ F) requests with the same factor shapes share
    a call on their factors stacked along B; an ``adjoint`` request is answered alone (None)."""
    if request.adjoint:
        return None
    return ("factors", request.F.shape[-1], request.F.shape[-2], request.G.shape[-2])


def product_key(request: Evaluation):
    """Key of a flat NumPy operator's stacking: every NumPy request shares one call on the
    stacked products F Gᵀ, whatever its k (None for factors on another backend)."""
    return PRODUCTS if isinstance(request.F, np.ndarray) else None


def _concat(arrays):
    return arrays[0] if len(arrays) == 1 else backend.namespace(arrays[0]).concat(arrays, axis=0)


def _bounds(requests):
    lo = 0
    for req in requests:
        yield lo, lo + req.batch
        lo += req.batch


def stacked_factors(operator, requests, y) -> list:
    """Answers of (r, S G, Sᵀ F) requests of one :func:`factor_key` from one
    ``residual_and_grads`` call on their stacked factors."""
    F = _concat([req.F for req in requests])
    G = _concat([req.G for req in requests])
    r, SG, StF = operator.residual_and_grads(F, G, y)
    return [(r[lo:hi], SG[lo:hi], StF[lo:hi]) for lo, hi in _bounds(requests)]


def stacked_products(operator, requests, y) -> list:
    """Answers of any requests from one ``residual_and_adjoint`` call on their stacked
    products: each run's F Gᵀ, S G and Sᵀ F are the same calls as alone (bitwise the same where
    the kernel computes each row of the batch as alone)."""
    products = [req.F @ req.G.mT for req in requests]
    r, S = operator.residual_and_adjoint(_concat(products), y)
    answers = []
    for req, P, (lo, hi) in zip(requests, products, _bounds(requests)):
        Si = S[lo:hi]
        answers.append((r[lo:hi], Si, P) if req.adjoint else (r[lo:hi], Si @ req.G, Si.mT @ req.F))
    return answers


__all__ = [
    "Evaluation",
    "PRODUCTS",
    "factor_key",
    "product_key",
    "stacked_factors",
    "stacked_products",
]
