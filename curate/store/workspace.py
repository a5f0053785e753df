"""A workspace: where one project's state lives.

Layout of the folder (``--workspace``, else ``$CURATE_WORKSPACE``, else ``./curate-workspace``)::

    curate.db       the SQLite database (unless --db / $CURATE_DB names another, e.g. PostgreSQL)
    cache/          scores, embeddings, converted models
    quarantine/     rows that could not be read, with their source line and reason
    exports/        datasets written for training
    adapters/       trained LoRA adapters
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from curate.errors import InputError, StoreError
from curate.store.database import Store

DEFAULT_WORKSPACE = "curate-workspace"


@dataclass
class Workspace:
    """Paths and database of one workspace; folders are created on first use."""

    root: Path
    db_url: str = ""

    @classmethod
    def open(cls, root: Path | str | None = None, db_url: str | None = None, *,
             must_exist: bool = False) -> Workspace:
        """Open (creating if needed) the workspace at ``root`` with database ``db_url``.

        ``root`` defaults to ``$CURATE_WORKSPACE`` or ``./curate-workspace``; ``db_url`` to ``$CURATE_DB`` or a
        SQLite file inside the workspace. With ``must_exist`` (commands that read a pool), a workspace whose SQLite
        database does not exist yet is an :class:`~curate.errors.InputError` and nothing is created: a mistyped
        ``--workspace`` must not become an empty new workspace.
        """
        path = Path(root or os.environ.get("CURATE_WORKSPACE") or DEFAULT_WORKSPACE).expanduser()
        explicit_db = db_url or os.environ.get("CURATE_DB")
        if must_exist and not explicit_db and not (path / "curate.db").exists():
            raise InputError(f"no workspace at {path} (no curate.db there): create one with `curate ingest FILE -w "
                             f"{path}`, or pass the --workspace (or --db) you meant.")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the workspace folder {path}: {exc.strerror}. Choose another "
                             "--workspace.") from exc
        url = db_url or os.environ.get("CURATE_DB") or f"sqlite:///{(path / 'curate.db').resolve()}"
        return cls(root=path, db_url=url)

    @cached_property
    def store(self) -> Store:
        """The workspace database (opened, and its tables created, on first use)."""
        return Store(self.db_url)

    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def cache_dir(self) -> Path:
        """Scores, embeddings and converted models."""
        return self._dir("cache")

    @property
    def quarantine_dir(self) -> Path:
        """Rows that could not be read."""
        return self._dir("quarantine")

    @property
    def exports_dir(self) -> Path:
        """Datasets written for training."""
        return self._dir("exports")

    @property
    def reports_dir(self) -> Path:
        """Loop histories, learning-curve plots and recipe summaries."""
        return self._dir("reports")

    @property
    def adapters_dir(self) -> Path:
        """Trained LoRA adapters."""
        return self._dir("adapters")
