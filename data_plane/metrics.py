"""Prometheus metrics of the data plane, read at scrape time (nothing on the request path)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from data_plane.cache import SnapshotCache
from data_plane.snapshot import SnapshotHolder
from data_plane.sync import Follower

__all__ = ["CONTENT_TYPE", "SyncCollector", "render"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class SyncCollector(Collector):
    """How far this replica's snapshot is from the event log."""

    def __init__(self, holder: SnapshotHolder, follower: Follower, cache: SnapshotCache) -> None:
        self.holder, self.counters, self.cache = holder, follower.counters, cache

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        holder, counters = self.holder, self.counters
        position = holder.state.position
        yield _gauge("sluice_snapshot_position", "Event position of the snapshot.", position)
        yield _gauge(
            "sluice_snapshot_events", "Events folded into the snapshot.", holder.state.event_count
        )
        yield _gauge(
            "sluice_snapshot_lag_events",
            "Newest event position heard of minus the applied one.",
            max(counters.latest_known - position, 0),
        )
        since = holder.seconds_since_sync()
        yield _gauge(
            "sluice_snapshot_seconds_since_sync",
            "Seconds since the last successful sync with the event log (-1: none yet).",
            -1 if since is None else since,
        )
        yield _gauge(
            "sluice_snapshot_stale",
            "1 while serving the disk cache, not yet checked against the database.",
            int(holder.loaded and not holder.synced),
        )
        yield _gauge(
            "sluice_event_log_connected", "1 while the LISTEN connection is up.", counters.connected
        )
        yield _counter(
            "sluice_event_log_reconnects", "Connections made after a lost one.", counters.reconnects
        )
        yield _counter(
            "sluice_event_log_connect_failures",
            "Attempts to connect to the event log that failed.",
            counters.connect_failures,
        )
        rejected = CounterMetricFamily(
            "sluice_snapshot_rejected",
            "States not used: stored snapshots that could not be read, disk caches that were "
            "unreadable or from another database, syncs whose events could not be applied.",
            labels=["reason"],
        )
        rejected.add_metric(["stored_snapshot"], counters.snapshots_refused)
        rejected.add_metric(["disk_cache"], self.cache.refused)
        rejected.add_metric(["events"], counters.failed_syncs)
        yield rejected


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
