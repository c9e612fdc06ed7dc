"""The two references this package is measured against, on the same rows.

``tft_examples_way``: the same preprocessing as TFT's own examples write it
(census_example, TFT 1.16): tfx_bsl's ``CsvTFXIO`` source with default
settings, TFDV statistics of its record batches, ``AnalyzeAndTransformDataset``
on train, ``TransformDataset`` on the other splits, ``RecordBatchToExamples``
and ``WriteToTFRecord`` (gzip). It is handed pre-split CSV files with the ``NA``
markers blanked out, because CsvTFXIO only treats empty fields as missing and
has no split: both favour the baseline. The joined (weather) and window
features, which TFT has no way to compute, are columns of those files,
computed by this package. Each row
carries its ``row_key`` as a TFT passthrough column, so that outputs can be
compared row by row.

``pandas_sklearn_way``: what a user might pick instead, in one process: pandas
reads the CSV, scikit-learn fits the comparable scalers, quantile buckets and
vocabularies on train and applies them to every split (nothing is written).
"""

import csv
import os

import numpy as np
import pyarrow as pa

from pipelines import datasets, layout
from pipelines.decode import row_keys
from pipelines.decode.columns import RejectedRow
from pipelines.decode.files import decode_files

__all__ = ["pandas_sklearn_way", "split_for_baseline", "tft_examples_way"]


def split_for_baseline(train_csv: str, serving_csv: str, out_dir: str,
                       eval_fraction: float = row_keys.DEFAULT_EVAL_FRACTION) -> dict[str, str]:
    """Writes train.csv, eval.csv and serving.csv as CsvTFXIO can read them:
    rows split by this package's function, NA blanked, rejected rows left out."""
    dataset = datasets.get_dataset("flights")
    decoder = dataset.csv_decoder()
    percent = row_keys.eval_percent(eval_fraction)
    paths = {name: os.path.join(out_dir, f"{name}.csv") for name in ("train", "eval", "serving")}
    # The schema's features, the window features among them, then row_key.
    names = [f.name for f in dataset.schema().feature] + [row_keys.ROW_KEY]
    writers, files = {}, {}
    for name, path in paths.items():
        files[name] = open(path, "w", newline="")
        writers[name] = csv.writer(files[name])
    try:
        for source, is_serving in ((train_csv, False), (serving_csv, True)):
            # The baseline reads the joined and window features as columns, as
            # a feature store would supply them: computed here over the input.
            decoded = pa.Table.from_batches(
                [b for b in decode_files(decoder, [source]) if not isinstance(b, RejectedRow)])
            table = dataset.preparation().prepare_table(
                decoded, layout.SERVING if is_serving else layout.TRAIN)
            for batch in table.to_batches():
                is_eval = row_keys.is_eval(batch, percent)
                columns = [batch.column(n).to_pylist() for n in names]
                for i in range(batch.num_rows):
                    target = "serving" if is_serving else ("eval" if is_eval[i] else "train")
                    writers[target].writerow(
                        ["" if c[i] is None else (c[i][0].decode() if isinstance(c[i][0], bytes)
                                                  else c[i][0]) for c in columns])
    finally:
        for f in files.values():
            f.close()
    return paths


def tft_examples_way(paths: dict[str, str], output_dir: str, temp_dir: str,
                     dataset_name: str = "flights", with_row_key: bool = True) -> None:
    """Runs the TFT-examples pipeline over pre-split, headerless CSV files
    holding the dataset's schema columns in order (and ``row_key`` last, with
    ``with_row_key``, as a passthrough column). The dataset's own
    ``preprocessing_fn`` runs, so the analyzers are the same as the package's
    (means and variances in float64, ``transforms.recipes``); only the batches
    they see differ."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    import tensorflow_transform.beam as tft_beam
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx_bsl.public import tfxio

    from pipelines.stages.statistics import stats_options

    dataset = datasets.get_dataset(dataset_name)
    schema = dataset.schema()
    with_key = schema_pb2.Schema()
    with_key.CopyFrom(schema)
    if with_row_key:
        key = with_key.feature.add(name=row_keys.ROW_KEY, type=schema_pb2.INT)
        key.presence.min_fraction = 1.0
        key.shape.dim.add(size=1)
    names = [f.name for f in with_key.feature]
    options = stats_options(schema)  # the schema's features, not row_key
    passthrough = {row_keys.ROW_KEY} if with_row_key else set()
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=temp_dir,
                                                       passthrough_keys=passthrough):
        data = {}
        for name, path in paths.items():
            source = tfxio.CsvTFXIO(path, column_names=names, schema=with_key,
                                    telemetry_descriptors=["baseline"])
            config = source.TensorAdapterConfig()
            if with_row_key:
                del config.tensor_representations[row_keys.ROW_KEY]  # passed through, not fed
            data[name] = (pipeline | f"Read{name}" >> source.BeamSource(), config)
            stats = data[name][0] | f"Stats{name}" >> tfdv.GenerateStatistics(options)
            _ = stats | f"WriteStats{name}" >> tfdv.WriteStatisticsToBinaryFile(
                layout.stats_file(output_dir, name))
        (transformed, _), transform_fn = (
            data["train"] | tft_beam.AnalyzeAndTransformDataset(
                dataset.load_preprocessing_fn(), output_record_batches=True))
        outputs = {"train": transformed}
        for name in sorted(set(paths) - {"train"}):
            (outputs[name], _) = ((data[name], transform_fn)
                                  | f"Transform{name}" >> tft_beam.TransformDataset(
                                      output_record_batches=True))
        from tfx_bsl.coders import example_coder

        for name, batches in outputs.items():
            _ = (batches
                 | f"Encode{name}" >> beam.FlatMapTuple(
                     lambda batch, _: example_coder.RecordBatchToExamples(batch))
                 | f"Write{name}" >> beam.io.WriteToTFRecord(
                     os.path.join(layout.data_dir(output_dir, name), "part"),
                     file_name_suffix=".tfrecord.gz"))
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)


def pandas_sklearn_way(train_csv: str, serving_csv: str,
                       eval_fraction: float = row_keys.DEFAULT_EVAL_FRACTION) -> int:
    """Reads, splits, fits on train and transforms every split; returns rows read."""
    import pandas as pd
    from sklearn.preprocessing import KBinsDiscretizer, MinMaxScaler, StandardScaler

    frames = [pd.read_csv(path, na_values=["NA"], keep_default_na=False)
              for path in (train_csv, serving_csv)]
    train_all, serving = frames
    keys = (train_all[["year", "month", "day", "carrier", "flight", "origin"]]
            .astype(str).agg("|".join, axis=1))
    is_eval = row_keys.eval_mask(row_keys.row_keys(keys), row_keys.eval_percent(eval_fraction))
    splits = {"train": train_all[~is_eval], "eval": train_all[is_eval], "serving": serving}
    train = splits["train"]
    delay = StandardScaler().fit(train[["dep_delay"]].dropna())
    distance_log = StandardScaler().fit(np.log1p(train[["distance"]]))
    buckets = KBinsDiscretizer(10, encode="ordinal", strategy="quantile").fit(
        train[["distance"]])
    minutes = MinMaxScaler().fit((train["hour"] * 60 + train["minute"]).to_frame())
    vocabularies = {c: {v: i for i, v in enumerate(train[c].value_counts().index)}
                    for c in ("carrier", "origin", "dest")}
    for frame in splits.values():
        out = pd.DataFrame(index=frame.index)
        out["dep_delay_z"] = delay.transform(frame[["dep_delay"]]).ravel()
        out["dep_delay_missing"] = frame["dep_delay"].isna().astype(int)
        out["dep_delay_z"] = out["dep_delay_z"].fillna(0.0)
        out["distance_log"] = distance_log.transform(np.log1p(frame[["distance"]])).ravel()
        out["distance_bucket"] = buckets.transform(frame[["distance"]]).ravel()
        out["sched_dep_minute_01"] = minutes.transform(
            (frame["hour"] * 60 + frame["minute"]).to_frame()).ravel()
        for column, vocabulary in vocabularies.items():
            out[f"{column}_id"] = frame[column].map(vocabulary).fillna(len(vocabulary))
    return sum(len(f) for f in frames)
