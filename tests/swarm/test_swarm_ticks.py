"""Bad ticks are refused with a SwarmVarError naming them, counted, ledgered; the loop lives."""

from __future__ import annotations

import io
import json
import math
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.errors import InvalidTick, SwarmVarError, UnknownPortfolio
from swarmvar.ledger import Ledger
from swarmvar.swarm import ALL, BadLine, FollowedFile, JsonLines, PortfolioSpec, Replay
from swarmvar.types import Tick

from .conftest import TINY, TINY_POLICY, make_swarm


def _rejections(home) -> list[dict]:
    with Ledger.open(home) as ledger:
        return [e.data["details"] for e in ledger.entries()
                if e.kind == "action" and e.data.get("type") == "tick-rejected"]


@pytest.fixture(scope="module")
def swarm_home(tmp_path_factory, sp500):
    home = tmp_path_factory.mktemp("ticks")
    swarm = make_swarm(home, ["sp500", PortfolioSpec("book", weights={"a": 0.6, "b": 0.4})],
                       agents=TINY, policy=TINY_POLICY, window=100, checkpoint_every=10**6)
    frame = sp500.iloc[:100].to_frame("a").assign(b=sp500.iloc[100:200].to_numpy())
    swarm.start({"sp500": sp500.iloc[:100], "book": PortfolioSpec(
        "book", weights={"a": 0.6, "b": 0.4}).history(frame)})
    yield swarm, home, sp500.index[99]
    swarm.close()


def _day(base: datetime, k: int) -> datetime:
    return (base + timedelta(days=k)).replace(tzinfo=UTC)


def test_every_kind_of_bad_tick_is_refused_counted_and_ledgered(swarm_home):
    swarm, home, last = swarm_home
    base = swarm.last_as_of["sp500"]
    good = swarm.step(Tick("sp500", _day(base, 1), value=0.001))
    seq = good.seq
    bad = [
        (Tick("sp500", _day(base, 2), value=math.nan), "finite"),
        (Tick("sp500", _day(base, 2), value=math.inf), "finite"),
        (Tick("sp500", _day(base, 2), value=1.7), "percent"),
        (Tick("sp500", _day(base, 1), value=0.001), "duplicates"),
        (Tick("sp500", _day(base, 0), value=0.001), "before"),
        (Tick("nope", _day(base, 2), value=0.001), "does not run"),
        (Tick("sp500", _day(base, 2)), "neither"),
        (Tick("sp500", _day(base, 2), value="x"), "not a number"),  # type: ignore[arg-type]
        (Tick("book", _day(base, 2), assets={"a": 0.01}), "misses asset 'b'"),
        (Tick("book", _day(base, 2), value=0.01), "send asset returns"),
        (Tick("book", _day(base, 2), assets={"a": 0.01, "b": 250.0}), "looks like a price"),
    ]
    before = len(_rejections(home))
    for tick, words in bad:
        with pytest.raises(InvalidTick, match=words):
            swarm.step(tick)
    with pytest.raises(UnknownPortfolio):
        swarm.step(Tick("nope", _day(base, 2), value=0.0))
    assert len(_rejections(home)) == before + len(bad) + 1
    assert swarm.rejected["InvalidTick"] >= 9
    assert swarm.latest("sp500").seq == seq  # nothing beat
    after = swarm.step(Tick("sp500", _day(base, 2), value=-0.002))  # the swarm lives on
    assert after.seq == seq + 1 and after.consensus


def test_the_loop_goes_on_past_bad_ticks_and_bad_lines(swarm_home):
    swarm, home, _ = swarm_home
    base = swarm.last_as_of["sp500"]
    lines = [
        {"portfolio": "sp500", "as_of": _day(base, 1).isoformat(), "value": 0.003},
        {"portfolio": "sp500", "as_of": _day(base, 2).isoformat(), "value": "NaN"},
        "this is not json",
        {"portfolio": "sp500", "as_of": _day(base, 1).isoformat(), "value": 0.001},
        {"portfolio": "sp500", "as_of": _day(base, 3).isoformat(), "value": 2.5},
        {"portfolio": "sp500", "as_of": _day(base, 4).isoformat(), "value": 0.002,
         "extra": 1},
        {"portfolio": "ghost", "as_of": _day(base, 5).isoformat(), "value": 0.002},
        {"portfolio": "book", "as_of": _day(base, 5).isoformat(),
         "assets": {"a": 0.01, "b": -0.02}},
        {"portfolio": "sp500", "as_of": _day(base, 6).isoformat(), "value": -0.01},
    ]
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    summary = swarm.run(JsonLines(io.StringIO(text)))
    assert summary.beats == {"sp500": 2, "book": 1}
    assert sum(summary.rejected.values()) == 6
    assert summary.stopped == "source"


_bad_values = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf),
                        st.floats(min_value=1.0001, max_value=1e6),
                        st.floats(max_value=-1.0001, min_value=-1e6),
                        st.text(max_size=5), st.booleans(), st.none())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_bad_values, shift=st.integers(-3, 3), name=st.sampled_from(["sp500", "x", ""]))
def test_hypothesis_bad_ticks_never_change_state(swarm_home, value, shift, name):
    swarm, home, _ = swarm_home
    base = swarm.last_as_of["sp500"]
    seq = swarm.seq["sp500"]
    with Ledger.open(home) as ledger:
        size = ledger.size
    tick = Tick(name, _day(base, shift), value=value)  # type: ignore[arg-type]
    with pytest.raises(SwarmVarError):
        swarm.step(tick)
    assert swarm.seq["sp500"] == seq and swarm.last_as_of["sp500"] == base
    with Ledger.open(home) as ledger:
        assert ledger.size == size + 1  # the one rejection entry, nothing else


def test_replay_at_a_rate_and_sources_resume(sp500):
    waits = []
    src = Replay(sp500.iloc[:10], portfolio="sp500", start=3, rate=100.0, sleep=waits.append)
    ticks = list(src)
    assert len(ticks) == 7 and src.cursor == 10 and ticks[0].value == sp500.iloc[3]
    # a fake sleep does not move the clock: the schedule asks for 10 ms more each tick
    assert len(waits) == 6 and all(0 < w <= 0.0101 * (k + 1) for k, w in enumerate(waits))
    src.seek(8)
    assert [t.as_of.date() for t in src] == [d.date() for d in sp500.index[8:10]]
    with pytest.raises(SwarmVarError):
        Replay(sp500, rate=0)


def test_a_followed_file_is_read_as_it_grows_and_resumes(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("date,a,b\n2020-01-01,0.01,0.02\n2020-01-02,0.00")  # last row incomplete

    first_read = threading.Event()

    def grow() -> None:  # once the reader has the first row and waits at the cut line
        first_read.wait(60)
        time.sleep(0.2)
        with open(path, "a") as fh:
            fh.write("5,-0.01\n2020-01-03,oops,0.1\n2020-01-04,0.02,0.01\n")

    writer = threading.Thread(target=grow)
    writer.start()
    # the idle timeout leaves a loaded machine's thread scheduling room (1 s against a 0.3 s
    # sleep started before the reader was a race)
    src = FollowedFile(path, portfolio=ALL, poll=0.05, idle_timeout=2.5)
    got = []
    try:
        for tick in src:
            got.append(tick)
            first_read.set()
    finally:
        first_read.set()  # a reader that never got a tick fails now, not after the 60 s
        writer.join()
    assert len(got) == 4 and src.cursor == 4
    assert got[1].assets == {"a": 0.005, "b": -0.01}
    assert isinstance(got[2], BadLine) and "data line 3" in got[2].reason  # 'oops' is no number
    again = FollowedFile(path, portfolio=ALL, poll=0.05, idle_timeout=0.2)
    again.seek(3)
    rest = list(again)
    assert len(rest) == 1 and rest[0].as_of.day == 4
    with pytest.raises(SwarmVarError, match="no file"):
        FollowedFile(tmp_path / "missing.csv")


def test_portfolio_specs_are_checked():
    with pytest.raises(SwarmVarError):
        PortfolioSpec("p", weights={"a": 1.0}, positions={"a": 1.0})
    with pytest.raises(SwarmVarError):
        PortfolioSpec("p", weights={"a": 1.0, "b": -1.0})
    with pytest.raises(SwarmVarError):
        PortfolioSpec("")
    spec = PortfolioSpec("p", positions={"a": 300.0, "b": 100.0})
    assert spec.value_of({"a": 0.0, "b": 0.0}) == 0.0
    assert math.isclose(spec.value_of({"a": 0.01, "b": -0.02}),
                        math.log1p(0.75 * math.expm1(0.01) + 0.25 * math.expm1(-0.02)))


def test_refusal_patterns_are_bounded(swarm_home, monkeypatch):
    """A long run's distinct refusal messages stay bounded: past the cap they count together."""
    from swarmvar.swarm import runtime

    swarm, _, _ = swarm_home
    monkeypatch.setattr(runtime, "MAX_REFUSAL_PATTERNS", len(swarm.refusals) + 2)
    before = dict(swarm.refusals)
    for word in ("alpha", "beta", "gamma", "delta"):  # letters: nothing blanked, four patterns
        swarm._refuse(InvalidTick(f"a refusal named {word}"),
                      Tick("sp500", datetime(2020, 1, 2, tzinfo=UTC), value=0.0))
    new = {k: v for k, v in swarm.refusals.items() if k not in before}
    assert sorted(new) == ["a refusal named alpha", "a refusal named beta", "other refusals"]
    assert new["other refusals"] == (2, "a refusal named gamma")


# --- messages that say what a line must be and what differs (helper M-messages) -----------


def test_a_bad_json_line_is_quoted_and_told_what_a_line_must_be():
    from swarmvar.swarm.sources import QUOTED_CHARS, TICK_LINE_HINT

    long = "not json " + "x" * 200
    lines = [long, "[1, 2]", '{"portfolio": "sp500"}', '{"as_of": "2024-01-02"}',
             '{"portfolio": "sp500", "as_of": "2024-01-02", "colour": 1}', "\x1b[31mred"]
    got = list(JsonLines(io.StringIO("\n".join(lines) + "\n")))
    assert all(isinstance(b, BadLine) for b in got)
    reasons = [b.reason for b in got]
    assert reasons[0].startswith(f"line 1: {long[:QUOTED_CHARS]!r}... is not JSON (Expecting "
                                 "value at character 1); each line must be one JSON object")
    assert "line 1 column 1" not in reasons[0]  # the decoder's position, not the stream's
    assert reasons[1].startswith("line 2: '[1, 2]' is a JSON list, not an object;")
    assert reasons[2].startswith('line 3: \'{"portfolio": "sp500"}\' has no "as_of" date;')
    assert "names no portfolio" in reasons[3] and "unknown keys ['colour']" in reasons[4]
    assert reasons[5].startswith(r"line 6: '\x1b[31mred' is not JSON")  # escaped, one line
    assert all(TICK_LINE_HINT in r for r in reasons)
    # the example the hint shows is itself a good line
    example = TICK_LINE_HINT[TICK_LINE_HINT.index("e.g. ") + 5:]
    tick = next(iter(JsonLines(io.StringIO(example + "\n"))))
    assert isinstance(tick, Tick) and tick.portfolio == "sp500" and tick.value == -0.0042


@given(st.text(max_size=300))
@settings(max_examples=80, deadline=None)
def test_any_line_becomes_a_tick_or_a_one_line_bounded_reason(raw):
    from swarmvar.swarm.sources import QUOTED_CHARS, TICK_LINE_HINT

    for item in JsonLines(io.StringIO(raw.replace("\n", " ") + "\n")):
        if isinstance(item, BadLine):
            assert "\n" not in item.reason and "\r" not in item.reason
            assert item.reason.startswith("line 1: ")
            quoted = 10 * QUOTED_CHARS + 5  # repr: at most 10 characters per character
            assert len(item.reason) <= quoted + len(TICK_LINE_HINT) + 10 * len(raw) + 100


def test_a_zero_sum_book_says_why_and_how_to_measure_it():
    with pytest.raises(SwarmVarError) as err:
        PortfolioSpec("book", positions={"AAPL": 500000, "MSFT": -500000})
    text = str(err.value)
    assert "positions must be finite and must not sum to zero" in text
    assert "fraction of the net value" in text and "dollar-neutral" in text
    assert "swarmvar var --data" in text and "--positions AAPL=500000,MSFT=-500000" in text


def test_a_price_as_a_tick_value_is_called_a_price_and_percent_is_percent():
    from swarmvar.swarm.ticks import check_return

    with pytest.raises(InvalidTick, match="looks like a price"):
        check_return(2184.05, "the return of 'sp500'")
    with pytest.raises(InvalidTick, match="divide by 100") as err:
        check_return(1.7, "the return of 'sp500'")
    assert "price" not in str(err.value)


def test_a_resume_mismatch_names_only_what_differs():
    from swarmvar.swarm._portfolio_state import differences

    saved = {"portfolio": "sp500", "agents": ["NIG", "Boot", "T"], "window": 150,
             "refit_every": 20, "seed": 0}
    now = {**saved, "agents": ["NIG", "Boot"], "refit_every": 5}
    text = differences(saved, now)
    assert text == "agents: saved [NIG, Boot, T], now [NIG, Boot]; refit_every: saved 20, now 5"
    assert differences({**saved, "spread": 2}, saved) == "spread: saved 2, now (none)"
    assert differences(["junk"], saved).startswith("an unreadable record of them")
