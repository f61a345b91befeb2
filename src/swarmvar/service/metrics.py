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
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
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
        """The text format of every process's samples (merged in multiprocess mode)."""
        if multiprocess_dir() is not None:
            reg = CollectorRegistry()
            MultiProcessCollector(reg)  # type: ignore[no-untyped-call]
            return generate_latest(reg)
        return generate_latest(self.registry)


def _reason_class(why: str) -> str:
    """A bounded label for a free-text rejection reason."""
    w = why.lower()
    for key in ("signature", "stale", "replay", "nan", "finite", "not enough", "fit"):
        if key in w:
            return key.replace(" ", "_")
    return "other"
