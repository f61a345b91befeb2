"""Property over the lifecycle stores' public entry points: a correct result, or a
SwarmVarError (CLI: a message and exit 2) and nothing stored changed.

Entry points: ``StateStore.put``/``put_many``/``get``/``prune``, ``new_variant`` with
the agent's real constructor + ``VariantStore.add``, ``MetricsStore.record``, and the
``swarmvar variants`` commands.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli.variants import app
from swarmvar.errors import SwarmVarError
from swarmvar.evolution import (
    EvolutionHome,
    MetricRecord,
    StateConfig,
    VariantStatus,
    new_variant,
    open_home,
)
from swarmvar.models.bootstrap import BayesianBootstrap
from swarmvar.models.nig import NormalInverseGamma

CTORS = {NormalInverseGamma.name: NormalInverseGamma, BayesianBootstrap.name: BayesianBootstrap}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
runner = CliRunner()

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.binary(max_size=6),
    st.lists(st.integers(-3, 3), max_size=3).map(tuple), st.just(object()),
)


@contextmanager
def _home() -> Iterator[EvolutionHome]:
    with tempfile.TemporaryDirectory() as tmp:
        from swarmvar.evolution import EvolutionConfig

        h = open_home(tmp, EvolutionConfig(state=StateConfig(fsync=False)))
        try:
            yield h
        finally:
            h.close()


def _snapshot(h: EvolutionHome) -> tuple[Any, ...]:
    tables = ("variants", "state_versions", "state_chunks", "state_current", "metrics")
    return tuple(tuple(h.db.read(f"SELECT * FROM {t} ORDER BY 1, 2")) for t in tables)


def _correct_or_refused(h: EvolutionHome, call: Any) -> Any:
    before = _snapshot(h)
    try:
        return call()
    except SwarmVarError:
        assert _snapshot(h) == before
        return None


@SETTINGS
@given(agent=st.one_of(st.text(max_size=5), ODD), data=st.one_of(st.binary(max_size=300), ODD),
       now=ODD, expected=st.one_of(st.none(), ODD), version=st.one_of(st.none(), ODD),
       keep=ODD)
def test_state_store(agent: Any, data: Any, now: Any, expected: Any, version: Any,
                     keep: Any) -> None:
    with _home() as h:
        h.states.put("a", b"first", now=1.0)
        ref = _correct_or_refused(
            h, lambda: h.states.put(agent, data, now=now, expected_version=expected))
        if ref is not None:
            assert h.states.get(agent, cached=False) == bytes(data)
        got = _correct_or_refused(h, lambda: h.states.get("a", version, cached=False))
        if got is not None:
            assert got == b"first"
        _correct_or_refused(h, lambda: h.states.put_many(data, now=1.0))
        dropped = _correct_or_refused(h, lambda: h.states.prune("a", keep))
        if dropped is not None:
            assert h.states.get("a", cached=False) == b"first"  # the current one stays


PARAMS = st.dictionaries(
    st.sampled_from(["forgetting", "prior_mean", "window", "n_draws", "nope", ""]), ODD,
    max_size=3)


@SETTINGS
@given(cls=st.sampled_from(["NormalInverseGamma", "BayesianBootstrap", "Nope", ""]),
       params=PARAMS, now=ODD)
def test_new_variant_is_built_before_it_is_stored(cls: str, params: Any, now: Any) -> None:
    with _home() as h:
        v = _correct_or_refused(
            h, lambda: h.variants.add(new_variant(cls, params, CTORS, now=now)))
        if v is not None:  # stored only if the agent itself accepts the parameters
            agent = CTORS[cls](**dict(v.parameters))
            assert all(agent.params()[k] == params[k] or isinstance(params[k], tuple)
                       for k in params)
            assert h.variants.get(v.id).status is VariantStatus.DRAFT


@SETTINGS
@given(fields=st.lists(st.tuples(ODD, ODD, ODD, ODD), min_size=1, max_size=4))
def test_metric_records(fields: list[tuple[Any, Any, Any, Any]]) -> None:
    with _home() as h:
        records = [MetricRecord("v1", at, sr, lat, breach_rate=br)  # type: ignore[arg-type]
                   for at, sr, lat, br in fields]
        n = _correct_or_refused(h, lambda: h.metrics.record(records))
        if n is not None:
            assert h.metrics.count("v1") == n == len(records)


COMMANDS = st.sampled_from([
    ["list"], ["list", "--status", "{x}"], ["create", "{x}", "--set", "{y}"],
    ["create", "nig", "--set", "forgetting={x}"], ["create", "bb", "--set", "window={x}"],
    ["promote", "{v}"], ["promote", "{v}", "--force"], ["canary", "start", "{v}"],
    ["canary", "check", "{v}"], ["canary", "check", "{v}", "--result", "{x}"],
    ["canary", "status", "{v}"], ["rollback", "variant", "{v}"], ["rollback", "to", "{x}"],
    ["breaker", "status", "{v}"], ["breaker", "reset", "{v}"],
])
TEXT = st.sampled_from(["", "x", "nan", "inf", "-5", "0", "1", "0.95", "1e400", "[1, 2]",
                        '"s"', "null", "true", "99999999999999999999999", "draft", "pass",
                        "forgetting=0.9", "=", "a=b", "\x00"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command=COMMANDS, x=TEXT, y=TEXT, known=st.booleans())
def test_cli(command: list[str], x: str, y: str, known: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h = open_home(tmp)
        vid = h.variants.add(new_variant("NormalInverseGamma", {"forgetting": 0.97}, CTORS,
                                         now=1.0)).id
        before = _snapshot(h)
        h.close()
        args = [a.format(x=x, y=y, v=vid if known else x) for a in command]
        res = runner.invoke(app, [*args, "--home", tmp])
        assert res.exit_code in (0, 2), (args, res.output, repr(res.exception))
        assert res.exception is None or isinstance(res.exception, SystemExit), (
            args, repr(res.exception))
        if res.exit_code == 2:
            h = open_home(tmp)
            assert _snapshot(h) == before, args
            h.close()
