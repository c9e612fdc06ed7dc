"""Every technique of ``transforms.recipes`` on hand-written rows, through TFT's
own analyze-and-transform test harness (``tft_unit.TransformTestCase``).

Each expected value is worked out here without TensorFlow: by hand, with
``math``, and with pyfarmhash for hash buckets (TFT hashes with farmhash
Fingerprint64). A raw column arrives as the pipeline feeds it: ``[batch, 1]``
dense when required (``REQUIRED``), sparse when it may be missing (``OPTIONAL``).
"""

import math

import farmhash
import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.beam import tft_unit
from tensorflow_transform.tf_metadata.dataset_metadata import DatasetMetadata

from transforms import recipes


def REQUIRED(dtype):  # noqa: N802 - reads as a feature kind in the specs below
    return tf.io.FixedLenFeature([1], dtype)


def OPTIONAL(dtype):  # noqa: N802
    return tf.io.VarLenFeature(dtype)


def _dense_of(indices: tf.SparseTensor, values: tf.Tensor, size: int) -> tf.Tensor:
    """A ``[batch, words]`` sparse result as ``[batch, size]`` dense rows, so
    that expected values do not depend on the order of the sparse entries."""
    rows = tf.cast(indices.indices[:, 0], tf.int64)
    placed = tf.sparse.SparseTensor(tf.stack([rows, indices.values], axis=1), values,
                                    [tf.shape(indices, out_type=tf.int64)[0], size])
    return tf.reshape(tf.sparse.to_dense(tf.sparse.reorder(placed)), [-1, size])


def _metadata(spec: dict, domains: dict | None = None) -> DatasetMetadata:
    return DatasetMetadata.from_feature_spec(spec, domains)


class RecipesTest(tft_unit.TransformTestCase):
    test_session = None  # tf.test.TestCase's old helper, which pytest would collect

    def _check(self, rows, spec, preprocessing_fn, expected, **kwargs):
        self.assertAnalyzeAndTransformResults(
            rows, _metadata(spec), preprocessing_fn, expected,
            **kwargs)

    # -- missing values ------------------------------------------------------------------

    def test_impute_mean_flags_what_it_filled(self):
        def fn(inputs):
            filled, flag = recipes.impute(inputs["x"], "mean", name="x")
            return {"x": filled, "x_missing": flag}
        self._check([{"x": [1.0]}, {"x": []}, {"x": [3.0]}, {"x": [8.0]}],
                    {"x": OPTIONAL(tf.float32)}, fn,
                    [{"x": 1.0, "x_missing": 0}, {"x": 4.0, "x_missing": 1},
                     {"x": 3.0, "x_missing": 0}, {"x": 8.0, "x_missing": 0}])

    def test_impute_median_of_an_integer_column(self):
        def fn(inputs):
            return {"x": recipes.impute(inputs["x"], "median", name="x")[0]}
        values = [[1], [], [2], [3], [50], [100]]  # median of the present values: 3
        self._check([{"x": v} for v in values], {"x": OPTIONAL(tf.int64)}, fn,
                    [{"x": float(v[0]) if v else 3.0} for v in values])

    def test_impute_most_frequent_text(self):
        def fn(inputs):
            return {"x": recipes.impute(inputs["x"], "most_frequent", name="x")[0]}
        values = [["a"], ["b"], ["b"], [], ["c"]]
        self._check([{"x": v} for v in values], {"x": OPTIONAL(tf.string)}, fn,
                    [{"x": (v[0] if v else "b").encode()} for v in values])

    def test_impute_a_constant(self):
        def fn(inputs):
            return {"x": recipes.impute(inputs["x"], "constant", name="x", value=-1.0)[0]}
        self._check([{"x": []}, {"x": [2]}], {"x": OPTIONAL(tf.int64)}, fn,
                    [{"x": -1.0}, {"x": 2.0}])

    # -- scaling ---------------------------------------------------------------------------

    def test_z_score_uses_the_training_mean_and_deviation(self):
        def fn(inputs):
            return {"z": recipes.z_score(recipes.dense(inputs["x"]), name="x")}
        # mean 3, population variance 2
        self._check([{"x": [v]} for v in (1, 2, 3, 4, 5)], {"x": REQUIRED(tf.int64)}, fn,
                    [{"z": (v - 3) / math.sqrt(2)} for v in (1, 2, 3, 4, 5)])

    def test_z_score_imputed_sets_missing_values_to_zero(self):
        def fn(inputs):
            return {"z": recipes.z_score_imputed(inputs["x"], name="x")}
        self._check([{"x": [2.0]}, {"x": []}, {"x": [4.0]}], {"x": OPTIONAL(tf.float32)}, fn,
                    [{"z": -1.0}, {"z": 0.0}, {"z": 1.0}])

    def test_scale_0_1_over_the_training_range(self):
        def fn(inputs):
            return {"s": recipes.scale_0_1(recipes.dense(inputs["x"]), name="x")}
        self._check([{"x": [v]} for v in (2.0, 4.0, 6.0)], {"x": REQUIRED(tf.float32)}, fn,
                    [{"s": 0.0}, {"s": 0.5}, {"s": 1.0}])

    def test_log_z_score(self):
        def fn(inputs):
            return {"z": recipes.log_z_score(recipes.dense(inputs["x"]), name="x")}
        # log1p of the values is about 0, 1 and 2: mean 1, variance 2/3. Exactly,
        # of the float32 values fed, in float64, as the recipe computes it.
        values = np.float32([math.expm1(v) for v in (0.0, 1.0, 2.0)])
        logs = np.log1p(values.astype(np.float64))
        self._check([{"x": [v]} for v in values], {"x": REQUIRED(tf.float32)}, fn,
                    [{"z": (v - logs.mean()) / logs.std()} for v in logs])

    def test_clip_to_percentiles_stops_outliers_at_the_edges(self):
        def fn(inputs):
            return {"c": recipes.clip_to_percentiles(recipes.dense(inputs["x"]), name="x")}
        # 1,000 values: 5 at -1000, 5 at +1000, and 0..98 ten times each. The 1st and
        # 99th percentiles (ranks 10 and 990) are 0 and 98.
        values = [-1000.0] * 5 + [float(v) for v in range(99) for _ in range(10)][:990]
        values += [1000.0] * 5
        self._check([{"x": [v]} for v in values], {"x": REQUIRED(tf.float32)}, fn,
                    [{"c": min(max(v, 0.0), 98.0)} for v in values])

    # -- buckets ---------------------------------------------------------------------------

    def test_bucketize_at_given_boundaries_records_the_range(self):
        def fn(inputs):
            return {"b": recipes.bucketize(recipes.dense(inputs["age"]), [18, 25, 30])}
        ages = (17, 18, 24, 25, 64)
        self._check([{"age": [a]} for a in ages], {"age": REQUIRED(tf.int64)}, fn,
                    [{"b": b} for b in (0, 1, 1, 2, 3)],
                    expected_metadata=_metadata(
                        {"b": tf.io.FixedLenFeature([], tf.int64)},
                        {"b": _range(0, 3)}))

    def test_quantile_buckets_hold_equal_shares(self):
        def fn(inputs):
            return {"b": recipes.quantile_buckets(recipes.dense(inputs["x"]), 4, name="x")}
        self._check([{"x": [float(v)]} for v in range(1, 9)], {"x": REQUIRED(tf.float32)}, fn,
                    [{"b": b} for b in (0, 0, 1, 1, 2, 2, 3, 3)])

    # -- categories ------------------------------------------------------------------------

    def test_vocabulary_top_k_with_an_oov_bucket(self):
        def fn(inputs):
            return {"id": recipes.vocabulary(inputs["x"], name="x", top_k=2)}
        values = ("a", "a", "b", "b", "b", "c")  # b, a kept; c is out of vocabulary
        self._check([{"x": [v]} for v in values], {"x": REQUIRED(tf.string)}, fn,
                    [{"id": {"b": 0, "a": 1, "c": 2}[v]} for v in values],
                    expected_vocab_file_contents={"x": [b"b", b"a"]})

    def test_vocabulary_frequency_threshold(self):
        def fn(inputs):
            return {"id": recipes.vocabulary(inputs["x"], name="x", frequency_threshold=2)}
        values = ("a", "a", "b", "c")  # only a is seen twice
        self._check([{"x": [v]} for v in values], {"x": REQUIRED(tf.string)}, fn,
                    [{"id": 0 if v == "a" else 1} for v in values])

    def test_hashed_is_farmhash_fingerprint_mod_buckets(self):
        def fn(inputs):
            return {"h": recipes.hashed(inputs["x"], buckets=100)}
        values = ("N14228", "N24211", "")
        self._check([{"x": [v]} for v in values], {"x": REQUIRED(tf.string)}, fn,
                    [{"h": farmhash.fingerprint64(v) % 100} for v in values],
                    expected_metadata=_metadata(
                        {"h": tf.io.FixedLenFeature([], tf.int64)}, {"h": _range(0, 99)}))

    def test_crosses_of_two_and_three_features(self):
        def fn(inputs):
            a, b, c = (recipes.dense(inputs[n]) for n in "abc")
            return {"ab": recipes.cross([a, b], 10_000), "abc": recipes.cross([a, b, c], 1_000_000)}
        rows = [("x", "y", 3), ("x", "z", 4)]
        self._check([{"a": [a], "b": [b], "c": [c]} for a, b, c in rows],
                    {"a": REQUIRED(tf.string), "b": REQUIRED(tf.string), "c": REQUIRED(tf.int64)},
                    fn,
                    [{"ab": farmhash.fingerprint64(f"{a}\x1f{b}") % 10_000,
                      "abc": farmhash.fingerprint64(f"{a}\x1f{b}\x1f{c}") % 1_000_000}
                     for a, b, c in rows],
                    expected_metadata=_metadata(
                        {"ab": tf.io.FixedLenFeature([], tf.int64),
                         "abc": tf.io.FixedLenFeature([], tf.int64)},
                        {"ab": _range(0, 9_999), "abc": _range(0, 999_999)}))

    # -- cycles ----------------------------------------------------------------------------

    def test_hour_weekday_and_month_cycles(self):
        def fn(inputs):
            outputs = {}
            for name, cycle in (("hour", recipes.hour_cycle), ("weekday", recipes.weekday_cycle),
                                ("month", recipes.month_cycle)):
                outputs[f"{name}_sin"], outputs[f"{name}_cos"] = cycle(
                    recipes.dense(inputs[name]))
            return outputs
        rows = [(0, 0, 1), (3, 3, 3), (23, 6, 12)]  # no sine or cosine near, but not at, 0
        expected = []
        for hour, weekday, month in rows:
            row = {}
            for name, angle in (("hour", hour / 24), ("weekday", weekday / 7),
                                ("month", (month - 1) / 12)):
                row[f"{name}_sin"] = math.sin(2 * math.pi * angle)
                row[f"{name}_cos"] = math.cos(2 * math.pi * angle)
            expected.append(row)
        self._check([{"hour": [h], "weekday": [w], "month": [m]} for h, w, m in rows],
                    {n: REQUIRED(tf.int64) for n in ("hour", "weekday", "month")}, fn, expected)

    # -- construction and extraction -------------------------------------------------------

    def test_polynomial_squares_and_interactions(self):
        def fn(inputs):
            return recipes.polynomial({n: recipes.dense(inputs[n]) for n in ("a", "b")})
        rows = [(1.0, 3.0), (2.0, 4.0)]
        self._check([{"a": [a], "b": [b]} for a, b in rows],
                    {"a": REQUIRED(tf.float32), "b": REQUIRED(tf.float32)}, fn,
                    [{"a_sq": a * a, "a_x_b": a * b, "b_sq": b * b} for a, b in rows])

    def test_pca_finds_the_one_direction_of_perfectly_correlated_columns(self):
        def fn(inputs):
            projected = recipes.pca([recipes.dense(inputs["a"]), recipes.dense(inputs["b"])],
                                    components=1, name="ab")
            # An eigenvector's sign is arbitrary: compare magnitudes.
            return {"pc1": tf.abs(projected[:, 0])}
        # Points (t + 1, t + 1): centred, the first component (1, 1)/sqrt(2) maps them to t*sqrt(2).
        ts = (-2.0, -1.0, 0.0, 1.0, 2.0)
        self._check([{"a": [t + 1], "b": [t + 1]} for t in ts],
                    {"a": REQUIRED(tf.float32), "b": REQUIRED(tf.float32)}, fn,
                    [{"pc1": abs(t) * math.sqrt(2)} for t in ts])

    # -- text ------------------------------------------------------------------------------

    def test_bag_of_words_ids_from_a_training_vocabulary(self):
        def fn(inputs):
            ids = recipes.bag_of_words(recipes.dense(inputs["text"]), name="words")
            return {"bag": _dense_of(ids, tf.ones_like(ids.values), 5)}
        # Vocabulary: "the" (twice), then sat, dog, cat (once each: ties in descending
        # order); one OOV id 4.
        self._check([{"text": ["The cat sat."]}, {"text": ["the DOG, the dog"]}],
                    {"text": REQUIRED(tf.string)}, fn,
                    [{"bag": [1, 1, 0, 1, 0]}, {"bag": [1, 0, 1, 0, 0]}],
                    expected_vocab_file_contents={"words": [b"the", b"sat", b"dog", b"cat"]})

    def test_tfidf_weights(self):
        def fn(inputs):
            ids, weights = recipes.tfidf(recipes.dense(inputs["text"]), name="terms", top_k=3)
            return {"tfidf": _dense_of(ids, weights.values, 4)}
        # Vocabulary: b and a (twice each; ties in descending order), c: ids b 0, a 1, c 2.
        # tf = count / words in the text; idf = 1 + log((1 + 2 texts) / (1 + texts with it)).
        idf = {"a": 1 + math.log(3 / 2), "b": 1.0, "c": 1 + math.log(3 / 2)}
        self._check([{"text": ["a b a"]}, {"text": ["b c"]}], {"text": REQUIRED(tf.string)}, fn,
                    [{"tfidf": [1 / 3 * idf["b"], 2 / 3 * idf["a"], 0.0, 0.0]},
                     {"tfidf": [1 / 2 * idf["b"], 0.0, 1 / 2 * idf["c"], 0.0]}])


def _range(low: int, high: int) -> schema_pb2.IntDomain:
    return schema_pb2.IntDomain(min=low, max=high, is_categorical=True)


if __name__ == "__main__":
    tft_unit.main()
