"""Where ticks come from: a replayed series, a file followed as it grows, JSON lines.

Every source is an iterable of :class:`~swarmvar.types.Tick` (or
:class:`BadLine` for input it could not even parse) with a ``cursor`` — a
JSON value that says where the next tick is — and ``seek(cursor)`` to resume
there. The runtime writes each beat's cursor into the ledger, so a restarted
run continues after the last recorded tick. Every loop here is bounded: a
replay by its data, a followed file by ``idle_timeout`` without new rows,
JSON lines by the end of the stream.

A resume checks the source against the ledger before anything is written
(:func:`._recovery.check_source`): a replay and a followed file give the ticks
at the dates the ledger's beats recorded (``ticks_on``; a beat's cursor is a place
in the data the run read, not taken as a row), so a file that is not the one the
run beat (another series, an edited or truncated file) is refused; a file may have
grown, at its end or by older rows before its first. The resume then seeks the
source to the place, in it, of the ledger's last beats. A stream cannot be read ahead:
``JsonLines.watch`` checks each tick it gives that the ledger recorded (a
replayed tick) as it arrives. A followed file read again from before the run's place
passes over the bad lines whose refusal the ledger holds (``FollowedFile.skip_refused``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ..errors import InvalidSource, SwarmVarError
from ..types import Tick
from .ticks import ALL, as_utc


@dataclass(frozen=True)
class BadLine:
    """Input a source could not turn into a tick (the runtime refuses and ledgers it)."""

    reason: str
    raw: str


class Replay:
    """Replay a series (one portfolio) or asset-returns frame (``portfolio="*"``).

    Parameters
    ----------
    data : pandas.Series or DataFrame
        Returns indexed by date; a Series feeds one portfolio (``portfolio``),
        a DataFrame's rows are asset returns (ticks for every asset portfolio,
        or for ``portfolio`` if it is named).
    start : int
        First row to replay (e.g. the length of the history the swarm started from).
    rate : float, optional
        Ticks per second (``None``: as fast as possible).
    sleep : callable
        How to wait between ticks at a rate (tests pass a fake).
    name : str, optional
        What the data is called in a resume's refusal (a file's name, a bundled
        series'); default ``"the replayed data"``.
    """

    def __init__(self, data: pd.Series | pd.DataFrame, *, portfolio: str = ALL, start: int = 0,
                 stop: int | None = None, rate: float | None = None,
                 sleep: Callable[[float], None] = time.sleep, name: str | None = None) -> None:
        if isinstance(data, pd.Series) and portfolio == ALL:
            portfolio = str(data.name) if data.name is not None else ALL
            if portfolio == ALL:
                raise InvalidSource("replaying a series needs portfolio=<name>")
        if rate is not None and not rate > 0:
            raise InvalidSource(f"rate must be > 0 ticks per second, not {rate!r}")
        self.data = data
        self.portfolio = portfolio
        self.cursor: int = int(start)
        self.stop = len(data) if stop is None else min(int(stop), len(data))
        self.rate = rate
        self._sleep = sleep
        self.name = name or "the replayed data"
        #: what a resume's refusal calls the places of ticks (row N, from 1, of the data)
        self.unit = "rows"
        self._values: Any = None  # the data's values and columns, read at the first tick
        self._columns: list[str] | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (:meth:`_instants`)

    def seek(self, cursor: Any) -> None:
        self.cursor = int(cursor)

    def _tick(self, i: int) -> Tick:
        """The tick of row ``i`` (from 0) of the data: what :meth:`__iter__` gives there.

        Raises
        ------
        InvalidTick
            Its index label is not a date.
        """
        if self._values is None:
            self._values = self.data.to_numpy()
            self._columns = ([str(c) for c in self.data.columns]
                             if isinstance(self.data, pd.DataFrame) else None)
        as_of = as_utc(self.data.index[i])
        if self._columns is not None:
            return Tick(self.portfolio, as_of, assets={
                c: float(v) for c, v in zip(self._columns, self._values[i], strict=True)})
        return Tick(self.portfolio, as_of, value=float(self._values[i]))

    def ticks_on(self, wanted: Mapping[datetime, Any]) -> dict[datetime, list[tuple[int, Tick]]]:
        """The data's ticks at each wanted date (a ledgered beat's ``as_of``; what it maps
        to, the beat's cursor, is not needed): ``(row, tick)``, rows counted from 1, every
        row so dated in order (a date the run read twice: it beat the first, any of them
        may match). What a resume compares with the ledger's beats, and where it resumes
        (:func:`._recovery.check_source`); a date the data does not hold is left out.

        The index is converted once (:meth:`_instants`) and searched for every wanted date
        at once: the ledgered cursor is a resume point, not always the beat's own row (a
        beat while another portfolio's host was restored, a stream's line count, rows
        prepended or dropped since), so it is not taken as the row.
        """
        out: dict[datetime, list[tuple[int, Tick]]] = {}
        if not wanted:
            return out
        order, instants = self._instants()
        dates = list(wanted)
        targets = np.array([_micros(w) for w in dates], dtype=np.int64)
        lo = np.searchsorted(instants, targets, side="left")
        hi = np.searchsorted(instants, targets, side="right")
        for when, a, b in zip(dates, lo.tolist(), hi.tolist(), strict=True):
            if b > a:
                out[when] = [(i + 1, self._tick(i)) for i in sorted(order[a:b].tolist())]
        return out

    def _instants(self) -> tuple[np.ndarray, np.ndarray]:
        """The data's rows ordered by date and their dates as microseconds since 1970 UTC,
        sorted: what :meth:`ticks_on` searches (converted once; labels that are no date
        are left out). A naive date is taken as UTC, as :func:`.ticks.as_utc` takes it
        (to the microsecond, as a tick carries it; any year a datetime holds)."""
        if self._sorted is None:
            index = self.data.index
            if isinstance(index, pd.DatetimeIndex):
                utc = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
                ns = utc.as_unit("us").asi8.copy()
                rows = np.flatnonzero(~utc.isna())
            else:  # labels of another kind (dates, strings): each as a tick reads it
                days = [_dated(label) for label in index]
                rows = np.array([i for i, d in enumerate(days) if d is not None], dtype=np.int64)
                ns = np.zeros(len(index), dtype=np.int64)
                for i in rows.tolist():
                    day = days[i]
                    assert day is not None
                    ns[i] = _micros(day)
            keys = ns[rows]
            by = np.argsort(keys, kind="stable")
            self._sorted = (rows[by], keys[by])
        return self._sorted

    def __iter__(self) -> Iterator[Tick | BadLine]:
        next_at = time.monotonic()
        while self.cursor < self.stop:
            i = self.cursor
            if self.rate is not None:
                wait = next_at - time.monotonic()
                if wait > 0:
                    self._sleep(wait)
                next_at = max(next_at, time.monotonic()) + 1.0 / self.rate
            tick = self._tick(i)
            self.cursor = i + 1
            yield tick


#: 1970-01-01 UTC, what :func:`_micros` counts from.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(when: datetime) -> int:
    """An aware datetime as whole microseconds since 1970 UTC (exact, any year)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def _dated(label: Any) -> datetime | None:
    """An index label's date as a tick carries it, None when it is none."""
    try:
        return as_utc(label)
    except (SwarmVarError, TypeError, ValueError):  # (NaT: no year to make a date of)
        return None


class FollowedFile:
    """A CSV file of returns followed as it grows (``tail -f``), resumable by row.

    The first column is the date; the others are one portfolio's return
    (``portfolio=<name>``, one value column) or asset returns
    (``portfolio="*"``). Rows are read as they are completed (a line without
    its newline waits); iteration ends after ``idle_timeout`` seconds without
    a new row. ``cursor`` counts the data rows consumed.
    """

    def __init__(self, path: str | Path, *, portfolio: str = ALL, poll: float = 0.2,
                 idle_timeout: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InvalidSource(f"no file {self.path} to follow; check the path")
        self.portfolio = portfolio
        self.poll = poll
        self.idle_timeout = idle_timeout
        self.cursor = 0
        self._sleep = sleep
        self.name = self.path.name
        #: what a resume's refusal and a refused line call the places of ticks (data line
        #: N, from 1 after the header, blank ones counted: the cursor after it is N)
        self.unit = "data lines"
        self._refused: Callable[[BadLine], bool] | None = None

    def seek(self, cursor: Any) -> None:
        self.cursor = int(cursor)

    def skip_refused(self, seen: Callable[[BadLine], bool]) -> None:
        """Pass over each bad line for which ``seen(bad)`` is true instead of giving it (a
        resume's: the ledger already holds the run's refusal of that line, which a resume
        from a place before the run's reads again, :func:`._recovery.check_source`); its
        place is counted as the follower counts every line."""
        self._refused = seen

    def _header(self, fh: IO[str]) -> list[str]:
        """The columns of the file's header line, read from ``fh`` at its start.

        Raises
        ------
        InvalidSource
            No complete header line, or fewer than a date and one value column.
        """
        header = fh.readline()
        if not header.endswith("\n"):
            raise InvalidSource(f"{self.path} has no complete header line")
        columns = [c.strip() for c in header.rstrip("\r\n").split(",")]
        if len(columns) < 2:
            raise InvalidSource(f"{self.path}: need a date column and at least one value "
                                "column")
        return columns

    def ticks_on(self, wanted: Mapping[datetime, Any]
                 ) -> dict[datetime, list[tuple[int, Tick | BadLine]]]:
        """The file's ticks at each wanted date (a ledgered beat's ``as_of``; its cursor is
        not needed: the file is read from its start): ``(data line, tick)``, data lines
        counted from 1 after the header as the follower counts them (blank ones too),
        each line so dated in order, a line refused now as its :class:`BadLine`. What a
        resume compares with the ledger's beats (:func:`._recovery.check_source`).
        Lines without their newline, or whose first cell is no date, are not read; the
        file is read up to the first line dated after every wanted date, once each was
        found, else to its end.

        Raises
        ------
        InvalidSource
            The file cannot be read, or has no header (:meth:`_header`).
        """
        out: dict[datetime, list[tuple[int, Tick | BadLine]]] = {}
        if not wanted:
            return out
        left, last = set(wanted), max(wanted)
        try:
            with open(self.path, encoding="utf-8", newline="") as fh:
                columns = self._header(fh)
                n = 0
                while True:
                    line = fh.readline()
                    if not line.endswith("\n"):
                        break
                    n += 1
                    if not line.strip():
                        continue
                    when = _dated(line.split(",", 1)[0].strip())
                    if when is None:
                        continue
                    if when in wanted:
                        out.setdefault(when, []).append((n, self._parse(line, n, columns)))
                        left.discard(when)
                    elif not left and when > last:
                        break
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidSource(f"cannot read {self.path}: {exc}") from None
        return out

    def _parse(self, line: str, n: int, columns: list[str]) -> Tick | BadLine:
        """Data line ``n`` (from 1, after the header) as a tick, or the reason it is none."""
        cells = [c.strip() for c in line.rstrip("\r\n").split(",")]
        if len(cells) != len(columns):
            return BadLine(f"data line {n} has {len(cells)} cells, the header "
                           f"{len(columns)}", line)
        try:
            as_of = as_utc(cells[0])
            numbers = [float(c) if c else float("nan") for c in cells[1:]]
        except (ValueError, SwarmVarError) as exc:
            return BadLine(f"data line {n}: {exc}", line)
        if self.portfolio != ALL and len(numbers) == 1:
            return Tick(self.portfolio, as_of, value=numbers[0])
        return Tick(self.portfolio, as_of, assets=dict(zip(columns[1:], numbers, strict=True)))

    def __iter__(self) -> Iterator[Tick | BadLine]:
        with open(self.path, encoding="utf-8", newline="") as fh:
            columns = self._header(fh)
            for _ in range(self.cursor):  # skip what was consumed before a restart
                if not fh.readline().endswith("\n"):
                    raise InvalidSource(f"{self.path} has fewer rows than the resume point "
                                        f"{self.cursor}; was it truncated?")
            idle_since = time.monotonic()
            partial = ""
            while True:
                where = fh.tell()
                line = fh.readline()
                if line.endswith("\n"):
                    line, partial = partial + line, ""
                    idle_since = time.monotonic()
                    if not line.strip():
                        self.cursor += 1
                        continue
                    tick = self._parse(line, self.cursor + 1, columns)
                    self.cursor += 1
                    if (isinstance(tick, BadLine) and self._refused is not None
                            and self._refused(tick)):
                        continue  # refused and ledgered by the run already
                    yield tick
                    continue
                if line:  # an incomplete last line: read it again when it is finished
                    fh.seek(where)
                if time.monotonic() - idle_since > self.idle_timeout:
                    return
                self._sleep(self.poll)


class JsonLines:
    """Ticks as JSON objects, one per line: ``{"portfolio", "as_of", "value" | "assets"}``.

    ``cursor`` counts lines consumed. There is no ``seek``: a stream (stdin)
    cannot be rewound and a new one does not start where the last stopped, so
    after a restart the runtime skips the ticks it already recorded by date.
    """

    def __init__(self, stream: IO[str], *, portfolio: str | None = None) -> None:
        self.stream = stream
        self.portfolio = portfolio
        self.cursor = 0
        self.name = "the JSON lines on stdin"
        self._watch: Callable[[Tick, int], None] | None = None

    def watch(self, check: Callable[[Tick, int], None]) -> None:
        """Call ``check(tick, line)`` on each tick before it is given (a resume's check of
        the ticks the ledger recorded: a stream cannot be read ahead); what it raises
        ends the iteration."""
        self._watch = check

    def __iter__(self) -> Iterator[Tick | BadLine]:
        for raw in self.stream:
            self.cursor += 1
            if not raw.strip():
                continue
            try:
                tick = self._tick(raw)
            except _NotATickLine as exc:  # "line 3: 'garbage' is not JSON (...); each ..."
                yield BadLine(f"line {self.cursor}: {quote(raw)} {exc}", raw[:200])
                continue
            except (ValueError, TypeError, SwarmVarError) as exc:
                yield BadLine(f"line {self.cursor}: {quote(raw)}: {exc}", raw[:200])
                continue
            if self._watch is not None:
                self._watch(tick, self.cursor)
            yield tick

    def _tick(self, raw: str) -> Tick:
        """One line's tick; :class:`_NotATickLine` saying what the line is or lacks, with the
        shape a line needs."""
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:  # its "line 1 column 1" would read as the stream's
            raise _NotATickLine(f"is not JSON ({exc.msg} at character {exc.pos + 1}); "
                                f"{TICK_LINE_HINT}") from None
        if not isinstance(obj, dict):
            raise _NotATickLine(f"is a JSON {type(obj).__name__}, not an object; "
                                f"{TICK_LINE_HINT}")
        unknown = set(obj) - {"portfolio", "as_of", "value", "assets"}
        if unknown:
            raise _NotATickLine(f"has unknown keys {sorted(unknown)}; {TICK_LINE_HINT}")
        name = obj.get("portfolio", self.portfolio)
        if not isinstance(name, str):
            raise _NotATickLine(f"names no portfolio (a \"portfolio\" string); "
                                f"{TICK_LINE_HINT}")
        if "as_of" not in obj:
            raise _NotATickLine(f"has no \"as_of\" date; {TICK_LINE_HINT}")
        assets = obj.get("assets")
        if assets is not None and not isinstance(assets, dict):
            raise _NotATickLine("has \"assets\" that are not an object of asset -> return, "
                                "e.g. {\"AAPL\": 0.004, \"MSFT\": -0.002}")
        return Tick(name, as_utc(obj["as_of"]), value=obj.get("value"), assets=assets)


class _NotATickLine(ValueError):
    """A JSON line that is not a tick's shape (its message reads after the quoted line)."""


#: What a JSON tick line must be, with one example (the message of a line that is not one).
TICK_LINE_HINT = ('each line must be one JSON object with "portfolio", "as_of" (an ISO date) '
                  'and "value" (the day\'s log return, a fraction) or "assets" (asset -> log '
                  'return), e.g. {"portfolio": "sp500", "as_of": "2024-01-02", "value": -0.0042}')
#: How much of a bad line its message quotes (characters).
QUOTED_CHARS = 40


def quote(raw: str, limit: int = QUOTED_CHARS) -> str:
    """The start of a line as a one-line, escaped Python literal: control characters and
    quotes cannot break the message, and a long line is cut at ``limit`` characters with
    ``...``."""
    text = raw.rstrip("\r\n")
    cut = text[:limit]
    return repr(cut) + ("..." if len(text) > limit else "")

