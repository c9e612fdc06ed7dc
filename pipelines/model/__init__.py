"""The model side of a finished run: the ``tf.data`` input function
(``inputs``), the wide & deep model with a binary, multi-class or regression
head (``wide_and_deep``), and one module per command: ``train``,
``export_serving`` (the serving SavedModel with the ``transform_fn`` inside),
``check_parity``, ``rank_features`` and ``serve`` (TensorFlow Serving's REST
API, with ``request_checks``, ``request_log`` and ``serving_metrics``).
"""

__all__ = [
    "check_parity", "export_serving", "inputs", "rank_features", "request_checks",
    "request_log", "serve", "serving_metrics", "train", "wide_and_deep",
]
