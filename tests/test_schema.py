"""The curated flights schema, the dataset registry, and ``infer-schema``."""

import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from pipelines import datasets
from pipelines.commands.infer_schema import infer_schema_text
from pipelines.decode.columns import columns_from_schema
from tests.conftest import run_cli


def test_flights_schema_declares_the_columns_with_missing_values_optional():
    columns = {c.name: c for c in columns_from_schema(schemas.load_schema("flights"))}
    optional = {name for name, c in columns.items() if not c.required}
    # NA appears in exactly these columns of the 2013 file.
    assert optional == {"dep_time", "dep_delay", "arr_time", "arr_delay", "tailnum", "air_time"}


def test_flights_schema_compares_numeric_by_jsd_and_categorical_by_l_infinity():
    schema = schemas.load_schema("flights")
    for feature in schema.feature:
        for comparator in (feature.skew_comparator, feature.drift_comparator):
            if feature.type == schema_pb2.BYTES and comparator.ByteSize():
                assert comparator.infinity_norm.threshold > 0, feature.name
            elif comparator.ByteSize():
                assert comparator.jensen_shannon_divergence.threshold > 0, feature.name


@pytest.mark.parametrize("name", datasets.dataset_names())
def test_split_keys_are_required_columns(name):
    dataset = datasets.get_dataset(name)
    columns = {c.name: c for c in columns_from_schema(dataset.schema())}
    # A missing key would make BigQuery's CONCAT, and so its fingerprint, NULL.
    assert all(columns[k].required for k in dataset.csv_format.key_columns)


def test_unknown_dataset_names_the_registered_ones():
    with pytest.raises(datasets.UnknownDatasetError, match="registered datasets: census, flights"):
        datasets.get_dataset("taxi")


def test_infer_schema_types_columns_from_their_values(tmp_path):
    path = tmp_path / "part.csv"
    path.write_bytes(b"year,month,carrier,dep_delay,air_time\n"
                     b"2013,1,UA,2,1.5\n2013,1,AA,NA,2\n2013,2,UA,-3,NA\n")
    schema = schemas.parse_schema(infer_schema_text(str(path), "flights"))
    features = {f.name: f for f in schema.feature}
    assert {n: schema_pb2.FeatureType.Name(f.type) for n, f in features.items()} == {
        "year": "INT", "month": "INT", "carrier": "BYTES", "dep_delay": "INT",
        "air_time": "FLOAT"}
    assert features["year"].presence.min_fraction == 1.0
    assert features["dep_delay"].presence.min_fraction < 1.0


def test_infer_schema_command_prints_a_schema(flights_slices):
    result = run_cli("infer-schema", "--dataset", "flights", "--input", flights_slices[0],
                     "--limit", "1000")
    assert result.returncode == 0, result.stderr
    assert "(1,000 rows decoded, 0 rejected)" in result.stdout
    schema = schemas.parse_schema(result.stdout)
    assert len(schema.feature) == 19
