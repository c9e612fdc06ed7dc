"""A TFX user's files run unchanged: a module file and a SchemaGen schema.

``tests/datasets/tfx_taxi/`` holds a Chicago taxi module file written the way
TFX's examples write theirs (``tfx`` imported at the top for the Trainer half,
``_LABEL_KEY`` and ``_transformed_name``, no ``LABEL_KEY``) and a schema the
way SchemaGen writes one (no shape for the columns with empty fields, every
column ``min_fraction: 1.0``). Placed beside the ``dataset.json`` that ``init``
drafts for the taxi CSV (``../shared/data/``), they run with no edit and no
row rejected, and the outputs equal TFT's own ``AnalyzeDataset`` and
``TransformDataset`` (``references.baselines.tft_examples_way``) on the same
rows. The loading and the schema's reading are tested on their own, on small
hand-written inputs.
"""

import csv
import importlib.util
import io
import os
import shutil
import sys

import numpy as np
import pyarrow as pa
import pytest
from google.protobuf import text_format
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.dataset_module import DatasetModule
from pipelines.decode.columns import CsvFormat, columns_from_schema, present_with_no_values
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.errors import UserError
from pipelines.module_file import MissingImportError, load_module_file
from pipelines.stages.statistics import stats_options, validate_split
from tests.analyzer_constants import float32_ulps, z_score_moments
from tests.conftest import PROJECT_ROOT, run_cli

TFX_TAXI = os.path.join(PROJECT_ROOT, "tests", "datasets", "tfx_taxi")
TAXI = os.path.join(PROJECT_ROOT, "..", "shared", "data", "chicago_taxi", "data.csv")
# The module file's _NUMERIC_KEYS, the order it calls tft.scale_to_z_score in.
TFX_NUMERIC_KEYS = ("fare", "trip_miles", "trip_seconds")

if importlib.util.find_spec("tfx") is not None:  # the tests are of a missing tfx
    pytest.skip("tfx is installed here", allow_module_level=True)


def _load(tmp_path, source: str, name: str = "user_module"):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return load_module_file(str(path), f"test_tfx_module_{name}", source), str(path)


# -- loading a module file whose tfx import is not installed -----------------------------

TFX_STYLE = """
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs
import tfx.v1 as tfx

_LABEL_KEY = "tips"

def _transformed_name(key):
    return key + "_xf"

def preprocessing_fn(inputs):
    return {_transformed_name(k): tf.identity(v) for k, v in inputs.items()}

def run_fn(fn_args: FnArgs):
    return tfx.dsl.Pipeline(fn_args)
"""


def test_a_module_file_importing_tfx_loads_and_says_so_in_one_line(tmp_path, capsys):
    module, path = _load(tmp_path, TFX_STYLE)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"note: {path} imports tfx, not installed here; loaded without it, as "
                     f"only a TFX module file's Trainer half needs it (using it fails, naming "
                     f"it)"]
    contract = DatasetModule.of(module)
    assert contract.label_key == "tips_xf"  # _transformed_name(_LABEL_KEY)
    assert contract.preprocessing_fn({"fare": 1.5}) is not None
    # The Trainer half fails when it runs, naming what it used.
    with pytest.raises(MissingImportError) as raised:
        module.run_fn(None)
    assert str(raised.value) == (f"{path} uses tfx.v1.dsl.Pipeline, but tfx is not installed "
                                 f"here: install it, or write the preprocessing_fn without it")
    # The stand-ins are the module's only: other code still finds no tfx.
    assert "tfx" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("tfx")


def test_a_module_file_whose_top_level_uses_tfx_fails_in_one_line_naming_it(tmp_path):
    source = "from tfx.dsl.components.base import base_component\n\n" \
             "class Mine(base_component.BaseComponent):\n    pass\n"
    with pytest.raises(MissingImportError, match=r"uses tfx\.dsl\.components\.base\."
                                                 r"base_component\.BaseComponent, but tfx is "
                                                 r"not installed here"):
        _load(tmp_path, source, "top_level")


def test_only_the_files_own_imports_are_stood_in_for(tmp_path, monkeypatch):
    # A module the file imports that itself imports a missing one fails as ever:
    # an installed library's optional import must keep failing where it tries one.
    (tmp_path / "helper_of_the_test.py").write_text("import tfx_not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError) as raised:
        _load(tmp_path, "import helper_of_the_test\n", "indirect")
    assert str(raised.value).endswith("cannot be loaded: No module named "
                                      "'tfx_not_a_module_anywhere'")
    assert not isinstance(raised.value, MissingImportError)


def test_label_helpers(tmp_path):
    plain, _ = _load(tmp_path, "_LABEL_KEY = 'tips'\ndef preprocessing_fn(inputs):\n"
                               "    return inputs\n", "no_helper")
    assert DatasetModule.of(plain).label_key == "tips"
    own, _ = _load(tmp_path, "LABEL_KEY = 'big_tipper'\n_LABEL_KEY = 'tips'\n"
                             "def transformed_name(key):\n    return key + '_xf'\n"
                             "def preprocessing_fn(inputs):\n    return inputs\n", "own_label")
    assert DatasetModule.of(own).label_key == "big_tipper"  # the package's own name wins
    bad, _ = _load(tmp_path, "_LABEL_KEY = 'tips'\ndef _transformed_name(key):\n"
                             "    return None\ndef preprocessing_fn(inputs):\n"
                             "    return inputs\n", "bad_helper")
    with pytest.raises(UserError, match=r"_transformed_name\('tips'\) must name the label"):
        DatasetModule.of(bad)


def test_a_preprocessing_fn_that_needs_tfx_fails_in_one_line(tmp_path):
    directory = tmp_path / "needs_tfx"
    directory.mkdir()
    (directory / "transforms.py").write_text(
        "from tfx.components.transform import stats_options_updater\n\n"
        "def preprocessing_fn(inputs):\n"
        "    return {'x_xf': stats_options_updater.scale(inputs['x'])}\n")
    (directory / "schema.pbtxt").write_text(
        'feature { name: "x" type: FLOAT presence { min_fraction: 1.0 min_count: 1 } '
        'shape { dim { size: 1 } } }\n')
    (directory / "dataset.json").write_text('{"name": "needs_tfx", "csv_format": {}}')
    (tmp_path / "x.csv").write_text("x\n1\n2\n")
    result = run_cli("run", "--dataset", str(directory), "--train_input",
                     str(tmp_path / "x.csv"), "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: {directory / 'transforms.py'} uses "
        f"tfx.components.transform.stats_options_updater.scale, but tfx is not installed "
        f"here: install it, or write the preprocessing_fn without it")


# -- reading a SchemaGen schema ----------------------------------------------------------

SCHEMAGEN = """
feature { name: "fare" type: FLOAT presence { min_fraction: 1.0 min_count: 1 }
          shape { dim { size: 1 } } }
feature { name: "company" type: BYTES presence { min_fraction: 1.0 min_count: 1 } }
feature { name: "tract" type: INT presence { min_fraction: 1.0 min_count: 1 } }
"""


def _decode(text: bytes):
    schema = text_format.Parse(SCHEMAGEN, schema_pb2.Schema())
    decoder = CsvDecoder(columns_from_schema(schema), CsvFormat())
    decoded = list(decoder.decode(io.BytesIO(text), "taxi.csv"))
    return schema, [d for d in decoded if isinstance(d, pa.RecordBatch)], \
        [d for d in decoded if not isinstance(d, pa.RecordBatch)]


def test_an_empty_field_of_a_feature_without_shape_is_no_value_not_a_rejection():
    schema, batches, rejected = _decode(b"fare,company,tract\n1.5,Flash,7\n2.5,,\n,Flash,8\n")
    # 3 rows in = 2 decoded + 1 rejected: fare has a shape, so today's rule holds.
    assert [(r.line, r.kind, r.reason) for r in rejected] == [
        (4, "missing_required", "fare: missing required value")]
    batch = pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    assert batch.column("company").to_pylist() == [[b"Flash"], None]
    assert batch.column("tract").to_pylist() == [[7], None]
    # TFDV sees the empty fields as TFX's examples hold them: present, no values.
    as_tfx = present_with_no_values(batch, ["company", "tract"])
    assert as_tfx.column("company").to_pylist() == [[b"Flash"], []]
    assert as_tfx.column("fare").to_pylist() == [[1.5], [2.5]]
    statistics = stats_impl.generate_statistics_in_memory(as_tfx, stats_options(schema))
    assert not validate_split(statistics, schema).anomaly_info
    # Read as missing, they would break the schema's presence.
    missing = stats_impl.generate_statistics_in_memory(batch, stats_options(schema))
    assert sorted(validate_split(missing, schema).anomaly_info) == ["company", "tract"]


# -- the taxi CSV, end to end, against TFT's own way ---------------------------------------

def _examples(directory: str) -> dict[str, np.ndarray]:
    """A split's TFRecord files as {output: values}, rows in the order of their
    ``row_key`` (which is among them)."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    files = sorted(tf.io.gfile.glob(os.path.join(directory, "*.tfrecord.gz")))
    records = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP")
                        .batch(1 << 20))).numpy().tolist()
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    order = np.argsort(batch.column("row_key").flatten().to_numpy())
    return {name: np.asarray(column.flatten().to_numpy(zero_copy_only=False))[order]
            for name, column in zip(batch.schema.names, batch.columns, strict=True)}


@pytest.mark.slow
def test_the_taxi_module_file_and_schemagen_schema_run_unchanged_as_tft_would(tmp_path):
    if not os.path.exists(TAXI):
        pytest.skip(f"{TAXI} is absent: this test reads ../shared/data/ "
                    f"(see ../shared/data/README.md)")
    import tensorflow_transform as tft

    from pipelines import datasets, tft_precision
    from pipelines.decode.files import decode_files
    from references.baselines import tft_examples_way

    dataset_dir = str(tmp_path / "taxi")
    init = run_cli("init", "--train_input", TAXI, "--dir", dataset_dir)
    assert init.returncode == 0, init.stderr[-3000:]
    for name in ("transforms.py", "schema.pbtxt"):
        shutil.copy(os.path.join(TFX_TAXI, name), dataset_dir)
    out = str(tmp_path / "run")
    result = run_cli("run", "--dataset", dataset_dir, "--train_input", TAXI,
                     "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imports tfx, not installed here" in result.stderr
    summary = _json(os.path.join(out, "run_summary.json"))
    assert summary["rows"]["rejected"] == 0
    assert summary["rows"]["train"] + summary["rows"]["eval"] == 15_002

    # TFT's own way on the same rows: each line's text, its row_key, its split.
    ours = {split: _examples(os.path.join(out, "data", split)) for split in ("train", "eval")}
    dataset = datasets.get_dataset(dataset_dir)
    keys = [k for batch in decode_files(dataset.csv_decoder(), [TAXI])
            for k in batch.column("row_key").flatten().to_pylist()]
    with open(TAXI, newline="") as f:
        records = list(csv.DictReader(f))
    assert len(keys) == len(records) == 15_002
    order = [feature.name for feature in dataset.schema().feature]
    paths = {split: str(tmp_path / f"{split}.csv") for split in ours}
    for split, path in paths.items():
        in_split = set(ours[split]["row_key"].tolist())
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([record[n] for n in order] + [key]
                                    for record, key in zip(records, keys, strict=True)
                                    if key in in_split)
    with tft_precision.original():  # TFT as it ships: float32 sums of float32 inputs
        tft_examples_way(paths, str(tmp_path / "tft"), str(tmp_path / "tft_tmp"),
                         dataset_name=dataset_dir)
    theirs = {split: _examples(os.path.join(tmp_path, "tft", "data", split)) for split in ours}

    outputs = sorted(tft.TFTransformOutput(out).transformed_feature_spec())
    assert len(outputs) == 17
    z_scored = {f"{key}_xf": key for key in ("fare", "trip_miles", "trip_seconds")}
    truth = _exact_z_scores(records, keys, ours, z_scored)
    for split in ours:
        np.testing.assert_array_equal(ours[split]["row_key"], theirs[split]["row_key"])
        for name in sorted(set(outputs) - set(z_scored)):
            np.testing.assert_array_equal(ours[split][name], theirs[split][name],
                                          err_msg=f"{split} {name}")
        for name in z_scored:
            # The z-scores differ by TFT's float32 rounding of the constants.
            mine, tft_own, exact = ours[split][name], theirs[split][name], truth[split][name]
            error, tft_error = (np.abs(z.astype(np.float64) - exact) for z in (mine, tft_own))
            print(f"{split} {name}: {np.mean(mine == tft_own):.1%} equal to TFT's, at most "
                  f"{np.abs(mine - tft_own).max():.3g} apart; from the float64 z-score: ours "
                  f"at most {error.max():.3g} ({error.mean():.3g} on average), TFT's "
                  f"{tft_error.max():.3g} ({tft_error.mean():.3g})")
            np.testing.assert_allclose(mine, tft_own, rtol=1e-5, atol=1e-5)
    # The constants: this package's (TFT analyzing in float64, pipelines.tft_precision)
    # within a float32 ulp of the exact ones, and at least as close as TFT's as it
    # ships (or correctly rounded, which nothing beats).
    exact = _exact_moments(records, keys, ours["train"], z_scored)
    ulps = {}
    for side, transform_fn in (("ours", os.path.join(out, "transform_fn")),
                               ("TFT's", str(tmp_path / "tft" / "transform_fn"))):
        moments = z_score_moments(transform_fn)
        # tft.scale_to_z_score's scopes, in the module's order of its numeric keys.
        scopes = sorted(moments, key=lambda scope: (len(scope), scope))
        assert len(scopes) == len(TFX_NUMERIC_KEYS), sorted(moments)
        for scope, column in zip(scopes, TFX_NUMERIC_KEYS, strict=True):
            for moment, got, want in zip(("mean", "variance"), moments[scope], exact[column],
                                         strict=True):
                ulps[side, column, moment] = float32_ulps(got, want)
                print(f"{side} {column} {moment}: {float(got)!r}, exact {want!r}: "
                      f"{ulps[side, column, moment]:.2f} ulps")
    for column in TFX_NUMERIC_KEYS:
        for moment in ("mean", "variance"):
            mine, theirs = ulps["ours", column, moment], ulps["TFT's", column, moment]
            assert mine <= 1 and mine <= max(theirs, 0.5), (column, moment, mine, theirs)


def _exact_moments(records: list[dict], keys: list[int], train: dict, z_scored: dict
                   ) -> dict[str, tuple[float, float]]:
    """Each z-scored column's float64 mean and population variance over the
    train split's raw values (float32, as parsed; 0 where empty)."""
    by_key = dict(zip(keys, records, strict=True))
    moments = {}
    for column in z_scored.values():
        texts = [by_key[k][column] for k in train["row_key"].tolist()]
        values = np.array([float(t) if t else 0.0 for t in texts], np.float32).astype(np.float64)
        moments[column] = (values.mean(), values.var())
    return moments


def _exact_z_scores(records: list[dict], keys: list[int], splits: dict, z_scored: dict
                    ) -> dict[str, dict[str, np.ndarray]]:
    """The z-scores of the raw values (float32, as parsed; 0 where empty, as
    ``_fill_in_missing`` fills) with the train split's mean and population
    variance in float64, rows in the order of their row_key."""
    by_key = dict(zip(keys, records, strict=True))

    def raw(split: str, column: str) -> np.ndarray:
        texts = [by_key[k][column] for k in splits[split]["row_key"].tolist()]
        return np.array([float(t) if t else 0.0 for t in texts], np.float32).astype(np.float64)

    exact = {split: {} for split in splits}
    for name, column in z_scored.items():
        train = raw("train", column)
        mean, std = train.mean(), train.std()
        for split in splits:
            exact[split][name] = (raw(split, column) - mean) / std
    return exact


def _json(path: str) -> dict:
    import json

    with open(path) as f:
        return json.load(f)
