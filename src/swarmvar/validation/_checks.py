"""Argument checks shared by the validation statistics (and the emergence metrics).

Each turns a bad argument into :class:`~swarmvar.errors.InvalidParameter`
naming it, before numpy can raise a bare ``ValueError``/``TypeError`` or
return a silent NaN: arrays that are ragged, not real numbers (strings,
booleans, complex, objects) or not finite; confidence levels outside
``(0, 1)``; counts that are not whole numbers (``True`` is not a count).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter

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


def levels(alphas: object) -> tuple[float, ...]:
    """Confidence levels as :func:`~swarmvar.models.risk.check_alphas` takes them, a numpy
    array (even 0-d) included: each strictly between 0.5 and 1."""
    from ..models.risk import check_alphas

    if isinstance(alphas, np.ndarray):
        alphas = alphas.tolist()  # 0-d: a number; n-d: nested lists (refused below)
    return check_alphas(alphas)  # type: ignore[arg-type]


def whole(value: object, what: str, least: int, most: int | None = None) -> int:
    """A whole number in ``[least, most]`` (``True`` is not a count)."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
            or value < least or (most is not None and value > most)):
        bound = f">= {least}" if most is None else f"from {least} to {most}"
        raise InvalidParameter(f"{what} must be a whole number {bound}, not {value!r}")
    return int(value)


def real(value: object, what: str, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite real number in ``[low, high]`` (not a bool)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)):
        try:
            x = float(value)
        except OverflowError:  # an int beyond the floats
            x = math.inf
        if math.isfinite(x) and low <= x <= high:
            return x
    raise InvalidParameter(f"{what} must be a finite number in [{low:g}, {high:g}], "
                           f"not {value!r}")


Seed = int | Sequence[int] | np.random.SeedSequence | np.random.Generator | None


def seed(value: object, what: str = "seed") -> Seed:
    """A seed numpy accepts: a whole number >= 0 (or a list of them), a SeedSequence, a
    Generator or None."""
    if value is None or isinstance(value, (np.random.Generator, np.random.SeedSequence)):
        return value
    if isinstance(value, (list, tuple)) and value:
        return [whole(v, what, 0) for v in value]
    try:
        return whole(value, what, 0)
    except InvalidParameter:
        raise InvalidParameter(f"{what} must be a whole number >= 0, a numpy Generator or "
                               f"None, not {value!r}") from None


def rng(value: object, what: str = "seed") -> np.random.Generator:
    """A Generator from a checked seed (a Generator is used as it is)."""
    s = seed(value, what)
    return s if isinstance(s, np.random.Generator) else np.random.default_rng(s)


def finite_result(values: ArrayLike, what: str, why: str) -> FloatArray:
    """``values`` if all finite, else :class:`InvalidParameter` saying ``what`` overflowed."""
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InvalidParameter(f"{what} is not finite: {why}")
    return x
