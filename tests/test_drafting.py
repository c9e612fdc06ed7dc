"""Drafting a dataset that a person need not undo: row keys and words as missing values.

A hand-written house-price file has what public files have: an ``Id`` (one per
row, increasing), a text column where ``None`` is the commonest category and
``NA`` a missing value, a number column where both ``None`` and ``NA`` are
missing values, and a sorted column with repeats (a feature, not a key). One
``init`` drafts it and one ``run`` reads it (module fixtures, shared by the
tests that inspect them); the decoder every command uses reads the drafted
dialect, and ``--key``/``--null_values`` are drafted once more as given.
"""

import io
import json
import os
import re
import shutil
import tempfile

import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
from google.protobuf import text_format
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets
from pipelines.commands.init import init_dataset, rederive_schema
from pipelines.decode import dialect
from pipelines.decode.files import decoded_table
from pipelines.decode.row_keys import ROW_KEY
from pipelines.model.export_serving import read_schema
from pipelines.model.request_checks import InvalidInstance, RequestChecks
from pipelines.records.serving_info import TRANSFORM_RAW, RawSignature, ServingInfo
from tests.conftest import run_cli

ROWS, SERVING_ROWS = 80, 10
# LotFrontage: None every 9th row and NA every 11th (no row is both).
LOT_MISSING = ROWS // 9 + ROWS // 11


def _mas_vnr_type(i: int) -> str:
    """None for half the houses, NA (missing) for every 10th."""
    return "NA" if i % 10 == 0 else ("None", "None", "BrkFace", "Stone")[i % 4]


def _lot_frontage(i: int) -> str:
    return "None" if i % 9 == 0 else ("NA" if i % 11 == 0 else str(40 + i % 17))


def _houses(first: int, count: int, label: bool) -> str:
    header = "Id,MasVnrType,LotFrontage,YrSold" + (",SalePrice" if label else "")
    lines = [header]
    for i in range(first, first + count):
        fields = [str(i), _mas_vnr_type(i), _lot_frontage(i), str(2006 + (i - 1) // 20)]
        if label:
            fields.append(str(100_000 + 1000 * (i % 23) + 137 * i))
        lines.append(",".join(fields))
    return "\n".join(lines) + "\n"


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def drafted(tmp_path_factory):
    """``init`` of the houses file: its directory, what it printed, the file."""
    root = tmp_path_factory.mktemp("houses")
    train, serving = root / "houses.csv", root / "requests.csv"
    train.write_text(_houses(1, ROWS, label=True))
    serving.write_text(_houses(ROWS + 1, SERVING_ROWS, label=False))
    directory = str(root / "houses")
    stdout = _ok(run_cli("init", "--train_input", str(train), "--dir", directory,
                         "--label", "SalePrice"))
    return {"dir": directory, "stdout": stdout, "train": str(train), "serving": str(serving),
            "root": root}


@pytest.fixture(scope="module")
def ran(drafted):
    """``run`` of the drafted dataset, with a serving file without the label,
    and YrSold's feature dropped (``"features": {"drop": ["yrsold_z"]}``)."""
    out, dataset = str(drafted["root"] / "run"), str(drafted["root"] / "houses_selected")
    shutil.copytree(drafted["dir"], dataset)
    path = os.path.join(dataset, datasets.DATASET_FILE)
    with open(path) as f:
        document = json.load(f)
    document["features"] = {"drop": ["yrsold_z"]}
    with open(path, "w") as f:
        json.dump(document, f)
    _ok(run_cli("run", "--dataset", dataset, "--train_input", drafted["train"],
                "--serving_input", drafted["serving"], "--output_dir", out))
    with open(os.path.join(out, "run_summary.json")) as f:
        return {"out": out, "summary": json.load(f)}


def _csv_format(directory: str) -> dict:
    with open(os.path.join(directory, datasets.DATASET_FILE)) as f:
        return json.load(f)["csv_format"]


def _schema(directory: str) -> schema_pb2.Schema:
    with open(os.path.join(directory, datasets.SCHEMA_FILE)) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _features(directory: str) -> dict[str, schema_pb2.Feature]:
    return {feature.name: feature for feature in _schema(directory).feature}


def _domain(directory: str, column: str) -> set[str]:
    schema = _schema(directory)
    name = next(f.domain for f in schema.feature if f.name == column)
    return set(next(d.value for d in schema.string_domain if d.name == name))


# -- what init decides and prints ----------------------------------------------------------------

def test_init_prints_its_decisions(drafted):
    lines = drafted["stdout"].splitlines()
    start = lines.index("Decided, to check:") + 1
    assert lines[start:start + 3] == [
        "  Id: a row key (unique and increasing), kept out of the features; it keys the split",
        "  None in LotFrontage: a missing value (the column's other values are numbers)",
        "  None in MasVnrType: a category, not a missing value (the column is text)",
    ]
    assert lines[start + 3].startswith("Curate ")
    assert any(re.match(r"^  Id +key +a row key \(unique and increasing\)", line)
               for line in lines)
    assert any(re.match(r"^  YrSold +number ", line) for line in lines), "repeats: a feature"
    # Missing: None and NA among numbers, NA only among text (None is the commonest value).
    assert any(re.match(rf"^  LotFrontage +number +INT, 17 values, {LOT_MISSING} missing ",
                        line) for line in lines)
    assert any(re.match(r"^  MasVnrType +vocabulary +text, 3 values, 8 missing ", line)
               for line in lines)
    assert ("missing values 'NA', '' and 'None' in LotFrontage, 5 columns"
            in drafted["stdout"])


def test_the_dialect_keeps_none_for_the_number_column_only(drafted):
    csv_format = _csv_format(drafted["dir"])
    assert csv_format["null_values"] == ["NA", ""]
    assert csv_format["column_null_values"] == {"LotFrontage": ["None"]}
    assert csv_format["key_columns"] == ["Id"]


def test_the_schema_types_lot_frontage_as_a_number_and_compares_no_key(drafted):
    features = _features(drafted["dir"])
    assert features["LotFrontage"].type == schema_pb2.INT
    assert features["LotFrontage"].presence.min_fraction < 1
    assert features["MasVnrType"].presence.min_fraction < 1
    assert _domain(drafted["dir"], "MasVnrType") == {"None", "BrkFace", "Stone"}
    assert features["Id"].type == schema_pb2.INT
    assert features["Id"].presence.min_fraction == 1
    # Serving files carry it too: predict writes it beside each prediction.
    assert "SERVING" not in features["Id"].not_in_environment
    assert not features["Id"].HasField("skew_comparator")
    assert not features["Id"].HasField("drift_comparator")
    assert features["MasVnrType"].HasField("drift_comparator")


def test_the_transforms_never_read_the_key(drafted):
    module = datasets.load_directory(drafted["dir"]).module
    assert module.declared_serving_inputs == ("MasVnrType", "LotFrontage", "YrSold")
    with open(os.path.join(drafted["dir"], datasets.TRANSFORMS_FILE)) as f:
        source = f.read()
    assert "inputs['Id']" not in source
    assert "recipes.vocabulary(inputs['MasVnrType'], name='masvnrtype_id'" in source
    assert "outputs['lotfrontage_missing'] = recipes.missing(inputs['LotFrontage'])" in source


def test_every_command_decodes_a_word_by_its_column(drafted):
    """The decoder of run, validate, check-parity and predict (Dataset.csv_decoder),
    from dataset.json as written, and from a run's copy of it (Dataset.save)."""
    dataset = datasets.load_directory(drafted["dir"])
    copy = drafted["root"] / "copy"
    dataset.save(str(copy))
    assert datasets.load_directory(str(copy)).csv_format == dataset.csv_format
    data = (b"Id,MasVnrType,LotFrontage,YrSold,SalePrice\n"
            b"1,None,None,2006,150000\n2,NA,NA,2006,250000\n3,Stone,70,2007,350000\n")
    (batch,) = dataset.csv_decoder().decode(io.BytesIO(data), "f.csv")
    rows = batch.to_pydict()
    assert rows["MasVnrType"] == [[b"None"], None, [b"Stone"]]
    assert rows["LotFrontage"] == [None, None, [70]]
    assert rows["Id"] == [[1], [2], [3]]


def test_a_serving_file_without_the_key_reads_it_as_missing(drafted):
    """validate reads a serving file by its header: one that lacks the key
    column still keys its rows (as if the value were missing)."""
    decoder = datasets.load_directory(drafted["dir"]).csv_decoder().for_serving()
    data = b"MasVnrType,LotFrontage,YrSold\nNone,None,2006\nStone,70,2007\n"
    (batch,) = decoder.reading_by_header().decode(io.BytesIO(data), "f.csv")
    rows = batch.to_pydict()
    assert rows["Id"] == [None, None] and rows["MasVnrType"] == [[b"None"], [b"Stone"]]
    assert len(rows["row_key"]) == 2


# -- the run on the draft --------------------------------------------------------------------

def test_the_run_accounts_for_every_row_and_compares_no_key(ran):
    summary = ran["summary"]
    rows = summary["rows"]
    assert rows["read"] == ROWS + SERVING_ROWS and rows["rejected"] == 0
    assert rows["train"] + rows["eval"] == ROWS and rows["serving"] == SERVING_ROWS
    assert set(summary["skew"]) == {"MasVnrType", "LotFrontage", "YrSold"}
    assert summary["serving_without"] == ["saleprice"]  # the label, by its output name


def test_the_key_is_no_transformed_feature_and_none_is_a_category(ran):
    output = tft.TFTransformOutput(ran["out"])
    assert set(output.transformed_feature_spec()) == {
        "masvnrtype_id", "lotfrontage_z", "lotfrontage_missing", "saleprice"}
    vocabulary = output.vocabulary_by_name("masvnrtype_id")
    assert vocabulary[0] == b"None" and set(vocabulary) == {b"None", b"BrkFace", b"Stone"}
    flagged = 0
    for split in ("train", "eval"):
        files = tf.io.gfile.glob(os.path.join(ran["out"], "data", split, "*.tfrecord.gz"))
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            flagged += feature["lotfrontage_missing"].int64_list.value[0]
    assert flagged == LOT_MISSING


@pytest.mark.slow
def test_a_dropped_features_raw_column_is_no_serving_input(ran, tmp_path):
    """YrSold feeds only the dropped yrsold_z: a request need not carry it,
    and one that does is told the model does not take it."""
    model = str(tmp_path / "transform")
    _ok(run_cli("export-serving", "--run_dir", ran["out"], "--out", model))
    info = ServingInfo.read(model)
    assert info.features == ["MasVnrType", "LotFrontage"]
    loaded = tf.saved_model.load(model)
    signature = RawSignature(loaded, TRANSFORM_RAW, info, model)
    checks = RequestChecks(signature.specs, set(info.required_features), read_schema(model))
    rows, _ = checks.rows([{"MasVnrType": "Stone", "LotFrontage": 70}])
    outputs = signature({name: tf.constant([rows[0][name]], spec.dtype)
                         for name, spec in signature.specs.items()})
    assert set(outputs) == {"masvnrtype_id", "lotfrontage_z", "lotfrontage_missing"}
    vocabulary = tft.TFTransformOutput(ran["out"]).vocabulary_by_name("masvnrtype_id")
    assert outputs["masvnrtype_id"].numpy().tolist() == [vocabulary.index(b"Stone")]
    assert outputs["lotfrontage_missing"].numpy().tolist() == [0]
    with pytest.raises(InvalidInstance, match="has unknown features \\['YrSold'\\]"):
        checks.rows([{"MasVnrType": "Stone", "LotFrontage": 70, "YrSold": 2007}])


def test_a_failed_zero_code_run_leaves_no_draft_behind(drafted, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_cli("run", "--train_input", drafted["train"], "--label", "SalePrice",
                     "--output_dir", str(tmp_path / "run"), "--eval_fraction", "2")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Dataset 'houses' drafted in " in result.stdout  # drafted, then refused
    assert result.stderr.strip().splitlines()[-1].startswith("error: --eval_fraction")
    assert list(tmp_path.iterdir()) == []


# -- the markers and keys given, and the rule itself -----------------------------------------

def test_given_keys_and_markers_replace_the_detected_ones(drafted, tmp_path):
    result = init_dataset(drafted["train"], str(tmp_path / "given"), label="SalePrice",
                          key=("YrSold",), null_values=("NA", "None", ""))
    kinds = {choice.column: (choice.kind, choice.why) for choice in result.choices}
    assert kinds["YrSold"] == ("key", "a row key (--key), kept out of the features")
    assert kinds["Id"] == ("key", "a row key (unique and increasing), kept out of the features")
    csv_format = _csv_format(str(tmp_path / "given"))
    assert csv_format["key_columns"] == ["YrSold"]
    assert csv_format["null_values"] == ["NA", "None", ""]
    assert csv_format["column_null_values"] == {}
    # None is a missing value in every column now: the text column's missing.
    assert _domain(str(tmp_path / "given"), "MasVnrType") == {"BrkFace", "Stone"}
    assert result.decisions == [  # in column order
        "Id: a row key (unique and increasing), kept out of the features",
        "YrSold: a row key (--key), kept out of the features"]


# -- curating, then drafting again -----------------------------------------------------------

def _curated_copy(drafted, target) -> str:
    """The drafted directory as a person curated it: YrSold's drift threshold
    lowered in schema.pbtxt, and dataset.json's missing values edited: NA is a
    category of MasVnrType now (a missing value of LotFrontage only), and None
    a missing value of MasVnrType too."""
    directory = str(target)
    shutil.copytree(drafted["dir"], directory)
    schema = _schema(directory)
    next(f for f in schema.feature if f.name == "YrSold"
         ).drift_comparator.jensen_shannon_divergence.threshold = 0.3
    with open(os.path.join(directory, datasets.SCHEMA_FILE), "w") as f:
        f.write(text_format.MessageToString(schema))
    path = os.path.join(directory, datasets.DATASET_FILE)
    with open(path) as f:
        document = json.load(f)
    document["csv_format"]["null_values"] = [""]
    document["csv_format"]["column_null_values"] = {"LotFrontage": ["None", "NA"],
                                                    "MasVnrType": ["None"]}
    with open(path, "w") as f:
        json.dump(document, f)
    return directory


def _training_anomalies(directory: str, train: str) -> dict[str, str]:
    """TFDV's anomalies of the training file, read as the directory says."""
    dataset = datasets.load_directory(directory)
    table = decoded_table(dataset.csv_decoder(), [train]).table.drop([ROW_KEY])
    statistics = stats_impl.generate_statistics_in_memory(
        table.combine_chunks().to_batches()[0], tfdv.StatsOptions())
    anomalies = tfdv.validate_statistics(statistics, dataset.schema(), environment="TRAINING")
    return {name: anomaly.short_description
            for name, anomaly in anomalies.anomaly_info.items()}


def test_init_from_rederives_the_schema_after_dataset_json_is_edited(drafted, tmp_path):
    directory = _curated_copy(drafted, tmp_path / "houses")
    # The stale schema: NA, a category now, is outside MasVnrType's domain.
    assert _training_anomalies(directory, drafted["train"]) == {
        "MasVnrType": "Unexpected string values"}
    with open(os.path.join(directory, datasets.TRANSFORMS_FILE)) as f:
        transforms = f.read()

    stdout = _ok(run_cli("init", "--from", directory, "--train_input", drafted["train"]))
    assert stdout.splitlines() == [
        f"Re-derived {directory}/schema.pbtxt from {ROWS} rows (0 rejected), read as "
        f"dataset.json says:",
        "  MasVnrType: domain + 'NA' (values now)",
        "  MasVnrType: domain - 'None' (missing values now)",
        "dataset.json and transforms.py are as they were (a column added or retyped may "
        "want its recipe changed there).",
    ]
    assert _training_anomalies(directory, drafted["train"]) == {}
    assert _domain(directory, "MasVnrType") == {"BrkFace", "Stone", "NA"}
    features = _features(directory)
    # The person's edit still applies, and so does the rest of the draft.
    assert features["YrSold"].drift_comparator.jensen_shannon_divergence.threshold == 0.3
    assert features["YrSold"].skew_comparator.jensen_shannon_divergence.threshold == (
        _features(drafted["dir"])["YrSold"].skew_comparator.jensen_shannon_divergence.threshold)
    assert list(features["SalePrice"].not_in_environment) == ["SERVING"]
    assert features["LotFrontage"].type == schema_pb2.INT
    with open(os.path.join(directory, datasets.TRANSFORMS_FILE)) as f:
        assert f.read() == transforms


def test_init_from_lists_a_column_whose_type_changed(drafted, tmp_path):
    """NA no longer missing in LotFrontage makes it text: drafted anew, and said."""
    directory = _curated_copy(drafted, tmp_path / "houses")
    path = os.path.join(directory, datasets.DATASET_FILE)
    with open(path) as f:
        document = json.load(f)
    document["csv_format"]["column_null_values"]["LotFrontage"] = ["None"]
    with open(path, "w") as f:
        json.dump(document, f)
    rederived = rederive_schema(directory, drafted["train"])
    assert rederived.changes == [
        "MasVnrType: domain + 'NA' (values now)",
        "MasVnrType: domain - 'None' (missing values now)",
        "LotFrontage: INT -> BYTES, drafted anew (its presence, domain and comparators)"]
    assert _features(directory)["LotFrontage"].type == schema_pb2.BYTES


def test_init_overwrite_drafts_a_dataset_directory_anew(drafted, tmp_path):
    directory = str(tmp_path / "houses")
    shutil.copytree(drafted["dir"], directory)
    with open(os.path.join(directory, datasets.TRANSFORMS_FILE), "a") as f:
        f.write("# a person's edit\n")
    refused = run_cli("init", "--train_input", drafted["train"], "--dir", directory)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: {directory} already holds a dataset (dataset.json); pass --overwrite to "
        f"draft it anew, --from {directory} to re-derive its schema after editing "
        f"dataset.json, or another --dir")
    _ok(run_cli("init", "--train_input", drafted["train"], "--dir", directory, "--overwrite",
                "--label", "SalePrice", "--null_values", "NA,None,"))
    assert _csv_format(directory)["null_values"] == ["NA", "None", ""]
    with open(os.path.join(directory, datasets.TRANSFORMS_FILE)) as f:
        assert "# a person's edit" not in f.read()
    assert _domain(directory, "MasVnrType") == {"BrkFace", "Stone"}


def test_init_from_takes_the_dialect_from_dataset_json_only(drafted):
    result = run_cli("init", "--from", drafted["dir"], "--train_input", drafted["train"],
                     "--null_values", "NA")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --from re-derives the schema as {drafted['dir']}/dataset.json says: edit "
        f"that instead of passing --null_values")


@pytest.mark.parametrize("values, markers", [
    ([b"1", b"None", b"2.5", None], ("None",)),
    ([b"-", b"3", b"NaN", b"null"], ("null", "NaN", "-")),
    ([b"None", b"BrkFace", b"Stone"], ()),  # text: None is a category
    ([b"None", b"None"], ()),  # nothing else: nothing says the column holds numbers
    ([b"1", b"2"], ()),
])
def test_a_word_is_a_missing_value_only_among_numbers(values, markers):
    assert dialect.numeric_column_markers(pa.array(values, pa.large_binary())) == markers


def test_a_misspelt_dataset_json_key_is_an_error(drafted, tmp_path):
    directory = str(tmp_path / "houses")
    shutil.copytree(drafted["dir"], directory)
    path = os.path.join(directory, datasets.DATASET_FILE)
    with open(path) as f:
        document = json.load(f)
    document["feature"] = {"drop": ["yrsold_z"]}  # for "features"
    with open(path, "w") as f:
        json.dump(document, f)
    with pytest.raises(datasets.UnknownDatasetError, match=re.escape(
            "dataset.json is not a dataset description: unknown keys ['feature']; it takes "
            "\"name\", \"csv_format\" and \"features\" (docs/datasets.md)")):
        datasets.load_directory(directory)
