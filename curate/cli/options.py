"""Options shared by many commands, the PII options of ingest and filter pii, and the typer options generated from a
configuration dataclass."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from curate.errors import InputError
from curate.runtime.config import SAME, CliForm

if TYPE_CHECKING:
    from curate.filters.pii_workspace import PiiOptions

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (env CURATE_WORKSPACE; default ./curate-workspace)."),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL, e.g. postgresql://user@host/curate (env CURATE_DB; default SQLite "
                              "in the workspace)."),
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the figures to this JSON file ('-': "
                                                          "print them to stdout).")]
ColumnsOpt = Annotated[str | None, typer.Option(
    "--columns", help="Column names of a CSV/TSV file without a header line, comma-separated (e.g. label,text): its "
                      "first line is then a row.")]
EncodingOpt = Annotated[str, typer.Option(
    help="Text encoding of JSONL, JSON, CSV and TSV sources: utf-8, utf-8-sig, cp1252 (Windows), latin-1, utf-16, "
         "...")]
NullStreamsOpt = Annotated[int, typer.Option(
    help="Run random again from N other random streams and read each against random: how far the ratio goes by "
         "chance (19+ for p < 0.05). Strategies are also read against the mean of all random streams; the target "
         "then needs a ratio above chance in both readings, and the plot gets a panel of gains over chance's band.")]
EngineOpt = Annotated[str, typer.Option(help="Where the heavy pass runs: local (this process) or ray (ray.data "
                                             "actor pools; a local Ray cluster unless --address is given).")]
AddressOpt = Annotated[str | None, typer.Option(help="With --engine ray: an existing Ray cluster (auto on its head "
                                                     "node, HOST:6379, or ray://HOST:10001).")]

PII_TYPES_HELP = ("Entity types to detect, comma-separated or repeated: types (PERSON, EMAIL_ADDRESS, ...) or groups "
              "(default: personal data and secrets; contact: email, phone, card, IBAN, SSN, IP; secrets); -TYPE "
              "removes one, e.g. default,-LOCATION (place names are most of what ordinary text triggers).")
PII_MIN_SCORE_HELP = ("Minimum detection score, TYPE=SCORE per type (e.g. PERSON=0.85) or SCORE for all other types "
                  "(repeatable; default 0.4).")
PII_ALLOW_HELP = "A string never treated as PII (repeatable); @FILE reads one string per line from FILE."
PII_ALLOW_FILE_HELP = "A file of strings never treated as PII, one per line ('#' starts a comment; repeatable)."
PII_KEY_HELP = ("Key file that encrypts the originals of redacted text, so `curate filter pii --revise` can undo them "
            "(create it with `curate pii init-key PATH`, keep it outside the workspace; env CURATE_PII_KEY_FILE, "
            "or the key itself in CURATE_PII_KEY). Without a key a redaction cannot be undone.")

PiiTypesOpt = Annotated[list[str] | None, typer.Option("--pii-types", help=PII_TYPES_HELP)]
PiiMinScoreOpt = Annotated[list[str] | None, typer.Option("--pii-min-score", help=PII_MIN_SCORE_HELP)]
PiiAllowOpt = Annotated[list[str] | None, typer.Option("--pii-allow", help=PII_ALLOW_HELP)]
PiiAllowFileOpt = Annotated[list[Path] | None, typer.Option("--pii-allow-file", help=PII_ALLOW_FILE_HELP)]
KeyFileOpt = Annotated[Path | None, typer.Option("--key-file", help=PII_KEY_HELP)]


def config_parameters(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter with a typer option per field of the dataclass ``cls`` that has a command-line form.

    The option's help is the field's ``help`` metadata; its flag, type and default are the field's unless its
    :class:`~curate.runtime.config.CliForm` says otherwise.
    """
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        form: CliForm | None = f.metadata.get("cli")
        if form is None:
            continue
        annotation = form.type if form.type is not None else hints[f.name]
        default = form.default if form.default is not SAME else f.default
        option = typer.Option(*([form.flag] if form.flag else []), help=f.metadata["help"] + form.help_suffix)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[annotation, option]))
    return params


def config_values(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The generated options' ``values`` as keyword arguments of ``cls`` (each parsed by its ``CliForm.parse``)."""
    out = {}
    for f in dataclasses.fields(cls):
        form: CliForm | None = f.metadata.get("cli")
        if form is not None and f.name in values:
            out[f.name] = form.parse(values[f.name]) if form.parse else values[f.name]
    return out


def with_config_options(cls: type, *, before: str = "workspace") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command that takes ``**options``: typer sees the command's own parameters plus one option per
    field of ``cls`` (inserted before the parameter ``before``); the command receives the fields' values, parsed,
    in ``options``."""
    generated = config_parameters(cls)
    names = {p.name for p in generated}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        at = next((i for i, p in enumerate(own) if p.name == before), len(own))
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params = params[:at] + generated + params[at:]

        @functools.wraps(func)
        def command(**values: Any) -> Any:
            config = config_values(cls, {k: v for k, v in values.items() if k in names})
            return func(**{k: v for k, v in values.items() if k not in names}, **config)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must read the generated signature, not the wrapped one
        return command

    return decorate


def parse_min_scores(values: list[str] | None, *, option: str = "--pii-min-score") -> tuple[float | None,
                                                                                            dict[str, float]]:
    """``(score for all other types, {type: score})`` from ``TYPE=SCORE`` / ``SCORE`` values.

    >>> parse_min_scores(["PERSON=0.85", "0.5", "phone_number=0.7"])
    (0.5, {'PERSON': 0.85, 'PHONE_NUMBER': 0.7})
    """
    default: float | None = None
    per_type: dict[str, float] = {}
    for value in values or []:
        name, sep, score = value.rpartition("=")
        try:
            number = float(score)
        except ValueError:
            raise InputError(f"{option} takes TYPE=SCORE or SCORE with SCORE in [0, 1], e.g. PERSON=0.85; got "
                             f"{value!r}.") from None
        if sep:
            per_type[name.strip().upper()] = number
        else:
            default = number
    return default, per_type


def read_allow(values: list[str] | None, files: list[Path] | None, *, option: str = "--pii-allow") -> tuple[str, ...]:
    """The allow-list from ``--pii-allow`` values (``@FILE`` reads a file) and ``--pii-allow-file`` files."""
    strings: list[str] = []
    paths = list(files or [])
    for value in values or []:
        if value.startswith("@") and len(value) > 1:
            paths.append(Path(value[1:]))
        else:
            strings.append(value)
    for path in paths:
        try:
            lines = path.expanduser().read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"{option} {path}: cannot read the allow-list file ({exc.strerror}). Give a text file "
                             "with one allowed string per line.") from exc
        strings += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return tuple(dict.fromkeys(strings))


def pii_options(*, types: list[str] | None, min_scores: list[str] | None, allow: list[str] | None,
                  allow_files: list[Path] | None, key_file: Path | None, workspace_root: Path | None,
                  load_key: bool = True) -> PiiOptions:
    """:class:`PiiOptions` from the command line (the key from ``--key-file`` or the environment)."""
    from curate.filters.pii_vault import load_key as read_key
    from curate.filters.pii_workspace import PiiOptions, resolve_types

    threshold, per_type = parse_min_scores(min_scores)
    key = read_key(key_file, workspace_root=workspace_root) if load_key else None
    return PiiOptions(types=resolve_types(types) if types else None, min_scores=per_type, threshold=threshold,
                      allow_list=read_allow(allow, allow_files), key=key)


# --------------------------------------------------------------------------------------------- --limit / --sample


def _in_ingest_order(ws: Any, pool: list[Any]) -> list[Any]:
    """``pool`` sorted as it was ingested (source, then row): the order ``--limit`` promises."""
    from sqlalchemy import select

    from curate.store.schema import RecordRow

    with ws.store.read() as conn:
        order = {rid: (sid, row) for rid, sid, row in conn.execute(
            select(RecordRow.id, RecordRow.source_id, RecordRow.source_row).where(RecordRow.split == "pool"))}
    return sorted(pool, key=lambda r: order.get(r.id, (0, 0)))


def restrict_pool(pool: list[Any], *, limit: int | None, sample: int | None, seed: int,
                  ws: Any = None) -> list[Any]:
    """The candidates a command works on: all, the first ``limit`` (in the order they were ingested, given the
    workspace ``ws``), or ``sample`` drawn at random with ``seed`` (kept in pool order); says so on stderr when the
    pool was cut."""
    from curate.errors import InputError

    if limit is not None and sample is not None:
        raise InputError("--limit takes the first N records and --sample a random N: pass one of them.")
    n = limit if limit is not None else sample
    if n is None or n >= len(pool):
        return pool
    if limit is not None:
        chosen = (_in_ingest_order(ws, pool) if ws is not None else pool)[:limit]
    else:
        import numpy as np

        picked = np.sort(np.random.default_rng(seed).choice(len(pool), size=n, replace=False))
        chosen = [pool[int(i)] for i in picked]
    how = f"the first {n:,}" if limit is not None else f"a random sample of {n:,} (seed {seed})"
    from curate.cli.output import err_console

    err_console.print(f"working on {how} of {len(pool):,} candidate records", highlight=False)
    return chosen
