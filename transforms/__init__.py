"""TFT ``preprocessing_fn``s, one pure module per dataset (``transforms/<dataset>.py``)."""

__all__ = ["flights"]
