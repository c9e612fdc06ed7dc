"""``serve``: TensorFlow Serving's REST API for a serving model, on loopback.

    python -m pipelines serve --model M/serving --port 8501 [--model_name flights]

- ``GET /v1/models/<name>``: the model's status, as TF Serving reports it.
- ``GET /v1/models/<name>/metadata``: its signatures and the features they take.
- ``POST /v1/models/<name>:predict`` with ``{"instances": [{feature: value, ...}]}``
  (or the columnar ``{"inputs": {feature: [values]}}``) -> ``{"predictions": [...]}``,
  one per instance: the model's output (the serving info's ``output``), a
  probability (binary), a list of class probabilities (multiclass) or a value
  (regression). Without ``signature_name`` the raw features go
  to ``predict_raw``: an optional feature may be left out or null and is then
  missing, as in training. With ``"signature_name": "serving_default"`` the
  instances are serialized ``tf.Example``s, ``{"b64": "..."}``.

A malformed request gets a 4xx JSON ``{"error": "..."}`` and never stops the
server.
"""

import base64
import binascii
import http.server
import json
import math
import os
import sys

import numpy as np
import tensorflow as tf

from pipelines.errors import UserError
from pipelines.model import export_serving

__all__ = ["PredictionService", "RequestError", "serve"]

MAX_BODY_BYTES = 32 << 20


class RequestError(Exception):
    """A request the service cannot answer; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class PredictionService:
    """The loaded model and the conversion of JSON instances into its tensors."""

    def __init__(self, model_dir: str, name: str | None = None):
        info = export_serving.read_info(model_dir)
        if "predict_raw" not in info["signatures"]:
            raise UserError(f"{model_dir} is a transform-only export; serve a model "
                            f"exported by `python -m pipelines train` (M/serving)")
        self.name = name or info["dataset"]
        self._loaded = tf.saved_model.load(model_dir)
        self._predict_raw = self._loaded.signatures["predict_raw"]
        self._serve_examples = self._loaded.signatures["serving_default"]
        self._specs = self._predict_raw.structured_input_signature[1]
        self._required = set(info["required_features"])
        # The task names the output; every export's info has it, so binary
        # models exported before there were other tasks answer as before.
        self._output = info["output"]

    def status(self) -> dict:
        return {"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self) -> dict:
        return {
            "model_spec": {"name": self.name, "version": "1"},
            "signatures": {
                "predict_raw": {name: {"dtype": spec.dtype.name,
                                       "required": name in self._required}
                                for name, spec in sorted(self._specs.items())},
                "serving_default": {"examples": {"dtype": "string (serialized tf.Example)"}},
            },
        }

    def predict(self, request: dict) -> dict:
        if not isinstance(request, dict):
            raise RequestError(400, "the request body must be a JSON object")
        signature = request.get("signature_name", "predict_raw")
        if "instances" in request:
            rows = request["instances"]
            if not isinstance(rows, list) or not rows:
                raise RequestError(400, '"instances" must be a non-empty list')
        elif "inputs" in request:
            rows = _rows_from_columns(request["inputs"])
        else:
            raise RequestError(400, 'the request needs "instances" (or "inputs")')
        if signature == "predict_raw":
            outputs = self._predict_raw(**self._tensors(rows))
        elif signature == "serving_default":
            outputs = self._serve_examples(examples=tf.constant(_examples(rows)))
        else:
            raise RequestError(400, f"unknown signature_name {signature!r}; this model "
                                    f"has predict_raw and serving_default")
        return {"predictions": outputs[self._output].numpy().tolist()}

    def _tensors(self, rows: list) -> dict[str, tf.Tensor]:
        columns = {name: [] for name in self._specs}
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestError(400, f"instance {i} is not an object of feature values")
            unknown = sorted(set(row) - set(self._specs))
            if unknown:
                raise RequestError(400, f"instance {i} has unknown features {unknown}; "
                                        f"the model takes {sorted(self._specs)}")
            missing = sorted(n for n in self._required if row.get(n) is None)
            if missing:
                raise RequestError(400, f"instance {i} lacks required features {missing}")
            for name, spec in self._specs.items():
                columns[name].append(_value(i, name, spec.dtype, row.get(name)))
        return {name: tf.constant(np.array(values, dtype=_numpy_dtype(self._specs[name].dtype)))
                for name, values in columns.items()}


def _value(i: int, name: str, dtype: tf.DType, value):
    """A JSON value as the signature takes it; a missing one as NaN or ""."""
    if value is None:
        return "" if dtype == tf.string else math.nan
    if dtype == tf.string:
        if not isinstance(value, str):
            raise RequestError(400, f"instance {i}: {name!r} must be a string")
        return value.encode("utf-8")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(400, f"instance {i}: {name!r} must be a number")
    if dtype.is_integer and not float(value).is_integer():
        raise RequestError(400, f"instance {i}: {name!r} must be a whole number")
    return value


def _numpy_dtype(dtype: tf.DType):
    return object if dtype == tf.string else dtype.as_numpy_dtype


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

    def _get(self) -> dict:
        base = f"/v1/models/{self.service.name}"
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
            raise RequestError(400, f"the request body is not valid JSON: {error}") from None
        return self.service.predict(request)

    def _answer(self, handle) -> None:
        try:
            status, body = 200, handle()
        except RequestError as error:
            status, body = error.status, {"error": str(error)}
        except Exception as error:  # noqa: BLE001 - one bad request must not stop the server
            status, body = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        if os.environ.get("TFT_PREPROCESSING_ACCESS_LOG"):
            super().log_message(format, *args)


def serve(model_dir: str, port: int, host: str = "127.0.0.1",
          model_name: str | None = None) -> None:
    """Serves until interrupted."""
    service = PredictionService(model_dir, model_name)
    handler = type("Handler", (_Handler,), {"service": service})
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        server.daemon_threads = True
        print(f"Serving {service.name!r} from {model_dir} at "
              f"http://{host}:{server.server_address[1]}/v1/models/{service.name}",
              file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
