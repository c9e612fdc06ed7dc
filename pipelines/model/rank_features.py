"""``rank-features``: the transformed features ranked by mutual information with
the label, on a run's training split: a report to choose from, never a drop.

    python -m pipelines rank-features --run_dir DIR [--rows N]

Mutual information (in nats) is scikit-learn's estimate: counts for
categorical features (an ``int_domain`` in the transformed schema: ids,
buckets, hashes), nearest neighbours for numbers; ``mutual_info_classif`` for
a class label, ``mutual_info_regression`` for a number. Only scalar features
are ranked (not PCA vectors or bags of words). Counting overstates what a
feature with very many values (a large cross) tells: read its rank with that in
mind. To drop features, name them in
the dataset's ``dataset.json``: ``"features": {"drop": ["a", "b"]}``.
"""

import numpy as np
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from pipelines import layout
from pipelines.model import inputs, wide_and_deep
from pipelines.reports.run_dir import RunDir

__all__ = ["format_ranking", "rank_features"]

DEFAULT_ROWS = 20_000  # the estimate settles long before; nearest neighbours cost O(n log n)


def rank_features(run_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0
                  ) -> list[tuple[str, bool, float]]:
    """(feature, categorical, mutual information) per scalar feature, highest first."""
    run = RunDir(run_dir)
    label = run.dataset.module.require_label("rank-features")
    schema = run.tft_output.transformed_metadata.schema
    features = wide_and_deep.model_inputs(schema, label)
    columns: dict[str, list] = {name: [] for name in [*features, label]}
    taken = 0
    for batch in inputs.make_dataset(run, layout.TRAIN, 4096):
        for name in columns:
            columns[name].append(batch[name].numpy())
        taken += len(batch[label])
        if taken >= rows:
            break
    names = list(features)
    x = np.stack([np.concatenate(columns[n])[:rows] for n in names], axis=1).astype(np.float64)
    y = np.concatenate(columns[label])[:rows]
    discrete = np.array([features[n] is not None for n in names])
    if wide_and_deep.label_task(schema, label) == wide_and_deep.REGRESSION:
        scores = mutual_info_regression(x, y, discrete_features=discrete, random_state=seed)
    else:
        scores = mutual_info_classif(x, y, discrete_features=discrete, random_state=seed)
    ranked = sorted(zip(names, discrete, scores, strict=True), key=lambda r: -r[2])
    return [(name, bool(categorical), float(score)) for name, categorical, score in ranked]


def format_ranking(ranking: list[tuple[str, bool, float]]) -> str:
    """The table ``rank-features`` prints."""
    width = max(len(name) for name, _, _ in ranking)
    lines = [f"{'feature':<{width}}  {'kind':<11}  mutual information (nats)"]
    lines += [f"{name:<{width}}  {'categorical' if categorical else 'number':<11}  {score:.4f}"
              for name, categorical, score in ranking]
    lines.append('To drop features, list them in the dataset\'s dataset.json: '
                 '"features": {"drop": [...]}')
    return "\n".join(lines)
