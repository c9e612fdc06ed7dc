"""``pipelines.tft_speedups`` must not change a vocabulary: the files TFT writes
with each batch counted first are compared, byte for byte, with those TFT
writes counting token by token, on rows with ties across batches, a top-k, a
frequency threshold, integer tokens and an ordering it leaves to TFT."""

import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from pipelines import tft_speedups

_SPEC = {"city": tf.io.FixedLenFeature([], tf.string),
         "code": tf.io.FixedLenFeature([], tf.int64),
         "weight": tf.io.FixedLenFeature([], tf.float32)}


def _rows() -> list[dict]:
    rng = np.random.default_rng(11)
    # Zipf-like tokens, with several tokens sharing each count: the order of
    # ties (by token) and the cut of top_k among them are both exercised.
    cities = [f"c{int(v)}" for v in rng.zipf(1.3, 3000) % 400]
    codes = (rng.zipf(1.5, 3000) % 50).tolist()
    return [{"city": c, "code": k, "weight": float(k % 3)}
            for c, k in zip(cities, codes, strict=True)]


def _preprocessing_fn(inputs):
    city, code = inputs["city"], inputs["code"]
    # A top-k vocabulary written with its counts: the counts themselves, their
    # order and the cut among ties (the output only keeps the file in the graph).
    top = tft.vocabulary(city, top_k=37, store_frequency=True, vocab_filename="top")
    return {
        "top": code + tf.cast(tf.strings.length(top), tf.int64),
        "often": tft.compute_and_apply_vocabulary(city, frequency_threshold=3,
                                                  vocab_filename="often"),
        "codes": tft.compute_and_apply_vocabulary(code, vocab_filename="codes"),
        "weighted": tft.compute_and_apply_vocabulary(city, weights=inputs["weight"],
                                                     vocab_filename="weighted"),
    }


def _vocabularies(work: str) -> dict[str, bytes]:
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(_SPEC))
    rows = _rows()
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=os.path.join(work, "tmp"),
                                                       desired_batch_size=256):
        data = pipeline | beam.Create(rows, reshuffle=False)
        transform_fn = (data, metadata) | tft_beam.AnalyzeDataset(_preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(work, "out"))
    assets = os.path.join(work, "out", "transform_fn", "assets")
    vocabularies = {}
    for name in sorted(os.listdir(assets)):
        with open(os.path.join(assets, name), "rb") as f:
            vocabularies[name] = f.read()
    return vocabularies


# Two TFT pipelines of four vocabularies each: 29 s on the shared machine.
@pytest.mark.slow
def test_vocabularies_are_tfts_byte_for_byte(tmp_path):
    assert tft_speedups.install()
    counted_first = _vocabularies(str(tmp_path / "speedup"))
    tft_speedups.uninstall()
    try:
        token_by_token = _vocabularies(str(tmp_path / "tft"))
    finally:
        assert tft_speedups.install()
    assert sorted(counted_first) == ["codes", "often", "top", "weighted"]
    assert counted_first == token_by_token
    # The cases are not empty: a top-k cut, a threshold, ties.
    lines = {name: text.splitlines() for name, text in counted_first.items()}
    assert 37 == len(lines["top"]) < len(lines["often"]) < len({r["city"] for r in _rows()})
    counts = [int(line.split()[0]) for line in lines["top"]]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) < len(counts)
