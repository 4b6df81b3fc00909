"""Prometheus metrics: counters and histograms written per call, gauges read at scrape time.

Under gunicorn every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (set, emptied at start and tidied when a worker
exits by ``gunicorn.conf.py``); a scrape on any worker merges them all. Without
that directory (``flask run``, one process) the samples stay in this process.

The per-call hooks cost a few microseconds: labelled children are looked up
once and kept, and nothing here touches the database or Redis. Circuit states
and the job queue depth are read only when ``/metrics`` is scraped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
if MULTIPROC:  # a process started outside gunicorn (a CLI command) with the variable set: the directory may be new
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def greenlets_only() -> bool:
    """Whether this process runs greenlets on one thread (gunicorn's gevent worker patches threading)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return bool(monkey.is_module_patched("threading"))


_forked = [False]
os.register_at_fork(after_in_child=lambda: _forked.__setitem__(0, True))


def _single_thread_value() -> type:
    """The library's file-backed value, written without its lock and process check where neither can matter.

    Each write otherwise takes a lock and asks the process id: a tenth of a gateway call's
    own CPU for its dozen samples. Under gevent the greenlets share one thread and a write
    never yields, so no two writes interleave; a value made before a fork takes the
    library's path, which opens this process's own files first.
    """
    base: Any = values.MultiProcessValue()  # type: ignore[no-untyped-call]

    class SingleThreadValue(base):  # type: ignore[misc]
        def inc(self, amount: float) -> None:
            if _forked[0]:
                base.inc(self, amount)
                return
            self._value += amount
            self._timestamp = 0.0
            self._file.write_value(self._key, self._value, 0.0)

    return SingleThreadValue


if MULTIPROC and greenlets_only():
    values.ValueClass = _single_thread_value()
# Each process registers here when not in multiprocess mode; a scrape then reads this registry.
REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)

REQUESTS = Counter(
    "bytespike_requests", "Gateway calls by surface, model, HTTP status and protocol pair (caller -> upstream).",
    ["surface", "model", "status", "caller_protocol", "upstream_protocol"], registry=REGISTRY)
UPSTREAM = Histogram(
    "bytespike_upstream_latency_seconds", "Time spent waiting on the upstream vendor per call (streams: whole stream).",
    ["upstream_protocol"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
OVERHEAD = Histogram(
    "bytespike_gateway_overhead_seconds", "The gateway's own time per call: total minus upstream time.",
    buckets=OVERHEAD_BUCKETS, registry=REGISTRY)
TOKENS = Counter("bytespike_tokens", "Tokens billed, by model and kind.", ["model", "kind"], registry=REGISTRY)
CREDITS = Counter("bytespike_credits_billed", "Credits charged (1 credit = 0.000001 USD), by model.",
                  ["model"], registry=REGISTRY)
STREAMS = Gauge("bytespike_open_streams", "Streams being relayed right now.", registry=REGISTRY,
                multiprocess_mode="livesum")
LEDGER_WRITES = Counter("bytespike_ledger_writes", "Ledger writes by kind (settle, release, log).",
                        ["kind"], registry=REGISTRY)
LEDGER_BATCH = Histogram("bytespike_ledger_batch_size", "Settlements written per group commit.",
                         buckets=BATCH_BUCKETS, registry=REGISTRY)

_requests: dict[tuple[str, str, str, str, str], Any] = {}
_upstream: dict[str, Any] = {}
_tokens: dict[tuple[str, str], Any] = {}
_credits: dict[str, Any] = {}
_writes: dict[str, Any] = {}
MAX_CHILDREN = 5000  # a bound on label sets per process (models come from the rate card, but be safe)


def _child(cache: dict[Any, Any], metric: Any, key: Any, *labels: str) -> Any:
    child = cache.get(key)
    if child is None:
        if len(cache) >= MAX_CHILDREN:  # past the bound, every new label set shares one "other" series
            key, labels = "\0other", tuple("other" for _ in labels)
            child = cache.get(key)
            if child is not None:
                return child
        child = cache[key] = metric.labels(*labels)
    return child


def call_done(surface: str, caller: str, upstream: str, model: str, status: int, upstream_s: float,
              overhead_s: float, usage: Any, kind: str) -> None:
    """One finished gateway call (served, failed or refused): counts, latencies, tokens, its ledger write.

    ``surface`` is the route's rule (``/v1/messages``), ``caller`` and ``upstream`` the protocol pair;
    ``kind`` the ledger write it made (settle, release, log; empty for none).
    """
    st = str(status)
    _child(_requests, REQUESTS, (surface, caller, upstream, model, st), surface, model, st,
           caller, upstream or "none").inc()
    if upstream:
        _child(_upstream, UPSTREAM, upstream, upstream).observe(upstream_s)
    OVERHEAD.observe(overhead_s)
    if usage is not None and kind == "settle":
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            n = getattr(usage, name, 0)
            if n:
                _child(_tokens, TOKENS, (model, name), model, name[:-7]).inc(n)
    if kind:
        _child(_writes, LEDGER_WRITES, kind, kind).inc()


def billed(model: str, credits: int) -> None:
    if credits > 0:
        _child(_credits, CREDITS, model, model).inc(credits)


def stream_opened() -> None:
    STREAMS.inc()


def stream_closed() -> None:
    STREAMS.dec()


def ledger_write(kind: str, n: int = 1) -> None:
    """Ledger writes outside a gateway call (payments, sweeps): ``kind`` names them."""
    _child(_writes, LEDGER_WRITES, kind, kind).inc(n)


def ledger_batch(size: int) -> None:
    """One group commit of ``size`` settlements (called by the settlement writer)."""
    LEDGER_BATCH.observe(size)


class ScrapeTime(Collector):
    """Gauges read when scraped: circuit state per channel, job queue depth per queue."""

    def __init__(self, app: Any, circuit_states: Callable[[], Mapping[str, str]]) -> None:
        self.app = app
        self.circuit_states = circuit_states  # channel -> state, from the gateway's router

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield self._circuits()
        depth = self._queues()
        if depth is not None:
            yield depth

    def _circuits(self) -> GaugeMetricFamily:
        fam = GaugeMetricFamily("bytespike_circuit_state", "1 for each channel's current circuit state.",
                                labels=["channel", "state"])
        for name, now in self.circuit_states().items():
            for state in ("closed", "half_open", "open"):
                fam.add_metric([name, state], 1.0 if state == now else 0.0)
        return fam

    def _queues(self) -> GaugeMetricFamily | None:
        url = self.app.config.get("BYTESPIKE_REDIS_URL")
        if not url:
            return None
        import redis

        fam = GaugeMetricFamily("bytespike_job_queue_depth", "Jobs waiting per queue (Redis, at scrape time).",
                                labels=["queue"])
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            # redis-py types each command for its sync and asyncio clients alike; this one is sync.
            queues: set[bytes] = client.smembers("rq:queues")  # type: ignore[assignment]
            for name in sorted(n.decode() for n in queues):
                depth: int = client.llen(name)  # type: ignore[assignment]
                fam.add_metric([name.removeprefix("rq:queue:")], float(depth))
        except redis.RedisError:
            return None
        finally:
            client.close()
        return fam


def exposition(app: Any, circuit_states: Callable[[], Mapping[str, str]]) -> bytes:
    """The text format for one scrape: every worker's samples (multiprocess) plus the scrape-time gauges.

    ``circuit_states`` reads each channel's circuit state (the router's) when scraped.
    """
    from prometheus_client import generate_latest

    registry = CollectorRegistry()
    if MULTIPROC:
        from prometheus_client import multiprocess

        # prometheus_client leaves this constructor unannotated.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(ScrapeTime(app, circuit_states))
    return generate_latest(registry)


class _Forward(Collector):
    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Any]:
        yield from self.inner.collect()
