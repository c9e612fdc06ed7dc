"""Row-by-row skew: ``diff`` and ``validate --paired`` join two sides' rows by
key and compare them feature by feature through TFDV's feature skew detector.

The flights tests log requests with the real request-log writer
(``RequestLog``), their features what the pipeline computes from the raw rows
(``Preparation.prepare_table``, the in-memory twin of the Beam stages), then
alter one feature in a known share of the rows: what the comparison reports
must be exactly that share, and zero everywhere else.
"""

import json
import os
import shutil

import pytest

from pipelines import datasets, layout, nycflights
from pipelines.decode.files import decoded_table
from pipelines.model.request_log import RequestLog
from tests.conftest import run_cli
from transforms import flights

# The features a flights client sends (the model's inputs), then the key
# column the model does not take, as `serve` logs them.
LOGGED = [*flights.SERVING_INPUTS, "flight"]


def _pipeline_rows(path: str) -> list[dict]:
    """The raw rows of ``path`` with the features the pipeline derives (window
    and lookup features), as Python values by feature."""
    dataset = datasets.get_dataset("flights")
    schema = dataset.schema()
    preparation = dataset.preparation(schema)
    table = decoded_table(dataset.csv_decoder(schema).for_serving(), [path], None,
                          prepare=lambda t: preparation.prepare_table(t, layout.SERVING)).table
    columns = {name: table.column(name).to_pylist() for name in LOGGED}
    rows = [{name: (None if columns[name][i] is None or not columns[name][i]
                    else columns[name][i][0]) for name in LOGGED}
            for i in range(table.num_rows)]
    # A client sends text as text, not bytes.
    return [{name: v.decode() if isinstance(v, bytes) else v for name, v in row.items()}
            for row in rows]


def _write_log(log_dir: str, rows: list[dict]) -> str:
    log = RequestLog(log_dir, LOGGED, 1.0)
    log.offer(rows, [0.5] * len(rows))
    log.close()
    return os.path.join(log_dir, "*.csv")


def _unique_keys(rows: list[dict], keys: list[str]) -> list[bool]:
    """Whether each row's key is held by no other row (TFDV skips duplicated keys)."""
    seen: dict = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        seen[key] = seen.get(key, 0) + 1
    return [seen[tuple(row[k] for k in keys)] == 1 for row in rows]


def _features(document: dict) -> dict:
    return {f["feature"]: f for f in document["features"]}


def _validate_paired(run_dir: str, log_dir: str, rows: list[dict], raw: str):
    """``validate --paired --fail_on_skew`` of a log of ``rows`` (span: the log
    directory's name), and the span's entry of the validation summary."""
    span = os.path.basename(log_dir)
    result = run_cli("validate", "--run_dir", run_dir, "--serving_input",
                     _write_log(log_dir, rows), "--paired", raw, "--span", span,
                     "--fail_on_skew")
    with open(os.path.join(run_dir, layout.VALIDATION_SUMMARY)) as f:
        entries = {e["span"]: e for e in json.load(f)["validations"]}
    return result, entries.get(span)


@pytest.mark.slow  # two validations with the row-by-row comparison
def test_validate_paired_finds_a_feature_store_off_by_one_in_ten_percent_of_requests(
        tmp_path, flights_run):
    raw = flights_run.serving_input  # 1,000 real rows from JFK
    rows = _pipeline_rows(raw)
    keys = list(datasets.get_dataset("flights").csv_format.key_columns)
    unique = _unique_keys(rows, keys)
    altered = [{**row, "origin_departures_1h": row["origin_departures_1h"] + 1}
               if i % 10 == 0 else row for i, row in enumerate(rows)]
    run_dir = str(tmp_path / "run")
    shutil.copytree(flights_run.output_dir, run_dir)

    clean, entry = _validate_paired(run_dir, str(tmp_path / "clean"), rows, raw)
    assert clean.returncode == 0, clean.stdout + clean.stderr[-3000:]
    # Its distribution skew (one airport's flights) is not what --fail_on_skew judges.
    assert "row-by-row skew over" not in clean.stdout
    paired = entry["row_skew"]
    compared = sum(unique)
    assert paired["match"]["pairs"] == len(rows)
    assert paired["match"]["duplicate_keys"] == len(rows) - compared
    assert paired["base"]["rows"] == paired["test"]["rows"] == len(rows)
    features = _features(paired)
    assert set(features) == set(LOGGED) - set(keys)
    assert all(f["compared"] == compared and f["matched"] == compared
               for f in features.values()), features
    assert paired["examples"] == [] and paired["confusion"] == {}

    skewed, entry = _validate_paired(run_dir, str(tmp_path / "skewed"), altered, raw)
    assert skewed.returncode == 1, skewed.stdout + skewed.stderr[-3000:]
    assert entry["ok"] is False
    features = _features(entry["row_skew"])
    off = features.pop("origin_departures_1h")
    expected = sum(1 for i, u in enumerate(unique) if u and i % 10 == 0)
    assert off["mismatched"] == expected and off["base_only"] == off["test_only"] == 0
    assert abs(off["mismatch_share"] - 0.10) <= 1 / compared
    assert all(f["mismatched"] == 0 and f["mismatch_share"] == 0 for f in features.values())
    # The first feature listed is the skewed one; an example names its key and values.
    assert entry["row_skew"]["features"][0]["feature"] == "origin_departures_1h"
    example = entry["row_skew"]["examples"][0]
    assert set(example["key"]) == set(keys)
    pair = example["differs"]["origin_departures_1h"]
    assert pair["test"] == pair["base"] + 1
    assert "row-by-row skew over 0.00% in origin_departures_1h" in skewed.stdout
    with open(os.path.join(run_dir, layout.REPORT)) as f:
        report = f.read()
    assert "Row-by-row skew" in report and "origin_departures_1h" in report


@pytest.mark.slow  # a diff of 3,000 flights with their window features
def test_diff_counts_a_carrier_sent_as_another_in_its_confusion_counts(tmp_path):
    with open(nycflights.default_inputs()[0], "rb") as f:
        lines = f.readlines()[:3001]
    raw = tmp_path / "raw.csv"
    raw.write_bytes(b"".join(lines))
    rows = _pipeline_rows(str(raw))
    # carrier is one of flights' key columns: join by others to compare it.
    keys = ["year", "month", "day", "flight", "origin", "dest"]
    unique = _unique_keys(rows, keys)
    united = [i for i, row in enumerate(rows) if row["carrier"] == "UA"]
    sent_as_aa = set(united[::20])  # 5% of UA's rows
    logged = [{**row, "carrier": "AA"} if i in sent_as_aa else row
              for i, row in enumerate(rows)]
    result = run_cli("diff", "--dataset", "flights", "--base", str(raw), "--test",
                     _write_log(str(tmp_path / "log"), logged), "--key", ",".join(keys),
                     "--output_dir", str(tmp_path / "out"), "--fail_on_skew", "0.5")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    with open(tmp_path / "out" / "row_skew.json") as f:
        document = json.load(f)
    expected = sum(1 for i in sent_as_aa if unique[i])
    assert expected >= 10
    assert document["confusion"] == {"carrier": [{"base": "UA", "test": "AA",
                                                  "count": expected}]}
    carrier = _features(document)["carrier"]
    assert carrier["mismatched"] == expected and carrier["compared"] == sum(unique)
    others = [f for f in document["features"] if f["feature"] != "carrier"]
    assert all(f["mismatched"] == 0 for f in others), others
    assert f"carrier: confused 'UA' -> 'AA' x{expected:,}" in result.stdout


def _csv(path, rows: list[str]) -> str:
    path.write_text("id,name,score,count\n" + "".join(f"{r}\n" for r in rows))
    return str(path)


ROWS = [f"{i},n{i},{i / 4},{i * 3}" for i in range(1, 201)]


def test_diff_of_two_csvs_names_the_one_value_that_differs(tmp_path):
    base = _csv(tmp_path / "base.csv", ROWS)
    changed = [*ROWS]
    changed[57] = "58,n58,14.75,174"  # score 14.5 -> 14.75
    test = _csv(tmp_path / "test.csv", changed)
    out = tmp_path / "out"
    result = run_cli("diff", "--base", base, "--test", test, "--key", "id",
                     "--output_dir", str(out), "--fail_on_skew")
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads((out / "row_skew.json").read_text())
    assert {f["feature"]: f["mismatched"] for f in document["features"]} == {
        "score": 1, "name": 0, "count": 0}
    assert document["examples"] == [{"key": {"id": 58},
                                     "differs": {"score": {"base": 14.5, "test": 14.75}}}]
    assert "e.g. id=58: score: 14.5 in base, 14.75 in test" in result.stdout
    assert document["base"]["rows"] == document["test"]["rows"] == 200
    # A share allowed: exit 0, and a rerun into the same directory replaces the results.
    again = run_cli("diff", "--base", base, "--test", base, "--key", "id",
                    "--output_dir", str(out), "--fail_on_skew", "0.01")
    assert again.returncode == 0, again.stdout + again.stderr
    document = json.loads((out / "row_skew.json").read_text())
    assert all(f["mismatched"] == 0 for f in document["features"])


def test_diff_accounts_for_every_row_keys_on_one_side_duplicates_and_rejections(tmp_path):
    # Test: another delimiter and column order (detected apart), row 1 missing,
    # a new row 999, id 7 twice, a row without an id, a row with a field too many, a count written
    # as a float (compared as floats on both sides), a name left empty.
    test_rows = ["count;score;name;id"]
    for line in ROWS[1:]:
        i, name, score, count = line.split(",")
        if i == "9":
            name = ""
        test_rows.append(f"{float(count) if i == '5' else count};{score};{name};{i}")
    test_rows += ["21;7.0;n7;7", "1;2;n999;999", "1;2;nokey;", "1;2;3;4;5"]
    base = _csv(tmp_path / "base.csv", ROWS)
    test = tmp_path / "test.csv"
    test.write_text("\n".join(test_rows) + "\n")
    result = run_cli("diff", "--base", base, "--test", str(test), "--key", "id",
                     "--output_dir", str(tmp_path / "out"))
    # 1 rejected of 203 read is more than the 0.001 run allows: one line, exit 2.
    assert result.returncode == 2
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: the test side") and "1 of 203 rows rejected" in error, (
        result.stderr)
    result = run_cli("diff", "--base", base, "--test", str(test), "--key", "id",
                     "--output_dir", str(tmp_path / "out"), "--max_rejected_fraction", "0.01")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test: 202 rows, 1 rejected" in result.stdout
    rejected = (tmp_path / "out" / "rejected").glob("test-*.jsonl")
    assert [json.loads(line)["kind"] for path in rejected
            for line in path.read_text().splitlines()] == ["wrong_field_count"]
    document = json.loads((tmp_path / "out" / "row_skew.json").read_text())
    assert document["match"] == {
        "base_rows": 200, "test_rows": 201, "keys": 201, "pairs": 200,
        "keys_only_in_base": 1, "keys_only_in_test": 1, "duplicate_keys": 1,
        "base_rows_without_key": 0, "test_rows_without_key": 1}
    features = _features(document)
    # 200 keys in both, less id 1 (base only) and id 7 (duplicated): 198 compared.
    assert features["name"] == {"feature": "name", "compared": 198, "matched": 197,
                                "mismatched": 0, "base_only": 1, "test_only": 0,
                                "mismatch_share": 1 / 198}
    assert features["count"]["mismatched"] == 0 and features["score"]["mismatched"] == 0
    assert document["base"]["rows"] + document["base"]["rejected"] == 200
    assert document["test"]["rows"] + document["test"]["rejected"] == 203


def test_diff_says_in_one_line_what_it_cannot_compare(tmp_path):
    base = _csv(tmp_path / "base.csv", ROWS)
    out = str(tmp_path / "out")
    no_key = run_cli("diff", "--base", base, "--test", base, "--output_dir", out)
    assert no_key.returncode == 2 and no_key.stderr.startswith("error: --key is needed"), (
        no_key.stderr)
    wrong = run_cli("diff", "--base", base, "--test", base, "--key", "id,uuid",
                    "--output_dir", out)
    assert wrong.returncode == 2 and "has no column uuid to join by" in wrong.stderr
    assert wrong.stderr.count("\n") == 1, wrong.stderr
    missing = run_cli("diff", "--base", base, "--test", str(tmp_path / "none*.csv"),
                      "--key", "id", "--output_dir", out)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    log_dir = tmp_path / "log"
    log = RequestLog(str(log_dir), ["id", "name"], 1.0)
    log.offer([{"id": 1, "name": "n1"}], [0.5])
    log.close()
    unread = run_cli("diff", "--base", base, "--test", str(log_dir / "*.csv"), "--key", "id",
                     "--output_dir", out)
    assert unread.returncode == 2 and "is a request log: pass --dataset" in unread.stderr
    share = run_cli("diff", "--base", base, "--test", base, "--key", "id", "--output_dir",
                    out, "--fail_on_skew", "2")
    assert share.returncode == 2 and "between 0 and 1" in share.stderr


@pytest.mark.slow  # a run's eval split re-read twice, window features included
def test_diff_of_a_runs_split_rereads_exactly_the_rows_the_run_split(tmp_path, flights_run):
    split = f"{flights_run.output_dir}:eval"
    result = run_cli("diff", "--base", split, "--test", split, "--output_dir",
                     str(tmp_path / "out"), "--fail_on_skew")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    document = json.loads((tmp_path / "out" / "row_skew.json").read_text())
    eval_rows = flights_run.summary["rows"]["eval"]
    assert document["base"]["rows"] == document["test"]["rows"] == eval_rows
    assert document["match"]["base_rows"] == eval_rows
    assert all(f["mismatched"] == f["base_only"] == f["test_only"] == 0
               for f in document["features"])
    # Every feature of the schema but the keys, derived ones included, is compared.
    assert {"origin_departures_1h", "temp", "arr_delay"} <= {
        f["feature"] for f in document["features"]}
