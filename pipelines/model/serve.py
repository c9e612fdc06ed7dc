"""``serve``: TensorFlow Serving's REST API for a serving model, on loopback.

    python -m pipelines serve --model M/serving --port 8501 [--model_name flights]
        [--log_dir DIR [--log_sample 0.1]]

- ``GET /v1/models/<name>``: the model's status, as TF Serving reports it.
- ``GET /v1/models/<name>/metadata``: its signatures and the features they take,
  by the features' own names (the CSV's), each with its ``predict_raw``
  signature input name.
- ``POST /v1/models/<name>:predict`` with ``{"instances": [{feature: value, ...}]}``
  (or the columnar ``{"inputs": {feature: [values]}}``) -> ``{"predictions": [...]}``,
  one per instance: the model's output (the serving info's ``output``), a
  probability (binary), a list of class probabilities (multiclass) or a value
  (regression). Without ``signature_name`` the raw features, named as in the
  CSV, go to ``predict_raw`` (``serving_info.RawSignature`` passes each under
  its signature input name): an optional feature may be left out or null and
  is then missing, as in training. With ``"signature_name":
  "serving_default"`` the instances are serialized ``tf.Example``s,
  ``{"b64": "..."}``.

- ``GET /monitoring/prometheus/metrics``: the metrics (``serving_metrics``).

Every instance is checked against the dataset's schema first
(``request_checks``): one that cannot be scored gets a 400 naming the instance
and the feature; a value outside a soft domain is scored and counted. A
malformed request gets a 4xx JSON ``{"error": "..."}`` and never stops the
server. With ``--log_dir``, a sample of the answered instances is logged
(``request_log``) for ``validate`` to check against training.
"""

import base64
import binascii
import collections
import http.server
import json
import os
import signal
import sys
import time

import tensorflow as tf

from pipelines.model import export_serving, serving_metrics
from pipelines.model.request_checks import InvalidInstance, RequestChecks
from pipelines.model.request_log import RequestLog
from pipelines.model.serving_metrics import ServingMetrics
from pipelines.records.serving_info import (
    PREDICT_RAW,
    SERVING_DEFAULT,
    RawSignature,
    ServingInfo,
)

__all__ = ["PredictionService", "RequestError", "http_server", "serve"]

MAX_BODY_BYTES = 32 << 20


class RequestError(Exception):
    """A request the service cannot answer; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class PredictionService:
    """The loaded model, the checks of its instances, its metrics and, when
    given, its request log (``request_log.RequestLog``, set by ``serve``)."""

    def __init__(self, model_dir: str, name: str | None = None):
        info = ServingInfo.read(model_dir)
        info.require_model(model_dir, "serve")
        self.name = name or info.dataset
        self._loaded = tf.saved_model.load(model_dir)
        # Called by the features' own names, whatever the signature's inputs are named.
        self._predict_raw = RawSignature(self._loaded, PREDICT_RAW, info, model_dir)
        self._serve_examples = self._loaded.signatures[SERVING_DEFAULT]
        self._required = set(info.required_features)
        self.checks = RequestChecks(self._predict_raw.specs, self._required,
                                    export_serving.read_schema(model_dir))
        # The task names the output; every export's info has it, so binary
        # models exported before there were other tasks answer as before.
        self._output = info.output
        self.metrics = ServingMetrics()
        self.log: RequestLog | None = None

    def status(self) -> dict:
        return {"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self) -> dict:
        return {
            "model_spec": {"name": self.name, "version": "1"},
            "signatures": {
                PREDICT_RAW: {name: {"dtype": feature.dtype.name,
                                     "required": feature.required,
                                     "signature_input": self._predict_raw.inputs[name]}
                              for name, feature in sorted(self.checks.features.items())},
                SERVING_DEFAULT: {"examples": {"dtype": "string (serialized tf.Example)"}},
            },
        }

    def predict(self, request) -> dict:
        """Answers one parsed request, counted in the metrics and, when it is
        answered, sampled into the request log."""
        signature = request.get("signature_name", PREDICT_RAW) if isinstance(
            request, dict) else PREDICT_RAW
        label = signature if signature in (PREDICT_RAW, SERVING_DEFAULT) else "unknown"
        started = time.perf_counter()
        status, rows = 200, []
        try:
            rows, outside, predictions = self._predict(request, signature)
        except RequestError as error:
            status = error.status
            raise
        except InvalidInstance as error:
            status = 400
            self.metrics.invalid.labels(error.feature or "-").inc()
            raise RequestError(400, str(error)) from None
        except Exception:
            status = 500  # answered as an internal error by the handler
            raise
        finally:
            self.metrics.requests.labels(label, str(status)).inc()
            self.metrics.instances.labels(label, str(status)).inc(
                len(rows) if status == 200 else _sent(request))
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)
        for feature, count in outside.items():
            self.metrics.out_of_domain.labels(feature).inc(count)
        if self.log is not None:
            self.log.offer(rows, predictions)
        return {"predictions": predictions}

    def _predict(self, request, signature: str) -> tuple[list, collections.Counter, list]:
        if not isinstance(request, dict):
            raise RequestError(400, "the request body must be a JSON object")
        if "instances" in request:
            instances = request["instances"]
            if not isinstance(instances, list) or not instances:
                raise RequestError(400, '"instances" must be a non-empty list')
        elif "inputs" in request:
            instances = _rows_from_columns(request["inputs"])
        else:
            raise RequestError(400, 'the request needs "instances" (or "inputs")')
        if signature == PREDICT_RAW:
            rows, outside = self.checks.rows(instances)
            outputs = self._predict_raw(self.checks.tensors(rows))
        elif signature == SERVING_DEFAULT:
            examples = _examples(instances)
            rows, outside = self.checks.example_rows(examples)
            try:
                outputs = self._serve_examples(examples=tf.constant(examples))
            except tf.errors.InvalidArgumentError as error:
                raise RequestError(400, "the examples do not parse as the model's features: "
                                        f"{error.message.splitlines()[0]}") from None
        else:
            raise RequestError(400, f"unknown signature_name {signature!r}; this model "
                                    f"has predict_raw and serving_default")
        return rows, outside, outputs[self._output].numpy().tolist()


def _sent(request) -> int:
    """How many instances a refused request held, as far as it can be told."""
    sent = request.get("instances") if isinstance(request, dict) else None
    return len(sent) if isinstance(sent, list) else 1


def _rows_from_columns(columns) -> list[dict]:
    if not isinstance(columns, dict) or not columns:
        raise RequestError(400, '"inputs" must be an object of feature -> list of values')
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise RequestError(400, 'every "inputs" feature needs a list of the same length')
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                      strict=True)]


def _examples(rows: list) -> list[bytes]:
    examples = []
    for i, row in enumerate(rows):
        if not (isinstance(row, dict) and isinstance(row.get("b64"), str)):
            raise RequestError(400, f'instance {i}: serving_default takes {{"b64": '
                                    f'"<base64 serialized tf.Example>"}}')
        try:
            examples.append(base64.b64decode(row["b64"], validate=True))
        except binascii.Error as error:
            raise RequestError(400, f"instance {i}: invalid base64 ({error})") from None
    return examples


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as REST clients expect
    # Headers and body go out in separate writes: with Nagle's algorithm on, the
    # body waits for the client's delayed ACK, 40 ms per response.
    disable_nagle_algorithm = True
    service: PredictionService  # set on the subclass made by serve()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._answer(self._get)

    def do_POST(self):  # noqa: N802
        self._answer(self._post)

    def _get(self) -> dict | tuple[str, bytes]:
        base = f"/v1/models/{self.service.name}"
        if self.path.rstrip("/") == serving_metrics.PATH:
            return serving_metrics.CONTENT_TYPE, self.service.metrics.text()
        if self.path.rstrip("/") == base:
            return self.service.status()
        if self.path.rstrip("/") == f"{base}/metadata":
            return self.service.metadata()
        raise RequestError(404, f"no resource at {self.path}; the model is served at {base}")

    def _post(self) -> dict:
        if self.path != f"/v1/models/{self.service.name}:predict":
            raise RequestError(404, f"POST to /v1/models/{self.service.name}:predict")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            request = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            self.service.metrics.requests.labels("unknown", "400").inc()
            raise RequestError(400, f"the request body is not valid JSON: {error}") from None
        return self.service.predict(request)

    def _answer(self, handle) -> None:
        try:
            status, body = 200, handle()
        except RequestError as error:
            status, body = error.status, {"error": str(error)}
        except Exception as error:  # noqa: BLE001 - one bad request must not stop the server
            status, body = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
        content_type = "application/json"
        if isinstance(body, tuple):  # already rendered (the metrics)
            content_type, payload = body
        else:
            payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        if os.environ.get("TFT_PREPROCESSING_ACCESS_LOG"):
            super().log_message(format, *args)


def http_server(service: PredictionService, host: str = "127.0.0.1", port: int = 0
                ) -> http.server.ThreadingHTTPServer:
    """The REST API of ``service``, listening on ``host:port`` (0: a free port,
    ``server.server_address[1]``); ``serve_forever`` answers it."""
    handler = type("Handler", (_Handler,), {"service": service})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(model_dir: str, port: int, host: str = "127.0.0.1",
          model_name: str | None = None, log_dir: str | None = None,
          log_sample: float = 1.0) -> None:
    """Serves until SIGTERM or SIGINT; then completes the request log."""
    service = PredictionService(model_dir, model_name)
    if log_dir:
        service.log = RequestLog(log_dir, service.checks.names, log_sample,
                                 on_written=service.metrics.log_written.inc,
                                 on_dropped=service.metrics.log_dropped.inc)
    # SIGTERM (how a process manager stops a server) ends it as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with http_server(service, host, port) as server:
            print(f"Serving {service.name!r} from {model_dir} at "
                  f"http://{host}:{server.server_address[1]}/v1/models/{service.name}"
                  + (f", logging {log_sample:.0%} of instances to {log_dir}" if log_dir
                     else ""), file=sys.stderr, flush=True)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
    finally:
        if service.log is not None:
            service.log.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt
