"""Prometheus metrics of the dashboard's frame hub (viewers, frames, viewer drops)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actorflow.flowunits.dashboard.hub import FrameHub

_COUNTERS = (
    ("published", "Frames dashboard sinks handed to the hub."),
    ("encoded", "JPEGs encoded for viewers (only while someone watches)."),
    ("skipped", "Frames replaced by a newer one before being encoded."),
    ("failed", "Frames the encoder could not encode (logged as dashboard_encode_failed)."),
    ("viewer_sent", "Frames and status messages handed to viewers."),
    ("viewer_dropped", "JPEGs replaced in a viewer's latest-only slot before it took them."),
)


class HubCollector(Collector):
    """``actorflow_dashboard_*`` from one hub's counters, read at scrape time."""

    def __init__(self, hub: FrameHub) -> None:
        self.hub = hub

    def describe(self) -> list[Metric]:
        """No up-front description (the values are read at scrape time)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Viewers and streams now; frame counters since the hub was created."""
        counts = self.hub.counters()
        for name, doc in (("viewers", "Viewers watching now."), ("streams", "Streams seen.")):
            gauge = GaugeMetricFamily(f"actorflow_dashboard_{name}", doc)
            gauge.add_metric([], counts[name])
            yield gauge
        for name, doc in _COUNTERS:
            counter = CounterMetricFamily(f"actorflow_dashboard_{name}", doc)
            counter.add_metric([], counts[name])
            yield counter


def collector(hub: FrameHub) -> HubCollector:
    """A collector to register with a ``CollectorRegistry``."""
    return HubCollector(hub)
