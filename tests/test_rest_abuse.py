"""``serve`` under abuse: hostile bodies, broken headers, slow and too many
clients. Each answer is a JSON 4xx/5xx, counted in the metrics; the server
keeps answering everyone else.

The server runs in this process (``serve.http_server``) with short deadlines
and a small pool, so that timing out and filling up cost about a second.
"""

import http.client
import json
import select
import socket
import threading
import time

import pytest

from pipelines.model import serve
from tests.test_rest import GOOD

# The trained model of the session (a training run when no other test made it).
pytestmark = pytest.mark.slow

LIMITS = serve.Limits(max_connections=4, header_seconds=1.0, body_seconds=1.0,
                      write_seconds=2.0)
PREDICT = "/v1/models/flights:predict"


@pytest.fixture(scope="module")
def service(trained_model):
    return serve.PredictionService(trained_model.serving_dir)


def _start(service, limits):
    server = serve.http_server(service, limits=limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def server(service):
    """(host, port) of a server with LIMITS."""
    running = _start(service, LIMITS)
    yield running.server_address
    running.shutdown()
    running.server_close()


def _raw(address, data: bytes, timeout: float = 10) -> tuple[int, dict, dict]:
    """Sends ``data`` as it is; (status, JSON body, headers) of the answer."""
    with socket.create_connection(address, timeout=timeout) as connection:
        connection.sendall(data)
        return _response(connection)


def _response(connection: socket.socket) -> tuple[int, dict, dict]:
    response = http.client.HTTPResponse(connection)
    response.begin()
    headers = {k.lower(): v for k, v in response.getheaders()}
    return response.status, json.loads(response.read()), headers


def _post(address, body: bytes, headers: str = "") -> tuple[int, dict, dict]:
    if "Content-Length" not in headers:
        headers += f"Content-Length: {len(body)}\r\n"
    # The server closes first and frees the connection's thread at once, where a
    # keep-alive connection holds it until the server reads the client's close:
    # a test's next request must not find the pool still full of finished ones.
    headers += "Connection: close\r\n"
    return _raw(address, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body)


def _good(address) -> float:
    status, body, _ = _post(address, json.dumps({"instances": [GOOD]}).encode())
    assert status == 200
    return body["predictions"][0]


def _metrics(address) -> dict[str, float]:
    connection = http.client.HTTPConnection(*address, timeout=10)
    connection.request("GET", "/monitoring/prometheus/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return {name: float(value) for name, value in (
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


def _requests(status: int, signature: str = "-") -> str:
    return f'tft_serving_requests_total{{signature="{signature}",status="{status}"}}'


def _instance(**values) -> bytes:
    return json.dumps({"instances": [{**GOOD, **values}]}).encode()


@pytest.mark.parametrize("body, message", [
    (b"[" * 100_000 + b"]" * 100_000, "nests JSON deeper than 1,000 levels"),
    (b'{"instances": [' + b"[" * 500 + b"]" * 500 + b"]}",
     "instance 0: is not an object of feature values"),
    (_instance(carrier="U\ud800A"),  # json.dumps writes the lone surrogate as \ud800
     "instance 0: 'carrier' is not Unicode text (it holds a lone surrogate)"),
    (_instance(temp=1).replace(b'"temp": 1', b'"temp": 1' + b"0" * 400),
     "instance 0: 'temp' must be a finite float32, got inf"),
    (_instance(year=1).replace(b'"year": 1', b'"year": 1' + b"0" * 400),
     f"instance 0: 'year' = 1{'0' * 27}...{'0' * 29} is outside int64"),
    (_instance(year=1).replace(b'"year": 1', b'"year": 1' + b"0" * 5000),
     "not valid JSON: Exceeds the limit (4300 digits)"),
    (_instance(carrier=""), "instance 0: lacks the required feature 'carrier'"),
    (_instance(distance=[[["far"] * 1000]]),
     "instance 0: 'distance' must be a number, got "
     "[[['far', 'far', 'far', 'far', 'far', 'far', ...]]]"),
])
def test_hostile_bodies_get_a_400_naming_the_fault(server, body, message):
    status, answer, headers = _post(server, body)
    assert (status, headers["content-type"]) == (400, "application/json")
    assert message in answer["error"]
    assert len(answer["error"]) < 400
    assert 0 < _good(server) < 1


def test_an_empty_optional_feature_is_scored_as_missing(server):
    missing = {k: v for k, v in GOOD.items() if k != "dep_delay"}
    status, left_out, _ = _post(server, json.dumps({"instances": [missing]}).encode())
    assert status == 200
    status, empty, _ = _post(server, _instance(dep_delay=""))
    assert status == 200 and empty["predictions"] == left_out["predictions"]


@pytest.mark.parametrize("request_bytes, status, message", [
    (f"POST {PREDICT} HTTP/1.1\r\nContent-Length: abc\r\n\r\n".encode(), 400,
     "Content-Length 'abc' is not a whole number of bytes"),
    (f"POST {PREDICT} HTTP/1.1\r\nContent-Length: -5\r\n\r\n".encode(), 400,
     "Content-Length '-5' is not a whole number of bytes"),
    (f"POST {PREDICT} HTTP/1.1\r\nContent-Length: {40 << 20}\r\n\r\n".encode(), 413,
     "request body over 33554432 bytes"),
    (f"POST {PREDICT} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".encode(), 411,
     "not chunked"),
    (b"PUT /v1/models/flights HTTP/1.1\r\n\r\n", 501, "unsupported method 'PUT'"),
    (b"GET /v1/models/other HTTP/1.1\r\n\r\n", 404, "no resource at /v1/models/other"),
    (b"GET /v1/models/flights HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431,
     "Line too long"),
    (b"GARBAGE\r\n\r\n", 400, "Bad request syntax"),
    # 100 instances' worth declared, 10 bytes sent: the body's deadline ends it.
    (f"POST {PREDICT} HTTP/1.1\r\nContent-Length: 100\r\n\r\n{{\"instanc".encode(), 408,
     "the body did not arrive within 1 s"),
])
def test_malformed_requests_get_json_and_are_counted(server, request_bytes, status, message):
    before = _metrics(server)
    signature = "unknown" if request_bytes.startswith(b"POST") else "-"
    got, answer, headers = _raw(server, request_bytes)
    assert (got, headers["content-type"]) == (status, "application/json")
    assert message in answer["error"]
    counted = _metrics(server)[_requests(status, signature)] - before.get(
        _requests(status, signature), 0)
    assert counted == 1
    assert 0 < _good(server) < 1


def test_metric_labels_never_take_a_clients_feature_names(server):
    before = _metrics(server)
    for i in range(200):
        status, _, _ = _post(server, _instance(**{f"made_up_{i}" * 20: 1}))
        assert status == 400
    after = _metrics(server)
    other = 'tft_serving_invalid_instances_total{feature="other"}'
    assert after[other] - before.get(other, 0) == 200
    assert not [name for name in after if "made_up" in name]
    assert len(after) - len(before) <= 2  # the "other" counter and its _created, at most


def test_a_slow_client_is_cut_off_and_the_others_answered(server):
    with socket.create_connection(server, timeout=10) as slow:
        started = time.monotonic()
        slow.sendall(f"POST {PREDICT} HTTP/1.1\r\n".encode())
        answered = 0
        # A header byte every 0.2 s, so that no single read waits a second,
        # until the server answers (or 5 s pass, and the test fails).
        while not select.select([slow], [], [], 0)[0] and time.monotonic() - started < 5:
            slow.sendall(b"X")
            answered += _good(server) > 0
            time.sleep(0.2)
        held = time.monotonic() - started
        status, answer, _ = _response(slow)
    assert status == 408 and "did not arrive within 1 s" in answer["error"]
    assert 1.0 <= held < 2.0
    assert answered >= 3


def test_past_the_connection_limit_a_503_then_service_again(server):
    begun = []
    for _ in range(LIMITS.max_connections):  # each holds a thread: a request begun
        connection = socket.create_connection(server, timeout=10)
        connection.sendall(b"GET /v1/models/flights HTTP/1.1\r\n")
        begun.append(connection)
    time.sleep(0.1)
    status, answer, headers = _raw(server, b"GET /v1/models/flights HTTP/1.1\r\n\r\n")
    assert (status, headers["retry-after"]) == (503, "1")
    assert "connection limit" in answer["error"]
    # Their header deadline frees the threads.
    assert [_response(c)[0] for c in begun] == [408] * LIMITS.max_connections
    for connection in begun:
        connection.close()
    time.sleep(0.1)  # the server frees a thread once it has closed its end
    assert 0 < _good(server) < 1


def test_a_burst_of_connections_the_pools_size_waits_for_no_retransmission(service):
    """With Python's default backlog of 5, a burst of 64 connections overflows
    it and the dropped SYNs retry after 1 s; a backlog as deep as the pool
    takes the burst."""
    running = _start(service, serve.Limits())
    address, latencies = running.server_address, []
    barrier = threading.Barrier(64)

    def client():
        barrier.wait()
        started = time.monotonic()
        connection = http.client.HTTPConnection(*address, timeout=10)
        connection.request("GET", "/v1/models/flights")
        assert connection.getresponse().status == 200
        connection.close()
        latencies.append(time.monotonic() - started)

    try:
        threads = [threading.Thread(target=client) for _ in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        running.shutdown()
        running.server_close()
    assert len(latencies) == 64
    assert max(latencies) < 0.9
