"""The model registry: trained adapters as rows of ``model_versions``, found again by name or by lineage.

A version is a base model (``smollm2``, a local folder or a Hub id, exactly what ``--model`` takes) plus a LoRA
adapter folder, with the adapter's and the training data's SHA-256, the version it was warm-started from
(``parent_id``) and its metrics as JSON. The training method (``sft``, ``dpo`` or ``reward``) is kept in the
metrics under ``"method"``. Rows that :func:`curate.rounds.tasks.model_version_id` registers for plain base models (no
adapter, no method) are versions too: :func:`resolve_model_version` finds them, :func:`latest_version` never
picks them as a warm start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from curate.errors import InputError
from curate.store import audit
from curate.store.database import Store
from curate.store.schema import ModelVersion

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version; ``metrics`` is the decoded JSON (empty when none was stored)."""

    id: int
    name: str
    base: str
    adapter_path: str | None
    adapter_hash: str | None
    data_hash: str | None
    parent_id: int | None
    created_at: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str | None:
        """``sft``, ``dpo`` or ``reward`` for trained adapters; ``None`` for a plain base model."""
        value = self.metrics.get("method")
        return str(value) if value is not None else None


def _info(row: Any) -> VersionInfo:
    try:
        metrics = orjson.loads(row.metrics) if row.metrics else {}
    except orjson.JSONDecodeError:
        metrics = {}
    return VersionInfo(int(row.id), row.name, row.base, row.adapter_path, row.adapter_hash, row.data_hash,
                       row.parent_id, row.created_at, metrics if isinstance(metrics, dict) else {})


def list_versions(store: Store) -> list[VersionInfo]:
    """Every registered version, oldest first."""
    with store.read() as conn:
        return [_info(r) for r in conn.execute(select(ModelVersion).order_by(ModelVersion.id)).all()]


def get_version(store: Store, name: str) -> VersionInfo:
    """The version called ``name``; :class:`InputError` listing the known names when there is none."""
    with store.read() as conn:
        row = conn.execute(select(ModelVersion).where(ModelVersion.name == name)).first()
        if row is not None:
            return _info(row)
        known = list(conn.scalars(select(ModelVersion.name).order_by(ModelVersion.id)))
    shown = ", ".join(known[-20:]) if known else "none yet"
    more = f" (the last 20 of {len(known)})" if len(known) > 20 else ""
    raise InputError(f"no model version called {name!r} in this workspace. Known versions{more}: {shown}. Train one "
                     "with `curate train sft|dpo|reward`, or check --workspace/--db.")


def get_version_by_id(store: Store, version_id: int) -> VersionInfo | None:
    """The version with primary key ``version_id``, or ``None``."""
    with store.read() as conn:
        row = conn.execute(select(ModelVersion).where(ModelVersion.id == version_id)).first()
    return _info(row) if row is not None else None


def resolve_model_version(store: Store, name: str) -> tuple[str, str | None]:
    """``(base, adapter_path)`` of the version ``name``: what a scorer's ``model=`` and ``adapter=`` take.

    Raises :class:`InputError` (listing the known versions) for an unknown name, and when the adapter folder
    the version points to is gone.
    """
    info = get_version(store, name)
    if info.adapter_path and not Path(info.adapter_path).exists():
        raise InputError(f"model version {name!r} points to the adapter folder {info.adapter_path}, which no longer "
                         "exists. Restore the folder, or use another version.")
    return info.base, info.adapter_path


def latest_version(store: Store, base: str, method: str) -> VersionInfo | None:
    """The newest version with an adapter trained by ``method`` on ``base`` (the default warm start), or ``None``."""
    with store.read() as conn:
        rows = conn.execute(select(ModelVersion).where(ModelVersion.base == base,
                                                       ModelVersion.adapter_path.is_not(None))
                            .order_by(ModelVersion.id.desc())).all()
    for row in rows:
        info = _info(row)
        if info.method == method:
            return info
    return None


def base_slug(base: str) -> str:
    """A short, file-name-safe name for a base model: ``smollm2``, a folder's name, a Hub id's last part.

    >>> base_slug("/models/SmolLM2-135M/")
    'SmolLM2-135M'
    """
    tail = Path(base.rstrip("/\\")).name or base
    return _SLUG.sub("-", tail).strip("-.")[:48] or "model"


def next_version_name(store: Store, method: str, base: str) -> str:
    """A free name ``{method}-{base_slug}-{n}`` with ``n`` one more than the versions already so named."""
    prefix = f"{method}-{base_slug(base)}-"
    with store.read() as conn:
        taken = set(conn.scalars(select(ModelVersion.name).where(ModelVersion.name.startswith(prefix,
                                                                                              autoescape=True))))
    n = len(taken) + 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def check_name_free(store: Store, name: str) -> None:
    """Raise :class:`InputError` when a version called ``name`` exists already."""
    with store.read() as conn:
        if conn.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
            raise InputError(f"a model version called {name!r} exists already; choose another --name, or leave it "
                             "out for an automatic one.")


def _insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(insert(ModelVersion).values(**values).returning(ModelVersion.id)).scalar_one())


def register_model_version(
    store: Store,
    *,
    name: str,
    base: str,
    adapter_path: str | None,
    adapter_hash: str | None,
    data_hash: str | None,
    parent_id: int | None,
    metrics: dict[str, Any],
    actor: str | None = None,
) -> int:
    """Insert a version and append its ``train`` audit event in one transaction; returns the new id.

    The audit payload holds ids, hashes and counts only (never paths or options): ``model_version_id``,
    ``name``, ``method``, ``parent_id``, ``adapter_hash``, ``data_hash``, ``train_rows``, ``eval_rows``,
    ``steps``.
    """
    if len(name) > 128:
        raise InputError(f"a model version name has at most 128 characters; {name[:40]!r}... has {len(name)}.")
    with store.write() as conn:
        if conn.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
            raise InputError(f"a model version called {name!r} exists already; choose another --name.")
        version_id = _insert(conn, {
            "name": name, "base": base, "adapter_path": adapter_path, "adapter_hash": adapter_hash,
            "data_hash": data_hash, "parent_id": parent_id,
            "metrics": orjson.dumps(metrics, option=orjson.OPT_SORT_KEYS).decode(),
        })
        payload: dict[str, Any] = {"model_version_id": version_id, "name": name, "method": metrics.get("method"),
                   "parent_id": parent_id, "adapter_hash": adapter_hash, "data_hash": data_hash,
                   **{k: metrics[k] for k in ("train_rows", "eval_rows", "steps") if k in metrics}}
        audit.append(conn, "train", payload, actor=actor, model_version=name)
    return version_id


__all__ = [
    "VersionInfo", "base_slug", "check_name_free", "get_version", "get_version_by_id", "latest_version",
    "list_versions", "next_version_name", "register_model_version", "resolve_model_version",
]
