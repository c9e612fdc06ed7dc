"""Every technique of ``transforms.recipes`` in one dataset
(``tests/datasets/techniques/``), run through the pipeline: serving's
``transform_features`` reproduces every output of every eval row, the
variable-length (bag of words, tf-idf) and vector (PCA) ones included, and
every categorical output carries its range in the transformed schema.
"""

import csv
import json
import os
import random

import pytest
import tensorflow_transform as tft

from tests.conftest import PROJECT_ROOT, run_cli

# Every test here reads a full pipeline run (or a trained model) of its own.
pytestmark = pytest.mark.slow

DATASET = os.path.join(PROJECT_ROOT, "tests", "datasets", "techniques")
ROWS = 2000
WORDS = ("late", "early", "fast", "slow", "cheap", "dear", "new", "old", "big", "small")
CATEGORICAL = ("count_bucket", "count_quantile", "city_id", "user_hash", "city_x_bucket",
               "city_x_bucket_x_user", "note_words", "note_terms", "label")


def _write_rows(path: str) -> None:
    rng = random.Random(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["amount", "count", "city", "user", "when", "note", "label"])
        for _ in range(ROWS):
            amount = "" if rng.random() < 0.1 else f"{rng.gauss(50, 15):.2f}"
            count = int(rng.paretovariate(1.2))
            city = rng.choice(("Lyon", "Oslo", "Lima", "Pune", "Kiev"))
            user = f"u{rng.randrange(500)}"
            when = (f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} "
                    f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00")
            note = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 6)))
            label = int(count > 3 or city == "Oslo")
            writer.writerow([amount, count, city, user, when, note.capitalize() + ".", label])


@pytest.fixture(scope="module")
def techniques_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("techniques")
    rows, out = str(root / "rows.csv"), str(root / "run")
    _write_rows(rows)
    result = run_cli("run", "--dataset", DATASET, "--train_input", rows, "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_every_technique_serves_exactly_as_the_pipeline_wrote_it(techniques_run):
    with open(os.path.join(techniques_run, "run_summary.json")) as f:
        eval_rows = json.load(f)["rows"]["eval"]
    result = run_cli("check-parity", "--run_dir", techniques_run, "--n", str(eval_rows))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outputs = tft.TFTransformOutput(techniques_run).transformed_feature_spec()
    assert f"compared {eval_rows:,} rows x {len(outputs) - 1} features" in result.stdout
    assert "0 mismatches" in result.stdout


def test_every_categorical_output_records_its_range(techniques_run):
    schema = tft.TFTransformOutput(techniques_run).transformed_metadata.schema
    ranges = {f.name: (f.int_domain.min, f.int_domain.max) for f in schema.feature
              if f.int_domain.is_categorical}
    assert set(CATEGORICAL) <= set(ranges), set(CATEGORICAL) - set(ranges)
    assert ranges["count_bucket"] == (0, 3) and ranges["user_hash"] == (0, 63)
    assert ranges["city_x_bucket"] == (0, 99) and ranges["city_x_bucket_x_user"] == (0, 999)
    assert ranges["label"] == (0, 1)
