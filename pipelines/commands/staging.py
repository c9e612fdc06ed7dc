"""Staging and publishing a run's outputs.

A run writes everything under ``OUTPUT_DIR/.staging/RUN/`` and only a run that
succeeded is moved into ``OUTPUT_DIR``, ``run_summary.json`` last: an
interrupted or failed run leaves nothing that looks complete, and an earlier
completed run stays intact until the new one replaces it.
"""

import os
import time

from apache_beam.io.filesystems import FileSystems

from pipelines import layout
from pipelines.errors import UserError

__all__ = ["prepare", "promote", "staging_dir"]


def staging_dir(final: str) -> str:
    """A new run's own staging directory under ``final``."""
    return os.path.join(final, layout.STAGING,
                        f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")


def prepare(final: str, overwrite: bool) -> None:
    """Refuses to replace a completed run without ``overwrite``, and removes what
    interrupted runs left behind."""
    if FileSystems.exists(os.path.join(final, layout.SUMMARY_FILE)) and not overwrite:
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
