"""The emergence figure: agent weights over time, effective agents, detected regime changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidParameter
from .metrics import EmergenceSummary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_weights(summary: EmergenceSummary, ax: Axes | None = None) -> Figure:
    """Stacked agent weights over the days, the effective number of agents, regime changes.

    Parameters
    ----------
    summary : EmergenceSummary
        From :func:`~swarmvar.emergence.summarize`.
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure, 10 x 4 inches).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax`` (weights on the left axis, effective agents
        on the right, a dashed line at each detected regime change).
    """
    if not isinstance(summary, EmergenceSummary):
        raise InvalidParameter(f"plot_weights needs an EmergenceSummary, "
                               f"got {type(summary).__name__}")
    from matplotlib.axes import Axes as _Axes
    from matplotlib.figure import Figure

    if ax is not None and not isinstance(ax, _Axes):
        raise InvalidParameter(f"ax must be a matplotlib Axes or None, not {type(ax).__name__}")
    if ax is None:
        fig = Figure(figsize=(10, 4))
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    x = np.asarray(summary.dates)
    ax.stackplot(x, summary.weights.T, labels=list(summary.agents), alpha=0.8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("agent weight")
    for k in summary.change_points:
        ax.axvline(x[int(k)], color="black", linestyle="--", linewidth=0.8)
    right = ax.twinx()
    right.plot(x, summary.effective_agents, color="black", linewidth=1.2,
               label="effective agents")
    right.set_ylim(1, max(len(summary.agents), 2))
    right.set_ylabel("effective agents 1/Σw²")
    ax.legend(loc="upper left", fontsize=7, ncol=min(len(summary.agents), 5))
    ax.set_title("Consensus weights, effective agents and detected regime changes")
    assert fig is not None
    return fig
