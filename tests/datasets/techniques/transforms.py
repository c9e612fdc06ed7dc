"""A ``preprocessing_fn`` that uses every technique of ``transforms.recipes``,
so that ``check-parity`` proves each one serves exactly as the pipeline wrote it.
"""

import tensorflow as tf

from transforms import recipes

LABEL_KEY = "label"
SERVING_INPUTS = ("amount", "count", "city", "user", "when", "note")
LABEL_INPUTS = ()


def preprocessing_fn(inputs: dict) -> dict:
    out = {"amount_missing": recipes.missing(inputs["amount"])}
    for strategy in ("mean", "median", "constant"):
        out[f"amount_{strategy}"], _ = recipes.impute(
            inputs["amount"], strategy, name=f"amount_{strategy}", value=-1.0)
    out["city_most_frequent"], _ = recipes.impute(inputs["city"], "most_frequent",
                                                  name="city_most_frequent")
    # One analyzer phase deep: PCA over a z-score of an imputed mean (three phases)
    # stalls the DirectRunner ("watermark-pending bundles did not execute").
    out["amount_z"] = recipes.z_score_imputed(inputs["amount"], name="amount_z")

    count = tf.cast(recipes.dense(inputs["count"]), tf.float32)
    out["count_z"] = recipes.z_score(count, name="count_z")
    out["count_01"] = recipes.scale_0_1(count, name="count_01")
    out["count_log_z"] = recipes.log_z_score(count, name="count_log_z")
    out["count_clipped"] = recipes.clip_to_percentiles(count, name="count_clipped")
    out["count_bucket"] = recipes.bucketize(count, [1, 10, 100])
    out["count_quantile"] = recipes.quantile_buckets(count, 4, name="count_quantile")

    city, user = recipes.dense(inputs["city"]), recipes.dense(inputs["user"])
    out["city_id"] = recipes.vocabulary(inputs["city"], name="city", top_k=3)
    out["user_hash"] = recipes.hashed(inputs["user"], 64)
    out["city_x_bucket"] = recipes.cross([city, out["count_bucket"]], 100)
    out["city_x_bucket_x_user"] = recipes.cross([city, out["count_bucket"], user], 1000)

    out.update(recipes.timestamp_features(inputs["when"], name="when", text=True))
    when = recipes.dense(inputs["when"])
    month = tf.strings.to_number(tf.strings.substr(when, 5, 2), tf.int64)
    hour = tf.strings.to_number(tf.strings.substr(when, 11, 2), tf.int64)
    day = tf.strings.to_number(tf.strings.substr(when, 8, 2), tf.int64)
    out["month_sin"], out["month_cos"] = recipes.month_cycle(month)
    out["hour_sin"], out["hour_cos"] = recipes.hour_cycle(hour)
    out["weekday_sin"], out["weekday_cos"] = recipes.weekday_cycle(
        recipes.weekday(tf.strings.to_number(tf.strings.substr(when, 0, 4), tf.int64),
                        month, day))

    out.update(recipes.polynomial({"amount": out["amount_z"], "count": out["count_log_z"]}))
    out["amount_count_pca"] = recipes.pca([out["amount_z"], out["count_log_z"]], 1,
                                          name="amount_count_pca")

    note = recipes.dense(inputs["note"])
    out["note_words"] = recipes.bag_of_words(note, name="note_words", ngrams=(1, 2))
    out["note_terms"], out["note_weights"] = recipes.tfidf(note, name="note_terms", top_k=20)

    out[LABEL_KEY] = recipes.integer_class(inputs["label"], classes=2)
    return out
