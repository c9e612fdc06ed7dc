"""Benchmark: what the request log (``serve --log_dir``) costs a request, and
what it loses when its server is killed or flooded.

Three measurements on flights-like rows (the 19 serving features, about 150
bytes of CSV a row), in this process unless said otherwise:

- **cost**: 8 threads offer rows to one ``RequestLog`` as fast as they can for
  a few seconds (1 row, then 100 rows an offer); offers/s and rows written/s.
  Run with the log's fsync on its interval (the default) and, where the code
  has one, with the interval out of reach, to see what the fsync costs.
- **SIGKILL**: a process offers 79,213-row batches (the batch of issue 27), says
  after each that it was answered, and is killed right after the third, or a
  second after it (the log's stated bound); the rows on disk (recovered, when
  the code can) against the rows answered.
- **burst**: three 79,213-row batches offered at once, as three 31 MB requests
  arriving together do; rows dropped.

``--code DIR`` measures the ``RequestLog`` of another checkout (``git archive``
of an older commit), for a before and after::

    .venv/bin/python benchmarks/request_log_durability.py [--code DIR]
"""

import argparse
import glob
import inspect
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = ("year", "month", "day", "hour", "minute", "carrier", "origin", "dest",
            "distance", "dep_delay", "tailnum", "origin_departures_1h",
            "carrier_departures_1h", "origin_dep_delay_mean_24h",
            "carrier_dep_delay_mean_24h", "temp", "wind_speed", "precip", "visib")
THREADS = 8
SECONDS = 4.0
ISSUE_BATCH = 79_213


def flights_like_rows(count: int, seed: int = 0) -> list[dict]:
    """Rows of the flights serving features, typed as requests carry them."""
    pick = random.Random(seed)
    return [{
        "year": 2013, "month": pick.randint(1, 12), "day": pick.randint(1, 28),
        "hour": pick.randint(5, 23), "minute": pick.randint(0, 59),
        "carrier": pick.choice(["UA", "AA", "B6", "DL", "EV", "MQ"]),
        "origin": pick.choice(["EWR", "JFK", "LGA"]),
        "dest": pick.choice(["IAH", "MIA", "BQN", "ATL", "ORD"]),
        "distance": float(pick.randint(80, 4983)), "dep_delay": float(pick.randint(-20, 300)),
        "tailnum": f"N{pick.randint(10000, 99999)}", "origin_departures_1h": pick.randint(0, 60),
        "carrier_departures_1h": pick.randint(0, 20),
        "origin_dep_delay_mean_24h": pick.uniform(-5, 60),
        "carrier_dep_delay_mean_24h": pick.uniform(-5, 60), "temp": pick.uniform(10, 100),
        "wind_speed": pick.uniform(0, 30), "precip": 0.0, "visib": 10.0,
    } for _ in range(count)]


def measure_cost(request_log, per_offer: int, **options) -> tuple[float, float, int]:
    """(offers/s, rows written/s, rows dropped) of THREADS threads offering."""
    written, dropped = [0], [0]
    directory = tempfile.mkdtemp(prefix="request-log-bench-")
    log = request_log.RequestLog(directory, list(FEATURES), 1.0,
                                 on_written=lambda n: written.__setitem__(0, written[0] + n),
                                 on_dropped=lambda n: dropped.__setitem__(0, dropped[0] + n),
                                 **options)
    rows = flights_like_rows(per_offer)
    predictions = [0.25] * per_offer
    counts = [0] * THREADS
    deadline = time.perf_counter() + SECONDS

    def offer(index: int) -> None:
        while time.perf_counter() < deadline:
            log.offer(rows, predictions)
            counts[index] += 1

    threads = [threading.Thread(target=offer, args=(i,)) for i in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    log.close()
    shutil.rmtree(directory)
    return sum(counts) / elapsed, written[0] / elapsed, dropped[0]


# The killed process: the measured checkout's RequestLog, this module's rows.
_KILLED = """
import random, sys, time
sys.path.insert(0, sys.argv[1])
from pipelines.model import request_log
FEATURES = {features!r}
{rows}
log = request_log.RequestLog(sys.argv[2], list(FEATURES), 1.0)
rows = flights_like_rows(int(sys.argv[3]))
answered = 0
for _ in range(3):
    log.offer(rows, [0.25] * len(rows))
    answered += len(rows)
    print(answered, flush=True)
time.sleep(60)
"""


def measure_sigkill(code: str, delay: float) -> tuple[int, int, float]:
    """(rows answered, rows on disk, seconds from the last answer to the kill),
    killed ``delay`` seconds after the last answer."""
    directory = tempfile.mkdtemp(prefix="request-log-kill-")
    script = _KILLED.format(features=FEATURES, rows=inspect.getsource(flights_like_rows))
    process = subprocess.Popen(
        [sys.executable, "-c", script, code, directory, str(ISSUE_BATCH)],
        stdout=subprocess.PIPE, text=True)
    for _ in range(3):
        answered = int(process.stdout.readline())
    answered_at = time.perf_counter()
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    waited = time.perf_counter() - answered_at
    process.wait()
    sys.path.insert(0, code)
    from pipelines.model import request_log
    if hasattr(request_log, "recover"):
        request_log.recover(directory)
    on_disk = 0
    for path in glob.glob(os.path.join(directory, "*.csv*")):
        with open(path, "rb") as f:
            data = f.read()
        on_disk += data.count(b"\n") - 1  # whole lines, less the header
    shutil.rmtree(directory)
    return answered, on_disk, waited


def measure_burst(request_log) -> int:
    """Rows dropped when three issue-size batches are offered at once."""
    dropped = [0]
    directory = tempfile.mkdtemp(prefix="request-log-burst-")
    log = request_log.RequestLog(directory, list(FEATURES), 1.0,
                                 on_dropped=lambda n: dropped.__setitem__(0, dropped[0] + n))
    rows = flights_like_rows(ISSUE_BATCH)
    threads = [threading.Thread(target=log.offer, args=(rows, [0.25] * len(rows)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    shutil.rmtree(directory)
    return dropped[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", default=ROOT,
                        help="the checkout whose RequestLog is measured (default: this one)")
    args = parser.parse_args()
    code = os.path.abspath(args.code)
    for delay in (0.0, 1.0):
        answered, on_disk, waited = measure_sigkill(code, delay)
        print(f"SIGKILL {waited * 1000:,.1f} ms after {answered:,} rows were answered: "
              f"{on_disk:,} on disk, {answered - on_disk:,} lost")
    from pipelines.model import request_log  # the one measure_sigkill put first
    print(f"code: {os.path.dirname(os.path.dirname(request_log.__file__))}")
    print(f"burst of 3 x {ISSUE_BATCH:,} rows at once: {measure_burst(request_log):,} dropped")
    settings = [("as it is", {})]
    if "sync_seconds" in inspect.signature(request_log.RequestLog).parameters:
        settings = [("fsync every second", {}), ("no periodic fsync", {"sync_seconds": 1e9})]
    for label, options in settings:
        for per_offer in (1, 100):
            offers, rows, dropped = measure_cost(request_log, per_offer, **options)
            print(f"{label}, {THREADS} threads, {per_offer} row(s) an offer: "
                  f"{offers:,.0f} offers/s, {rows:,.0f} rows written/s, {dropped:,} dropped")


if __name__ == "__main__":
    main()
