"""The shipped ``census`` dataset: TFT's census wide & deep example on
``../shared/data/census/adult.data`` as written (no header, ``", "``, ``?``).

One run (a module fixture) and the tests that inspect it: the wide features'
values and ranges, recomputed from the raw rows with ``bisect`` and pyfarmhash,
the 0/1 label, serving parity over every eval row, and a trained model.
"""

import bisect
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
    eval_rows = census_run.summary["rows"]["eval"]
    result = run_cli("check-parity", "--run_dir", census_run.path, "--n", str(eval_rows))
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert f"compared {eval_rows:,} rows x 16 features" in result.stdout
    assert "0 mismatches" in result.stdout


def test_wide_and_deep_on_census_beats_the_majority_class(census_run, tmp_path):
    model_dir = str(tmp_path / "model")
    result = run_cli("train", "--run_dir", census_run.path, "--model_dir", model_dir,
                     "--epochs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["task"] == "binary"
    assert metrics["eval"]["accuracy"] > metrics["baseline"]["accuracy"] + 0.05
    assert metrics["eval"]["auc"] > 0.85


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


def test_a_stratified_split_holds_out_the_same_share_of_every_class(census_run, tmp_path):
    out = str(tmp_path / "stratified")
    result = run_cli("run", "--dataset", "census", "--train_input", CENSUS,
                     "--stratify_by", "income_bracket", "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    stratified = RunDir(out)
    counts = {}
    for split in ("train", "eval"):  # every record: duplicate rows share a row_key
        for batch in make_dataset(stratified, split, 4096):
            labels = batch["income_bracket"].numpy()
            for label in (0, 1):
                counts[split, label] = counts.get((split, label), 0) + int((labels == label).sum())
    for label, rows in ((0, ROWS - HIGH_INCOME_ROWS), (1, HIGH_INCOME_ROWS)):
        assert counts["train", label] + counts["eval", label] == rows
        # 20% of the class, half rounded up: 4,944 of 24,720 and 1,568 of 7,841.
        assert counts["eval", label] == (rows * 20 + 50) // 100
    assert stratified.summary["rows"]["eval"] == 4_944 + 1_568
