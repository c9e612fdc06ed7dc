"""Benchmark: ``run`` on a real full disk, at each amount of free space.

On a small file system (a few MB, e.g. ``mount -t tmpfs -o size=4m tmpfs
/mnt/small`` as root), fills all but ``FREE`` KB with a filler file, runs
``python -m pipelines run`` on a few hundred flights rows into it (a fresh
interpreter each time, as a user runs it), then removes the filler and runs the
same command again. For each amount of free space it prints the exit status,
the last line on stderr, whether a traceback was printed, whether
``run_summary.json`` parses, any 0-byte file a reader trusts, and whether the
re-run completed::

    .venv/bin/python benchmarks/disk_full.py --dir /mnt/small [--free 40,150,300,...]
        [--project CHECKOUT]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from pipelines import nycflights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRUSTED = ("run_summary.json", "report.html", "validation_summary.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="a directory on a small file system")
    parser.add_argument("--free", default="40,150,300,450,600,750,900",
                        help="KB left free, comma-separated")
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--project", default=ROOT,
                        help="the checkout whose `python -m pipelines` runs (to compare one "
                             "before a change)")
    args = parser.parse_args()
    inputs = tempfile.mkdtemp(prefix="disk-full-inputs-")
    with open(nycflights.default_inputs()[0], "rb") as f:
        header, *lines = f.readlines()[:args.rows + 101]
    train, serving = os.path.join(inputs, "train.csv"), os.path.join(inputs, "serving.csv")
    with open(train, "wb") as f:
        f.write(header + b"".join(lines[:args.rows]))
    with open(serving, "wb") as f:
        f.write(header + b"".join(lines[args.rows:]))
    print("| free KB | exit | traceback | summary parses | 0-byte trusted files | last line "
          "| re-run exit | re-run summary parses |")
    print("|---|---|---|---|---|---|---|---|")
    for free_kb in (int(k) for k in args.free.split(",")):
        out = os.path.join(args.dir, "out")
        shutil.rmtree(out, ignore_errors=True)
        filler = os.path.join(args.dir, "filler")
        _fill(filler, args.dir, free_kb * 1024)
        command = [sys.executable, "-m", "pipelines", "run", "--dataset", "flights",
                   "--output_dir", out, "--train_input", train, "--serving_input", serving]
        full = subprocess.run(command, cwd=args.project, capture_output=True, text=True)
        state = (full.returncode, "Traceback" in full.stderr, _parses(out), _empty(out))
        last = (full.stderr.strip().splitlines() or [""])[-1]
        os.remove(filler)
        again = subprocess.run(command, cwd=args.project, capture_output=True, text=True)
        print(f"| {free_kb} | {state[0]} | {state[1]} | {state[2]} | {state[3] or '-'} | "
              f"{last[:160]} | {again.returncode} | {_parses(out)} |", flush=True)


def _fill(path: str, directory: str, leave: int) -> None:
    """A file taking all of ``directory``'s file system but ``leave`` bytes."""
    with open(path, "wb") as f:
        size = shutil.disk_usage(directory).free - leave
        chunk = b"\0" * (1 << 16)
        while size > 0:
            f.write(chunk[:min(size, len(chunk))])
            size -= len(chunk)


def _parses(out: str) -> bool:
    try:
        with open(os.path.join(out, "run_summary.json")) as f:
            json.load(f)
        return True
    except (OSError, ValueError):
        return False


def _empty(out: str) -> str:
    return ",".join(name for name in TRUSTED
                    if os.path.exists(os.path.join(out, name))
                    and not os.path.getsize(os.path.join(out, name)))


if __name__ == "__main__":
    main()
