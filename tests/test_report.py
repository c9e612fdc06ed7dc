"""``validate`` and the HTML report: new serving data checked against a run,
and the report rendered in headless Chromium."""

import json
import os
import shutil
import subprocess

import pytest
import tensorflow as tf

import schemas
from pipelines.records.run_record import Inputs, Rows
from pipelines.reports import summary
from tests.conftest import BAD_ROWS, run_cli

SCHEMA_FEATURES = [f.name for f in schemas.load_schema("flights").feature]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# What the machine's probe found to keep Chromium quiet and off the network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory, flights_run):
    """A copy of the run, then `validate` twice: the training slice itself (no
    skew) compared with the skewed serving split as the previous span (drift)."""
    run_dir = str(tmp_path_factory.mktemp("validated") / "run")
    shutil.copytree(flights_run.output_dir, run_dir)
    quiet = run_cli("validate", "--run_dir", run_dir, "--serving_input",
                    flights_run.train_input, "--span", "same-as-training", "--fail_on_anomalies")
    drifted = run_cli("validate", "--run_dir", run_dir, "--serving_input",
                      flights_run.train_input, "--span", "after-skewed",
                      "--previous_stats", os.path.join(run_dir, "stats", "serving.pb"),
                      "--fail_on_anomalies")
    return run_dir, quiet, drifted


def _summary(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "validation_summary.json")) as f:
        return {e["span"]: e for e in json.load(f)["validations"]}


def test_run_records_its_serving_split(validated_run):
    run_dir, _, _ = validated_run
    run = _summary(run_dir)["run"]
    assert run["ok"] is False and "origin" in run["anomalies"]
    assert run["skew"]["origin"]["ok"] is False


def test_validate_without_a_shift_fails_only_on_its_rejected_rows(validated_run):
    run_dir, quiet, _ = validated_run
    # The training slice holds 3 broken rows (0.06%, under --max_rejected_fraction):
    # validated nonetheless, but a span with rows it could not read is not ok.
    assert quiet.returncode == 1, quiet.stdout + quiet.stderr
    entry = _summary(run_dir)["same-as-training"]
    assert entry["ok"] is False and entry["failed"] is None and entry["anomalies"] == {}
    assert (entry["read"], entry["rows"], entry["rejected"]) == (5003, 5000, 3)
    assert entry["rejected_by_kind"] == {"wrong_field_count": 1, "unparsable": 1,
                                         "missing_required": 1}
    assert all(m["ok"] for m in entry["skew"].values()) and entry["drift"] == {}
    assert "\nverdict: not ok (3 rejected rows)\n" in quiet.stdout
    assert "\nrejected: 3 of 5,003 rows rejected (0.06%): " in quiet.stdout
    span_dir = os.path.join(run_dir, "validations", "same-as-training")
    for path in ("stats/serving.pb", "anomalies/serving.pbtxt"):
        assert os.path.isfile(os.path.join(span_dir, path)), path


def test_validate_reports_drift_and_fails_on_request(validated_run):
    run_dir, _, drifted = validated_run
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    entry = _summary(run_dir)["after-skewed"]
    assert entry["drift"]["origin"]["ok"] is False
    assert all(m["ok"] for m in entry["skew"].values()), "still like training"
    assert "origin" in entry["anomalies"]
    # Seven comparators: arr_delay's and air_time's are not for serving data (SERVING
    # environment), which a departing flight's cannot carry.
    assert len(entry["drift"]) == 7 and not {"arr_delay", "air_time"} & set(entry["drift"])
    over = sorted(f for f, m in entry["drift"].items() if not m["ok"])
    assert f"drift: {7 - len(over)} of 7 features within threshold; over: {', '.join(over)}" in (
        drifted.stdout)


def _flights_lines(run_dir: str, path: str, good: int, bad: list[bytes]) -> str:
    """A serving file: the header and ``good`` readable rows of the training
    slice, then the ``bad`` lines."""
    with open(path, "rb") as f:
        header, *rows = f.read().splitlines(keepends=True)
    readable = [r for r in rows if r not in {line for line, _ in BAD_ROWS}][:good]
    target = os.path.join(os.path.dirname(run_dir), f"serving-{good}-{len(bad)}.csv")
    with open(target, "wb") as f:
        f.write(header + b"".join(readable) + b"".join(bad))
    return target


def _copy(flights_run, tmp_path) -> str:
    run_dir = str(tmp_path / "run")
    shutil.copytree(flights_run.output_dir, run_dir)
    return run_dir


def test_validate_fails_a_span_it_could_not_read(flights_run, tmp_path):
    run_dir = _copy(flights_run, tmp_path)
    unreadable = _flights_lines(run_dir, flights_run.train_input, 0, [BAD_ROWS[0][0]] * 40)
    result = run_cli("validate", "--run_dir", run_dir, "--serving_input", unreadable,
                     "--span", "unreadable", "--fail_on_anomalies")
    assert result.returncode == 2, result.stdout + result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in result.stderr
    assert error[0].startswith(
        "error: span unreadable failed: 40 of 40 rows rejected (100.00%): wrong_field_count "
        "40, e.g. serving-0-40.csv line 2: expected 19 fields, found 13; they are in ")
    assert "more than --max_rejected_fraction 0.001 allows; recorded as failed in " in error[0]
    entry = _summary(run_dir)["unreadable"]
    assert entry["ok"] is False and entry["failed"] and (entry["read"], entry["rows"]) == (40, 0)
    with open(os.path.join(run_dir, "report.html")) as f:
        page = f.read()
    assert "<tr class='failed'><td>unreadable</td>" in page
    assert "<span class='bad'>failed</span>" in page


def test_validate_names_one_rejected_row_in_two_thousand(flights_run, tmp_path):
    run_dir = _copy(flights_run, tmp_path)
    serving = _flights_lines(run_dir, flights_run.train_input, 1999, [BAD_ROWS[1][0]])
    result = run_cli("validate", "--run_dir", run_dir, "--serving_input", serving,
                     "--span", "one-bad-row", "--fail_on_anomalies")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("\nrejected: 1 of 2,000 rows rejected (0.05%): unparsable 1, e.g. "
            "serving-1999-1.csv line 2001: day: cannot parse b'x' as INT; they are in "
            ) in result.stdout
    assert "\nverdict: not ok (1 rejected row)\n" in result.stdout
    allowed = run_cli("validate", "--run_dir", run_dir, "--serving_input", serving,
                      "--span", "one-bad-row-allowed")
    assert allowed.returncode == 0, "without --fail_on_anomalies it only reports"
    every_span = [e["span"] for e in json.load(open(
        os.path.join(run_dir, "validation_summary.json")))["validations"]]
    assert every_span == ["run", "one-bad-row", "one-bad-row-allowed"]
    with open(os.path.join(run_dir, "report.html")) as f:
        page = f.read()
    for span in every_span:
        assert f"<td>{span}</td>" in page, f"the report lists every span: {span}"


def test_report_is_self_contained(validated_run):
    run_dir, _, _ = validated_run
    with open(os.path.join(run_dir, "report.html")) as f:
        page = f.read()
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    for section in ("id='summary'", "id='anomalies'", "id='skew-drift'", "id='features'"):
        assert section in page
    assert "span after-skewed" in page and "previous span" in page
    assert "Likely fix:" in page


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium: apt-get install chromium "
                                              "(.ci/run installs it)")
def test_report_renders_in_chromium(validated_run, tmp_path):
    run_dir, _, _ = validated_run
    url = "file://" + os.path.join(run_dir, "report.html")
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    screenshot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *profile, "--window-size=1280,2400",
                    f"--screenshot={screenshot}", url], capture_output=True, timeout=120,
                   check=True)
    pixels = tf.io.decode_png(tf.io.read_file(str(screenshot))).numpy()
    assert pixels.shape[:2] == (2400, 1280)
    ink = (pixels.min(axis=2) < 200).mean()  # share of pixels that are not near-white
    assert 0.01 < ink < 0.6, ink
    assert len({tuple(p) for p in pixels[::40, ::40].reshape(-1, 3)}) > 8, "more than one color"
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *profile, "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    for heading in ("Summary", "Anomalies", "Skew and drift", "Features"):
        assert f"<h2>{heading}</h2>" in dom
    assert dom.count("class=\"card\"") == len(SCHEMA_FEATURES), "one card per schema feature"
    shutil.copy(screenshot, os.path.join(run_dir, "report.png"))  # to look at when it fails


def test_an_empty_eval_split_is_a_warning_in_the_summary():
    record = summary.build_record(
        dataset="tiny", schema_file="schema.pbtxt", inputs=Inputs(), eval_fraction=0.2,
        limit=None, output_dir="out", rows=Rows(read=3, train=3), rejected_by_reason={},
        stage_times=None, validated={})
    record = summary.with_timing(record, startup=1.0, build=1.0, run=1.0, summary=0.1)
    assert record.warnings == [
        "the eval split is empty: none of the 3 training rows fell into the 20% held out; "
        "with this few rows, evaluate on other data"]
    assert "\nwarning: the eval split is empty" in summary.format_report(record)
