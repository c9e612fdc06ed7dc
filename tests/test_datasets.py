"""Datasets as directories, and runs that keep a copy of theirs: every command
that reads a run uses the copy, never a lookup by name."""

import dataclasses
import json
import os

import pytest

from pipelines import cli, datasets, layout
from pipelines.errors import UserError
from pipelines.reports.run_dir import RunDir
from tests.conftest import PROJECT_ROOT, run_cli


def test_a_dataset_directory_round_trips(tmp_path):
    flights = datasets.get_dataset("flights")
    flights.save(str(tmp_path / "copy"))
    assert sorted(os.listdir(tmp_path / "copy")) == ["dataset.json", "schema.pbtxt",
                                                     "transforms.py"]
    copy = datasets.get_dataset(str(tmp_path / "copy"))
    assert (copy.name, copy.csv_format) == ("flights", flights.csv_format)
    assert copy.schema() == flights.schema()
    assert copy.schema_file == str(tmp_path / "copy" / "schema.pbtxt")
    assert copy.transforms.LABEL_KEY == flights.transforms.LABEL_KEY
    assert copy.transforms.SERVING_INPUTS == flights.transforms.SERVING_INPUTS
    assert copy.load_preprocessing_fn() is not flights.load_preprocessing_fn()  # its own code


def test_a_broken_dataset_description_is_a_clear_error(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(datasets.UnknownDatasetError, match="is not a dataset description"):
        datasets.get_dataset(str(tmp_path))


def test_a_dataset_without_default_inputs_asks_for_them(tmp_path, capsys):
    datasets.get_dataset("flights").save(str(tmp_path / "copy"))
    assert cli.main(["suggest-thresholds", "--dataset", str(tmp_path / "copy")]) == 2
    assert capsys.readouterr().err == (
        "error: dataset 'flights' has no default input: pass --input\n")


def test_the_session_run_keeps_its_dataset_and_reads_it_back(flights_run):
    run = RunDir(flights_run.output_dir)
    assert run.dataset.directory == layout.dataset_dir(flights_run.output_dir)
    assert run.dataset.csv_format == datasets.get_dataset("flights").csv_format
    assert run.dataset.schema() == run.schema()


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory, flights_slices):
    """A run of a dataset defined in code, whose name no registry knows."""
    train, serving = flights_slices
    out = str(tmp_path_factory.mktemp("penguins") / "out")
    result = run_cli("run", "--dataset", "tests.custom_dataset:PENGUINS", "--schema",
                     os.path.join(PROJECT_ROOT, "schemas", "flights.pbtxt"),
                     "--output_dir", out, "--train_input", train, "--serving_input", serving)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, serving


def test_commands_on_a_run_of_a_code_defined_dataset_use_its_copy(penguins_run):
    out, serving = penguins_run
    with open(os.path.join(out, layout.SUMMARY_FILE)) as f:
        assert json.load(f)["dataset"] == "penguins"
    validated = run_cli("validate", "--run_dir", out, "--serving_input", serving,
                        "--span", "again")
    assert validated.returncode == 0, validated.stderr[-3000:]
    assert "span again: 1,000 rows, 0 rejected" in validated.stdout
    parity = run_cli("check-parity", "--run_dir", out, "--n", "300")
    assert parity.returncode == 0, parity.stderr[-3000:]
    assert parity.stdout.startswith("compared 300 rows x 24 features (7,200 values): "
                                    "0 mismatches")


def test_feature_selection_keeps_or_drops_outputs_and_always_the_label():
    def outputs(inputs):
        return {"a": 1, "b": 2, "c": 3, "y": 4}

    assert datasets.select_features(outputs, "y", keep=("a",))({}) == {"a": 1, "y": 4}
    assert datasets.select_features(outputs, "y", drop=("a", "c"))({}) == {"b": 2, "y": 4}
    with pytest.raises(UserError, match=r"names \['z'\], which the preprocessing_fn"):
        datasets.select_features(outputs, "y", drop=("z",))({})


def test_a_dataset_directory_carries_its_feature_selection(tmp_path):
    flights = datasets.get_dataset("flights")
    selected = dataclasses.replace(flights, drop=("tailnum_hash",))
    selected.save(str(tmp_path / "flights"))
    loaded = datasets.load_directory(str(tmp_path / "flights"))
    assert loaded.drop == ("tailnum_hash",) and loaded.keep == ()
