"""The online track record: the agents' realized forecasts, one row per beat.

:class:`OnlineTrackRecord` is what the consensus weights with. It sits in
step 2 of a portfolio's beat: ``_scored`` (:mod:`._portfolio_scoring`)
pushes each row of forecasts a realized return completes; the vote
(``_weighing``, :mod:`._portfolio_vote`) reads its tempered weights or its
records; the portfolio's state (:mod:`._portfolio_state`) carries its
:meth:`~OnlineTrackRecord.arrays` and restores them. It reads and writes
its own state only (the trailing returns, each level's VaR and ES rows, the
tempered accumulator). Importable from :mod:`.beat`, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..consensus import Policy, TemperedWeights, TrackRecord, Weighting
from ..consensus.tempered import TEMPERED_ETA
from ..errors import InvalidParameter
from . import state as packing
from ._beat_types import FloatArray
from .roles import TrailingRows


def _median_fill(row: FloatArray) -> FloatArray:
    """Missing entries (NaN) of one day's forecasts replaced by the others' median."""
    bad = ~np.isfinite(row)
    if bad.any() and (~bad).any():
        row = row.copy()
        row[bad] = float(np.median(row[~bad]))
    return row


class OnlineTrackRecord:
    """The agents' realized record, one row per beat, trailing ``window`` rows.

    ``push`` adds the forecasts made for a day and the return that came;
    :meth:`records` gives the :class:`~swarmvar.consensus.TrackRecord` of each
    level that :func:`~swarmvar.consensus.combine` weights with. Rows are
    appended, never recomputed from history.

    Under tempered weighting (the swarm's default) each push also scores the
    row in a :class:`~swarmvar.consensus.TemperedWeights` (``O(agents)``), and
    :meth:`weights` gives the agents' weights from it: the numbers
    :func:`~swarmvar.consensus.agent_weights` computes from :meth:`records`
    (to rounding; online equals batch is tested), without re-scoring the
    whole window at every beat. The accumulator travels in :meth:`arrays`,
    so a resumed swarm continues from the same sums, bit for bit.
    """

    def __init__(self, agents: Sequence[str], alphas: Sequence[float], window: int | None,
                 *, policy: Policy | None = None) -> None:
        self.agents = tuple(agents)
        self.alphas = tuple(alphas)
        self.window = window
        n = len(self.agents)
        self.returns = np.zeros(0)
        self.var = {a: np.zeros((0, n)) for a in self.alphas}
        self.es = {a: np.zeros((0, n)) for a in self.alphas}
        self.policy = policy
        self.tempered = self._fresh_tempered()
        # the trailing rows, appended without copying the window at every beat
        self._rings = {("returns", None): TrailingRows(self.returns, window)} | {
            (kind, a): TrailingRows(getattr(self, kind)[a], window)
            for kind in ("var", "es") for a in self.alphas}

    def _fresh_tempered(self) -> TemperedWeights | None:
        """An empty accumulator for the policy, or None when its weights are not tempered."""
        p = self.policy
        if (p is None or p.weighting is not Weighting.TEMPERED or p.window is None
                or p.window != self.window or not 1 <= p.window <= 100_000):
            return None
        return TemperedWeights(self.agents, self.alphas, window=p.window, loss=p.loss,
                               eta=TEMPERED_ETA if p.eta is None else p.eta)

    def __len__(self) -> int:
        return int(self.returns.size)

    def push(self, realized: float, var: Mapping[float, FloatArray],
             es: Mapping[float, FloatArray]) -> None:
        rings = self._rings
        self.returns = rings["returns", None].append(self.returns, realized)
        filled_var = [_median_fill(var[a]) for a in self.alphas]
        filled_es = [_median_fill(es[a]) for a in self.alphas]
        for a, fv, fe in zip(self.alphas, filled_var, filled_es, strict=True):
            self.var[a] = rings["var", a].append(self.var[a], fv)
            self.es[a] = rings["es", a].append(self.es[a], fe)
        if self.tempered is not None:
            try:
                self.tempered.update(realized, np.stack(filled_var), np.stack(filled_es))
            except InvalidParameter:  # a row it cannot score (NaN, ES <= 0): the batch path
                self.tempered = None  # says so at combine, as it always did

    def weights(self) -> dict[str, float] | None:
        """Each agent's tempered weight now, or None (no row yet, or not tempered)."""
        if self.tempered is None or len(self) == 0:
            return None
        return dict(zip(self.agents, self.tempered.weights().tolist(), strict=True))

    def records(self) -> list[TrackRecord] | None:
        if len(self) == 0:
            return None
        return [TrackRecord(self.agents, self.returns.copy(), a, self.var[a].copy(),
                            self.es[a].copy()) for a in self.alphas]

    def arrays(self) -> dict[str, NDArray[Any]]:
        out: dict[str, NDArray[Any]] = {"track_returns": self.returns}
        for i, a in enumerate(self.alphas):
            out[f"track_var_{i}"] = self.var[a]
            out[f"track_es_{i}"] = self.es[a]
        if self.tempered is not None:
            # the state carries the running sums: a resumed run continues bit for bit
            out["track_tempered"] = packing.as_bytes_array(self.tempered.to_state())
        return out

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        self.returns = np.asarray(arrays["track_returns"], dtype=np.float64)
        for i, a in enumerate(self.alphas):
            self.var[a] = np.asarray(arrays[f"track_var_{i}"], dtype=np.float64)
            self.es[a] = np.asarray(arrays[f"track_es_{i}"], dtype=np.float64)
        self.tempered = self._fresh_tempered()
        if self.tempered is None:
            return
        blob = arrays.get("track_tempered")
        if blob is not None:  # the sums as they were: continues bit for bit
            # checkpoints of format-1 states kept the running sums beside them
            old_sums = arrays.get("track_tempered_sum")
            restored = TemperedWeights.from_state(
                np.asarray(blob).tobytes(),
                sums=None if old_sums is None else np.asarray(old_sums, dtype=np.float64))
            if ((restored.agent_ids, restored.alphas, restored.window, restored.eta,
                 restored.loss) == (self.tempered.agent_ids, self.tempered.alphas,
                                    self.tempered.window, self.tempered.eta,
                                    self.tempered.loss)):
                self.tempered = restored
                return
        try:  # a checkpoint from before the accumulator: score the rows it holds again
            for t in range(len(self)):
                self.tempered.update(float(self.returns[t]),
                                     np.stack([self.var[a][t] for a in self.alphas]),
                                     np.stack([self.es[a][t] for a in self.alphas]))
        except InvalidParameter:
            self.tempered = None
