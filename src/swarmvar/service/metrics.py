"""Prometheus metrics of the service: beats, risk, ledger, HTTP.

Names follow the Prometheus conventions (``swarmvar_`` prefix, base units,
counters ending in ``_total``); labels are bounded: portfolio and level,
decision kind, rejection reason class, route template and status code -
never a request id. ``swarmvar_beat_duration_seconds`` has one sample per beat (its
measured seconds), ``swarmvar_ingest_duration_seconds`` one per ingest request; a gauge
never set (the last ledger verification) is absent from the scrape rather than 0.
HTTP names mirror prometheus-fastapi-instrumentator's
(``http_requests_total``, ``http_request_duration_seconds``) under the prefix.

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` must be set
before the workers start (``swarmvar serve --workers N`` does it); every
process then writes its samples there and :meth:`Metrics.exposition`
merges them (gauges: the most recent value, or the sum where it is a count).

A scrape carries no ``<counter>_created`` (nor histogram ``_created``) series: the
timestamps at which each labelled child was made would double the counters' lines and
say nothing an operator reads. prometheus_client's own switch for that,
``disable_created_metrics()``, flips a process-wide flag (module state of
``prometheus_client.metrics``) that would also change the metrics of any other code in
the process (an application embedding ``create_app`` next to its own registry): so the
service leaves the flag alone and drops those samples from its own exposition only
(:class:`_WithoutCreated`, one per scrape's registry).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ..types import BeatReport, Decision

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BEAT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The service's metrics on their own registry (one per app, no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        mp = multiprocess_dir() is not None
        recent = {"multiprocess_mode": "mostrecent"} if mp else {}
        summed = {"multiprocess_mode": "livesum"} if mp else {}
        self.beats = Counter("swarmvar_beats_total", "Beats run, per portfolio.",
                             ["portfolio"], registry=r)
        #: One sample per beat this process ran (its measured seconds, as the ledger's
        #: tick entry records them), observed by :meth:`observe_beat_seconds`.
        self.beat_duration = Histogram("swarmvar_beat_duration_seconds",
                                       "Wall time of one beat of one portfolio.",
                                       buckets=_BEAT_BUCKETS, registry=r)
        #: One sample per ingest request that stored returns (a batch of 50: one sample of
        #: its 50 beats and their ledger write).
        self.ingest_seconds = Histogram("swarmvar_ingest_duration_seconds",
                                        "Wall time of an ingest request's beats and ledger "
                                        "write (one sample per request; a batch's beats "
                                        "together).", buckets=_BEAT_BUCKETS, registry=r)
        self.var = Gauge("swarmvar_var", "Consensus VaR (loss, fraction of value).",
                         ["portfolio", "level"], registry=r, **recent)  # type: ignore[arg-type]
        self.es = Gauge("swarmvar_es", "Consensus expected shortfall (loss, fraction).",
                        ["portfolio", "level"], registry=r, **recent)  # type: ignore[arg-type]
        self.var_interval = Gauge(
            "swarmvar_var_interval", "Consensus VaR's credible interval: its lower and upper "
            "bound (loss, fraction of value).", ["portfolio", "level", "bound"], registry=r,
            **recent)  # type: ignore[arg-type]
        self.es_interval = Gauge(
            "swarmvar_es_interval", "Consensus expected shortfall's credible interval: its "
            "lower and upper bound (loss, fraction of value).",
            ["portfolio", "level", "bound"], registry=r, **recent)  # type: ignore[arg-type]
        self.breaches = Counter("swarmvar_breaches_total",
                                "Realized losses beyond the previous consensus VaR.",
                                ["portfolio", "level"], registry=r)
        self.decisions = Counter("swarmvar_decisions_total", "Arbiter decisions by kind.",
                                 ["action"], registry=r)
        self.rejected = Counter("swarmvar_estimates_rejected_total",
                                "Agent estimates refused or missing, by reason class.",
                                ["reason"], registry=r)
        self.agents_available = Gauge("swarmvar_agents_available",
                                      "Agents whose estimate counted in the last consensus.",
                                      ["portfolio"], registry=r, **recent)  # type: ignore[arg-type]
        self.ledger_entries = Gauge("swarmvar_ledger_entries", "Entries in the ledger.",
                                    registry=r, **recent)  # type: ignore[arg-type]
        self.ledger_verified = _SetOnce(lambda: Gauge(
            "swarmvar_ledger_last_verification_timestamp_seconds",
            "Unix time of the last successful full chain check (absent: none yet).",
            registry=r, **recent))  # type: ignore[arg-type]
        self.sandbox_violations = Counter("swarmvar_sandbox_violations_total",
                                          "Sandbox violations reported by the runtime.",
                                          ["kind"], registry=r)
        self.observer_skipped = Counter(
            "swarmvar_observer_beats_skipped_total",
            "Beats an observer (the arbiter) decided nothing on because it raised an error, "
            "by observer and reason (fault).",
            ["observer", "reason"], registry=r)
        self.ingested = Counter("swarmvar_returns_ingested_total",
                                "Returns ingested, by outcome (new or duplicate).",
                                ["outcome"], registry=r)
        self.requests = Counter("swarmvar_http_requests_total", "HTTP requests.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("swarmvar_http_request_duration_seconds",
                                 "HTTP request latency (streaming responses, such as "
                                 "/events, left out).", ["method", "route"],
                                 buckets=_HTTP_BUCKETS, registry=r)
        self.in_flight = Gauge("swarmvar_http_requests_in_progress", "Requests being served.",
                               registry=r, **summed)  # type: ignore[arg-type]

    def observe_beat(self, report: BeatReport, decisions: tuple[Decision, ...] = ()) -> None:
        p = report.portfolio
        self.beats.labels(p).inc()
        for c in report.consensus:
            level = f"{c.alpha:g}"
            self.var.labels(p, level).set(c.var)
            self.es.labels(p, level).set(c.es)
            for bound, v, e in zip(("lower", "upper"), c.var_interval, c.es_interval,
                                   strict=True):
                self.var_interval.labels(p, level, bound).set(v)
                self.es_interval.labels(p, level, bound).set(e)
        if report.consensus:
            self.agents_available.labels(p).set(report.consensus[0].available)
        flags = report.breaches.get("consensus", ())
        for c, hit in zip(report.consensus, flags, strict=False):
            if hit:
                self.breaches.labels(p, f"{c.alpha:g}").inc()
        for why in report.rejected.values():
            self.rejected.labels(_reason_class(why)).inc()
        for d in decisions:
            self.decisions.labels(d.action.value).inc()

    def observe_beat_seconds(self, report: BeatReport, seconds: float) -> None:
        """One beat's measured wall time (``swarmvar_beat_duration_seconds``)."""
        self.beat_duration.observe(seconds)

    def exposition(self) -> bytes:
        """The text format of every process's samples (merged in multiprocess mode),
        without ``_created`` series (see the module's docstring)."""
        source = self.registry
        if multiprocess_dir() is not None:
            source = CollectorRegistry()
            MultiProcessCollector(source)  # type: ignore[no-untyped-call]
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_WithoutCreated(source))
        return generate_latest(scrape)


class _SetOnce:
    """A gauge made (and so exposed) on its first ``set``: until then the scrape has no
    series at all, rather than a 0 that reads as a time (1970)."""

    def __init__(self, make: Callable[[], Gauge]) -> None:
        self._make = make
        self._gauge: Gauge | None = None
        self._lock = threading.Lock()  # two first sets at once would register it twice

    def set(self, value: float) -> None:
        with self._lock:
            if self._gauge is None:
                self._gauge = self._make()
        self._gauge.set(value)


class _Collecting(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class _WithoutCreated:
    """A collector yielding ``source``'s metric families without their ``_created`` samples
    (a family's own name + ``_created``: a gauge named ``..._created`` is kept)."""

    def __init__(self, source: _Collecting) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            created = family.name + "_created"
            kept = [s for s in family.samples if s.name != created]
            if len(kept) != len(family.samples):
                family = Metric(family.name, family.documentation, family.type, family.unit)
                family.samples = kept
            yield family


def _reason_class(why: str) -> str:
    """A bounded label for a free-text rejection reason."""
    w = why.lower()
    for key in ("signature", "stale", "replay", "nan", "finite", "not enough", "fit"):
        if key in w:
            return key.replace(" ", "_")
    return "other"
