"""``curate pii init-key|reveal``: the key that keeps redacted originals encrypted, and reading them back.

The PII options of ``curate ingest`` and ``curate filter pii`` are in :mod:`curate.cli.options`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from curate.cli.options import DbOpt, JsonOpt, KeyFileOpt, WorkspaceOpt
from curate.cli.output import actor, console, write_json
from curate.store.workspace import Workspace

pii_app = typer.Typer(help="PII keys: create the key that keeps redacted originals encrypted; reveal a record.",
                      no_args_is_help=True)


@pii_app.command("init-key")
def init_key_cmd(
    path: Annotated[Path, typer.Argument(help="Where to write the key: outside any workspace, e.g. "
                                              "~/.config/curate/pii.key. Never overwritten.")],
) -> None:
    """Write a new random key (AES-256) to PATH with mode 0600; refuses to overwrite an existing file.

    Pass it as --key-file (or set CURATE_PII_KEY_FILE) to ingest and filter pii: redacted values are then kept
    encrypted in the workspace and can be restored with `curate filter pii --revise`. Keep a copy somewhere safe:
    without it the originals are lost for good; with it anyone holding the workspace can read them.
    """
    from curate.filters.pii_vault import init_key

    key = init_key(path)
    console.print(f"wrote PII key {key.key_id} to {escape(str(path))} (mode 0600). Keep a backup of it apart from "
                  "the workspace.", highlight=False)


@pii_app.command("reveal")
def reveal_cmd(
    record_id: Annotated[str, typer.Argument(help="The record id (or its first 8+ characters).")],
    key_file: KeyFileOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Print a record with its redacted values restored from the encrypted originals (needs the key; audited)."""
    from curate.errors import InputError
    from curate.filters.pii_vault import load_key
    from curate.filters.pii_workspace import reveal

    ws = Workspace.open(workspace, db)
    key = load_key(key_file, workspace_root=ws.root)
    if key is None:
        raise InputError("reveal decrypts the stored originals: pass the workspace's key with --key-file (or set "
                         "CURATE_PII_KEY_FILE).")
    record, restored = reveal(ws, record_id, key, actor=actor())
    console.print(f"[bold]record {record.id}[/] ({len(restored)} text(s) restored: {', '.join(restored) or 'none'})",
                  highlight=False)
    for name, value in record.fields.items():
        console.print(f"[bold]{escape(name)}[/]: {escape(str(value))}", highlight=False)
    write_json(json_out, {"record_id": record.id, "restored": restored, "fields": record.fields, "meta": record.meta})


def register(app: typer.Typer) -> None:
    """Add ``curate pii`` to ``app``."""
    app.add_typer(pii_app, name="pii")
