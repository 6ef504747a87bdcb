"""The service's Prometheus metrics (prometheus_client), in a registry of its own.

Two kinds. Gauges of the target's state (configurations by status, drift, pending changes, held
deletes, the last successful pass) are computed at each scrape from the shared state store, so every
replica reports the same values (aggregate replicas with ``max``). Counters and the pass-duration
histogram count what this process did: only the active loop reconciles and calls Graph, so they are
zero on a standby (aggregate with ``sum``). docs/serve.md lists every metric with its meaning.

Graph requests are counted at the HTTP layer, through an httpx response hook on the Graph provider's
client: each request sent is counted once by its answer (retries count again; the requests inside
one ``$batch`` are one request).

I/O: reads the state store (through the given reader) at each scrape; nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reconciler.engine.apply import ApplyResult
from reconciler.engine.journal import ChangeOutcome
from reconciler.engine.reconcile import PassResult
from reconciler.serve.view import STATUSES, Overview, timestamp

__all__ = ["CONTENT_TYPE", "Metrics", "graph_outcome"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Pass durations: a no-change pass of a few configurations takes well under a second, a first apply of
# hundreds through Graph can take many minutes.
WEBHOOK_RESULTS = ("accepted", "ignored", "duplicate", "unauthorized", "too_large", "bad_request", "disabled")
_DURATION_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def graph_outcome(status: int) -> str:
    """The ``outcome`` label of a Graph answer: success, throttled (429), client_error, server_error."""
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"


class _StateCollector(Collector):
    """The gauges computed from the shared state at each scrape."""

    def __init__(self, read: Callable[[], Overview], leading: Callable[[], bool]) -> None:
        self._read = read
        self._leading = leading

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "reconciler_state_store_up", "1 when the state store could be read at this scrape, else 0."
        )
        active = GaugeMetricFamily(
            "reconciler_active_loop", "1 on the replica whose loop is the active one (the leader), else 0."
        )
        active.add_metric([], 1.0 if self._leading() else 0.0)
        try:
            view = self._read()
        except Exception:  # a store that cannot be read is reported, never a failed scrape
            up.add_metric([], 0.0)
            yield from (up, active)
            return
        up.add_metric([], 1.0)
        yield from (up, active)
        by_status = GaugeMetricFamily(
            "reconciler_configurations",
            "Configurations by status (from the last snapshot).",
            labels=["status"],
        )
        for status in STATUSES:
            by_status.add_metric([status.replace(" ", "_")], float(view.counts.get(status, 0)))
        yield by_status
        yield _gauge(
            "reconciler_drifted_fields",
            "Fields that differ from the applied commit (drift), over all configurations.",
            sum(len(c.drift) for c in view.configurations),
        )
        yield _gauge(
            "reconciler_pending_changes",
            "Changes a plan from the followed commit would make (creates, updates, restarts...).",
            sum(c.pending_changes for c in view.configurations),
        )
        yield _gauge(
            "reconciler_held_deletes",
            "Deletes the plan holds back (needing --allow-delete, --allow-mass-delete or protected).",
            sum(c.held_deletes for c in view.configurations),
        )
        last = timestamp(view.last_success_at)
        if last is not None:
            yield _gauge(
                "reconciler_last_successful_reconcile_timestamp_seconds",
                "When a pass last ran to its end without error (drift found counts as a successful pass).",
                last,
            )
        taken = timestamp(view.snapshot_at)
        if taken is not None:
            yield _gauge(
                "reconciler_snapshot_timestamp_seconds",
                "When the active loop last stored the state the other gauges are computed from.",
                taken,
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


class Metrics:
    """The registry and this process's counters; ``render`` is the ``/metrics`` body."""

    def __init__(self, read: Callable[[], Overview], leading: Callable[[], bool]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.passes = Counter(
            "reconciler_reconcile_passes",
            "Reconcile passes run by this replica, by result (in-sync, applied, healed, drift, failed, "
            "error, stopped).",
            ["result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "reconciler_reconcile_duration_seconds",
            "How long a reconcile pass took (fetch, plan, apply, snapshot).",
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.graph_requests = Counter(
            "reconciler_graph_requests",
            "Microsoft Graph requests sent by this replica, by outcome (success, throttled = 429, "
            "client_error, server_error).",
            ["outcome"],
            registry=self.registry,
        )
        self.apply_changes = Counter(
            "reconciler_apply_changes",
            "Changes applied by this replica's loop, by outcome (ok, failed, skipped).",
            ["outcome"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "reconciler_webhook_requests",
            "Requests to /hooks/git, by result (" + ", ".join(WEBHOOK_RESULTS) + ").",
            ["result"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(read, leading))
        # Every series from the start, at 0: an alert on a rate needs the series before its first event.
        for counter, values in (
            (self.passes, [r.value for r in PassResult]),
            (self.graph_requests, ["success", "throttled", "client_error", "server_error"]),
            (self.apply_changes, [ChangeOutcome.OK, ChangeOutcome.FAILED, ChangeOutcome.SKIPPED]),
            (self.webhooks, list(WEBHOOK_RESULTS)),
        ):
            for value in values:
                counter.labels(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def pass_finished(self, result: str, seconds: float) -> None:
        self.passes.labels(result).inc()
        self.duration.observe(seconds)

    def applied(self, result: ApplyResult) -> None:
        for outcome in result.outcomes:
            self.apply_changes.labels(outcome.status).inc()

    def count_graph_requests(self, provider: Any) -> bool:
        """Count the Graph requests of ``provider`` (a Graph provider); False for any other target."""
        client = getattr(getattr(provider, "client", None), "_http", None)
        if not isinstance(client, httpx.Client):
            return False

        def seen(response: httpx.Response) -> None:
            self.graph_requests.labels(graph_outcome(response.status_code)).inc()

        hooks = client.event_hooks
        hooks["response"] = [*hooks.get("response", []), seen]
        client.event_hooks = hooks
        return True
