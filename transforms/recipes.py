"""The catalogue of preprocessing techniques: what a ``preprocessing_fn`` calls.

Generated ``preprocessing_fn``s (``python -m pipelines init``) call one per raw
column, so that every choice is one readable line to edit; shipped and users'
ones call them by name too. The raw-column functions (``dense``, ``missing``,
``impute``, ``z_score_imputed``, ``vocabulary``, ``hashed``, ...) take the
tensor as TFT hands it over: ``[batch, 1]`` dense for a required column, sparse
for one with missing values. The others take ``[batch]`` tensors (``dense``
makes them). Whatever needs statistics of the data is a TFT analyzer: it is
computed on the training split only, in the full pass, and applied unchanged to
every split and at serving. Analyzers are named after their column (``name``)
so that their cache keys are stable across tracings.

Means and variances are analyzed in ``float64`` and the values they scale are
computed in it, then rounded to ``float32`` once: TFT's combiner accumulates
in its input's dtype, and a ``float32`` accumulation drifts with the number and
sizes of the batches (measured on the Chicago taxi data: up to 15 float32 ulps
for ``trip_miles``' variance, 2,400 for a census tract's, whose ``int64`` values
``float32`` cannot even hold). In ``float64`` every such constant is within a
``float32`` ulp of the exact value, whatever the batches.

Every categorical output (vocabulary ids, buckets, hashes, crosses) carries its
range as an ``int_domain`` in the transformed schema, so a model can size its
embeddings from the schema alone.

Families: missing values (``missing``, ``impute``), scaling (``z_score``,
``z_score_imputed``, ``scale_0_1``, ``log_z_score``, ``clip_to_percentiles``),
buckets (``bucketize``, ``quantile_buckets``), categories (``vocabulary``,
``hashed``, ``cross``), cycles (``cyclical``, ``hour_cycle``, ``weekday_cycle``,
``month_cycle``, ``weekday``, ``timestamp_features``), construction and extraction
(``polynomial``, ``pca``), text (``tokens``, ``bag_of_words``, ``tfidf``) and
labels (``label_vocabulary``, ``integer_class``, ``number``).
"""

import math

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

__all__ = [
    "bag_of_words", "bucketize", "clip_to_percentiles", "cross", "cyclical", "dense", "hashed",
    "hour_cycle", "impute", "integer_class", "label_vocabulary", "log_z_score", "missing",
    "month_cycle", "number", "pca", "polynomial", "quantile_buckets", "scale_0_1", "tfidf",
    "timestamp_features", "tokens", "vocabulary", "weekday", "weekday_cycle", "with_range",
    "z_score", "z_score_imputed",
]

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent", "constant")

SECONDS_PER_DAY = 86_400


def dense(x, default_value=None) -> tf.Tensor:
    """A ``[batch, 1]`` dense or sparse feature as a ``[batch]`` tensor; the
    missing values of a sparse one become ``default_value``."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=default_value)
    return tf.squeeze(x, axis=1)


def missing(x) -> tf.Tensor:
    """1 where the value is missing, 0 where present (``int64``)."""
    if not isinstance(x, tf.sparse.SparseTensor):
        return tf.zeros_like(dense(x), dtype=tf.int64)
    present = tf.sparse.SparseTensor(x.indices, tf.ones_like(x.values, dtype=tf.int64),
                                     x.dense_shape)
    return 1 - dense(present, default_value=0)


def _float64(x):
    """A dense or sparse tensor's values as ``float64``: what the mean and
    variance analyzers accumulate in (see the module's docstring)."""
    if isinstance(x, tf.sparse.SparseTensor):
        return tf.sparse.SparseTensor(x.indices, tf.cast(x.values, tf.float64), x.dense_shape)
    return tf.cast(x, tf.float64)


def z_score_imputed(x, name: str) -> tf.Tensor:
    """z-score with the training mean and variance of the present values; a
    missing value is imputed with the mean (a z-score of 0). Pair it with
    ``missing(x)`` so that the model can tell an imputed value from a real one.
    Scaling before imputing keeps the analysis to one pass over the data."""
    z = dense(tft.scale_to_z_score(_float64(x), name=name), default_value=0.0)
    # A column with no value in training has no mean: its z-scores are NaN.
    return tf.cast(tf.where(tf.math.is_finite(z), z, tf.zeros_like(z)), tf.float32)


def impute(x, strategy: str, name: str, value=None) -> tuple[tf.Tensor, tf.Tensor]:
    """The column with its missing values filled, and ``missing(x)``.

    ``strategy``: ``mean`` or ``median`` (numbers: of the training values
    present; the median is TFT's approximate quantile), ``most_frequent`` (the
    training split's most frequent value; ties go to the larger value), or
    ``constant`` (``value``).
    """
    if strategy not in IMPUTE_STRATEGIES:
        raise ValueError(f"strategy must be one of {IMPUTE_STRATEGIES}, got {strategy!r}")
    raw = x
    if x.dtype != tf.string:  # numbers are imputed as float32: a mean is no integer
        x = (tf.sparse.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
             if isinstance(x, tf.sparse.SparseTensor) else tf.cast(x, tf.float32))
    if strategy == "constant":
        fill = tf.constant(value, x.dtype)
    elif strategy == "mean":  # of the values as they are, accumulated in float64
        fill = tf.cast(tft.mean(_present(_float64(raw)), name=name), tf.float32)
    elif strategy == "median":
        fill = tft.quantiles(_present(x), num_buckets=2, epsilon=0.001, name=name)[0, 0]
    else:
        fill = _most_frequent(_present(x), name)
    is_missing = missing(x)
    values = dense(x, default_value="" if x.dtype == tf.string else 0.0)
    return tf.where(tf.cast(is_missing, tf.bool), fill, values), is_missing


def _present(x) -> tf.Tensor:
    """The values present, flat: a sparse tensor's values, a dense one reshaped."""
    return x.values if isinstance(x, tf.sparse.SparseTensor) else tf.reshape(x, [-1])


def _most_frequent(values: tf.Tensor, name: str) -> tf.Tensor:
    """The training split's most frequent value: the first line of a top-1
    vocabulary, read back through a lookup table (the file is an asset)."""
    text = values if values.dtype == tf.string else tf.strings.as_string(values)
    vocabulary_file = tft.vocabulary(text, top_k=1, vocab_filename=name)
    table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            vocabulary_file, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
            tf.string, tf.lookup.TextFileIndex.WHOLE_LINE), default_value="")
    top = table.lookup(tf.constant(0, tf.int64))
    return top if values.dtype == tf.string else tf.strings.to_number(top, values.dtype)


def z_score(x: tf.Tensor, name: str) -> tf.Tensor:
    """(x - mean) / standard deviation, both of the training split."""
    return tf.cast(tft.scale_to_z_score(tf.cast(x, tf.float64), name=name), tf.float32)


def scale_0_1(x: tf.Tensor, name: str) -> tf.Tensor:
    """(x - min) / (max - min) over the training split: [0, 1] there, possibly
    outside it for other splits."""
    return tft.scale_to_0_1(tf.cast(x, tf.float32), name=name)


def log_z_score(x: tf.Tensor, name: str) -> tf.Tensor:
    """z-score of log(1 + x), for a heavy-tailed non-negative number."""
    return tf.cast(tft.scale_to_z_score(tf.math.log1p(tf.cast(x, tf.float64)), name=name),
                   tf.float32)


def clip_to_percentiles(x: tf.Tensor, name: str, low: int = 1, high: int = 99) -> tf.Tensor:
    """x clipped to the training split's ``low``-th and ``high``-th percentiles
    (TFT's approximate quantiles over 100 buckets): outliers stop at the edge."""
    if not 0 < low < high < 100:
        raise ValueError(f"need 0 < low < high < 100, got {low}, {high}")
    x = tf.cast(x, tf.float32)
    percentiles = tft.quantiles(x, num_buckets=100, epsilon=0.001, name=name)[0]
    return tf.clip_by_value(x, percentiles[low - 1], percentiles[high - 1])


def bucketize(x: tf.Tensor, boundaries: list[float]) -> tf.Tensor:
    """Bucket ids of fixed ``boundaries``: bucket i holds boundaries[i-1] <= x <
    boundaries[i], so ``len(boundaries) + 1`` buckets."""
    ids = tft.apply_buckets(tf.cast(x, tf.float32), [list(map(float, boundaries))])
    return with_range(ids, len(boundaries) + 1)


def quantile_buckets(x: tf.Tensor, buckets: int, name: str) -> tf.Tensor:
    """Bucket ids at the training split's quantiles: about as many training rows
    in each of the ``buckets``."""
    return tft.bucketize(tf.cast(x, tf.float32), buckets, name=name)


def cross(features: list[tf.Tensor], buckets: int, separator: str = "\x1f") -> tf.Tensor:
    """A crossed feature of 2 or more categorical ``[batch]`` columns (ids or
    text): their values joined by ``separator``, hashed into ``buckets``."""
    texts = [f if f.dtype == tf.string else tf.strings.as_string(f) for f in features]
    ids = tft.hash_strings(tf.strings.join(texts, separator=separator), buckets)
    return with_range(ids, buckets)


def hour_cycle(hour: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """An hour of the day (0-23, fractions allowed) on the 24-hour circle."""
    return cyclical(hour, period=24.0)


def weekday_cycle(weekday: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A day of the week (0-6) on the 7-day circle."""
    return cyclical(weekday, period=7.0)


def weekday(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """The day of the week of a date, Monday 0 to Sunday 6."""
    return _weekday_of(_days_from_civil(year, month, day))


def _weekday_of(days_since_1970: tf.Tensor) -> tf.Tensor:
    """1970-01-01 was a Thursday: + 3 makes Monday 0."""
    return tf.math.floormod(days_since_1970 + 3, 7)


def month_cycle(month: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A month (1-12) on the 12-month circle: December sits next to January."""
    return cyclical(tf.cast(month, tf.float32) - 1.0, period=12.0)


def polynomial(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Degree-2 expansion of numeric ``[batch]`` columns: each square
    (``a_sq``) and each product of two (``a_x_b``), in the order given. Scale
    the inputs first, so that the products stay in range."""
    names = list(features)
    values = {n: tf.cast(features[n], tf.float32) for n in names}
    expanded = {}
    for i, a in enumerate(names):
        expanded[f"{a}_sq"] = values[a] * values[a]
        for b in names[i + 1:]:
            expanded[f"{a}_x_{b}"] = values[a] * values[b]
    return expanded


def pca(features: list[tf.Tensor], components: int, name: str) -> tf.Tensor:
    """The first ``components`` principal components of numeric ``[batch]``
    columns, ``[batch, components]``: the training split's centred values
    projected on the eigenvectors of its covariance (``tft.pca``). Scale the
    columns to comparable units first (``z_score``)."""
    x = tf.stack([tf.cast(f, tf.float32) for f in features], axis=1)
    exact = tf.stack([tf.cast(f, tf.float64) for f in features], axis=1)
    centred = tf.cast(exact - tft.mean(exact, reduce_instance_dims=False, name=f"{name}_mean"),
                      tf.float32)
    return tf.matmul(centred, tft.pca(x, output_dim=components, dtype=tf.float32, name=name))


def tokens(text: tf.Tensor) -> tf.SparseTensor:
    """Lower-case words of ``[batch]`` text (letters and digits; anything else
    separates), as a ``[batch, words]`` sparse tensor."""
    words = tf.strings.regex_replace(tf.strings.lower(text), r"[^\p{L}\p{N}]+", " ")
    return tf.strings.split(tf.strings.strip(words)).to_sparse()


def bag_of_words(text: tf.Tensor, name: str, ngrams: tuple[int, int] = (1, 1),
                 top_k: int | None = None, oov_buckets: int = 1) -> tf.SparseTensor:
    """The ids of the distinct n-grams of each text (``ngrams``: smallest and
    largest n), from a training vocabulary of n-grams (``top_k`` most
    frequent; others share ``oov_buckets`` ids)."""
    grams = tft.bag_of_words(tokens(text), ngram_range=ngrams, separator=" ")
    return tft.compute_and_apply_vocabulary(grams, top_k=top_k, num_oov_buckets=oov_buckets,
                                            vocab_filename=name)


def tfidf(text: tf.Tensor, name: str, top_k: int, ngrams: tuple[int, int] = (1, 1)
          ) -> tuple[tf.SparseTensor, tf.SparseTensor]:
    """tf-idf of the words (or n-grams) of each text: the term ids (a vocabulary
    of the ``top_k`` most frequent training terms, one OOV id ``top_k``) and
    their weights, term frequency x smoothed inverse document frequency of the
    training split (``tft.tfidf``: idf = 1 + log((1 + N) / (1 + df)))."""
    grams = tft.ngrams(tokens(text), ngram_range=ngrams, separator=" ")
    ids = tft.compute_and_apply_vocabulary(grams, top_k=top_k, num_oov_buckets=1,
                                           vocab_filename=name)
    terms, weights = tft.tfidf(ids, vocab_size=top_k + 1, name=f"{name}_tfidf")
    return with_range(terms, top_k + 1), weights


def with_range(ids, size: int):
    """``ids`` (dense or sparse) with the range ``[0, size)`` recorded in the
    transformed schema: what tells a model an integer output is a category, and
    how many there are."""
    schema_inference.set_tensor_schema_override(
        ids.values if isinstance(ids, tf.SparseTensor) else ids,
        tf.constant(0, tf.int64), tf.constant(size - 1, tf.int64))
    return ids


def number(x) -> tf.Tensor:
    """The value as ``float32`` (a regression label, kept in its own units)."""
    return tf.cast(dense(x, default_value=0), tf.float32)


def vocabulary(x, name: str, oov_buckets: int = 1, missing_value: str = "",
               top_k: int | None = None, frequency_threshold: int | None = None) -> tf.Tensor:
    """Ids of a training vocabulary (most frequent value first), of at most
    ``top_k`` values seen at least ``frequency_threshold`` times; other values
    share ``oov_buckets`` extra ids; a missing value is ``missing_value``, one
    more category."""
    return tft.compute_and_apply_vocabulary(
        dense(x, default_value=missing_value), num_oov_buckets=oov_buckets, top_k=top_k,
        frequency_threshold=frequency_threshold, vocab_filename=name)


def hashed(x, buckets: int, missing_value: str = "") -> tf.Tensor:
    """Hash buckets of a string column with too many values for a vocabulary,
    with the range recorded in the transformed schema (a model sizes its
    embedding by it; TFT records it for vocabularies, not for hashes)."""
    return with_range(tft.hash_strings(dense(x, default_value=missing_value), buckets), buckets)


def label_vocabulary(x, name: str) -> tf.Tensor:
    """A text label as class ids, in the training split's order of frequency
    (so a binary label's more frequent class is 0). No OOV bucket: a class not
    seen in training has no id to learn."""
    return tft.compute_and_apply_vocabulary(dense(x, default_value=""), vocab_filename=name)


def integer_class(x, classes: int) -> tf.Tensor:
    """An integer label already numbered ``0 .. classes - 1``, with its range in
    the transformed schema (what tells a model it is a class, not a number)."""
    return with_range(tf.cast(dense(x, default_value=0), tf.int64), classes)


def cyclical(value: tf.Tensor, period: float) -> tuple[tf.Tensor, tf.Tensor]:
    """sin/cos encoding, so that 23:59 sits next to 00:00 and Sunday next to Monday."""
    angle = tf.cast(value, tf.float32) * (2.0 * math.pi / period)
    return tf.sin(angle), tf.cos(angle)


def timestamp_features(x, name: str, text: bool = False) -> dict[str, tf.Tensor]:
    """A timestamp as the model can use it, never hashed: the hour of the day and
    the day of the week as cycles, and the time itself scaled to [0, 1] over
    the training range. ``x`` holds seconds since 1970-01-01 UTC, or with
    ``text`` ``YYYY-MM-DD[ T]HH:MM[:SS]`` strings (read as UTC). A missing or
    unreadable time is imputed with the training mean and flagged."""
    if text:
        seconds, known = _parse_datetime(dense(x, default_value=""))
    else:
        seconds = tf.cast(dense(x, default_value=0), tf.float64)
        known = tf.cast(1 - missing(x), tf.bool)
    # float64: a float32 of seconds since 1970 is off by up to two minutes.
    mean = tft.mean(tf.boolean_mask(seconds, known), name=f"{name}_mean",
                    output_dtype=tf.float64)
    # Named, so that the mean's constant can be found in the transform graph.
    seconds = tf.where(known, seconds, mean, name=f"{name}_imputed")
    day_seconds = tf.math.floormod(seconds, SECONDS_PER_DAY)
    days = tf.math.floordiv(seconds, SECONDS_PER_DAY)
    hour_sin, hour_cos = hour_cycle(day_seconds / 3600.0)
    weekday_sin, weekday_cos = weekday_cycle(_weekday_of(days))
    return {
        f"{name}_hour_sin": hour_sin, f"{name}_hour_cos": hour_cos,
        f"{name}_weekday_sin": weekday_sin, f"{name}_weekday_cos": weekday_cos,
        f"{name}_scaled": tf.cast(tft.scale_to_0_1(seconds, name=f"{name}_scaled"), tf.float32),
        f"{name}_missing": 1 - tf.cast(known, tf.int64),
    }


def _parse_datetime(text: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Seconds since 1970 of ``YYYY-MM-DD[ T]HH:MM[:SS...]`` strings, and whether
    each string was one."""
    pattern = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d*)?)?)?.*$"
    known = tf.strings.regex_full_match(text, pattern)
    padded = tf.where(known, tf.strings.substr(text + " 00:00:00", 0, 19),
                      "1970-01-01 00:00:00")

    def part(start: int, length: int) -> tf.Tensor:
        return tf.strings.to_number(tf.strings.substr(padded, start, length), tf.int64)

    days = _days_from_civil(part(0, 4), part(5, 2), part(8, 2))
    seconds = days * SECONDS_PER_DAY + part(11, 2) * 3600 + part(14, 2) * 60
    seconds += tf.strings.to_number(
        tf.where(tf.strings.regex_full_match(tf.strings.substr(padded, 17, 2), r"\d\d"),
                 tf.strings.substr(padded, 17, 2), "0"), tf.int64)
    return tf.cast(seconds, tf.float64), known


def _days_from_civil(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    ``days_from_civil``)."""
    shifted_year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(shifted_year, 400)
    year_of_era = shifted_year - era * 400
    month_from_march = tf.math.floormod(month + 9, 12)
    day_of_year = (153 * month_from_march + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
