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
from tests.conftest import run_cli

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


def test_validate_without_a_shift_passes(validated_run):
    run_dir, quiet, _ = validated_run
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    entry = _summary(run_dir)["same-as-training"]
    assert entry["ok"] is True and entry["anomalies"] == {}
    # The training slice holds 3 broken rows: rejected, and accounted for.
    assert (entry["rows"], entry["rejected"]) == (5000, 3)
    assert all(m["ok"] for m in entry["skew"].values()) and entry["drift"] == {}
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
