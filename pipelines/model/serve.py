"""``serve``: TensorFlow Serving's REST API for a serving model, on loopback.

    python -m pipelines serve --model M/serving --port 8501 [--model_name flights]
        [--log_dir DIR [--log_sample 0.1]]

- ``GET /v1/models/<name>``: the model's status, as TF Serving reports it.
- ``GET /v1/models/<name>/metadata``: its signatures and the features they take,
  by the features' own names (the CSV's), each with its ``predict_raw``
  signature input name; for a dataset with key columns, ``key_columns``: their
  ``names`` and, under ``not_model_inputs``, those a request may carry although
  the model does not take them (logged, never scored: ``request_checks``).
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
and the feature; a value outside a soft domain is scored and counted. A column
with a format in the dataset's ``column_formats`` (a date ``%d/%m/%Y``, a
decimal comma) takes its string as the CSV writes it, converted as the CSV's
(a date to seconds since 1970); one that does not read as the format is a 400
naming the feature, the value and the format; a number is taken as already
converted. The metadata names each such feature's ``format``. A
malformed request gets a 4xx JSON ``{"error": "..."}`` and never stops the
server.

The server holds under load and abuse (``Limits``): a fixed pool of
``max_connections`` threads, one per open connection, and a connection past
them gets a 503 at once; the listen backlog is as deep as the pool; the request
line and headers must arrive within ``header_seconds`` of the connection being
ready for a request (an idle keep-alive connection is closed then), the body
within ``body_seconds`` of its headers (408), and a client must take its answer
within ``write_seconds``. JSON nested deeper than ``MAX_JSON_DEPTH`` (the
parser's limit, 1,000 levels), a ``Content-Length`` that is not a whole number
of bytes and a body over ``MAX_BODY_BYTES`` are refused. Every refusal is JSON
and every response's status is counted in the metrics.

It is the standard library's ``http.server``: what stood in the way (a thread
per connection without bound, no deadlines, HTML errors, the default backlog
of 5) is a few overrides here, where a server library (waitress) would be a
dependency for the same limits.

With ``--log_dir``, a sample of the answered instances is logged
(``request_log``) for ``validate`` to check against training, with the
dataset's key columns, so that a logged row joins the pipeline's own by key.
"""

import base64
import binascii
import collections
import concurrent.futures
import dataclasses
import http
import http.server
import io
import json
import os
import signal
import socket
import sys
import threading
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

__all__ = ["Limits", "PredictionService", "RequestError", "http_server", "serve"]

MAX_BODY_BYTES = 32 << 20
# Python's json recurses per level of nesting, up to the recursion limit, and
# raises RecursionError past it: that is the depth limit (``parse_json``).
MAX_JSON_DEPTH = sys.getrecursionlimit()


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one server allows its clients.

    ``max_connections`` threads answer, one per open connection (keep-alive
    holds its thread); TensorFlow uses the cores whatever their number, so more
    threads only queue. The timeouts are whole deadlines, not per read: a client
    trickling a byte a second is cut off as surely as a silent one.
    """

    max_connections: int = 64
    header_seconds: float = 10.0  # request line and headers, idle keep-alive included
    body_seconds: float = 30.0  # 32 MB at 1.1 MB/s
    write_seconds: float = 30.0


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
        # The dataset the model carries: its schema's types and domains, the
        # column formats a client's strings are written in, as the CSV's are,
        # and the key columns a logged row is joined by (none for an old model,
        # which carries no dataset, as for a keyless dataset).
        dataset = export_serving.read_dataset(model_dir)
        self._key_columns = tuple(dataset.csv_format.key_columns) if dataset else ()
        self.checks = RequestChecks(
            self._predict_raw.specs, self._required,
            dataset.schema() if dataset else None,
            dataset.csv_format.column_formats if dataset else (), self._key_columns)
        # The task names the output; every export's info has it, so binary
        # models exported before there were other tasks answer as before.
        self._output = info.output
        self.metrics = ServingMetrics(self.checks.names)
        self.log: RequestLog | None = None

    def status(self) -> dict:
        return {"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self) -> dict:
        """The model's signatures and the features they take; with key columns,
        ``key_columns``: the dataset's (``names``) and those a request may carry
        beside the model's features, to be logged (``not_model_inputs``)."""
        metadata = {
            "model_spec": {"name": self.name, "version": "1"},
            "signatures": {
                PREDICT_RAW: {name: _described(feature, self._predict_raw.inputs[name])
                              for name, feature in sorted(self.checks.features.items())},
                SERVING_DEFAULT: {"examples": {"dtype": "string (serialized tf.Example)"}},
            },
        }
        if self._key_columns:
            metadata["key_columns"] = {
                "names": list(self._key_columns),
                "not_model_inputs": {name: _described(feature)
                                     for name, feature in self.checks.keys.items()}}
        return metadata

    def predict(self, request) -> dict:
        """Answers one parsed request, its instances counted in the metrics
        (the request itself is counted by its answer's status, ``_Handler``)
        and, when it is answered, sampled into the request log."""
        signature = request.get("signature_name", PREDICT_RAW) if isinstance(
            request, dict) else PREDICT_RAW
        label = signature_label(signature)
        started = time.perf_counter()
        status, rows = 200, []
        try:
            rows, outside, predictions = self._predict(request, signature)
        except RequestError as error:
            status = error.status
            raise
        except InvalidInstance as error:
            status = 400
            self.metrics.invalid.labels(self.metrics.feature_label(error.feature)).inc()
            raise RequestError(400, str(error)) from None
        except Exception:
            status = 500  # answered as an internal error by the handler
            raise
        finally:
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


def _described(feature, signature_input: str | None = None) -> dict:
    """A feature as the metadata describes it (``request_checks._Feature``),
    with the name of its ``predict_raw`` input when the model takes it."""
    return {"dtype": feature.dtype.name, "required": feature.required,
            **({"signature_input": signature_input} if signature_input else {}),
            **({"format": feature.value_format} if feature.value_format else {})}


def signature_label(signature) -> str:
    """The metrics' ``signature`` label: a signature the model has, else
    "unknown" (a label never takes a client's text)."""
    return signature if signature in (PREDICT_RAW, SERVING_DEFAULT) else "unknown"


def parse_json(body: bytes):
    """The request body as JSON, or a 400: not UTF-8, not JSON, a number
    Python will not read (over 4,300 digits) or nesting beyond
    ``MAX_JSON_DEPTH``.

    The depth limit is the parser's own: it recurses per level and stops at the
    interpreter's recursion limit. A walk of the parsed body to hold it to a
    lower one would cost 0.5 ms a 100-instance request (5% of its answer), and
    gain nothing: nothing here recurses into a request; a value below the
    request's three levels ({"instances": [{...}]}) is refused by the checks as
    a value of the wrong type, and quoted by ``reprlib`` in a short line."""
    try:
        request = json.loads(body)
    except RecursionError:
        raise RequestError(400, f"the request body nests JSON deeper than "
                                f"{MAX_JSON_DEPTH:,} levels") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise RequestError(400, f"the request body is not valid JSON: {error}") from None
    return request


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


class _DeadlineReader(io.RawIOBase):
    """A connection's reads, each given only what is left of ``deadline``
    (``time.monotonic()``): a whole deadline, where the socket's own timeout
    is per read and restarts with every byte a slow client sends."""

    def __init__(self, connection: socket.socket):
        self._connection = connection
        self.deadline = time.monotonic()
        self.received = 0  # bytes since the deadline was last set

    def start(self, seconds: float) -> None:
        self.deadline, self.received = time.monotonic() + seconds, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the client's time to send is up")
        self._connection.settimeout(left)
        count = self._connection.recv_into(buffer)
        self.received += count
        return count


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as REST clients expect
    # Headers and body go out in separate writes: with Nagle's algorithm on, the
    # body waits for the client's delayed ACK, 40 ms per response.
    disable_nagle_algorithm = True
    service: PredictionService  # set on the subclass made by http_server()
    limits: Limits

    def setup(self):
        super().setup()
        self.rfile.close()  # the plain one, replaced by one with deadlines
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader, 1 << 16)

    def handle_one_request(self):
        """http.server's, with deadlines: waiting for the next request of a
        keep-alive connection counts, so an idle connection gives its thread
        back after ``header_seconds``; a client that began a request and did not
        finish it in time is told (408)."""
        self._reader.start(self.limits.header_seconds)
        self._label, self._body_pending, self._answered = "-", False, False
        self.command, self.requestline, self.request_version = "", "", "HTTP/1.1"
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(http.HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # it has answered (400, 431, 505)
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(http.HTTPStatus.NOT_IMPLEMENTED,
                                f"unsupported method {self.command[:20]!r}; GET or POST")
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
            if self._reader.received and not self._answered:
                self._send(408, {"error": f"the request did not arrive within "
                                          f"{self.limits.header_seconds:g} s"})
        except OSError:  # the client left (reset, broken pipe): nothing to answer
            self.close_connection = True

    def log_request(self, code="-", size="-"):
        # Every response passes here (send_response), so every status is counted.
        if isinstance(code, http.HTTPStatus):
            code = code.value
        self.service.metrics.requests.labels(self._label, str(code)).inc()
        super().log_request(code, size)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a bad request line, headers over its
        limits, an unknown method), as JSON; the connection then closes, as the
        rest of what the client sent cannot be trusted to start a request."""
        self.close_connection = True
        self._send(code, {"error": message or http.HTTPStatus(code).phrase})

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
        self._body_pending = True
        if self.path != f"/v1/models/{self.service.name}:predict":
            raise RequestError(404, f"POST to /v1/models/{self.service.name}:predict")
        self._label = "unknown"  # until the body names its signature
        if "Transfer-Encoding" in self.headers:
            raise RequestError(411, "send the body with a Content-Length, not chunked")
        declared = self.headers.get("Content-Length", "0").strip()
        if not (declared.isascii() and declared.isdigit()):
            raise RequestError(400, f"Content-Length {declared[:40]!r} is not a whole "
                                    f"number of bytes")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
        self._reader.start(self.limits.body_seconds)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise RequestError(408, f"the body did not arrive within "
                                    f"{self.limits.body_seconds:g} s") from None
        if len(body) < length:
            self.close_connection = True
            raise RequestError(400, f"the body ended after {len(body)} of its {length} bytes")
        self._body_pending = False
        request = parse_json(body)
        self._label = signature_label(request.get("signature_name", PREDICT_RAW)
                                      if isinstance(request, dict) else PREDICT_RAW)
        return self.service.predict(request)

    def _answer(self, handle) -> None:
        try:
            status, body = 200, handle()
        except RequestError as error:
            status, body = error.status, {"error": str(error)}
        except Exception as error:  # noqa: BLE001 - one bad request must not stop the server
            status, body = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
        if self._body_pending:  # refused before its body was read: the rest is not a request
            self.close_connection = True
        self._send(status, body)

    def _send(self, status: int, body: dict | tuple[str, bytes]) -> None:
        content_type = "application/json"
        if isinstance(body, tuple):  # already rendered (the metrics)
            content_type, payload = body
        else:
            payload = json.dumps(body).encode("utf-8")
        self._answered = True
        # http.server takes a request line it cannot read for HTTP/0.9, which
        # has no status line: every answer here has one.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        # A client that does not take its answer is cut off too.
        self.connection.settimeout(self.limits.write_seconds)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        if os.environ.get("TFT_PREPROCESSING_ACCESS_LOG"):
            super().log_message(format, *args)


class _BoundedServer(http.server.HTTPServer):
    """``http.server`` with a fixed pool of ``limits.max_connections``
    threads, one per open connection; a connection past them is answered 503
    at once by the accepting thread and closed, never queued behind the rest."""

    def __init__(self, address, handler, limits: Limits, metrics: ServingMetrics):
        # The listen backlog (read by server_activate) holds a burst of the
        # pool's size while the accepting thread catches up.
        self.request_queue_size = limits.max_connections
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            limits.max_connections, thread_name_prefix="serve")
        self._metrics = metrics
        self._open, self._open_lock = set(), threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        with self._open_lock:
            self._open.add(request)
        try:
            self._pool.submit(self._answer, request, client_address)
        except RuntimeError:  # the pool is shut down: the server is closing
            self._slots.release()
            self.shutdown_request(request)

    def _answer(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - a client's failure is no traceback of the server's
            pass
        finally:
            with self._open_lock:
                self._open.discard(request)
            self.shutdown_request(request)
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        payload = json.dumps({"error": "the server is at its connection limit; retry"}).encode()
        self._metrics.requests.labels("-", "503").inc()
        try:
            request.settimeout(0.5)
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json"
                            b"\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: "
                            + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            # What the client sent already is read away, so that closing sends
            # a FIN after the answer, not a reset that could discard it.
            request.setblocking(False)
            request.recv(1 << 16)
        except OSError:
            pass
        self.shutdown_request(request)

    def server_close(self):
        """Stops listening and ends the open connections: a request being
        answered gets its answer, an idle or unfinished one reads its end, so
        the pool's threads (which the interpreter waits for) end at once."""
        super().server_close()
        with self._open_lock:
            for connection in self._open:
                try:
                    connection.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        self._pool.shutdown(wait=False, cancel_futures=True)


def http_server(service: PredictionService, host: str = "127.0.0.1", port: int = 0,
                limits: Limits = Limits()) -> http.server.HTTPServer:
    """The REST API of ``service``, listening on ``host:port`` (0: a free port,
    ``server.server_address[1]``); ``serve_forever`` answers it."""
    handler = type("Handler", (_Handler,), {"service": service, "limits": limits})
    return _BoundedServer((host, port), handler, limits, service.metrics)


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
