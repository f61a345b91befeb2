"""Prometheus metrics of the service: beats, risk, ledger, HTTP.

Names follow the Prometheus conventions (``swarmvar_`` prefix, base units,
counters ending in ``_total``); labels are bounded: portfolio and level,
decision kind, rejection reason class, route template and status code -
never a request id. HTTP names mirror prometheus-fastapi-instrumentator's
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
from collections.abc import Iterable, Iterator
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
        self.beat_seconds = Histogram("swarmvar_beat_duration_seconds",
                                      "Wall time of an ingestion's beats.",
                                      buckets=_BEAT_BUCKETS, registry=r)
        self.var = Gauge("swarmvar_var", "Consensus VaR (loss, fraction of value).",
                         ["portfolio", "level"], registry=r, **recent)  # type: ignore[arg-type]
        self.es = Gauge("swarmvar_es", "Consensus expected shortfall (loss, fraction).",
                        ["portfolio", "level"], registry=r, **recent)  # type: ignore[arg-type]
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
        self.ledger_verified = Gauge("swarmvar_ledger_last_verification_timestamp_seconds",
                                     "Unix time of the last successful full chain check.",
                                     registry=r, **recent)  # type: ignore[arg-type]
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
                                 "HTTP request latency.", ["method", "route"],
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
