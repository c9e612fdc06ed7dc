"""A dataset a user defines in code: the flights files under another name, run with
``--dataset tests.custom_dataset:PENGUINS --schema schemas/flights.pbtxt``."""

import dataclasses

from pipelines import datasets

PENGUINS = dataclasses.replace(datasets.get_dataset("flights"), name="penguins",
                               default_inputs=None)
