"""The model side of a finished run: the ``tf.data`` input function
(``inputs``), the wide & deep model with a binary, multi-class or regression
head (``wide_and_deep``), and one module per command: ``train``,
``export_serving`` (the serving SavedModel with the ``transform_fn`` inside),
``check_parity`` and ``serve`` (TensorFlow Serving's REST API).
"""

__all__ = ["check_parity", "export_serving", "inputs", "serve", "train", "wide_and_deep"]
