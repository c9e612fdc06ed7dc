"""TFT ``preprocessing_fn``s, one pure module per shipped dataset
(``transforms/<dataset>.py``), and ``recipes``: the building blocks of the
``preprocessing_fn``s that ``python -m pipelines init`` generates."""

__all__ = ["census", "flights", "recipes"]
