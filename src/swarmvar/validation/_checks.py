"""Argument checks shared by the validation statistics (and the emergence metrics).

Numbers, counts and sets of confidence levels are checked by the models' own
:func:`~swarmvar.models.base.check_real`, :func:`~swarmvar.models.base.check_whole`
and :func:`~swarmvar.models.risk.check_alphas` (re-exported here for the emergence
metrics, which reach the models only through validation); this module adds arrays
and single levels.

Each turns a bad argument into :class:`~swarmvar.errors.InvalidParameter`
naming it, before numpy can raise a bare ``ValueError``/``TypeError`` or
return a silent NaN: arrays that are ragged, not real numbers (strings,
booleans, complex, objects) or not finite; confidence levels outside
``(0, 1)``; counts that are not whole numbers (``True`` is not a count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from ..models.base import check_real, check_whole
from ..models.risk import check_alphas

__all__ = ["FloatArray", "aligned", "check_alphas", "check_real", "check_whole", "float_array",
           "finite_result", "level", "named_alphas"]

FloatArray = NDArray[np.float64]

#: numpy kinds of real numbers (bools, complex, strings, objects and dates are not).
_REAL = "iuf"


def float_array(value: ArrayLike, what: str, *, finite: bool = True) -> FloatArray:
    """``value`` as a float64 array, or :class:`InvalidParameter` naming ``what``.

    Refuses ragged nesting and anything that is not real numbers (so
    ``[0.1, None]`` is not read as ``[0.1, nan]`` and ``["1"]`` not as ``[1.0]``),
    and, with ``finite``, NaN and infinities.
    """
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise InvalidParameter(f"{what} must be an array of numbers, not {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists
        raise InvalidParameter(f"{what} must be a rectangular array of numbers ({exc})") from None
    if raw.dtype.kind not in _REAL:
        raise InvalidParameter(f"{what} must hold real numbers, not {raw.dtype} values "
                               "(no strings, booleans, None or complex numbers)")
    x = np.asarray(raw, dtype=np.float64)
    if finite and not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise InvalidParameter(f"{what} must be finite numbers; {bad} are NaN or infinite")
    return x


def aligned(arrays: Sequence[ArrayLike], names: Sequence[str]) -> list[FloatArray]:
    """Non-empty, finite 1-D float arrays of one length (a scalar is a 1-element array)."""
    out = [np.atleast_1d(float_array(a, n)) for a, n in zip(arrays, names, strict=True)]
    shape = out[0].shape
    if any(a.ndim != 1 or a.shape != shape or a.size == 0 for a in out):
        raise InvalidParameter(
            f"{', '.join(names)} must be non-empty 1-D arrays of one length; got shapes "
            + ", ".join(f"{n} {a.shape}" for n, a in zip(names, out, strict=True)))
    return out


def level(value: object, what: str = "alpha") -> float:
    """A confidence level strictly between 0 and 1 (a real number, not a bool), whose tail
    ``1 - alpha`` is also strictly inside (a level of 1e-300 has a tail of exactly 1.0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)) or not (
            0.0 < float(value) < 1.0 and 0.0 < 1.0 - float(value) < 1.0):
        raise InvalidParameter(
            f"{what} is a confidence level in (0, 1) such as 0.99, not {value!r}")
    return float(value)


def named_alphas(alphas: object, what: str = "alphas") -> tuple[float, ...]:
    """:func:`~swarmvar.models.risk.check_alphas`, its refusal prefixed by the argument's
    name (``what``)."""
    try:
        return check_alphas(alphas)  # type: ignore[arg-type]
    except InvalidParameter as exc:
        raise InvalidParameter(f"{what}: {exc}") from None


def finite_result(values: ArrayLike, what: str, why: str) -> FloatArray:
    """``values`` if all finite, else :class:`InvalidParameter` saying ``what`` overflowed."""
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InvalidParameter(f"{what} is not finite: {why}")
    return x
