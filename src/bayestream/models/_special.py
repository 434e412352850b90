"""Special functions for numba kernels, taken from scipy.special's Cython API.

scipy ships C implementations of the special functions (Cephes / xsf) and exports them through
``scipy.special.cython_special``. We look up each float64 specialisation's address with
``numba.extending.get_cython_function_address`` (as the numba-stats package does), register it
with LLVM under a stable symbol name, and declare it to numba as an external function. Calls
then link by name, so kernels that use them can still be cached on disk (a raw ctypes pointer
would make every caller uncachable). The kernels thus use the same code as ``scipy.stats``.

All functions take and return float64. Regularised incomplete functions follow scipy:

- ``betainc(a, b, x)`` = I_x(a, b), ``betaincc`` = 1 - I_x(a, b), ``betaincinv`` its inverse;
- ``gammainc(a, x)`` = P(a, x), ``gammaincc`` = Q(a, x), ``gammaincinv`` its inverse;
- ``stdtr(df, t)`` = Student-t CDF, ``stdtrit(df, p)`` its inverse;
- ``gammaln``, ``betaln``, ``psi`` (digamma);
- ``ndtr(x)`` = standard normal CDF, ``ndtri(p)`` its inverse.
"""

from __future__ import annotations

from typing import Any

import llvmlite.binding as llvm
from numba import types
from numba.extending import get_cython_function_address
from scipy.special import cython_special

from bayestream.models._jit import inline

_MODULE = "scipy.special.cython_special"
_CAPI: Any = cython_special.__pyx_capi__


def _double_function(name: str, arity: int) -> Any:
    """Declare the float64 specialisation of scipy's ``name`` as a numba external function."""
    wanted = "double (" + ", ".join(["double"] * arity)
    for candidate in [name] + [f"__pyx_fuse_{i}{name}" for i in range(3)]:
        capsule = _CAPI.get(candidate)
        if capsule is None or wanted not in str(capsule):
            continue
        if "__pyx_skip_dispatch" not in str(capsule):
            break
        # cpdef functions take a trailing ``int __pyx_skip_dispatch`` that module-level
        # functions ignore; the wrappers below pass 0 to keep the C call well formed.
        symbol = f"bayestream_scipy_{name}"
        llvm.add_symbol(symbol, get_cython_function_address(_MODULE, candidate))
        return types.ExternalFunction(symbol, types.float64(*([types.float64] * arity), types.intc))
    raise ImportError(f"scipy.special.cython_special has no float64 {name} of arity {arity}")


_betainc = _double_function("betainc", 3)
_betaincc = _double_function("betaincc", 3)
_betaincinv = _double_function("betaincinv", 3)
_gammainc = _double_function("gammainc", 2)
_gammaincc = _double_function("gammaincc", 2)
_gammaincinv = _double_function("gammaincinv", 2)
_stdtr = _double_function("stdtr", 2)
_stdtrit = _double_function("stdtrit", 2)
_gammaln = _double_function("gammaln", 1)
_betaln = _double_function("betaln", 2)
_psi = _double_function("psi", 1)
_ndtr = _double_function("ndtr", 1)
_ndtri = _double_function("ndtri", 1)


@inline
def betainc(a: float, b: float, x: float) -> float:
    return _betainc(a, b, x, 0)  # type: ignore[no-any-return]


@inline
def betaincc(a: float, b: float, x: float) -> float:
    return _betaincc(a, b, x, 0)  # type: ignore[no-any-return]


@inline
def betaincinv(a: float, b: float, y: float) -> float:
    return _betaincinv(a, b, y, 0)  # type: ignore[no-any-return]


@inline
def gammainc(a: float, x: float) -> float:
    return _gammainc(a, x, 0)  # type: ignore[no-any-return]


@inline
def gammaincc(a: float, x: float) -> float:
    return _gammaincc(a, x, 0)  # type: ignore[no-any-return]


@inline
def gammaincinv(a: float, y: float) -> float:
    return _gammaincinv(a, y, 0)  # type: ignore[no-any-return]


@inline
def stdtr(df: float, t: float) -> float:
    return _stdtr(df, t, 0)  # type: ignore[no-any-return]


@inline
def stdtrit(df: float, p: float) -> float:
    return _stdtrit(df, p, 0)  # type: ignore[no-any-return]


@inline
def gammaln(x: float) -> float:
    return _gammaln(x, 0)  # type: ignore[no-any-return]


@inline
def betaln(a: float, b: float) -> float:
    return _betaln(a, b, 0)  # type: ignore[no-any-return]


@inline
def psi(x: float) -> float:
    return _psi(x, 0)  # type: ignore[no-any-return]


@inline
def ndtr(x: float) -> float:
    return _ndtr(x, 0)  # type: ignore[no-any-return]


@inline
def ndtri(p: float) -> float:
    return _ndtri(p, 0)  # type: ignore[no-any-return]


__all__ = [
    "betainc",
    "betaincc",
    "betaincinv",
    "betaln",
    "gammainc",
    "gammaincc",
    "gammaincinv",
    "gammaln",
    "ndtr",
    "ndtri",
    "psi",
    "stdtr",
    "stdtrit",
]
