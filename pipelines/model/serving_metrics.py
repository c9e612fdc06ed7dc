"""The serving metrics, in Prometheus' text format at TF Serving's path
``GET /monitoring/prometheus/metrics`` (``prometheus_client``).

- ``tft_serving_requests_total{signature, status}``: every response by its
  HTTP status (``signature`` is ``-`` for what is not a prediction, ``unknown``
  for a prediction whose signature is not known or could not be read), the
  server's own refusals too: 404, 408, 411, 413, 431, 501, 503;
- ``tft_serving_instances_total{signature, status}``: their instances;
- ``tft_serving_invalid_instances_total{feature}``: instances refused, by the
  feature that was wrong (``-`` when the instance as a whole was, ``other``
  for a feature a request may not carry: a label never takes a client's text,
  so the page stays the size of the model's features and the key columns
  logged beside them);
- ``tft_serving_out_of_domain_values_total{feature}``: values outside a soft
  domain (an unseen carrier) that were scored;
- ``tft_serving_request_latency_seconds{signature}``: a histogram of the time
  from the parsed request to the answer;
- ``tft_serving_log_rows_written_total`` and ``..._dropped_total``: the
  request log's rows (``--log_dir``).

Each server has a registry of its own, so that two in one process (tests)
count apart.
"""

import prometheus_client

__all__ = ["CONTENT_TYPE", "OTHER_FEATURE", "PATH", "ServingMetrics"]

PATH = "/monitoring/prometheus/metrics"
OTHER_FEATURE = "other"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
# From a fraction of a millisecond (one instance) to seconds (a large batch).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)


class ServingMetrics:
    """The counters one server keeps.

    Args:
      features: what a request may carry (``RequestChecks.names``: the model's
        features and the key columns logged beside them), the only names a
        ``feature`` label takes.
    """

    def __init__(self, features: list[str] = ()):
        self._features = frozenset(features)
        self.registry = prometheus_client.CollectorRegistry()
        registry = self.registry
        self.requests = prometheus_client.Counter(
            "tft_serving_requests", "Requests answered, by signature and HTTP status",
            ["signature", "status"], registry=registry)
        self.instances = prometheus_client.Counter(
            "tft_serving_instances", "Instances of the requests answered, by signature and "
            "HTTP status", ["signature", "status"], registry=registry)
        self.invalid = prometheus_client.Counter(
            "tft_serving_invalid_instances", "Instances refused, by the feature that was wrong",
            ["feature"], registry=registry)
        self.out_of_domain = prometheus_client.Counter(
            "tft_serving_out_of_domain_values", "Values outside a soft domain that were "
            "scored, by feature", ["feature"], registry=registry)
        self.latency = prometheus_client.Histogram(
            "tft_serving_request_latency_seconds", "Seconds from the parsed request to the "
            "answer", ["signature"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.log_written = prometheus_client.Counter(
            "tft_serving_log_rows_written", "Request-log rows written", registry=registry)
        self.log_dropped = prometheus_client.Counter(
            "tft_serving_log_rows_dropped", "Request-log rows dropped because the log's queue "
            "was full", registry=registry)

    def feature_label(self, feature: str | None) -> str:
        """The ``feature`` label of a refused instance: one a request may carry,
        ``-`` for none, ``other`` for any name a client made up."""
        if feature is None:
            return "-"
        return feature if feature in self._features else OTHER_FEATURE

    def text(self) -> bytes:
        """Every metric in Prometheus' text exposition format."""
        return prometheus_client.generate_latest(self.registry)
