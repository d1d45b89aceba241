"""What the scoring server counts for Prometheus: requests, latency, audio scored, refusals by reason,
calls in flight and the model versions loaded.

Each app has its own registry, so two apps in one process (tests, a blue/green swap) never share or
double-register counters.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from callqa.data.results import ModelInfo

#: Seconds: a 1-minute call scores in about one, a 60-minute one in about thirty on two cores.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    def __init__(self, models: Mapping[str, ModelInfo]) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "callqa_requests", "HTTP requests by route and status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "callqa_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.audio = Counter("callqa_audio_seconds", "Seconds of call audio scored.", registry=r)
        self.calls = Counter(
            "callqa_calls_scored",
            "Calls scored, by whether there was speech to judge.",
            ["judged"],
            registry=r,
        )
        self.errors = Counter(
            "callqa_errors", "Requests refused or failed, by reason.", ["reason"], registry=r
        )
        self.in_flight = Gauge("callqa_calls_in_flight", "Calls being scored now.", registry=r)
        loaded = Gauge(
            "callqa_model_info",
            "The models loaded (value 1); source is the file or the registry version they came from.",
            ["model", "kind", "version", "quantization", "source"],
            registry=r,
        )
        for name, m in models.items():
            loaded.labels(name, m.kind, m.version or "", m.quantization or "", m.path or "").set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
