"""The shipped ``census`` dataset: TFT's census wide & deep example on
``../shared/data/census/adult.data`` as written (no header, ``", "``, ``?``).

One run (a module fixture) and the tests that inspect it: the wide features'
values and ranges, recomputed from the raw rows with ``bisect`` and pyfarmhash,
the 0/1 label, serving parity over every eval row, and a trained model. A
second run selects instances (stratified eval, duplicates dropped, the
minority oversampled), its counts recomputed from the file's lines.
"""

import bisect
import csv
import dataclasses
import json
import os

import farmhash
import pytest
import tensorflow_transform as tft

from pipelines.decode.row_keys import ROW_KEY
from pipelines.model.check_parity import read_raw_rows, written_rows
from pipelines.model.inputs import make_dataset
from pipelines.reports.run_dir import RunDir
from tests.conftest import PROJECT_ROOT, run_cli
from transforms import census

# Every test here reads a full pipeline run (or a trained model) of its own.
pytestmark = pytest.mark.slow

CENSUS = os.path.join(PROJECT_ROOT, "..", "shared", "data", "census", "adult.data")
ROWS, HIGH_INCOME_ROWS = 32_561, 7_841  # rows of adult.data, and those with >50K


@pytest.fixture(scope="module")
def census_run(tmp_path_factory):
    if not os.path.exists(CENSUS):
        pytest.skip(f"{CENSUS} is absent: the census tests read ../shared/data/ "
                    f"(see ../shared/data/README.md)")
    out = str(tmp_path_factory.mktemp("census") / "run")
    result = run_cli("run", "--dataset", "census", "--train_input", CENSUS, "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return RunDir(out)


def _raw_and_written(run: RunDir, split: str):
    raw = read_raw_rows(run, split, ROWS).to_pydict()
    written = written_rows(run, split)
    return [({name: values[i][0] if values[i] else None for name, values in raw.items()},
             written[raw[ROW_KEY][i][0]]) for i in range(len(raw[ROW_KEY]))]


def test_the_wide_features_are_computed_from_each_raw_row(census_run):
    rows = _raw_and_written(census_run, "train") + _raw_and_written(census_run, "eval")
    assert len(rows) == ROWS
    buckets = set()
    for raw, written in rows:
        bucket = bisect.bisect_right(census.AGE_BOUNDARIES, raw["age"])
        education, occupation = raw["education"].decode(), (raw["occupation"] or b"").decode()
        assert written["age_bucket"] == bucket
        assert written["education_x_occupation"] == (
            farmhash.fingerprint64(f"{education}\x1f{occupation}") % 10_000)
        assert written["age_x_education_x_occupation"] == (
            farmhash.fingerprint64(f"{bucket}\x1f{education}\x1f{occupation}") % 1_000_000)
        assert written["income_bracket"] == int(raw["income_bracket"] == b">50K")
        buckets.add(bucket)
    assert buckets == set(range(11))
    assert sum(int(written["income_bracket"]) for _, written in rows) == HIGH_INCOME_ROWS


def test_categorical_outputs_carry_their_range(census_run):
    schema = tft.TFTransformOutput(census_run.path).transformed_metadata.schema
    domains = {f.name: (f.int_domain.min, f.int_domain.max) for f in schema.feature
               if f.int_domain.is_categorical}
    assert domains["age_bucket"] == (0, 10)
    assert domains["education_x_occupation"] == (0, 9_999)
    assert domains["age_x_education_x_occupation"] == (0, 999_999)
    assert domains["income_bracket"] == (0, 1)
    for name in census.CATEGORICAL_FEATURES:
        assert f"{name}_id" in domains, name


def test_census_serving_matches_the_pipeline_on_every_eval_row(census_run):
    eval_rows = census_run.record.rows.eval
    result = run_cli("check-parity", "--run_dir", census_run.path, "--n", str(eval_rows))
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert f"compared {eval_rows:,} rows x 16 features" in result.stdout
    assert "0 mismatches" in result.stdout


def _trained(run: RunDir, model_dir: str, epochs: int) -> dict:
    """``train`` on a run; its metrics.json."""
    result = run_cli("train", "--run_dir", run.path, "--model_dir", model_dir,
                     "--epochs", str(epochs))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


def test_wide_and_deep_on_census_beats_the_majority_class(census_run, tmp_path):
    metrics = _trained(census_run, str(tmp_path / "model"), epochs=2)
    assert metrics["task"] == "binary"
    assert metrics["eval"]["accuracy"] > metrics["baseline"]["accuracy"] + 0.05
    assert metrics["eval"]["auc"] > 0.85
    assert metrics["beats_baseline"] is True

    # The model scores census rows as they are written, label-free: it
    # carries the dialect (no header, ", ", "?") and predict needs no other flag.
    with open(CENSUS, "rb") as f:
        lines = [line for line in f.readlines()[:2000] if line.strip()]
    unlabelled = tmp_path / "unlabelled.data"
    unlabelled.write_bytes(b"".join(line.rstrip(b"\r\n").rsplit(b", ", 1)[0] + b"\n"
                                    for line in lines))
    # Census has no key columns: each prediction carries its file and line,
    # and the columns asked for.
    out = tmp_path / "predictions"
    result = run_cli("predict", "--model", str(tmp_path / "model" / "serving"),
                     "--input", str(unlabelled), "--output_dir", str(out),
                     "--passthrough", "age")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(next(out.glob("predictions-*.csv")), newline="") as f:
        predicted = list(csv.DictReader(f))
    assert list(predicted[0]) == ["row_key", "age", "input_file", "input_line", "probability"]
    assert len(predicted) == len(lines)
    assert {row["input_file"] for row in predicted} == {str(unlabelled)}
    by_line = {int(row["input_line"]): row for row in predicted}
    assert sorted(by_line) == list(range(1, len(lines) + 1))
    for number, line in enumerate(lines, start=1):
        assert by_line[number]["age"] == line.split(b",")[0].decode()
    assert all(0 <= float(row["probability"]) <= 1 for row in predicted)


def test_rank_features_reports_every_feature_by_mutual_information(census_run):
    result = run_cli("rank-features", "--run_dir", census_run.path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines[1:-1]]
    assert len(rows) == 16 and lines[-1].endswith('"features": {"drop": [...]}')
    scores = [float(row[2]) for row in rows]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0
    # Relationship and marital status are known to tell most about census income.
    assert {"relationship_id", "marital_status_id"} <= {row[0] for row in rows[:4]}


def _label_counts(run: RunDir, split: str) -> dict[int, int]:
    counts = {0: 0, 1: 0}
    for batch in make_dataset(run, split, 4096):  # every record, copies included
        labels = batch["income_bracket"].numpy()
        for label in counts:
            counts[label] += int((labels == label).sum())
    return counts


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory):
    """One run with all three of --stratify_by, --drop_duplicates and
    --oversample_minority 1.0, plus a serving file holding repeats, which stay."""
    if not os.path.exists(CENSUS):
        pytest.skip(f"{CENSUS} is absent: the census tests read ../shared/data/")
    with open(CENSUS, "rb") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    base = tmp_path_factory.mktemp("selected")
    serving = base / "serving.data"
    serving_lines = lines[:1000] + lines[:5]
    serving.write_bytes(b"".join(line + b"\n" for line in serving_lines))
    out = str(base / "run")
    result = run_cli("run", "--dataset", "census", "--train_input", CENSUS,
                     "--serving_input", str(serving), "--stratify_by", "income_bracket",
                     "--drop_duplicates", "--oversample_minority", "1.0", "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return RunDir(out), lines, serving_lines, result.stdout


def test_check_parity_splits_the_rows_as_the_stratified_deduplicated_run_did(selected_run):
    """check-parity re-reads the census file, drops its duplicates and splits it
    by the strata of the run's record: every eval record is found and equal."""
    selected, _, _, _ = selected_run
    eval_rows = selected.record.rows.eval
    result = run_cli("check-parity", "--run_dir", selected.path, "--n", str(eval_rows))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.stdout.startswith(
        f"compared {eval_rows:,} rows x 16 features ({eval_rows * 16:,} values): 0 mismatches")


def _distinct_by_class(lines: list[bytes]) -> dict[int, int]:
    distinct = set(lines)
    return {label: sum(1 for line in distinct if line.endswith(b">50K") == bool(label))
            for label in (0, 1)}


def test_instance_selection_stratifies_drops_duplicates_and_balances_train(selected_run):
    selected, lines, serving_lines, stdout = selected_run
    summary = selected.record.to_json()
    by_class = _distinct_by_class(lines)
    assert len(lines) == ROWS and sum(by_class.values()) == ROWS - 24  # 24 rows repeat
    assert summary["duplicates"] == {"train_input": 24,
                                     "serving_input": len(serving_lines) - len(set(serving_lines))}
    rows = summary["rows"]
    assert rows["read"] == ROWS + len(serving_lines) and rows["rejected"] == 0
    assert rows["duplicates_dropped"] == 24 and rows["serving"] == len(serving_lines)
    assert rows["read"] == (rows["train"] + rows["eval"] + rows["serving"] + rows["rejected"]
                            + rows["duplicates_dropped"])

    # Eval: 20% of every class of the distinct rows, half rounded up, each once.
    evaluated = _label_counts(selected, "eval")
    assert evaluated == {label: (n * 20 + 50) // 100 for label, n in by_class.items()}
    assert len(written_rows(selected, "eval")) == rows["eval"] == sum(evaluated.values())
    # Train: the minority repeated up to the majority, to the row; the copies
    # are counted apart from the rows read.
    trained = _label_counts(selected, "train")
    majority = by_class[0] - evaluated[0]
    assert trained == {0: majority, 1: majority}
    assert rows["train"] == sum(by_class.values()) - rows["eval"]
    assert rows["oversampled"] == 2 * majority - rows["train"]
    # Serving: untouched, its repeats included.
    assert sum(_label_counts(selected, "serving").values()) == len(serving_lines)
    assert summary["instance_selection"] == {
        "stratify_by": "income_bracket", "drop_duplicates": True, "oversample_minority": 1.0}
    assert "duplicates found: 24 in the train input" in stdout
    assert f"oversampled: {rows['oversampled']:,} extra training records" in stdout


def test_the_baseline_of_an_oversampled_run_counts_each_row_once(selected_run, tmp_path):
    selected, lines, _, _ = selected_run
    metrics = _trained(selected, str(tmp_path / "model"), epochs=1)
    rows = dataclasses.asdict(selected.record.rows)
    # Balanced records would make the minority look like the majority.
    assert metrics["train_rows"] == rows["train"] + rows["oversampled"]
    assert metrics["baseline_rows"] == rows["train"]
    low_income_eval = (_distinct_by_class(lines)[0] * 20 + 50) // 100
    assert metrics["baseline"]["majority_class"] == 0
    assert metrics["baseline"]["accuracy"] == pytest.approx(low_income_eval / rows["eval"])
