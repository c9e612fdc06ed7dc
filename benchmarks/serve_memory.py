"""Benchmark: the memory of ``python -m pipelines serve`` under steady load.

Eight clients send real serving rows as JSON without pause, alternating 1 and
100 instances a request, each client opening a new connection every 100
requests (so that connections, and the threads that answer them, come and
go); the server's resident memory (``VmRSS``) is read every 10 s. Flat means
the figure after 5 minutes is within a few percent of the one after 1 minute.
The model and rows are ``benchmarks/serve_latency.py``'s. Updates
``benchmarks/RESULTS.md``::

    .venv/bin/python benchmarks/serve_memory.py [--minutes 5]

``--server_root DIR`` serves from another checkout (the code before a change),
with this script's rows and model.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.run_flights import write_section  # noqa: E402
from benchmarks.serve_latency import _instances, _post, _wait_for_address  # noqa: E402

SECTION = "## Serving memory under steady load: `python -m pipelines serve`"
CLIENTS = 8
REQUESTS_PER_CONNECTION = 100
SAMPLE_SECONDS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tmp = tempfile.gettempdir()
    parser.add_argument("--run_dir", default=os.path.join(tmp, "tft-preprocessing-bench"))
    parser.add_argument("--model_dir", default=os.path.join(tmp, "tft-preprocessing-bench-model"))
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--server_root", default=ROOT)
    args = parser.parse_args()
    instances = _instances(args.run_dir, args.model_dir)
    bodies = [json.dumps({"instances": instances[:n]}).encode() for n in (1, 100)]

    server = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "serve", "--port", "0",
         "--model", os.path.join(args.model_dir, "serving")],
        cwd=args.server_root, stderr=subprocess.PIPE, text=True)
    try:
        address = _wait_for_address(server)
        samples, requests = _load(address, bodies, server.pid, args.minutes * 60)
    finally:
        server.terminate()
        server.wait(timeout=60)

    def rss_at(seconds: float) -> float:
        return min(samples, key=lambda sample: abs(sample[0] - seconds))[1]

    first, last = rss_at(60), rss_at(args.minutes * 60)
    line = (f"RSS after 1 minute {first:,.0f} MB, after {args.minutes:g} minutes "
            f"{last:,.0f} MB ({(last - first) / first:+.1%}); {requests:,} requests, "
            f"{requests / (args.minutes * 60):,.0f}/s")
    print(line)
    if args.server_root == ROOT:
        write_section(SECTION, "\n".join([
            SECTION, "",
            f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores with "
            f"`.venv/bin/python benchmarks/serve_memory.py --minutes {args.minutes:g}`: "
            f"{CLIENTS} clients without pause, 1 and 100 instances a request in turn, a new "
            f"connection every {REQUESTS_PER_CONNECTION} requests; the server's VmRSS every "
            f"{SAMPLE_SECONDS} s.", "",
            f"- {line}",
            "- every sample, MB: " + ", ".join(f"{mb:,.0f}" for _, mb in samples), ""]))


def _load(address, bodies: list[bytes], pid: int, seconds: float):
    """([(seconds since the start, RSS MB)], requests answered) of ``seconds``
    of load."""
    started = time.monotonic()
    deadline = started + seconds
    counts = [0] * CLIENTS

    def client(index: int) -> None:
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection(*address, timeout=60)
            for i in range(REQUESTS_PER_CONNECTION):
                _post(connection, bodies[i % 2])
                counts[index] += 1
            connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    samples = []
    while time.monotonic() < deadline:
        time.sleep(min(SAMPLE_SECONDS, max(deadline - time.monotonic(), 0)))
        samples.append((time.monotonic() - started, _rss_mb(pid)))
    for thread in threads:
        thread.join()
    return samples, sum(counts)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


if __name__ == "__main__":
    main()
