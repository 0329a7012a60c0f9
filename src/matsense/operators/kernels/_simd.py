"""An ``<8 x double>`` register type for numba and the few operations the float64 tiles use.

numba has no SIMD type of its own: its loops are vectorized (or not) by LLVM,
and how LLVM splits a reduction into lanes depends on the loop around it, so a
dot product's rounding could change with the tile shape or the batch size.
Here the lanes are explicit: :data:`f64x8` is a value of LLVM type
``<8 x double>`` (one AVX-512 register, two AVX2 ones) and every operation on it
is spelled out:

* :func:`vload` / :func:`vstore` — ``arr[j:j+8]`` of a 1-D C-contiguous float64
  array, **without bounds checks** (typing refuses any other array, so a
  strided view can never be read as if it were contiguous);
* :func:`vfma` — lane-wise ``a*b + c`` with one rounding (``llvm.fma``);
* :func:`vsum` — the lanes added in the fixed tree
  ``((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7))``;
* :func:`vsplat`, :func:`vzero` — a scalar in all lanes, zeros;
* :func:`fma` — the scalar ``a*b + c`` with one rounding (for the tails).

No fast-math flags are set anywhere, so LLVM may not reassociate, contract or
reorder these operations: each result is the same bits whatever code surrounds
it. (numba's cache is keyed on the calling module's source file only; after
changing this module, clear the cache of :mod:`._numba_tiles` — e.g. touch it.)
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 8
_double = ir.DoubleType()
_vector = ir.VectorType(_double, LANES)
_i32 = ir.IntType(32)


class F64x8(types.Type):
    """numba type of an ``<8 x double>`` register value."""

    def __init__(self):
        super().__init__(name="F64x8")


f64x8 = F64x8()


@register_model(F64x8)
class _F64x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _vector)


def _llvm_fma(builder, ty):
    name = "llvm.fma.f64" if ty is _double else f"llvm.fma.v{LANES}f64"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty, ty]), name)


def _contiguous_float64(arr) -> bool:
    return (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and arr.layout == "C"
        and arr.dtype == types.float64
    )


def _vector_pointer(context, builder, arrty, arr, j):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [j]), _vector.as_pointer())


@intrinsic
def fma(typingctx, a, b, c):
    """``a*b + c`` rounded once (float64 scalars)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.call(_llvm_fma(builder, _double), args)

    return sig, codegen


@intrinsic
def vzero(typingctx):
    """All lanes 0.0."""

    def codegen(context, builder, signature, args):
        return ir.Constant(_vector, [0.0] * LANES)

    return f64x8(), codegen


@intrinsic
def vsplat(typingctx, x):
    """The float64 ``x`` in every lane."""

    def codegen(context, builder, signature, args):
        v = builder.insert_element(
            ir.Constant(_vector, ir.Undefined), args[0], ir.Constant(_i32, 0)
        )
        return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_i32, LANES), [0] * LANES))

    return f64x8(types.float64), codegen


@intrinsic
def vload(typingctx, arr, j):
    """``arr[j:j+8]`` as a vector; ``arr`` 1-D C-contiguous float64, no bounds check."""
    if not _contiguous_float64(arr) or not isinstance(j, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(_vector_pointer(context, builder, signature.args[0], *args), align=8)

    return f64x8(arr, j), codegen


@intrinsic
def vstore(typingctx, arr, j, v):
    """``arr[j:j+8] = v``; ``arr`` 1-D C-contiguous float64, no bounds check."""
    if not _contiguous_float64(arr) or not isinstance(j, types.Integer) or v != f64x8:
        return None

    def codegen(context, builder, signature, args):
        ptr = _vector_pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store(args[2], ptr, align=8)
        return context.get_dummy_value()

    return types.void(arr, j, v), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """Lane-wise ``a*b + c``, each lane rounded once."""

    def codegen(context, builder, signature, args):
        return builder.call(_llvm_fma(builder, _vector), args)

    return f64x8(f64x8, f64x8, f64x8), codegen


@intrinsic
def vsum(typingctx, v):
    """The sum of the lanes, always as ``((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7))``."""

    def codegen(context, builder, signature, args):
        terms = [builder.extract_element(args[0], ir.Constant(_i32, k)) for k in range(LANES)]
        while len(terms) > 1:
            terms = [builder.fadd(terms[k], terms[k + 1]) for k in range(0, len(terms), 2)]
        return terms[0]

    return types.float64(f64x8), codegen
