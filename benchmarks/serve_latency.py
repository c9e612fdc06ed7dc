"""Benchmark: REST latency and throughput of ``python -m pipelines serve``.

Uses a model trained on the default job's output (all flights rows), starting
from whatever of that already exists: the run under ``--run_dir`` (made with
``benchmarks/run_flights.py`` when missing) and the model under ``--model_dir``
(trained when missing). The server runs in its own process on loopback; the
clients send real serving rows as JSON, first without and then with the request
log (``--log_sample 1.0``). Updates ``benchmarks/RESULTS.md``::

    .venv/bin/python benchmarks/serve_latency.py
"""

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.run_flights import write_section  # noqa: E402
from pipelines.model.check_parity import raw_examples  # noqa: E402
from pipelines.reports.run_dir import RunDir  # noqa: E402
from transforms import flights  # noqa: E402

SECTION = "## Serving over REST: `python -m pipelines serve`"
SEQUENTIAL_REQUESTS = 300
CONCURRENT_CLIENTS = 8
CONCURRENT_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tmp = tempfile.gettempdir()
    parser.add_argument("--run_dir", default=os.path.join(tmp, "tft-preprocessing-bench"))
    parser.add_argument("--model_dir", default=os.path.join(tmp, "tft-preprocessing-bench-model"))
    args = parser.parse_args()
    instances = _instances(args.run_dir, args.model_dir)

    log_dir = tempfile.mkdtemp(prefix="tft-preprocessing-request-log-")
    plain = _measure(args.model_dir, instances)
    logged = _measure(args.model_dir, instances, "--log_dir", log_dir, "--log_sample", "1.0")
    logged_rows = sum(1 for name in os.listdir(log_dir) if name.endswith(".csv")
                      for _ in open(os.path.join(log_dir, name))) - sum(
        1 for name in os.listdir(log_dir) if name.endswith(".csv"))  # less each header
    shutil.rmtree(log_dir)

    def row(label, ms):
        return (f"| {label} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 99):.1f} | "
                f"{1000 / np.mean(ms):,.0f} |")

    lines = [
        SECTION, "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores with "
        "`.venv/bin/python benchmarks/serve_latency.py`: the wide & deep model trained on "
        "all flights rows, real serving rows as JSON, server and clients on the same "
        "machine (loopback, keep-alive connections); every instance checked against the "
        "schema, the metrics counted. Then the same with the request log on "
        "(`--log_dir DIR --log_sample 1.0`: every answered instance written).", "",
        "| request | request log | p50 ms | p99 ms | requests/s, one client |",
        "|---|---|---:|---:|---:|",
    ]
    for label, (one, hundred, _) in (("off", plain), ("every instance", logged)):
        lines += [row(f"1 instance | {label}", one), row(f"100 instances | {label}", hundred)]
    lines += [
        "",
        f"- {CONCURRENT_CLIENTS} concurrent clients, 1 instance per request, "
        f"{CONCURRENT_SECONDS:.0f} s: **{plain[2]:,.0f} requests/s** without the log, "
        f"**{logged[2]:,.0f} requests/s** with it ({logged_rows:,} rows logged, none "
        f"dropped: the log writes on a thread of its own)", "",
    ]
    write_section(SECTION, "\n".join(lines))
    for label, (one, hundred, rate) in (("log off", plain), ("log on", logged)):
        print(f"{label}: p50 1 instance {np.percentile(one, 50):.1f} ms, 100 instances "
              f"{np.percentile(hundred, 50):.1f} ms; {rate:,.0f} req/s with "
              f"{CONCURRENT_CLIENTS} clients")


def _instances(run_dir: str, model_dir: str) -> list[dict]:
    """100 serving rows as JSON instances, making the run and the model first
    when they are missing."""
    if not os.path.exists(os.path.join(run_dir, "run_summary.json")):
        _python("benchmarks/run_flights.py", "--output_dir", run_dir)
    if not os.path.exists(os.path.join(model_dir, "serving", "saved_model.pb")):
        _python("-m", "pipelines", "train", "--run_dir", run_dir, "--model_dir", model_dir)
    raw, _ = raw_examples(RunDir(run_dir), "serving", 100)
    return [{name: _json_value(raw.column(name)[i].as_py()) for name in flights.SERVING_INPUTS
             if raw.column(name)[i].as_py() is not None}
            for i in range(raw.num_rows)]


def _measure(model_dir: str, instances: list[dict], *flags: str):
    """(latencies of 1 instance, of 100, requests/s with concurrent clients)
    of a server started with ``flags``."""
    server = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "serve", "--port", "0",
         "--model", os.path.join(model_dir, "serving"), *flags],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        address = _wait_for_address(server)
        one = _latencies(address, instances[:1])
        hundred = _latencies(address, instances[:100])
        rate = _throughput(address, instances[:1])
    finally:
        server.terminate()  # SIGTERM: the log completes its last shard
        server.wait(timeout=60)
    return one, hundred, rate


def _python(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def _json_value(value):
    value = value[0]
    return value.decode() if isinstance(value, bytes) else value


def _wait_for_address(server: subprocess.Popen) -> tuple[str, int]:
    for line in server.stderr:
        match = re.search(r"at http://([\d.]+):(\d+)/", line)
        if match:
            threading.Thread(target=server.stderr.read, daemon=True).start()  # drain
            return match.group(1), int(match.group(2))
    raise RuntimeError("the server did not start")


def _post(connection: http.client.HTTPConnection, body: bytes) -> None:
    connection.request("POST", "/v1/models/flights:predict", body=body,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(payload)


def _latencies(address, instances: list[dict]) -> np.ndarray:
    body = json.dumps({"instances": instances}).encode()
    connection = http.client.HTTPConnection(*address)
    for _ in range(20):  # warm-up: the first calls trace and allocate
        _post(connection, body)
    milliseconds = []
    for _ in range(SEQUENTIAL_REQUESTS):
        started = time.perf_counter()
        _post(connection, body)
        milliseconds.append((time.perf_counter() - started) * 1000)
    connection.close()
    return np.array(milliseconds)


def _throughput(address, instances: list[dict]) -> float:
    body = json.dumps({"instances": instances}).encode()
    counts = [0] * CONCURRENT_CLIENTS
    deadline = time.perf_counter() + CONCURRENT_SECONDS

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(*address)
        while time.perf_counter() < deadline:
            _post(connection, body)
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONCURRENT_CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
