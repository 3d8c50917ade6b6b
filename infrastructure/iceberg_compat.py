"""A version-guarded fix for pyiceberg 0.12's per-commit cost: cache ``Transaction.table_metadata``.

In pyiceberg 0.12 every read of ``Transaction.table_metadata`` replays the staged updates and
deep-copies the whole table metadata, snapshot list and refs included; one ``append`` reads it
about 18 times. Measured on ``bronze.trades`` (125-row appends to the embedded catalog) that is
~1 ms per retained snapshot per commit, most of a commit once a table keeps tens of snapshots
(hourly tags for time travel are such snapshots). Upstream hoisted some of the reads
(apache/iceberg-python #2674, #3301, both in 0.12.0); a cache like the one here was proposed
(#3302) but not merged, and no release newer than 0.12.0 is on PyPI (checked 2026-12-01).

The cache keys on the identity of the two inputs, the table's metadata object and the tuple of
staged updates: the tuple is immutable and replaced on every ``_stage``, and a commit or refresh
replaces ``Table.metadata``, so any change misses the cache. Metadata models are frozen pydantic
models and pyiceberg only derives new ones with ``model_copy``, so handing the same result to
several readers is safe. The one visible difference: ``last_updated_ms`` of uncommitted metadata
is stable across reads instead of re-stamped on each (the committed value is set by the commit).

Applied by the catalog seam (``infrastructure.catalog.load_catalog``) and only to the pyiceberg
versions listed in ``PATCHED_VERSIONS``: another version keeps its own behaviour until someone
measures it (``bench/soak.py``) and adds it here.
"""

from __future__ import annotations

import logging

import pyiceberg
from pyiceberg.table import Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import update_table_metadata

log = logging.getLogger(__name__)
PATCHED_VERSIONS = ("0.12.0",)
_MARK = "_lakehouse_metadata_cache"


def _cached_table_metadata(self: Transaction) -> TableMetadata:
    base, updates = self._table.metadata, self._updates
    cached = getattr(self, _MARK, None)
    if cached is not None and cached[0] is base and cached[1] is updates:
        return cached[2]
    metadata = update_table_metadata(base, updates)
    setattr(self, _MARK, (base, updates, metadata))
    return metadata


def cache_transaction_metadata(version: str = pyiceberg.__version__) -> bool:
    """Install the cache if this pyiceberg version is one it was measured on; True if installed."""
    if version not in PATCHED_VERSIONS:
        log.info("pyiceberg %s: Transaction.table_metadata cache not applied (measured on %s)",
                 version, ", ".join(PATCHED_VERSIONS))  # fmt: skip
        return False
    if not is_installed():
        Transaction.table_metadata = property(_cached_table_metadata)  # type: ignore[method-assign]
    return True


def is_installed() -> bool:
    return getattr(Transaction.table_metadata, "fget", None) is _cached_table_metadata
