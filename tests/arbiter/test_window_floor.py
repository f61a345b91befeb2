"""The fitting window's floor: ``arbiter replay`` and ``cached_history`` refuse a window
shorter than a replayed agent's ``min_observations`` before any backtest or cache write
(CLI exit 2, Python ``InvalidParameter``), naming the agent and the smallest window that
works; and ``cached_history`` names the file it read or wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import swarmvar.validation
from swarmvar.arbiter import BeatHistory, history
from swarmvar.arbiter.history import (
    WindowFloor,
    cache_path,
    cached_history,
    check_window,
    simulated_history,
    window_floor,
)
from swarmvar.cli import build_app
from swarmvar.errors import InvalidParameter, SwarmVarError
from swarmvar.models import DEFAULT_AGENTS, agent_class

runner = CliRunner()

#: The reference: the default swarm's largest ``min_observations`` and the first agent with it.
NEED = max(agent_class(n).min_observations for n in DEFAULT_AGENTS)
NEEDY = next(n for n in DEFAULT_AGENTS if agent_class(n).min_observations == NEED)


@pytest.fixture
def no_backtest(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The backtest replaced by one that records its calls and fails loudly."""
    ran: list[int] = []

    def backtest(*args: object, **kwargs: object) -> object:
        ran.append(1)
        raise AssertionError("the backtest ran")

    monkeypatch.setattr(swarmvar.validation, "backtest", backtest)
    return ran


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in folder.rglob("*"))


def test_the_floor_is_the_most_demanding_agents_minimum() -> None:
    assert window_floor() == WindowFloor(NEEDY, NEED)
    assert NEED > 50  # the old fixed floor let the default swarm's replay start and fail
    assert window_floor(["nig", "t"]) == WindowFloor("StudentT", 30)  # aliases, class names
    assert window_floor(["NormalInverseGamma", "bootstrap", "StudentT"]) == WindowFloor(
        "BayesianBootstrap", 50)
    assert check_window(NEED) == WindowFloor(NEEDY, NEED)  # the floor itself works
    assert check_window(10**6, ["nig"]) == WindowFloor("NormalInverseGamma", 2)
    with pytest.raises(SwarmVarError):
        window_floor(["no-such-agent"])
    with pytest.raises(InvalidParameter, match="at least one agent"):
        window_floor([])


def test_below_the_floor_the_agent_itself_refuses_to_fit() -> None:
    """The floor is the agents' own: one return fewer and the needy agent's fit refuses
    (the error a replay met seconds into the backtest before this check)."""
    from swarmvar.data import load

    r = load("sp500").to_numpy()
    for name in DEFAULT_AGENTS:
        cls = agent_class(name)
        with pytest.raises(SwarmVarError, match=f"needs at least {cls.min_observations}"):
            cls().fit(r[-(cls.min_observations - 1):], seed=0)


@pytest.mark.slow
def test_at_the_floor_every_default_agent_fits_real_returns() -> None:
    from swarmvar.data import load

    r = load("sp500").to_numpy()[-NEED:]
    for name in DEFAULT_AGENTS:
        agent_class(name)().fit(r, seed=0)


@pytest.mark.parametrize("window", [50, NEED - 1])
def test_the_cli_refuses_a_short_window_before_any_work(window: int, tmp_path: Path,
                                                        no_backtest: list[int]) -> None:
    home, shared = tmp_path / "home", tmp_path / "shared"
    kept = simulated_history(days=60, seed=1).save(shared / "kept.npz")  # a cache in use
    before = _listing(shared)
    for extra in ([], ["--cache", str(shared)]):
        result = runner.invoke(build_app("arbiter"), [
            "arbiter", "replay", "--last", "400", "--window", str(window), "--home", str(home),
            *extra])
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert (f"a window of {window} returns (--window {window}) is too short: {NEEDY} needs "
                f"at least {NEED} returns to fit; give a window of at least {NEED}") in text
        assert "window=" not in text and "Traceback" not in text
        assert "backtest of the default swarm" not in text
    assert not no_backtest
    assert not home.exists()  # no home, ledger or cache made
    assert _listing(shared) == before and kept.exists()  # the cache folder untouched


def test_the_cli_accepts_the_floor(tmp_path: Path) -> None:
    """At the floor the replay runs (from a seeded cache: no backtest)."""
    home = tmp_path / "home"
    path = cache_path("sp500", last=400, window=NEED, refit_every=20, alphas=(0.99, 0.975),
                      seed=0, agents=DEFAULT_AGENTS, cache=home / "cache" / "arbiter")
    simulated_history(days=400, seed=7).save(path)
    result = runner.invoke(build_app("arbiter"), [
        "arbiter", "replay", "--last", "400", "--window", str(NEED), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert path.name in "".join(result.output.split())


def test_cached_history_refuses_a_short_window_before_the_cache(
        tmp_path: Path, no_backtest: list[int]) -> None:
    announced: list[tuple[Path, bool]] = []
    cache = tmp_path / "cache"
    with pytest.raises(InvalidParameter) as info:
        cached_history("sp500", last=400, window=NEED - 1, cache=cache,
                       announce=lambda p, hit: announced.append((p, hit)))
    message = str(info.value)
    assert f"{NEEDY} needs at least {NEED} returns" in message
    assert f"window={NEED - 1} in Python" in message
    assert f"give a window of at least {NEED}" in message
    with pytest.raises(InvalidParameter, match="BayesianBootstrap needs at least 50"):
        cached_history("sp500", last=400, window=49, agents=["nig", "bb"], cache=cache)
    assert not cache.exists() and not announced and not no_backtest


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=st.one_of(st.integers(-10**9, 10**9), st.floats(allow_nan=True), st.text(max_size=5),
                        st.booleans(), st.none(), st.just(np.int64(NEED)),
                        st.just(np.int32(NEED - 1))))
def test_check_window_accepts_whole_windows_at_the_floor_and_refuses_the_rest(
        window: object) -> None:
    whole = isinstance(window, (int, np.integer)) and not isinstance(window, bool)
    if whole and int(window) >= NEED:  # type: ignore[call-overload]
        assert check_window(window) == WindowFloor(NEEDY, NEED)  # type: ignore[arg-type]
    else:
        with pytest.raises(InvalidParameter, match="window"):
            check_window(window)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=st.integers(-10**6, NEED - 1), last=st.integers(1, 5000))
def test_cached_history_below_the_floor_writes_nothing(window: int, last: int, tmp_path: Path,
                                                       no_backtest: list[int]) -> None:
    cache = tmp_path / "prop-cache"
    cache.mkdir(exist_ok=True)
    simulated_history(days=30, seed=2).save(cache / "other.npz")
    before = _listing(cache)
    with pytest.raises(InvalidParameter, match=f"{NEEDY} needs at least {NEED}"):
        cached_history("nasdaq", last=last, window=window, cache=cache)
    assert _listing(cache) == before and not no_backtest


def test_cached_history_names_the_file_it_read_or_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A miss writes the file and returns it as ``path``; the hit that follows reads it."""
    simulated = simulated_history(days=300, seed=3)
    calls: list[dict[str, object]] = []

    def backtest(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return "a backtest result"

    monkeypatch.setattr(swarmvar.validation, "backtest", backtest)
    monkeypatch.setattr(history.BeatHistory, "from_result",
                        classmethod(lambda cls, name, result, agents: simulated))
    announced: list[tuple[Path, bool]] = []
    cache = tmp_path / "cache"
    kwargs = {"last": 250, "window": NEED, "seed": 0, "cache": cache,
              "announce": lambda p, hit: announced.append((p, hit))}
    first = cached_history("sp500", **kwargs)  # type: ignore[arg-type]
    expected = cache_path("sp500", last=250, window=NEED, refit_every=20,
                          alphas=(0.99, 0.975), seed=0, agents=DEFAULT_AGENTS, cache=cache)
    assert len(calls) == 1 and calls[0]["window"] == NEED
    assert first.path == expected and expected.exists() and announced == [(expected, False)]
    again = cached_history("sp500", **kwargs)  # type: ignore[arg-type]
    assert len(calls) == 1 and again.path == expected and announced[-1] == (expected, True)
    np.testing.assert_array_equal(again.cols, simulated.cols)
    assert BeatHistory.load(expected).path == expected
    assert simulated.path is None and simulated.slice(0, 10).path is None


def test_the_arbiter_page_states_the_default_swarms_floor() -> None:
    """docs/arbiter.md's minimums are the classes' own (a change to an agent's minimum
    fails here until the page says it)."""
    page = Path(__file__).parents[2] / "docs" / "arbiter.md"
    text = " ".join(page.read_text(encoding="utf-8").split())
    start = text.index("**The window's floor.**")
    para = text[start:text.index("(`tests/arbiter/test_window_floor.py`)", start)]
    assert f"default swarm that is {NEEDY} at {NEED} returns" in para
    assert f"{NEEDY} needs at least {NEED} returns to fit; give a window of at least {NEED}" in para
    for name in DEFAULT_AGENTS:
        assert name in para
        m = agent_class(name).min_observations
        assert f"{name} {m}" in para or f"{name} at {m}" in para, name
