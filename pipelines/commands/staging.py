"""Staging and publishing a run's outputs.

A run writes everything under ``OUTPUT_DIR/.staging/RUN/`` and only a run that
succeeded is moved into ``OUTPUT_DIR``, ``run_summary.json`` last: an
interrupted or failed run leaves nothing that looks complete, and an earlier
completed run stays intact until the new one replaces it. A run is complete
only when its ``run_summary.json`` parses as a run's record: one cut short
(a disk that filled up under an older version) is no completed run, and a new
run replaces it without ``--overwrite``.

The caller holds the directory's lock (``pipelines.records.writer_lock``)
from before ``prepare`` to after ``promote``: ``prepare`` removes what
*interrupted* runs left in ``.staging/``, which a second live run would
otherwise take from under the first.
"""

import os
import time

from apache_beam.io.filesystems import FileSystems

from pipelines import layout
from pipelines.errors import UserError
from pipelines.records.run_record import RunRecord

__all__ = ["prepare", "promote", "staging_dir"]


def staging_dir(final: str) -> str:
    """A new run's own staging directory under ``final``."""
    return os.path.join(final, layout.STAGING,
                        f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")


def prepare(final: str, overwrite: bool) -> None:
    """Refuses to replace a completed run without ``overwrite``, and removes what
    interrupted runs left behind (the caller holds ``final``'s lock)."""
    if FileSystems.exists(os.path.join(final, layout.SUMMARY_FILE)) and not overwrite:
        try:
            RunRecord.read(final)
        except UserError as why:
            print(f"notice: {why}; the run replaces it", flush=True)
        else:
            raise UserError(
                f"{final} already holds a completed run ({layout.SUMMARY_FILE}); pass "
                f"--overwrite to replace it, or choose another --output_dir")
    _remove(os.path.join(final, layout.STAGING))


def promote(staging: str, final: str) -> None:
    """Moves a successful run's outputs from ``staging`` into ``final``."""
    # The earlier run stops counting as complete before any of it is replaced.
    _remove(os.path.join(final, layout.SUMMARY_FILE))
    for name in layout.OUTPUTS:
        if name != layout.STAGING:
            _remove(os.path.join(final, name))
    _remove(os.path.join(staging, layout.TEMP))
    if "://" not in staging:
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(final, name))
    else:
        files = [m.path for m in FileSystems.match([staging + "/**"])[0].metadata_list]
        FileSystems.rename(files, [final + path[len(staging):] for path in files])
    _remove(os.path.join(final, layout.STAGING))


def _remove(path: str | None) -> None:
    if path and FileSystems.exists(path):
        FileSystems.delete([path])
