"""pii-scrub: find personal data and secrets in a workspace (or files) and redact, drop or flag them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from curate.runtime.recipes import RecipeResult, recipe
from curate.store.workspace import Workspace
from recipes._stages import ingest_files


@recipe("pii-scrub")
def pii_scrub(
    files: Annotated[list[Path] | None, "Files to ingest with the PII action applied before storing."] = None,
    workspace: Annotated[Path, "Workspace folder."] = Path("curate-workspace"),
    action: Annotated[str, "redact (typed placeholders), drop or flag."] = "redact",
    allow: Annotated[list[str] | None, "Strings never treated as PII (public names, your products)."] = None,
    map_: Annotated[list[str] | None, "Column renames TARGET=SOURCE."] = None,
) -> RecipeResult:
    """Scrub PII and secrets: new files are redacted before they are stored; stored records are re-checked.

    The allow-list applies to both steps: an allowed string is never redacted, at ingest or afterwards.
    """
    from curate.filters.pii_workspace import PiiOptions, run_pii

    ws = Workspace.open(workspace)
    result = RecipeResult("pii-scrub", str(ws.root))
    options = PiiOptions(allow_list=tuple(allow or ()))
    if files:
        ingest_files(ws, result, files, mapping=map_, pii=action, pii_options=options)
    with result.step(f"pii ({action})") as s:
        report = run_pii(ws, action=action, options=options)
        s.update(records=report.records, **{f"records_{k}": v for k, v in report.summary["records"].items()},
                 by_type=report.summary["by_type"])
    result.next_steps.append(f"check: curate audit verify -w {ws.root}")
    return result

