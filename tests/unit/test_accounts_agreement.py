"""Accounts (hashed passwords, roles), agreement figures against scikit-learn and krippendorff, the v1 migration,
and the people-facing commands."""

from __future__ import annotations

import json
import sqlite3

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select
from typer.testing import CliRunner

from curate.annotate import answers as A
from curate.annotate.agreement import agreement_report, kappa_and_alpha
from curate.cli.main import app
from curate.errors import AccessError, InputError
from curate.rounds.assignment import add_label_schema, assign_round
from curate.rounds.tasks import create_round
from curate.store.accounts import add_user, authenticate, require, verify_password
from curate.store.database import Store
from curate.store.schema import SCHEMA_VERSION, Meta, User
from tests.annotation_setup import PASSWORD, seed


def test_passwords_are_stored_as_scrypt_hashes(workspace):
    add_user(workspace.store, "ann", "annotator", PASSWORD)
    with workspace.store.read() as conn:
        stored = conn.scalar(select(User.password_hash).where(User.name == "ann"))
    assert stored.startswith("scrypt$16384$8$1$") and PASSWORD not in stored
    assert verify_password(PASSWORD, stored) and not verify_password(PASSWORD + "x", stored)
    assert authenticate(workspace.store, "ann", PASSWORD).role == "annotator"
    assert authenticate(workspace.store, "ann", "wrong-password") is None
    assert authenticate(workspace.store, "nobody", PASSWORD) is None
    with pytest.raises(InputError, match="too short"):
        add_user(workspace.store, "bob", "annotator", "short")
    with pytest.raises(InputError, match="role must be one of"):
        add_user(workspace.store, "bob", "owner", PASSWORD)
    with pytest.raises(InputError, match="already exists"):
        add_user(workspace.store, "ann", "admin", PASSWORD)
    with pytest.raises(AccessError, match="needs the reviewer role"):
        require(workspace.store, "ann", "reviewer")
    add_user(workspace.store, "ann", "reviewer", "another-password", replace=True)
    assert require(workspace.store, "ann", "reviewer").role == "reviewer"
    assert authenticate(workspace.store, "ann", PASSWORD) is None


def _kappa_by_hand(x: list[str], y: list[str]) -> float:
    cats = sorted(set(x) | set(y))
    po = np.mean([a == b for a, b in zip(x, y, strict=True)])
    pe = sum((x.count(c) / len(x)) * (y.count(c) / len(y)) for c in cats)
    return float((po - pe) / (1 - pe))


def test_agreement_equals_sklearn_and_krippendorff_on_stored_annotations(workspace, tmp_path):
    seed(workspace, tmp_path)
    for name in ("cy", "dee"):
        add_user(workspace.store, name, "annotator", PASSWORD)
    add_label_schema(workspace.store, "mood", ["pos", "neg", "neu"])
    records = sorted(workspace.store.iter_records(kind="text"), key=lambda r: r.line)
    pool = [r for r in records] * 3  # 9 tasks on the 3 texts
    report = create_round(workspace.store, pool, list(range(9)), scores=np.zeros(9), strategy_key="agree",
                          task_type="label")
    assign_round(workspace.store, ["ann", "cy", "dee"], round_number=report.number, overlap=1.0, copies=3,
                 schema="mood")
    answers = {"ann": "pos pos neg neu pos neg neg pos neu".split(),
               "cy": "pos neg neg neu pos neg pos pos neu".split(),
               "dee": "pos pos neg pos pos neu neg pos neu".split()}
    view_ids = []
    while (view := A.get_task(workspace.store, "cy")) is not None and view.round_number == report.number:
        view_ids.append(view.task_id)
        A.submit(workspace.store, "cy", view.task_id, {"label": answers["cy"][len(view_ids) - 1]})
    assert len(view_ids) == 9
    for name in ("ann", "dee"):
        for i, task_id in enumerate(view_ids):
            A.submit(workspace.store, name, task_id, {"label": answers[name][i]})
    # an undone answer does not count: dee retracts her last one and answers the same again
    A.undo_last(workspace.store, "dee")
    A.submit(workspace.store, "dee", view_ids[-1], {"label": answers["dee"][-1]})
    figures = agreement_report(workspace.store)["agreement"]["label"]
    pairs = {(p["a"], p["b"]): p for p in figures["pairs"]}
    for a, b in (("ann", "cy"), ("ann", "dee"), ("cy", "dee")):
        expected = cohen_kappa_score(answers[a], answers[b])
        assert pairs[(a, b)]["items"] == 9
        assert pairs[(a, b)]["kappa"] == pytest.approx(expected, abs=1e-6)
        assert pairs[(a, b)]["kappa"] == pytest.approx(_kappa_by_hand(answers[a], answers[b]), abs=1e-6)
    code = {"pos": 0, "neg": 1, "neu": 2}
    matrix = np.array([[code[v] for v in answers[n]] for n in ("ann", "cy", "dee")], dtype=float)
    assert figures["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=matrix,
                                                                 level_of_measurement="nominal"), abs=1e-6)
    assert figures["items"] == 9


def test_kappa_and_alpha_edge_cases():
    assert kappa_and_alpha({}) == {"pairs": [], "alpha": None, "items": 0, "annotators": []}
    same = kappa_and_alpha({1: {"a": "x", "b": "x"}, 2: {"a": "x", "b": "x"}})
    assert same["pairs"][0]["kappa"] is None and same["alpha"] == 1.0  # one category: kappa undefined
    perfect = kappa_and_alpha({1: {"a": "x", "b": "x"}, 2: {"a": "y", "b": "y"}})
    assert perfect["pairs"][0]["kappa"] == 1.0 and perfect["alpha"] == 1.0


def test_a_version_1_database_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE curate_meta (key VARCHAR(64) PRIMARY KEY, value TEXT);
            INSERT INTO curate_meta VALUES ('schema_version', '1');
            CREATE TABLE annotations (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id INTEGER, annotator VARCHAR(128),
                value TEXT, label_schema_id INTEGER, seconds_spent FLOAT, supersedes_id INTEGER, created_at TEXT);
        """)
    store = Store(f"sqlite:///{path}")
    with store.read() as conn:
        assert conn.scalar(select(Meta.value).where(Meta.key == "schema_version")) == str(SCHEMA_VERSION) == "2"
        cols = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(annotations)")}
    assert {"kind", "round_id", "strategy_key", "acquisition_score", "random_mix", "adjudicates"} <= cols
    store.dispose()


def test_people_commands(tmp_path):
    runner = CliRunner()
    ws = ["--workspace", str(tmp_path / "ws")]
    out = runner.invoke(app, ["users", "add", "ada", "--role", "admin", "--password-stdin", *ws],
                        input=PASSWORD + "\n")
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["users", "add", "eve", "--role", "boss", "--password-stdin", *ws], input="x" * 9)
    assert out.exit_code != 0 and "role must be one of" in str(out.exception)
    assert runner.invoke(app, ["users", "list", "--json", str(tmp_path / "u.json"), *ws]).exit_code == 0
    assert json.loads((tmp_path / "u.json").read_text()) == [{"name": "ada", "role": "admin", "active": True}]
    (tmp_path / "g.md").write_text("Be kind.")
    out = runner.invoke(app, ["schema", "add", "intent", "--classes", "a, b", "--guidelines", f"@{tmp_path}/g.md",
                              *ws])
    assert out.exit_code == 0 and "intent v1: a, b" in out.output
    out = runner.invoke(app, ["agreement", "--json", *ws])
    assert out.exit_code == 0 and json.loads(out.output)["agreement"] == {}
    out = runner.invoke(app, ["assign", "--annotators", "ada", *ws])
    assert out.exit_code != 0 and "no rounds yet" in str(out.exception)
