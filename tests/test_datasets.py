"""Datasets as directories, and runs that keep a copy of theirs: every command
that reads a run uses the copy, never a lookup by name."""

import dataclasses
import inspect
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
    # Its own code: the copy's transforms.py runs, not the registered module.
    assert inspect.getsourcefile(copy.load_preprocessing_fn()) == str(
        tmp_path / "copy" / "transforms.py")
    assert inspect.getsourcefile(flights.load_preprocessing_fn()) == os.path.join(
        PROJECT_ROOT, "transforms", "flights.py")


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
    # The session's flights run made with a dataset no registry knows: a short
    # one (2,000 training rows) is enough for the commands that read it.
    result = run_cli("run", "--dataset", "tests.custom_dataset:PENGUINS", "--schema",
                     os.path.join(PROJECT_ROOT, "schemas", "flights.pbtxt"),
                     "--output_dir", out, "--train_input", train, "--serving_input", serving,
                     "--limit", "2000")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, serving


@pytest.mark.slow
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


# A transforms module as a TFX user writes one: a preprocessing_fn and nothing else.
_TFX_MODULE = '''"""A TFX Transform module file: no LABEL_KEY, no SERVING_INPUTS."""

import tensorflow_transform as tft


def preprocessing_fn(inputs):
    return {"size_z": tft.scale_to_z_score(inputs["size"]),
            "colour_id": tft.compute_and_apply_vocabulary(inputs["colour"]),
            "count_bucket": tft.bucketize(inputs["count"], 4)}
'''


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """A dataset whose transforms module names no label, and a run of it."""
    root = tmp_path_factory.mktemp("unlabelled")
    rows = "".join(f"{i % 17 * 1.5},{('red', 'green', 'blue')[i % 3]},{i % 11}\n"
                   for i in range(600))
    (root / "things.csv").write_text("size,colour,count\n" + rows)
    directory = str(root / "things")
    assert run_cli("init", "--train_input", str(root / "things.csv"), "--dir",
                   directory).returncode == 0
    with open(os.path.join(directory, "transforms.py"), "w") as f:
        f.write(_TFX_MODULE)
    out = str(root / "run")
    result = run_cli("run", "--dataset", directory, "--train_input", str(root / "things.csv"),
                     "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_a_dataset_without_a_label_runs_and_serves_as_the_pipeline_did(unlabelled):
    run = RunDir(unlabelled)
    assert run.dataset.module.label_key is None
    # Every row read is a record (no label, no serving input: train and eval).
    assert run.record.rows.train + run.record.rows.eval == 600
    parity = run_cli("check-parity", "--run_dir", unlabelled, "--n", "1000")
    assert parity.returncode == 0, parity.stdout[-2000:] + parity.stderr[-2000:]
    assert parity.stdout.startswith(
        f"compared {run.record.rows.eval:,} rows x 3 features "
        f"({run.record.rows.eval * 3:,} values): 0 mismatches")


@pytest.mark.parametrize("command", ["train", "rank-features"])
def test_commands_that_need_a_label_say_so_in_one_line(unlabelled, tmp_path, command):
    args = ["--model_dir", str(tmp_path / "model")] if command == "train" else []
    result = run_cli(command, "--run_dir", unlabelled, *args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {command} needs a label, and {RunDir(unlabelled).dataset.module.name} sets "
        f"no LABEL_KEY: name the label output there (or draft the dataset with init --label) "
        f"and run again"]
    assert not os.path.exists(tmp_path / "model")


@pytest.mark.parametrize("source, message", [
    ("LABEL_KEY = 'y'\n", "defines no preprocessing_fn(inputs) -> dict"),
    ("def preprocessing_fn(inputs):\n    return inputs\nLABEL_KEY = 3\n",
     "LABEL_KEY must be the name of an output (a non-empty string) or None, got 3"),
    ("def preprocessing_fn(inputs):\n    return inputs\nSERVING_INPUTS = 'size'\n",
     "SERVING_INPUTS must be a tuple of column names, got 'size'"),
    ("def preprocessing_fn(inputs):\n    return inputs\nWINDOW_FEATURES = ({'name': 'n'},)\n",
     "WINDOW_FEATURES/LOOKUPS:"),
])
def test_a_transforms_module_is_checked_once_with_one_line_errors(tmp_path, source, message):
    datasets.get_dataset("flights").save(str(tmp_path / "d"))
    with open(tmp_path / "d" / "transforms.py", "w") as f:
        f.write(source)
    with pytest.raises(UserError) as raised:
        _ = datasets.load_directory(str(tmp_path / "d")).module
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_directory_named_as_a_registered_dataset_is_passed_as_a_path(tmp_path, monkeypatch,
                                                                        capsys):
    """``init --dir census`` then ``run --dataset census`` would run the registered
    census dataset: init prints the path that names the directory, and the
    registered name says it is not the directory."""
    monkeypatch.chdir(tmp_path)
    datasets.get_dataset("flights").save("census")
    assert datasets.dataset_flag("census") == os.path.join(".", "census")
    assert datasets.dataset_flag("adult") == "adult"
    assert datasets.get_dataset("census").name == "census"
    assert capsys.readouterr().err == (
        "note: --dataset census is the registered dataset; for the dataset directory "
        "census/, pass ./census\n")
    assert datasets.get_dataset("./census").name == "flights"  # the directory's own
