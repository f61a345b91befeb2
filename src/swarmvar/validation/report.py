"""The backtest report: one self-contained, offline HTML page, and the matplotlib figure.

The page (template ``templates/report.html``) holds, in order: an executive
summary (each row and level with a pass/fail badge per test and what "pass"
means), the Basel traffic light over every rolling 250-day window, small
multiples per model and level (credible band of VaR, realized losses,
breaches), the consensus weights over time, any extra sections the caller
adds (e.g. the emergence summary, computed by a layer that may import it),
the breach table, timings and notes, and a provenance box. Charts are inline
SVG drawn here (no scripts, nothing fetched); it fits a 1280 px window
without horizontal scrolling and prints to A4.
"""

from __future__ import annotations

import html
import math
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidParameter
from . import _checks
from .result import BacktestResult, Test

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: Significance level of every pass/fail mark.
LEVEL = 0.05
#: Points per chart line (longer series are bucketed: band by min/max, losses by max).
CHART_POINTS = 500
_TESTS = (
    (Test.KUPIEC, "Kupiec", "breaches as frequent as the level promises"),
    (Test.CHRISTOFFERSEN, "Christoffersen", "breaches do not cluster (day-to-day independence)"),
    (Test.CONDITIONAL_COVERAGE, "cond. coverage", "both at once"),
    (Test.Z2, "AS Z2", "ES matches the losses beyond VaR (Acerbi-Szekely)"),
    (Test.MCNEIL_FREY, "McNeil-Frey", "ES matches the losses beyond VaR (exceedance residuals)"),
)
_GREYS = ("#222", "#777", "#bbb", "#444", "#999", "#ddd", "#555", "#aaa")


@dataclass(frozen=True)
class Provenance:
    """Where a report's numbers come from: data, command, seed, version and ledger entries."""

    data: str
    first: str
    last: str
    command: str
    seed: int
    version: str
    ledger: tuple[int, int] | None = None
    merkle_root: str | None = None
    ledger_path: str | None = None


@dataclass(frozen=True)
class Section:
    """An extra report section: a heading and its HTML body (already escaped)."""

    title: str
    body: str
    anchor: str = ""


def frame_section(title: str, frame: pd.DataFrame, note: str = "", anchor: str = "") -> Section:
    """A :class:`Section` holding one table (first column left-aligned, numbers to 4 digits)."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return "–" if not math.isfinite(v) else f"{v:.4g}"
        return _e(v)

    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=l" if k == 0 else ""}>{cell(v)}</td>'
                         for k, v in enumerate(row)) + "</tr>"
        for row in frame.itertuples(index=False))
    text = f'<p class="note">{_e(note)}</p>' if note else ""
    return Section(title, f'{text}<div class="scroll"><table class="wrap"><thead><tr>{head}'
                          f"</tr></thead><tbody>{body}</tbody></table></div>", anchor)


def _day(d: object) -> str:
    """A date without its time of day (``2018-12-31``), else the label as is."""
    if hasattr(d, "date") and callable(d.date):
        return str(d.date())
    return str(d)


def _pct(x: float, digits: int = 2) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.{digits}f}"


def _badge(passed: bool | None, text: str = "") -> str:
    if passed is None:
        return f'<span class="badge na">{text or "n/a"}</span>'
    cls, word = ("pass", "pass") if passed else ("fail", "FAIL")
    return f'<span class="badge {cls}">{word}{(" " + text) if text else ""}</span>'


def _e(x: object) -> str:
    return html.escape(str(x))


# --- sections ---------------------------------------------------------------------


def _summary(result: BacktestResult) -> str:
    head = "".join(f'<th title="{_e(why)}">{_e(label)}</th>' for _, label, why in _TESTS)
    body = []
    for row, levels in result.evaluation.items():
        for alpha, ev in levels.items():
            s = result.series[row][alpha]
            marks = [ev.tests[t].passed(LEVEL) for t, _, _ in _TESTS]
            cells = "".join(
                f"<td>{_badge(m, '' if m is None else f'{ev.tests[t].pvalue:.3f}')}</td>"
                for m, (t, _, _) in zip(marks, _TESTS, strict=True))
            coverage = marks[:3]
            verdict = None if any(m is None for m in coverage) else all(coverage)
            light = ev.traffic_light
            body.append(
                f'<tr><td class="l">{_e(row)}</td><td>{alpha:.1%}</td>'
                f"<td>{int(s.hits.sum())} / {s.hits.size * (1 - alpha):.1f}</td>{cells}"
                f"<td>{_badge(verdict)}</td>"
                f"<td>{_e(light.zone.value) if light is not None else '–'}</td></tr>")
    means = "; ".join(f"<b>{_e(label)}</b>: {_e(why)}" for _, label, why in _TESTS)
    return (
        '<section id="summary"><h2>Executive summary</h2>'
        f'<p class="note">A test <b>passes</b> when it does not reject the forecasts at the '
        f"{LEVEL:.0%} level (p &gt; {LEVEL}); the p-value is shown in each badge. {means}. "
        "<b>Coverage</b> passes when Kupiec, Christoffersen and conditional coverage all pass; "
        "n/a: undefined for these data (e.g. no breach). Breaches: observed / expected.</p>"
        '<div class="scroll"><table><thead><tr><th class="l">model</th><th>level</th>'
        f"<th>breaches</th>{head}<th>coverage</th><th>zone, last 250 d</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></section>")


def _zones(result: BacktestResult) -> str:
    shares = result.traffic_light_shares()
    if shares.empty:
        return ('<section id="traffic-light"><h2>Basel traffic light</h2><p class="note">'
                "Fewer than 250 forecast days: no 250-day window to classify.</p></section>")
    body = []
    for line in shares.itertuples(index=False):
        bar = "".join(f'<span class="{c}" style="width:{100 * v:.2f}%"></span>'
                      for c, v in (("g", line.green), ("y", line.yellow), ("r", line.red)))
        body.append(
            f'<tr><td class="l">{_e(line.model)}</td><td>{line.alpha:.1%}</td>'
            f"<td>{line.windows}</td><td>{100 * line.green:.1f}%</td>"
            f"<td>{100 * line.yellow:.1f}%</td><td>{100 * line.red:.1f}%</td>"
            f'<td><div class="zone" title="green / yellow / red">{bar}</div></td>'
            f"<td>{_e(line.worst)}</td><td>{_e(line.last)}</td></tr>")
    return (
        '<section id="traffic-light"><h2>Basel traffic light over rolling 250-day windows</h2>'
        '<p class="note">Each window of 250 consecutive forecast days is classified by its '
        "breach count x: <b>green</b> when P(X &le; x) &lt; 95%, <b>red</b> when it is "
        "&ge; 99.99%, yellow between (X ~ Binomial(250, 1 &minus; level); at 99% this is "
        "Basel's 0&ndash;4 / 5&ndash;9 / 10+). Shares are of all windows; the regulator's "
        "zone is the last window's.</p>"
        '<div class="scroll"><table><thead><tr><th class="l">model</th><th>level</th>'
        "<th>windows</th><th>green</th><th>yellow</th><th>red</th><th>shares</th>"
        "<th>worst</th><th>last</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></section>")


def _buckets(n: int) -> np.ndarray:
    """Start index of each chart bucket (``ceil(n / CHART_POINTS)`` days each)."""
    size = max(1, math.ceil(n / CHART_POINTS))
    starts: np.ndarray = np.arange(0, n, size)
    return starts


def _bucket_days(result: BacktestResult) -> int:
    return max(1, math.ceil(result.losses.size / CHART_POINTS))


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def _chart(result: BacktestResult, row: str, alpha: float, width: int = 400,
           height: int = 150) -> str:
    """Inline SVG: VaR's credible band and line, realized losses, breaches as crosses."""
    s = result.series[row][alpha]
    loss = result.losses
    n = loss.size
    starts = _buckets(n)
    lo = np.minimum.reduceat(np.nan_to_num(s.var_lo, nan=np.inf), starts)
    hi = np.maximum.reduceat(np.nan_to_num(s.var_hi, nan=-np.inf), starts)
    var = np.maximum.reduceat(np.nan_to_num(s.var, nan=0.0), starts)
    worst = np.maximum.reduceat(np.maximum(loss, 0.0), starts)
    finite = np.concatenate([hi[np.isfinite(hi)], var, worst])
    top = float(np.quantile(finite, 0.995)) * 1.15 if finite.size else 1.0
    top = top if top > 0 else 1.0
    left, bottom = 34.0, height - 16.0

    def x(i: np.ndarray) -> np.ndarray:
        return left + (width - left - 4) * i / max(n - 1, 1)

    def y(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = bottom - (bottom - 6) * np.clip(v, 0.0, top) / top
        return out

    xs = x(starts.astype(float))
    ok = np.isfinite(lo) & np.isfinite(hi)
    band = ""
    if ok.any():
        band = (f'<polygon fill="#c8c8c8" stroke="none" points="'
                f'{_path(xs[ok], y(hi[ok]))} {_path(xs[ok][::-1], y(lo[ok])[::-1])}"/>')
    hits = np.flatnonzero(s.hits)
    crosses = "".join(
        f'<path d="M{px - 3:.1f},{py - 3:.1f}l6,6m0,-6l-6,6"/>'
        for px, py in zip(x(hits.astype(float)), y(loss[hits]), strict=True))
    ticks = "".join(
        f'<text x="{left - 3}" y="{y(np.array(v))+3:.1f}" text-anchor="end">{100 * v:.0f}%</text>'
        f'<line x1="{left}" x2="{width - 4}" y1="{y(np.array(v)):.1f}" y2="{y(np.array(v)):.1f}" '
        'stroke="#eee"/>' for v in np.linspace(0, top, 4)[1:])
    first, last = _day(result.dates[0]), _day(result.dates[-1])
    title = (f"{row}, {alpha:.1%}: {int(s.hits.sum())} breaches "
             f"(expected {n * (1 - alpha):.1f})")
    return (
        f'<div class="card"><h3>{_e(title)}</h3>'
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        'font-size="9" font-family="sans-serif">'
        f"{ticks}{band}"
        f'<polyline fill="none" stroke="#999" stroke-width="0.6" '
        f'points="{_path(xs, y(worst))}"/>'
        f'<polyline fill="none" stroke="#111" stroke-width="1.1" points="{_path(xs, y(var))}"/>'
        f'<g stroke="#c0392b" stroke-width="1.4">{crosses}</g>'
        f'<line x1="{left}" x2="{width - 4}" y1="{bottom}" y2="{bottom}" stroke="#666"/>'
        f'<text x="{left}" y="{height - 3}">{first}</text>'
        f'<text x="{width - 4}" y="{height - 3}" text-anchor="end">{last}</text>'
        "</svg></div>")


def _charts(result: BacktestResult) -> str:
    cards = "".join(_chart(result, row, a) for row in result.rows for a in result.alphas)
    return (
        '<section id="charts"><h2>Forecasts against realized losses</h2>'
        '<p class="key"><i style="background:#c8c8c8"></i>90% credible band of VaR'
        '<i style="background:#111;height:2px"></i>VaR (point)'
        '<i style="background:#999;height:1px"></i>realized loss (gains at 0)'
        '<i style="border:0;color:#c0392b;font-style:normal;width:auto">&#x2715;</i>breach '
        f"(loss above VaR). Series are drawn in buckets of {_bucket_days(result)} day(s): "
        "band from the bucket's extremes, loss and VaR its largest; every breach is drawn.</p>"
        f'<div class="grid">{cards}</div></section>')


def _weights(result: BacktestResult) -> str:
    if not result.consensus_weights or not result.agents:
        return ""
    cards = []
    agents = result.agents
    for row, levels in result.consensus_weights.items():
        for alpha, w in levels.items():
            n = w.shape[0]
            starts = _buckets(n)
            counts = np.diff(np.r_[starts, n])
            mean = np.add.reduceat(np.nan_to_num(w), starts, axis=0) / counts[:, None]
            width, height, left = 400, 130, 30.0
            edges = left + (width - left - 4) * np.r_[starts, n] / n
            xs = np.repeat(edges, 2)[1:-1]  # steps: each bucket flat over its days
            base = np.zeros(starts.size)
            layers = []
            for k, _agent in enumerate(agents):
                top = base + mean[:, k]
                yb, yt = np.repeat(116 - 110 * base, 2), np.repeat(116 - 110 * top, 2)
                layers.append(
                    f'<polygon fill="{_GREYS[k % len(_GREYS)]}" stroke="none" '
                    f'points="{_path(xs, yt)} {_path(xs[::-1], yb[::-1])}"/>')
                base = top
            title = f"{row}, {alpha:.1%}: each agent's weight in VaR"
            cards.append(
                f'<div class="card"><h3>{_e(title)}</h3><svg viewBox="0 0 {width} {height}" '
                f'role="img" aria-label="{_e(title)}" font-size="9" font-family="sans-serif">'
                f'{"".join(layers)}<text x="{left - 3}" y="9" text-anchor="end">1</text>'
                f'<text x="{left - 3}" y="118" text-anchor="end">0</text>'
                f'<text x="{left}" y="128">{_day(result.dates[0])}</text>'
                f'<text x="{width - 4}" y="128" text-anchor="end">{_day(result.dates[-1])}</text>'
                "</svg></div>")
    key = "".join(f'<i style="background:{_GREYS[k % len(_GREYS)]}"></i>{_e(a)}'
                  for k, a in enumerate(agents))
    return ('<section id="weights"><h2>Consensus weights over time</h2>'
            f'<p class="key">{key} (stacked, bottom to top; trimmed agents weigh 0 that day; '
            "bucket means)</p>"
            f'<div class="grid">{"".join(cards)}</div></section>')


def _breach_table(result: BacktestResult) -> str:
    frame = result.breaches()
    rows = result.rows
    head = "".join(f"<th>{_e(r)}<br>VaR / ES</th>" for r in rows)
    body = []
    for line in frame.itertuples(index=False):
        breached = set(str(line.breached).split(", "))
        cells = []
        for k, r in enumerate(rows):
            v, e = line[4 + 2 * k], line[5 + 2 * k]
            text = f"{_pct(v)} / {_pct(e)}"
            cells.append(f'<td><b class="hit">{text}</b></td>' if r in breached
                         else f"<td>{text}</td>")
        body.append(f'<tr><td class="l">{_day(line.date)}</td><td>{line.alpha:.1%}</td>'
                    f"<td>{_pct(line.loss)}</td><td>{len(breached)} / {len(rows)}</td>"
                    f"{''.join(cells)}</tr>")
    return (
        '<section id="breaches"><h2>Breaches</h2>'
        f'<p class="note">{len(frame)} day-levels on which at least one model was breached: '
        "the realized loss and each model's VaR / ES that day, in % of value; "
        '<b class="hit">underlined</b>: the loss exceeded that model\'s VaR.</p>'
        '<div class="scroll"><table><thead><tr><th class="l">date</th><th>level</th>'
        f"<th>loss</th><th>breached</th>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
        "</table></div>"
        "</section>")


def _timings(result: BacktestResult) -> str:
    body = "".join(
        f'<tr><td class="l">{_e(n)}</td><td>{t.fits}</td><td>{t.fit:.2f}</td>'
        f"<td>{t.update:.2f}</td><td>{t.forecast:.2f}</td><td>{t.total:.2f}</td></tr>"
        for n, t in result.timings.items())
    notes = "".join(f"<li><b>{_e(r)}</b>: {_e(n)}</li>" for r, ns in result.notes.items()
                    for n in ns)
    return ('<section id="timings"><h2>Timings and notes</h2><div class="scroll"><table>'
            '<thead><tr><th class="l">model</th><th>fits</th><th>fit s</th><th>update s</th>'
            f"<th>forecast s</th><th>total s</th></tr></thead><tbody>{body}</tbody></table>"
            f"</div>{f'<ul class=note>{notes}</ul>' if notes else ''}</section>")


def _provenance(result: BacktestResult, p: Provenance | None) -> str:
    items = [("forecast days", f"{len(result.dates)}: {_day(result.dates[0])} to "
              f"{_day(result.dates[-1])}"),
             ("window / refit / horizon", f"{result.window} returns / every "
              f"{result.refit_every} days / {result.horizon} day(s)"),
             ("baselines", ", ".join(result.baselines) or "none")]
    if p is not None:
        ledger = ("not recorded" if p.ledger is None else
                  f"entries {p.ledger[0]}&ndash;{p.ledger[1]} of {_e(p.ledger_path or '')}")
        items = [("data set", f"{_e(p.data)}, returns {p.first} to {p.last}"), *items,
                 ("command line", f"<code>{_e(p.command)}</code>"), ("seed", str(p.seed)),
                 ("swarmvar version", _e(p.version)), ("ledger", ledger),
                 ("Merkle root", f"<code>{_e(p.merkle_root or '–')}</code>")]
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="provenance"><h2>Provenance</h2><dl class="prov">{body}</dl></section>'


def render_html(result: BacktestResult, *, provenance: Provenance | None = None,
                sections: Sequence[Section] = ()) -> str:
    """The report as one HTML string (no scripts, no external resources)."""
    template = Template(resources.files(__package__).joinpath(
        "templates/report.html").read_text(encoding="utf-8"))
    extra = "".join(
        f'<section id="{_e(s.anchor or s.title.lower().replace(" ", "-"))}">'
        f"<h2>{_e(s.title)}</h2>{s.body}</section>" for s in sections)
    n = len(result.dates)
    lead = (f"{n} out-of-sample forecast days, {_day(result.dates[0])} to "
            f"{_day(result.dates[-1])}: {len(result.rows)} rows (agents, consensus, "
            f"baselines) at levels {', '.join(f'{a:.1%}' for a in result.alphas)}; each "
            "forecast saw only the returns before its day.")
    name = f" on {provenance.data}" if provenance is not None else ""
    return template.substitute(
        title=_e(f"swarmvar backtest{name}"), lead=_e(lead),
        sections=_summary(result) + _zones(result) + _charts(result) + _weights(result)
        + extra + _breach_table(result) + _timings(result) + _provenance(result, provenance))


def write_html(result: BacktestResult, path: str | Path, *, provenance: Provenance | None = None,
               sections: Sequence[Section] = ()) -> Path:
    """Write :func:`render_html` to ``path`` atomically, with the user's umask (mode 0666 &
    ~umask, as any file the user creates), never half-written."""
    if not isinstance(path, (str, Path)) or not str(path) or "\0" in str(path):
        raise InvalidParameter(f"path must be a file path (str or Path), not {path!r}")
    if provenance is not None and not isinstance(provenance, Provenance):
        raise InvalidParameter(f"provenance must be a Provenance or None, not "
                               f"{type(provenance).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise InvalidParameter(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise InvalidParameter(f"cannot write {path}: it is a directory")
    text = render_html(result, provenance=provenance, sections=sections).encode("utf-8")
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# --- the matplotlib figure -----------------------------------------------------------


def plot_result(result: BacktestResult, alpha: float | None = None, *,
                models: Sequence[str] | None = None) -> Figure:
    """Small multiples: one panel per model (rows) and level (columns).

    Each panel: the 90% credible band of VaR (light grey), VaR (black),
    realized losses (grey; gains drawn at 0) and breaches (crosses). Greys and
    marker shapes only, so it reads the same printed in grey. Agg backend
    (:class:`matplotlib.figure.Figure`): no display needed.
    """
    from matplotlib.figure import Figure

    levels = result.alphas if alpha is None else (_checks.level(alpha, "level"),)
    if models is not None and (isinstance(models, (str, bytes)) or not isinstance(
            models, Sequence) or not all(isinstance(m, str) for m in models)):
        raise InvalidParameter(f"models must be a non-empty list of row names, not {models!r}")
    for a in levels:
        if not any(math.isclose(a, have, abs_tol=1e-12) for have in result.alphas):
            raise InvalidParameter(f"no forecasts at level {a:g}; the backtest has "
                                   f"{', '.join(f'{x:g}' for x in result.alphas)}")
    levels = tuple(next(h for h in result.alphas if math.isclose(a, h, abs_tol=1e-12))
                   for a in levels)
    rows = result.rows if models is None else tuple(models)
    if isinstance(models, str) or not rows:
        raise InvalidParameter(f"models must be a non-empty list of rows, not {models!r}")
    unknown = [r for r in rows if r not in result.series]
    if unknown:
        raise InvalidParameter(f"no row called {unknown[0]!r}; rows: {', '.join(result.rows)}")
    height = 2.1 * len(rows) + 0.6
    fig = Figure(figsize=(5.2 * len(levels) + 0.6, height))
    axes = fig.subplots(len(rows), len(levels), squeeze=False, sharex=True)
    # fixed margins: the constrained layout's text measuring cost seconds at 16 panels
    fig.subplots_adjust(left=0.08 / len(levels) + 0.02, right=0.99, top=1 - 0.35 / height,
                        bottom=0.35 / height, hspace=0.5, wspace=0.18)
    dates = result.dates
    x = np.asarray(dates) if not hasattr(dates, "start") else np.arange(len(dates))
    losses = result.losses
    for i, row in enumerate(rows):
        for j, a in enumerate(levels):
            ax = axes[i, j]
            s = result.series[row][a]
            ax.fill_between(x, s.var_lo, s.var_hi, color="0.8", lw=0, label="90% band")
            ax.plot(x, np.maximum(losses, 0.0), color="0.55", lw=0.4, label="loss")
            ax.plot(x, s.var, color="black", lw=0.9, label="VaR")
            ax.scatter(x[s.hits], losses[s.hits], marker="x", s=14, color="black", lw=0.9,
                       zorder=3, label="breach")
            ax.set_title(f"{row}, {a:.1%}: {int(s.hits.sum())} breaches "
                         f"(expected {s.hits.size * (1 - a):.1f})", fontsize=8)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel("loss (fraction)", fontsize=7)
    axes[0, 0].legend(loc="upper left", fontsize=6, ncol=4, frameon=False)
    if not hasattr(dates, "start") and len(x) > 1:  # dates: a fixed, cheap tick rule
        import matplotlib.dates as mdates

        years = (x[-1] - x[0]) / np.timedelta64(365, "D")
        step = max(1, int(years // 5)) if years > 2 else max(1, int(years * 12 // 5))
        maker = mdates.YearLocator if years > 2 else mdates.MonthLocator
        locator = maker(step)
        label = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        for ax in axes.flat:  # shared x: one locator serves every panel
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(label)
    return fig
