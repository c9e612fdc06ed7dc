"""The TFT ``preprocessing_fn`` for the UCI census income data: TFT's census
wide & deep example, built from ``transforms.recipes``.

The raw columns are those of ``schemas/census.pbtxt`` (TFT's census example
names). For the wide part of a model: age in buckets at 18, 25, ..., 65 (11
values), education x occupation hashed into 10,000 buckets and age bucket x
education x occupation into 1,000,000. For the deep part: a vocabulary per
categorical column (a missing ``?`` is a category of its own, unseen values
share one OOV id) and the z-scored numbers. ``fnlwgt`` is the census' sampling
weight, not a property of the person: it is not a feature. The label
``income_bracket`` is 1 for ``>50K`` (``adult.test`` writes ``>50K.``), else 0.
"""

import tensorflow as tf

from transforms import recipes

__all__ = [
    "AGE_BOUNDARIES", "LABEL_INPUTS", "LABEL_KEY", "SERVING_INPUTS", "WIDE_ONLY",
    "preprocessing_fn",
]

LABEL_KEY = "income_bracket"
NUMERIC_FEATURES = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
CATEGORICAL_FEATURES = ("workclass", "education", "marital_status", "occupation",
                        "relationship", "race", "gender", "native_country")
SERVING_INPUTS = NUMERIC_FEATURES + CATEGORICAL_FEATURES
LABEL_INPUTS = ()

AGE_BOUNDARIES = (18, 25, 30, 35, 40, 45, 50, 55, 60, 65)
EDUCATION_X_OCCUPATION_BUCKETS = 10_000
AGE_X_EDUCATION_X_OCCUPATION_BUCKETS = 1_000_000
# The outputs a wide & deep model feeds to its wide (linear) part only.
WIDE_ONLY = ("age_bucket", "education_x_occupation", "age_x_education_x_occupation")


def preprocessing_fn(inputs: dict) -> dict:
    """Raw census columns -> wide & deep features and the 0/1 label."""
    outputs = {}
    for name in NUMERIC_FEATURES:
        outputs[f"{name}_z"] = recipes.z_score(recipes.dense(inputs[name]), name=f"{name}_z")
    for name in CATEGORICAL_FEATURES:
        outputs[f"{name}_id"] = recipes.vocabulary(inputs[name], name=name)

    age_bucket = recipes.bucketize(recipes.dense(inputs["age"]), list(AGE_BOUNDARIES))
    education = recipes.dense(inputs["education"])
    occupation = recipes.dense(inputs["occupation"], default_value="")
    outputs["age_bucket"] = age_bucket
    outputs["education_x_occupation"] = recipes.cross(
        [education, occupation], EDUCATION_X_OCCUPATION_BUCKETS)
    outputs["age_x_education_x_occupation"] = recipes.cross(
        [age_bucket, education, occupation], AGE_X_EDUCATION_X_OCCUPATION_BUCKETS)

    label = tf.strings.regex_replace(recipes.dense(inputs[LABEL_KEY]), r"\.$", "")
    outputs[LABEL_KEY] = recipes.with_range(tf.cast(tf.equal(label, ">50K"), tf.int64), 2)
    return outputs
