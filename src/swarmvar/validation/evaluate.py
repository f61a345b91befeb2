"""Tests and scores of backtest rows: coverage, ES tests, traffic light, losses, DM."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameter
from .coverage import TestResult, TrafficLight, christoffersen, conditional_coverage, kupiec
from .coverage import traffic_light as basel_traffic_light
from .es_tests import Sampler, acerbi_szekely_z2, matched_student_t, mcneil_frey, student_t_sampler
from .result import Evaluation, LevelSeries, Test
from .scoring import diebold_mariano, fz0_loss, pinball_loss

FloatArray = NDArray[np.float64]
_NAN = float("nan")

#: One row's raw evaluation per level: tests, traffic light, mean pinball, daily FZ0.
RawLevel = tuple[dict[Test, TestResult], TrafficLight | None, float, FloatArray | None]


def _sampler(s: LevelSeries, t_params: FloatArray | None) -> Sampler | None:
    """The row's predictive as a loss sampler: exact if known, else a VaR/ES-matched t."""
    # censored at the VaR: Z2 reads only the losses beyond it (see student_t_sampler)
    try:
        if t_params is not None:
            return student_t_sampler(t_params[0], t_params[1], t_params[2], above=s.var)
        scale, df = matched_student_t(s.var, s.es, s.alpha)
        return student_t_sampler(0.0, scale, df, above=s.var)
    except InvalidParameter:
        # a VaR that is not finite, VaR <= 0 or ES < VaR (no centred t matches), a
        # predictive scale <= 0: no sampler, and Z2 is reported as undefined
        return None


def _fz0(losses: FloatArray, s: LevelSeries) -> FloatArray | None:
    try:
        return fz0_loss(losses, s.var, s.es, s.alpha)
    except InvalidParameter:
        return None  # ES <= 0 on some day: FZ0 undefined


def evaluate_level(
    losses: FloatArray,
    s: LevelSeries,
    t_params: FloatArray | None,
    *,
    seed: tuple[int, ...],
    n_sim: int,
) -> RawLevel:
    """Tests, traffic light, mean pinball loss and daily FZ0 losses of one row at one level."""
    tests = {
        Test.KUPIEC: kupiec(s.hits, s.alpha),
        Test.CHRISTOFFERSEN: christoffersen(s.hits) if s.hits.size >= 2 else None,
        Test.CONDITIONAL_COVERAGE: conditional_coverage(s.hits, s.alpha)
        if s.hits.size >= 2 else None,
    }
    sampler = _sampler(s, t_params)
    if sampler is not None and np.all(s.es > 0):
        tests[Test.Z2] = acerbi_szekely_z2(
            losses, s.var, s.es, s.alpha, sampler=sampler, n_sim=n_sim,
            seed=np.random.default_rng([*seed, 0]),
        )
    else:
        tests[Test.Z2] = TestResult(Test.Z2.value, _NAN, _NAN)
    if np.all(s.es > 0):
        tests[Test.MCNEIL_FREY] = mcneil_frey(
            losses, s.var, s.es, n_boot=n_sim, seed=np.random.default_rng([*seed, 1])
        )
    else:
        tests[Test.MCNEIL_FREY] = TestResult(Test.MCNEIL_FREY.value, _NAN, _NAN)
    clean = {k: (v if v is not None else TestResult(k.value, _NAN, _NAN)) for k, v in tests.items()}
    light = basel_traffic_light(s.hits, s.alpha) if s.hits.size >= 250 else None
    pinball = float(pinball_loss(losses, s.var, s.alpha).mean())
    return clean, light, pinball, _fz0(losses, s)


def evaluate_row(
    losses: FloatArray,
    levels: Mapping[float, LevelSeries],
    t_params: FloatArray | None,
    *,
    seed: int,
    row: int,
    n_sim: int,
) -> dict[float, RawLevel]:
    """Evaluate row number ``row`` at every level (its simulations keyed by ``(seed, row, level)``).

    Each row's evaluation depends only on its own series and key, so the
    backtest runs it where the row ran (in its worker process) and the
    numbers are the same wherever it runs.
    """
    return {
        alpha: evaluate_level(losses, s, t_params, seed=(seed, row, j), n_sim=n_sim)
        for j, (alpha, s) in enumerate(levels.items())
    }


def finish_rows(
    raw: Mapping[str, Mapping[float, RawLevel]], *, baseline: str | None
) -> dict[str, dict[float, Evaluation]]:
    """Every row's :class:`Evaluation`, with Diebold-Mariano on FZ0 against the baseline row."""
    out: dict[str, dict[float, Evaluation]] = {}
    for row, levels_raw in raw.items():
        out[row] = {}
        for alpha, (tests, light, pinball, fz0) in levels_raw.items():
            dm = None
            base_fz0 = raw[baseline][alpha][3] if baseline is not None else None
            if row != baseline and fz0 is not None and base_fz0 is not None:
                try:
                    dm = diebold_mariano(fz0, base_fz0)
                except InvalidParameter:
                    dm = None
            mean_fz0 = float(fz0.mean()) if fz0 is not None else _NAN
            out[row][alpha] = Evaluation(tests, light, pinball, mean_fz0, dm)
    return out

