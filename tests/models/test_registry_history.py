"""``most_needed``: the agent that needs the most history to fit, the one rule behind the
service's ``min_history`` and the arbiter's ``window_floor`` (and the backtest's refusal)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmvar.arbiter.history import WindowFloor, window_floor
from swarmvar.errors import InvalidParameter, SwarmVarError, UnknownAgent
from swarmvar.models.registry import (
    AGENT_MODULES,
    ALIASES,
    agent_class,
    canonical_name,
    most_needed,
    neediest,
)
from swarmvar.service.desk_book import MIN_HISTORY, min_history

#: Every registered name: class names, their case variants and the aliases.
NAMES = sorted({*AGENT_MODULES, *ALIASES, *(n.upper() for n in AGENT_MODULES)})


def _reference(names: list[str]) -> tuple[int, str]:
    """Written out: the largest need, the first name (in the order given) that has it."""
    needs = [agent_class(n).min_observations for n in names]
    top = max(needs)
    return top, canonical_name(names[needs.index(top)])


def test_the_largest_need_and_its_canonical_name() -> None:
    assert most_needed(["nig"]) == (2, "NormalInverseGamma")
    assert most_needed(["nig", "bb", "t"]) == (50, "BayesianBootstrap")
    assert most_needed(["GARCH-EVT", "nig"]) == (200, "GarchEVT")  # case-insensitive alias
    assert most_needed(("evt",)) == (agent_class("GarchEVT").min_observations, "GarchEVT")


def test_the_first_named_wins_a_tie() -> None:
    tied = [n for n in AGENT_MODULES if agent_class(n).min_observations == 100]
    assert len(tied) >= 3  # GarchT, BetaSkewTEgarch, HarArch, the Markov switchers
    for order in (tied, tied[::-1], [tied[1], tied[0]]):
        assert most_needed(["nig", *order]) == (100, order[0])
    assert most_needed(["har", "garch"]) == (100, "HarArch")  # not the largest name
    assert most_needed(["garch", "har"]) == (100, "GarchT")
    assert neediest([("b", 5), ("a", 5), ("c", 4)]) == (5, "b")


def test_unknown_names_and_an_empty_roster_are_refused() -> None:
    with pytest.raises(UnknownAgent, match="no agent called 'no-such'; known agents"):
        most_needed(["nig", "no-such"])
    with pytest.raises(InvalidParameter, match="at least one agent"):
        most_needed([])
    with pytest.raises(InvalidParameter, match="at least one agent"):
        neediest([])


def test_the_wrappers_keep_their_own_rules() -> None:
    """The arbiter's floor is the helper's answer; the service's adds its 30-return floor
    (a portfolio's stored history, whatever its agents)."""
    assert window_floor(["nig"]) == WindowFloor("NormalInverseGamma", 2)
    assert min_history(["nig"]) == (MIN_HISTORY, "every portfolio")
    assert window_floor(["har", "garch"]) == WindowFloor("HarArch", 100)
    assert min_history(["har", "garch"]) == (100, "HarArch")
    with pytest.raises(InvalidParameter, match="at least one agent"):
        min_history([])


@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8))
def test_every_roster_agrees_with_the_reference_and_the_wrappers(names: list[str]) -> None:
    need, agent = most_needed(names)
    assert (need, agent) == _reference(names)
    assert agent in AGENT_MODULES
    assert window_floor(names) == WindowFloor(agent, need)
    assert min_history(names) == ((need, agent) if need >= MIN_HISTORY
                                  else (MIN_HISTORY, "every portfolio"))


@given(st.lists(st.sampled_from(NAMES), max_size=4),
       st.text(min_size=1, max_size=12).filter(
           lambda s: s.lower() not in {n.lower() for n in NAMES}))
def test_any_unknown_name_is_refused_by_name(names: list[str], bad: str) -> None:
    with pytest.raises(SwarmVarError, match="no agent called"):
        most_needed([*names, bad])
