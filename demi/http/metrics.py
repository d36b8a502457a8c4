"""Prometheus metrics for demi, each labelled by ``platform`` (the instance name).

``demi_platform_up``, ``demi_platform_health_status``,
``demi_health_check_duration_seconds``, ``demi_requests_total``,
``demi_request_errors_total``, ``demi_request_duration_seconds`` and
``demi_platform_restarts_total``: dashboards depend on these names.

``demi_platform_restarts_total`` also carries ``reason``, one of
:data:`~demi.supervision.RESTART_REASONS` (any other reason given to
``Supervisor.restart`` gets a series of its own). The known reasons are seeded at
zero for every platform.

``demi_platform_health_status`` reads the latest result from its one owner, the
plugin manager (``InstanceStatus.health``), as ``/health`` and ``/readyz`` do.

Inbound events: ``demi_events_received_total`` (accepted into the inbox),
``demi_events_duplicate_total`` (dropped as redeliveries),
``demi_events_handled_total`` (with ``outcome``: ``ok``, ``error``, ``timeout``),
``demi_event_handler_duration_seconds``, ``demi_inbox_depth`` (events buffered, not
yet handed to the handler) and ``demi_platform_connected`` (1 while a listening
platform's ``run`` has called ``started()`` and not ended; series only for
listening platforms). The counters observe the conductor's inbound side, so the
:class:`Metrics` must be built before the conductor's session begins.

prometheus_client's ``_created`` series (a gauge beside every counter and histogram
holding when it was created) are left out of the exposition: in this text format
they are one more gauge per series that no dashboard reads. They are left out here,
not with ``prometheus_client.disable_created_metrics()``, which would also remove
them from every other registry of a program that embeds demi.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..conductor import Conductor
from ..coordination import Coordinator
from ..platforms.base import HealthStatus, PluginHealth
from ..platforms.inbound import InboundEvent
from ..plugins.base import PluginState
from ..supervision import RESTART_REASONS, Supervisor

__all__ = ["CONTENT_TYPE", "Metrics"]

#: The exposition format's content type.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: How a handler call ended, as ``demi_events_handled_total`` labels it.
OUTCOMES = ("ok", "error", "timeout")

_HEALTH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """A private registry fed by the conductor and the supervisor.

    ``demi_platform_health_status`` is a state set: for each platform, the series of
    its current status has value 1 and the others 0.
    """

    def __init__(
        self,
        conductor: Conductor,
        supervisor: Supervisor,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        registry.register(_Coordination(conductor, coordinator))
        self.up = Gauge(
            "demi_platform_up", "1 while the platform is active.", ["platform"],
            registry=registry,
        )  # fmt: skip
        self.health_status = Gauge(
            "demi_platform_health_status", "Latest health status (state set).",
            ["platform", "status"], registry=registry,
        )  # fmt: skip
        self.health_duration = Histogram(
            "demi_health_check_duration_seconds", "Health-check duration.",
            ["platform"], buckets=_HEALTH_BUCKETS, registry=registry,
        )  # fmt: skip
        self.requests = Counter(
            "demi_requests_total",
            "Requests dispatched.",
            ["platform"],
            registry=registry,
        )
        self.request_errors = Counter(
            "demi_request_errors_total", "Requests that failed.", ["platform"],
            registry=registry,
        )  # fmt: skip
        self.request_duration = Histogram(
            "demi_request_duration_seconds", "Request duration.", ["platform"],
            registry=registry,
        )  # fmt: skip
        self.restarts = Counter(
            "demi_platform_restarts_total", "Restarts, by who asked and why.",
            ["platform", "reason"], registry=registry,
        )  # fmt: skip
        self.events_received = Counter(
            "demi_events_received_total", "Inbound events accepted.", ["platform"],
            registry=registry,
        )  # fmt: skip
        self.events_duplicate = Counter(
            "demi_events_duplicate_total", "Inbound events dropped as redeliveries.",
            ["platform"], registry=registry,
        )  # fmt: skip
        self.events_handled = Counter(
            "demi_events_handled_total", "Handler calls, by outcome.",
            ["platform", "outcome"], registry=registry,
        )  # fmt: skip
        self.handler_duration = Histogram(
            "demi_event_handler_duration_seconds", "Handler call duration.",
            ["platform"], registry=registry,
        )  # fmt: skip
        self.inbox_depth = Gauge(
            "demi_inbox_depth", "Inbound events buffered for the handler.",
            ["platform"], registry=registry,
        )  # fmt: skip
        self.connected = Gauge(
            "demi_platform_connected",
            "1 while a listening platform's connection is up.",
            ["platform"], registry=registry,
        )  # fmt: skip
        # Instances seen listening: their series stays (at 0) while they have no
        # platform behind them, after a lost connection for instance.
        self._listening: set[str] = set()
        self._conductor = conductor
        # What render() exposes: the registry above without the _created series.
        self._exposed = CollectorRegistry(auto_describe=False)
        self._exposed.register(_WithoutCreated(registry))
        conductor.add_request_observer(self._on_request)
        conductor.inbound.add_event_observer(self._on_event)
        conductor.inbound.add_handled_observer(self._on_handled)
        supervisor.add_restart_observer(self._on_restart)
        supervisor.add_round_observer(self._on_round)
        for status in conductor.instances():
            self._seed(status.instance)

    def _seed(self, platform: str) -> None:
        # Series exist from the start, so rate() and absent() behave on dashboards.
        self.requests.labels(platform=platform)
        self.request_errors.labels(platform=platform)
        for reason in RESTART_REASONS:
            self.restarts.labels(platform=platform, reason=reason)
        self.events_received.labels(platform=platform)
        self.events_duplicate.labels(platform=platform)
        for outcome in OUTCOMES:
            self.events_handled.labels(platform=platform, outcome=outcome)

    def _on_event(self, platform: str, what: str) -> None:
        counter = self.events_received if what == "received" else self.events_duplicate
        counter.labels(platform=platform).inc()

    def _on_handled(
        self, event: InboundEvent, outcome: str, seconds: float, reason: str | None
    ) -> None:
        self.events_handled.labels(platform=event.instance, outcome=outcome).inc()
        self.handler_duration.labels(platform=event.instance).observe(seconds)

    def _on_request(
        self, platform: str, seconds: float, error: BaseException | None
    ) -> None:
        self.requests.labels(platform=platform).inc()
        self.request_duration.labels(platform=platform).observe(seconds)
        if error is not None:
            self.request_errors.labels(platform=platform).inc()

    def _on_restart(self, platform: str, reason: str) -> None:
        self.restarts.labels(platform=platform, reason=reason).inc()

    def _on_round(self, results: dict[str, PluginHealth]) -> None:
        for name, health in results.items():
            self.health_duration.labels(platform=name).observe(
                health.response_time_ms / 1000
            )

    def render(self) -> bytes:
        """The exposition text, with the gauges brought up to date first."""
        for status in self._conductor.instances():
            name = status.instance
            self._seed(name)
            self.up.labels(platform=name).set(
                1 if status.state is PluginState.ACTIVE else 0
            )
            self.inbox_depth.labels(platform=name).set(status.inbox_depth)
            if status.connected is not None:
                self._listening.add(name)
            if name in self._listening:
                self.connected.labels(platform=name).set(1 if status.connected else 0)
            current = status.health.status if status.health else HealthStatus.UNKNOWN
            for value in HealthStatus:
                self.health_status.labels(platform=name, status=value.value).set(
                    1 if value is current else 0
                )
        return generate_latest(self._exposed)


class _Coordination(Collector):
    """The replica's place in its coordination group, read from its coordinator at
    each scrape (without coordination: no members, not connected, every enabled
    instance its own, no rebalance)."""

    def __init__(self, conductor: Conductor, coordinator: Coordinator | None) -> None:
        self._conductor = conductor
        self._coordinator = coordinator

    def collect(self) -> Iterable[Metric]:
        """The four coordination series."""
        coordinator = self._coordinator
        if coordinator is None:
            members, connected, rebalances = 0, 0, 0
            owned = len(self._conductor.settings.enabled_platforms())
        else:
            members = len(coordinator.members)
            connected = 1 if coordinator.connected else 0
            owned, rebalances = coordinator.owned(), coordinator.rebalances
        yield GaugeMetricFamily(
            "demi_coordination_members",
            "Members of the coordination group, as this replica last read them.",
            value=members,
        )
        yield GaugeMetricFamily(
            "demi_owned_instances",
            "Instances the hash ring gives this replica.",
            value=owned,
        )
        yield CounterMetricFamily(
            "demi_rebalances",
            "Changes of the instances the hash ring gives this replica.",
            value=rebalances,
        )
        yield GaugeMetricFamily(
            "demi_coordination_connected",
            "1 while the coordination backend answers this replica's heartbeats.",
            value=connected,
        )


class _WithoutCreated(Collector):
    """The metrics of ``registry`` without their ``_created`` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        """Each metric of the registry, its ``_created`` samples dropped."""
        for metric in self._registry.collect():
            # collect() builds fresh Metric objects each time: trimming is safe.
            metric.samples = [
                sample
                for sample in metric.samples
                if not sample.name.endswith("_created")
            ]
            yield metric
