"""Figures and the self-contained HTML report of a backtest."""

from __future__ import annotations

import base64
import html
import io
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InvalidParameter
from .result import BacktestResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_result(result: BacktestResult, alpha: float | None = None) -> Figure:
    """Realized returns with each row's VaR (as a negative return) and breaches marked.

    One panel per confidence level (or only ``alpha``). Uses the Agg backend
    through :class:`matplotlib.figure.Figure`, so no display is needed.
    """
    from matplotlib.figure import Figure

    levels = result.alphas if alpha is None else (alpha,)
    for a in levels:
        if a not in result.alphas:
            raise InvalidParameter(f"no forecasts at alpha={a:g}; have {result.alphas}")
    fig = Figure(figsize=(11, 3.6 * len(levels)), layout="constrained")
    axes = fig.subplots(len(levels), 1, squeeze=False)[:, 0]
    x = np.asarray(result.dates) if not isinstance(result.dates, pd.RangeIndex) else np.arange(
        len(result.dates)
    )
    for ax, a in zip(axes, levels, strict=True):
        ax.plot(x, result.returns, color="0.6", lw=0.5, label="return")
        for row in result.rows:
            s = result.series[row][a]
            (line,) = ax.plot(x, -s.var, lw=0.9, label=f"{row} ({int(s.hits.sum())} breaches)")
            ax.scatter(x[s.hits], result.returns[s.hits], s=12, color=line.get_color(), zorder=3)
        ax.set_title(f"VaR at {a:.1%}: returns below the line are breaches")
        ax.set_ylabel("log return")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), fontsize=7, ncol=3)
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
    "margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
    "th{background:#f3f3f3}img{max-width:100%}"
)


def render_html(result: BacktestResult) -> str:
    """The report as one HTML string: summary, tests, timings and embedded PNG figures."""
    summary = result.summary()
    tests = result.test_table()
    timings = pd.DataFrame([
        {"model": n, "fits": t.fits, "fit_s": t.fit, "update_s": t.update,
         "forecast_s": t.forecast, "total_s": t.total}
        for n, t in result.timings.items()
    ])
    first, last = result.dates[0], result.dates[-1]
    figures = "".join(
        f'<img alt="VaR at {a:g}" src="data:image/png;base64,{_png(result.plot(a))}">'
        for a in result.alphas
    )
    base = html.escape(result.baseline) if result.baseline else "none"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>swarmvar backtest</title>"
        f"<style>{_STYLE}</style></head><body><h1>swarmvar backtest</h1>"
        f"<p>{len(result.dates)} forecast days from {html.escape(str(first))} to "
        f"{html.escape(str(last))}; window {result.window}, refit every {result.refit_every} "
        f"days, horizon {result.horizon}; baseline: {base}. Tests pass when p &gt; 0.05.</p>"
        f"<h2>Summary</h2>{_table(summary)}<h2>Tests</h2>{_table(tests)}"
        f"<h2>Timings (seconds)</h2>{_table(timings)}<h2>Figures</h2>{figures}</body></html>"
    )


def write_html(result: BacktestResult, path: Path) -> Path:
    """Write :func:`render_html` to ``path`` atomically (no half-written report)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InvalidParameter(f"cannot write {path}: folder {path.parent} does not exist")
    text = render_html(result)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
