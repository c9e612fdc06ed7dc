"""Bring your own data: ``init``, the zero-code ``run``, and serving data
without the label, tried as a new user would.

The census file (``../shared/data/census/adult.data``: no header, ``", "``,
``?``) goes through ``init`` naming its columns and label, then ``run``,
``check-parity``, ``validate`` on a serving file without the label, and
``train``; the Chicago taxi file through the zero-code ``run``. Each
end-to-end run happens once (module fixtures) and the tests inspect it. A small
hand-written file covers the rest of the recipe (text timestamps, hashing,
whole-number classes) without the shared data.
"""

import csv
import io
import json
import os
import random
import shutil
import tempfile

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from pipelines.decode.columns import Column, CsvFormat
from pipelines.decode.csv_decoder import CsvDecoder, HeaderMismatchError
from pipelines.model.check_parity import read_raw_rows
from pipelines.reports.run_dir import RunDir
from tests.analyzer_constants import (
    consumed_constants,
    float32_ulps,
    present_values,
    z_score_moments,
)
from tests.conftest import PROJECT_ROOT, SKEWED_ROWS, run_cli

SHARED = os.path.join(PROJECT_ROOT, "..", "shared", "data")
CENSUS = os.path.join(SHARED, "census", "adult.data")
TAXI = os.path.join(SHARED, "chicago_taxi", "data.csv")
CENSUS_NAMES = ("age,workclass,fnlwgt,education,education_num,marital_status,occupation,"
                "relationship,race,sex,capital_gain,capital_loss,hours_per_week,"
                "native_country,income_bracket")
SERVING_ROWS = 2000


def _require(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: these tests read ../shared/data/ "
                    f"(see ../shared/data/README.md)")


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def _summary(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "run_summary.json")) as f:
        return json.load(f)


def _without_column(source: str, target: str, column: int, rows: int, header: bool) -> None:
    """The last ``rows`` rows of ``source`` without its ``column``-th field, as
    serving traffic (which has no label) arrives; written in the source's dialect."""
    with open(source, newline="") as f:
        records = [r for r in csv.reader(f) if r]
    head, body = (records[:1], records[1:]) if header else ([], records)
    with open(target, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for record in head + body[-rows:]:
            writer.writerow(record[:column] + record[column + 1:] if column != -1
                            else record[:-1])


# -- census: init, run, check-parity, validate, train ----------------------------------------

@pytest.fixture(scope="module")
def census(tmp_path_factory):
    _require(CENSUS)
    root = tmp_path_factory.mktemp("census")
    dataset, out, serving = str(root / "census"), str(root / "run"), str(root / "serving.csv")
    init = _ok(run_cli("init", "--train_input", CENSUS, "--dir", dataset,
                       "--column_names", CENSUS_NAMES, "--label", "income_bracket"))
    _without_column(CENSUS, serving, -1, SERVING_ROWS, header=False)
    _ok(run_cli("run", "--dataset", dataset, "--train_input", CENSUS,
                "--serving_input", serving, "--output_dir", out))
    return {"dataset": dataset, "out": out, "serving": serving, "init": init}


@pytest.mark.slow
def test_init_writes_what_it_detected_in_the_census_file(census):
    with open(os.path.join(census["dataset"], "dataset.json")) as f:
        csv_format = json.load(f)["csv_format"]
    assert csv_format["delimiter"] == "," and csv_format["skip_initial_space"] is True
    assert csv_format["has_header"] is False and "?" in csv_format["null_values"]
    assert csv_format["column_names"] == CENSUS_NAMES.split(",")
    assert csv_format["key_columns"] == []
    assert "spaces after it, no header line" in census["init"]


@pytest.mark.slow
def test_census_splits_80_20_and_accounts_for_every_row(census):
    rows = _summary(census["out"])["rows"]
    assert rows["read"] == 32_561 + SERVING_ROWS and rows["rejected"] == 0
    assert rows["read"] == rows["train"] + rows["eval"] + rows["serving"]
    assert abs(rows["eval"] / (rows["train"] + rows["eval"]) - 0.2) < 0.02


@pytest.mark.slow
def test_every_census_column_is_in_the_transformed_schema(census):
    outputs = tft.TFTransformOutput(census["out"]).transformed_feature_spec()
    for column in CENSUS_NAMES.split(","):
        assert any(name == column or name.startswith(f"{column}_") for name in outputs), column
    assert outputs["income_bracket"].dtype == tf.int64


@pytest.mark.slow
def test_census_report_evaluates_skew_for_every_feature(census):
    summary = _summary(census["out"])
    features = set(CENSUS_NAMES.split(",")) - {"income_bracket"}
    assert set(summary["skew"]) == features
    assert summary["anomalies"]["serving"] == {}, "serving rows lack only the label"
    assert summary["serving_without"] == ["income_bracket"]


@pytest.mark.slow
def test_census_serving_records_carry_no_label(census):
    files = tf.io.gfile.glob(os.path.join(census["out"], "data", "serving", "*.tfrecord.gz"))
    record = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP")))
    features = tf.train.Example.FromString(record.numpy()).features.feature
    assert "income_bracket" not in features and "age_z" in features


@pytest.mark.slow
def test_census_serving_rows_without_the_label_match_the_pipeline(census):
    stdout = _ok(run_cli("check-parity", "--run_dir", census["out"], "--split", "serving",
                         "--n", str(SERVING_ROWS)))
    assert f"compared {SERVING_ROWS:,} rows x 14 features" in stdout and "0 mismatches" in stdout


@pytest.mark.slow
def test_validate_accepts_census_serving_data_without_the_label(census):
    stdout = _ok(run_cli("validate", "--run_dir", census["out"], "--serving_input",
                         census["serving"], "--span", "unlabelled"))
    assert f"span unlabelled: {SERVING_ROWS:,} rows, 0 rejected, no anomalies" in stdout


@pytest.mark.slow
def test_validate_reads_a_census_file_by_its_header_and_names_the_missing_column(
        census, tmp_path):
    """A serving file as a dataframe library writes it: a header, ``,`` without
    spaces, the columns in another order, one of them gone and an index added.
    Read by its header, whatever the dialect says: every row read, the missing
    column named (an anomaly), the extra one left out."""
    names = CENSUS_NAMES.split(",")
    with open(CENSUS, newline="") as f:
        records = [[v.strip() for v in r] for r in csv.reader(f) if r][-500:]
    kept = [n for n in reversed(names) if n not in ("hours_per_week", "income_bracket")]
    serving = tmp_path / "serving-with-header.csv"
    with open(serving, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["index", *kept])
        for i, record in enumerate(records):
            row = dict(zip(names, record, strict=True))
            writer.writerow([i, *(row[n] for n in kept)])
    run_dir = str(tmp_path / "run")
    shutil.copytree(census["out"], run_dir)
    result = run_cli("validate", "--run_dir", run_dir, "--serving_input", str(serving),
                     "--span", "by-header", "--fail_on_anomalies")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (f"{serving}: read by its header (delimiter ','; missing hours_per_week; extra "
            f"columns left out: index)") in result.stdout
    assert "span by-header: 500 rows, 0 rejected" in result.stdout
    assert (f"  hours_per_week: missing: the header of {serving} does not name it, so it was "
            f"read as missing in every row.") in result.stdout
    assert "verdict: not ok (missing column hours_per_week" in result.stdout
    with open(os.path.join(run_dir, "validation_summary.json")) as f:
        entry = json.load(f)["validations"][-1]
    assert entry["missing_columns"] == {"hours_per_week": str(serving)}
    assert (entry["read"], entry["rows"], entry["rejected"]) == (500, 500, 0)


def _scaled_sample(source: str, target: str, column: str, names: list[str] | None,
                   rows: int = 1000, factor: float = 1.3) -> None:
    """``rows`` random rows of ``source`` without the label (its last column),
    with ``column`` multiplied by ``factor``, written in the source's dialect
    (a header when ``names`` is None: it is read from the file)."""
    with open(source, newline="") as f:
        records = [[v.strip() for v in r] for r in csv.reader(f) if r]
    header = names is None
    names = records[0] if header else names
    body = records[1:] if header else records
    picked = [body[i] for i in sorted(random.Random(7).sample(range(len(body)), rows))]
    at = names.index(column)
    for record in picked:
        if record[at] not in ("", "?"):
            value = float(record[at]) * factor
            record[at] = str(round(value)) if record[at].isdigit() else f"{value:.2f}"
    with open(target, "w", newline="") as f:
        if header:
            f.write(",".join(names[:-1]) + "\n")
        separator = "," if header else ", "
        f.writelines(separator.join(r[:-1]) + "\n" for r in picked)


def _validated_skew(run_dir: str, serving: str, span: str) -> tuple[int, dict]:
    result = run_cli("validate", "--run_dir", run_dir, "--serving_input", serving,
                     "--span", span, "--fail_on_anomalies")
    with open(os.path.join(run_dir, "validation_summary.json")) as f:
        entry = json.load(f)["validations"][-1]
    assert entry["span"] == span and entry["rows"] == 1000, entry
    return result.returncode, entry["skew"]


def _quiet_random_spans(dataset_dir: str, source: str, splits: int = 3) -> list[dict]:
    """``splits`` random 1,000-row spans of ``source`` against the other rows'
    80%, under the drafted schema (as benchmarks/random_splits.py does 20)."""
    from pipelines import datasets, layout
    from pipelines.commands.suggest_thresholds import random_span_ratios
    from pipelines.decode.files import decoded_table

    dataset = datasets.load_directory(dataset_dir)
    schema = dataset.schema()
    table = dataset.preparation(schema).prepare_table(
        decoded_table(dataset.csv_decoder(schema), [source]).table, layout.TRAIN)
    return random_span_ratios(table, schema, splits, seed=11)


@pytest.mark.slow
def test_census_hours_per_week_scaled_by_1_3_is_flagged_and_random_spans_are_not(
        census, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(census["out"], run_dir)
    names = CENSUS_NAMES.split(",")
    scaled, same = str(tmp_path / "scaled.csv"), str(tmp_path / "same.csv")
    _scaled_sample(CENSUS, scaled, "hours_per_week", names)
    _scaled_sample(CENSUS, same, "hours_per_week", names, factor=1.0)
    code, skew = _validated_skew(run_dir, scaled, "scaled")
    assert code == 1 and skew["hours_per_week"]["verdict"] == "over", skew
    assert [f for f, m in skew.items() if m["verdict"] != "ok"] == ["hours_per_week"]
    code, skew = _validated_skew(run_dir, same, "same")
    assert code == 0 and {m["verdict"] for m in skew.values()} == {"ok"}, skew
    for ratios in _quiet_random_spans(census["dataset"], CENSUS):
        assert max(ratios.values()) <= 1, ratios


@pytest.mark.slow
def test_taxi_fare_scaled_by_1_3_is_flagged_and_random_spans_are_not(taxi, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(taxi["out"], run_dir)
    scaled = str(tmp_path / "scaled.csv")
    _scaled_sample(TAXI, scaled, "fare", None)
    code, skew = _validated_skew(run_dir, scaled, "scaled")
    assert code == 1 and skew["fare"]["verdict"] == "over", skew
    for ratios in _quiet_random_spans(os.path.join(taxi["out"], "dataset"), TAXI):
        assert max(ratios.values()) <= 1, ratios


def _trained(run_dir: str, model_dir: str, epochs: int) -> dict:
    """``train``'s metrics.json."""
    _ok(run_cli("train", "--run_dir", run_dir, "--model_dir", model_dir,
                "--epochs", str(epochs)))
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_train_on_census_beats_the_majority_class(census, tmp_path):
    metrics = _trained(census["out"], str(tmp_path / "model"), epochs=1)
    assert metrics["task"] == "binary"
    assert metrics["eval"]["accuracy"] > metrics["baseline"]["accuracy"] + 0.03


# -- Chicago taxi: the zero-code run ---------------------------------------------------------

TAXI_COMPARED = {  # every column but the label and pickup_census_tract (one value only)
    "pickup_community_area", "fare", "trip_start_month", "trip_start_hour", "trip_start_day",
    "trip_start_timestamp", "pickup_latitude", "pickup_longitude", "dropoff_latitude",
    "dropoff_longitude", "trip_miles", "dropoff_census_tract", "payment_type", "company",
    "trip_seconds", "dropoff_community_area"}


@pytest.fixture(scope="module")
def taxi(tmp_path_factory):
    _require(TAXI)
    root = tmp_path_factory.mktemp("taxi")
    out, serving = str(root / "run"), str(root / "serving.csv")
    _without_column(TAXI, serving, -1, SERVING_ROWS, header=True)  # tips is the last column
    temporary = root / "system_temp"  # the system's temporary directory, for this run
    temporary.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(temporary))
        stdout = _ok(run_cli("run", "--train_input", TAXI, "--label", "tips",
                             "--serving_input", serving, "--output_dir", out))
    return {"out": out, "stdout": stdout, "serving": serving,
            "left_in_temp": sorted(p.name for p in temporary.glob("tft-*"))}


@pytest.mark.slow
def test_the_zero_code_run_leaves_its_dataset_to_curate(taxi):
    dataset = os.path.join(taxi["out"], "dataset")
    assert sorted(os.listdir(dataset)) == ["dataset.json", "schema.pbtxt", "transforms.py"]
    with open(os.path.join(dataset, "transforms.py")) as f:
        source = f.read()
    assert ("recipes.timestamp_features(inputs['trip_start_timestamp'], "
            "name='trip_start_timestamp')") in source
    assert "outputs[LABEL_KEY] = recipes.number(inputs['tips'])" in source
    assert "recipes.vocabulary(inputs['payment_type']" in source
    assert "trip_start_timestamp    timestamp" in taxi["stdout"]
    # The draft lived in a temporary directory, gone with the run; the summary
    # names the copy to curate.
    assert taxi["left_in_temp"] == []
    assert _summary(taxi["out"])["schema_file"] == os.path.join(dataset, "schema.pbtxt")


@pytest.mark.slow
def test_taxi_splits_80_20_and_evaluates_skew_for_every_feature(taxi):
    summary = _summary(taxi["out"])
    rows = summary["rows"]
    assert rows["read"] == 15_002 + SERVING_ROWS and rows["rejected"] == 0
    assert abs(rows["eval"] / (rows["train"] + rows["eval"]) - 0.2) < 0.02
    assert set(summary["skew"]) == TAXI_COMPARED
    assert summary["serving_without"] == ["tips"]
    outputs = tft.TFTransformOutput(taxi["out"]).transformed_feature_spec()
    for column in TAXI_COMPARED | {"pickup_census_tract", "tips"}:
        assert any(name == column or name.startswith(f"{column}_") for name in outputs), column


# The numeric columns the zero-code recipe z-scores (recipes.z_score_imputed).
TAXI_Z_SCORED = {
    "dropoff_census_tract", "dropoff_community_area", "dropoff_latitude", "dropoff_longitude",
    "fare", "pickup_community_area", "pickup_latitude", "pickup_longitude", "trip_miles",
    "trip_seconds", "trip_start_day", "trip_start_hour", "trip_start_month"}


@pytest.mark.slow
def test_taxi_means_and_variances_are_within_a_float32_ulp_of_float64(taxi):
    # Of the training rows the run analyzed. In float32 they were up to 15 ulps
    # off (trip_miles' variance), and 2,400 for the census tracts' (int64 values
    # of 11 digits).
    run = RunDir(taxi["out"])
    rows = read_raw_rows(run, "train", _summary(taxi["out"])["rows"]["train"])
    transform_fn = run.tft_output.transform_savedmodel_dir
    moments = z_score_moments(transform_fn)
    assert moments.keys() == {f"{column}_z" for column in TAXI_Z_SCORED}
    for column in sorted(TAXI_Z_SCORED):
        values = present_values(rows.column(column))
        mean, variance = moments[f"{column}_z"]
        assert float32_ulps(mean, values.mean()) <= 1, (column, mean, values.mean())
        assert float32_ulps(variance, values.var()) <= 1, (column, variance, values.var())
    # The mean a missing trip_start_timestamp is imputed with.
    imputed = consumed_constants(transform_fn)["trip_start_timestamp_imputed"]
    timestamps = present_values(rows.column("trip_start_timestamp"))
    assert float32_ulps(imputed, timestamps.mean()) <= 1, (imputed, timestamps.mean())


@pytest.mark.slow
def test_taxi_serving_data_without_tips_validates(taxi):
    stdout = _ok(run_cli("validate", "--run_dir", taxi["out"], "--serving_input",
                         taxi["serving"], "--span", "untipped"))
    assert f"span untipped: {SERVING_ROWS:,} rows, 0 rejected" in stdout
    assert "tips" not in stdout.split("report:")[0]


@pytest.mark.slow
def test_taxi_serving_matches_the_pipeline_on_every_eval_row(taxi):
    eval_rows = _summary(taxi["out"])["rows"]["eval"]
    stdout = _ok(run_cli("check-parity", "--run_dir", taxi["out"], "--n", str(eval_rows)))
    assert f"compared {eval_rows:,} rows" in stdout and "0 mismatches" in stdout


@pytest.mark.slow
def test_train_on_taxi_is_a_regression_that_beats_the_mean(taxi, tmp_path):
    metrics = _trained(taxi["out"], str(tmp_path / "model"), epochs=3)
    assert metrics["task"] == "regression"
    assert metrics["eval"]["rmse"] < metrics["baseline"]["rmse"]

    # The zero-code dataset travels with the model: predict reads the
    # untipped serving file in its dialect and writes the regression's output.
    out = tmp_path / "predictions"
    stdout = _ok(run_cli("predict", "--model", str(tmp_path / "model" / "serving"),
                         "--input", taxi["serving"], "--output_dir", str(out)))
    assert f"{SERVING_ROWS:,} rows predicted, 0 rejected" in stdout
    with open(next(out.glob("predictions-*.csv"))) as f:
        header, *rows = f.read().splitlines()
    assert header == "row_key,input_file,input_line,prediction" and len(rows) == SERVING_ROWS


# -- a hand-written file: the rest of the recipe -----------------------------------------------

MONDAYS = [f"2024-{month:02d}-{day:02d}" for month, day in
           ((1, 1), (1, 8), (2, 5), (3, 4), (4, 1), (5, 6), (6, 3), (7, 1))]


@pytest.fixture(scope="module")
def handwritten(tmp_path_factory):
    """600 rows, ';'-separated with a BOM and CRLF line ends: a user id with too
    many values for a vocabulary, a city, a time (6 a.m. on Mondays; some
    missing or unreadable), an amount with NA, and a class 0/1/2 as the label."""
    root = tmp_path_factory.mktemp("handwritten")
    lines = ["user;city;when;amount;kind"]
    for i in range(600):
        when = "NA" if i % 50 == 0 else ("soon" if i % 97 == 0 else
                                         f"{MONDAYS[i % len(MONDAYS)]} 06:00:00")
        amount = "NA" if i % 7 == 0 else f"{(i % 13) * 1.5:.1f}"
        lines.append(f"u{i:04d};{('Lyon', 'Oslo', 'Lima')[i % 3]};{when};{amount};{i % 3}")
    path = root / "events.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    out = str(root / "run")
    stdout = _ok(run_cli("run", "--train_input", str(path), "--label", "kind",
                         "--output_dir", out))
    return {"out": out, "stdout": stdout}


def test_the_recipe_follows_the_values(handwritten):
    with open(os.path.join(handwritten["out"], "dataset", "transforms.py")) as f:
        source = f.read()
    assert "recipes.hashed(inputs['user'], buckets=2048)" in source
    assert "recipes.vocabulary(inputs['city'], name='city_id', oov_buckets=1)" in source
    assert "recipes.timestamp_features(inputs['when'], name='when', text=True)" in source
    assert "recipes.z_score_imputed(inputs['amount'], name='amount_z')" in source
    assert "outputs['amount_missing'] = recipes.missing(inputs['amount'])" in source
    assert "recipes.integer_class(inputs['kind'], classes=3)" in source
    with open(os.path.join(handwritten["out"], "dataset", "dataset.json")) as f:
        csv_format = json.load(f)["csv_format"]
    assert csv_format["delimiter"] == ";" and "NA" in csv_format["null_values"]


def test_text_timestamps_become_cycles_and_a_scaled_time(handwritten):
    records = []
    for split in ("train", "eval"):
        files = tf.io.gfile.glob(os.path.join(handwritten["out"], "data", split, "*.gz"))
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            records.append({k: v.float_list.value[0] if v.float_list.value
                            else v.int64_list.value[0] for k, v in features.items()})
    assert len(records) == 600
    known = [r for r in records if not r["when_missing"]]
    assert len(records) - len(known) == 12 + 6  # NA every 50th row; "soon" every 97th
    for r in known:  # 06:00 on a Monday
        assert r["when_hour_sin"] == pytest.approx(1.0, abs=1e-6)
        assert r["when_weekday_sin"] == pytest.approx(0.0, abs=1e-6)
        assert r["when_weekday_cos"] == pytest.approx(1.0, abs=1e-6)
    scaled = [r["when_scaled"] for r in known]
    assert min(scaled) >= -1e-6 and max(scaled) <= 1 + 1e-6
    assert {r["kind"] for r in records} == {0, 1, 2}
    assert max(r["user_hash"] for r in records) < 2048


# -- serving files without the label ------------------------------------------------------------

COLUMNS = [Column("a", schema_pb2.INT, True), Column("b", schema_pb2.BYTES, True),
           Column("y", schema_pb2.BYTES, True, in_serving=False)]


def _decoded(decoder: CsvDecoder, data: bytes) -> dict:
    (batch,) = decoder.decode(io.BytesIO(data), "f.csv")
    return batch.to_pydict()


@pytest.mark.parametrize("csv_format, data", [
    (CsvFormat(), b"b,a\nx,1\n"),
    (CsvFormat(has_header=False), b"1,x\n"),
])
def test_a_serving_file_may_lack_the_label(csv_format, data):
    decoded = _decoded(CsvDecoder(COLUMNS, csv_format).for_serving(), data)
    assert decoded["a"] == [[1]] and decoded["b"] == [[b"x"]] and decoded["y"] == [None]


def test_a_headerless_serving_file_with_the_label_keeps_it():
    decoder = CsvDecoder(COLUMNS, CsvFormat(has_header=False)).for_serving()
    assert _decoded(decoder, b"1,x,yes\n")["y"] == [[b"yes"]]


def test_training_files_must_carry_the_label():
    with pytest.raises(HeaderMismatchError, match=r"missing schema columns \['y'\]"):
        CsvDecoder(COLUMNS, CsvFormat()).check_header(io.BytesIO(b"a,b\n1,x\n"), "f.csv")


@pytest.mark.slow
def test_flights_serving_logs_without_arrival_columns_validate(flights_run, tmp_path):
    """Serving data of a departing flight has no arrival: the flights schema
    leaves arr_time, arr_delay and air_time out of the SERVING environment."""
    with open(flights_run.serving_input, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [c for c in rows[0] if c not in ("arr_time", "arr_delay", "air_time")]
    serving = tmp_path / "departures.csv"
    with open(serving, "w", newline="") as f:
        writer = csv.DictWriter(f, kept, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    run_copy = tmp_path / "run"
    shutil.copytree(flights_run.output_dir, run_copy)
    stdout = _ok(run_cli("validate", "--run_dir", str(run_copy), "--serving_input",
                         str(serving), "--span", "departures"))
    assert f"span departures: {SKEWED_ROWS:,} rows, 0 rejected" in stdout
    assert "arr_delay" not in stdout and "air_time" not in stdout
    with open(run_copy / "validations" / "departures" / "anomalies" / "serving.pbtxt") as f:
        anomalies = text_format.Parse(f.read(), anomalies_pb2.Anomalies())
    # The same findings as the run's serving split, which had the arrival columns.
    assert set(anomalies.anomaly_info) == set(flights_run.summary["anomalies"]["serving"])
    assert "origin" in anomalies.anomaly_info
