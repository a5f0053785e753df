"""The dedup benchmark (curate.bench.dedup, `curate bench dedup`) on small synthetic files: fast, no model."""

from __future__ import annotations

import json
import string
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.bench.dedup import bench_exact, bench_minhash, read_objects, run
from curate.bench.dedup_variants import KINDS, make_split, score_clusters, variant
from curate.cli.main import app
from curate.errors import InputError, SourceNotFoundError
from curate.runtime.embeddings import Embedder

runner = CliRunner()
TEXT = "Write a short poem, in three lines, about the sea at night; keep it calm and simple."


def _paragraphs(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct paragraphs of 25-35 random lower-case words (unrelated to each other)."""
    rng = np.random.default_rng(seed)
    letters = list(string.ascii_lowercase)
    vocab = ["".join(rng.choice(letters, size=int(rng.integers(3, 9)))) for _ in range(600)]
    return [" ".join(rng.choice(vocab, size=int(rng.integers(25, 36)))).capitalize() + "." for _ in range(n)]


def _alpaca(path, n: int = 60, jsonl: bool = False):
    rows = [{"instruction": p[:40], "input": "", "output": p[40:]} for p in _paragraphs(n)]
    if jsonl:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows))
    return path


def _sms(path):
    texts = ["Hello there", "Buy now", "Hello there", "hello there!", "Buy now", "Unique one", "Buy now"]
    path.write_text("".join(f"{'spam' if 'Buy' in t else 'ham'}\t{t}\n" for t in texts))
    return path


def _levenshtein(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


# --- near-copy generators and scoring ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_each_variant_changes_the_text_but_stays_near(seed):
    rng = np.random.default_rng(seed)
    strip = str.maketrans("", "", string.punctuation)
    out = {kind: variant(TEXT, kind, rng) for kind in KINDS}
    assert all(v != TEXT for v in out.values()), out
    assert out["case"].lower() == TEXT.lower()
    assert out["whitespace"].split() == TEXT.split()
    assert out["punctuation"].translate(strip) == TEXT.translate(strip)
    assert 1 <= _levenshtein(out["typo"], TEXT) <= 6 and abs(len(out["typo"]) - len(TEXT)) <= 3
    assert _levenshtein(out["small_edit"].split(" "), TEXT.split(" ")) == 1


def test_score_clusters_on_a_hand_made_example():
    ids = np.array([0, 0, 0, 3, 4, 4])
    group = np.array([0, 0, 1, 1, 2, 2])
    pairs = [(1, 0, "case"), (3, 2, "typo"), (5, 4, "whitespace")]
    s = score_clusters(ids, group, pairs)
    # recall: 2 of 3 variant pairs co-clustered; precision: cluster {0,1,2} has 3 pairs (1 right), {4,5} 1 (right)
    assert (s["recall"], s["precision"], s["clustered_pairs"], s["wrong_pairs"]) == (0.6667, 0.5, 4, 2)
    assert s["recall_by_kind"] == {"case": 1.0, "whitespace": 1.0, "typo": 0.0}
    assert score_clusters(np.arange(3), np.array([0, 1, 2]), [])["precision"] == 1.0


def test_make_split_groups_originals_with_their_variants():
    rows = _paragraphs(10)
    rng = np.random.default_rng(0)
    texts, group, pairs = make_split(rows, np.array([0, 1]), np.array([5, 6, 7]), rng)
    assert len(texts) == 2 * (1 + len(KINDS)) + 3 and len(pairs) == 2 * len(KINDS)
    assert all(group[a] == group[b] >= 0 for a, b, _ in pairs)
    assert {texts[b] for _, b, _ in pairs} == {rows[0], rows[1]}
    assert sorted(t for t, g in zip(texts, group, strict=True) if g < 0) == sorted(rows[5:8])


# --- the parts ------------------------------------------------------------------------------------------------


def test_exact_part_finds_the_planted_duplicates(tmp_path):
    r = bench_exact(_sms(tmp_path / "sms.tsv"))
    # 7 rows, 4 distinct raw texts -> 3 exact duplicates; "hello there!" also merges after normalisation
    assert (r["rows"], r["expected_exact_duplicates"], r["found_exact_duplicates"], r["all_found"]) == (7, 3, 3, True)
    assert (r["removed_by_normalised_exact"], r["extra_merged_by_normalisation"]) == (4, 1)
    plain = tmp_path / "plain.txt"
    plain.write_text("one line\n\nanother line\none line\n")
    assert bench_exact(plain)["expected_exact_duplicates"] == bench_exact(plain)["found_exact_duplicates"] == 1
    middle = tmp_path / "three.tsv"
    middle.write_text("1\tsame text\tx\n2\tsame text\ty\n3\tother\tx\n")
    assert bench_exact(middle, column=1)["found_exact_duplicates"] == 1
    assert bench_exact(middle, column=-1)["expected_exact_duplicates"] == 1  # the labels x, y, x
    with pytest.raises(InputError, match="line 1: has 3 tab-separated column"):
        bench_exact(middle, column=5)


def test_minhash_part_recalls_synthetic_near_copies(tmp_path):
    path = _alpaca(tmp_path / "a.json")
    lines: list[str] = []
    r = bench_minhash(path, ["instruction", "input", "output"], seed=3, n_orig=12, n_unrelated=12, say=lines.append)
    e = r["eval"]
    assert 0 <= e["precision"] <= 1 and 0 <= e["recall"] <= 1
    assert e["recall"] >= 0.9 and e["precision"] >= 0.9
    assert r["eval_split"] == {"originals": 12, "variants": 12 * len(KINDS), "unrelated": 12, "texts": 84}
    assert len(r["grid"]) == len(lines) == 60 and r["chosen"]["shingle"] in ("char", "word")
    with pytest.raises(InputError, match="need 450 distinct rows"):
        bench_minhash(path, ["instruction", "output"], n_orig=100, n_unrelated=200)
    with pytest.raises(InputError, match="no record has any of the fields prompt"):
        bench_minhash(path, ["prompt"], n_orig=4, n_unrelated=4)


def test_records_are_read_from_a_json_array_jsonl_or_csv(tmp_path):
    import csv

    array, lines = _alpaca(tmp_path / "a.json"), _alpaca(tmp_path / "a.jsonl", jsonl=True)
    assert read_objects(array, "minhash") == read_objects(lines, "minhash")
    records = read_objects(lines, "minhash")
    assert len(records) == 60
    with (tmp_path / "a.csv").open("w", newline="", encoding="utf-8") as fh:  # what curate ingest reads, read here
        writer = csv.DictWriter(fh, fieldnames=sorted(records[0]))
        writer.writeheader()
        writer.writerows(records)
    from_csv = read_objects(tmp_path / "a.csv", "minhash")
    assert [{k: r[k] or None for k in r} for r in from_csv] == [{k: r[k] or None for k in sorted(r)} for r in records]


def test_malformed_record_files_are_clear_errors(tmp_path):
    (tmp_path / "one.json").write_text('{"instruction": "x"}')  # one object: one record
    assert read_objects(tmp_path / "one.json", "minhash") == [{"instruction": "x"}]
    (tmp_path / "bad.jsonl").write_text('{"instruction": "x"}\nnot json\n')
    with pytest.raises(InputError, match="bad.jsonl, line 2: broken JSON"):
        read_objects(tmp_path / "bad.jsonl", "minhash")
    (tmp_path / "list.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InputError, match="line 2: expected a record with named fields"):
        read_objects(tmp_path / "list.jsonl", "minhash")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no records"):
        read_objects(tmp_path / "empty.jsonl", "minhash")


def _bag_of_words(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, sum(map(ord, w)) % 64] += 1
    return out


def test_semantic_part_with_a_stand_in_embedder(tmp_path):
    paras = _paragraphs(20)
    rows = [{"s1": p, "s2": p.replace(".", " indeed."), "gold": 5.0} for p in paras[:10]]
    rows += [{"s1": a, "s2": b, "gold": 0.4} for a, b in zip(paras[10:15], paras[15:20], strict=True)]
    rows.append({"s1": "in between", "s2": "not used", "gold": 3.0})
    path = tmp_path / "sts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run(semantic=path, semantic_fields=["s1", "s2", "gold"],
              embedder=Embedder("bow", encode=_bag_of_words))
    s = out["semantic"]
    assert (s["positives (4.5-5)"], s["negatives (0-1)"], s["roc_auc"]) == (10, 5, 1.0)
    assert s["recommended_threshold"]["precision"] >= 0.99
    assert out["exact"] == out["minhash"] == {"skipped": "no file given"}
    assert set(out["docs_per_s"]) == {"semantic_embed_minilm", "semantic_search_given_embeddings"}
    with pytest.raises(InputError, match="needs the fields sentence1, sentence2"):
        run(semantic=path, embedder=Embedder("bow", encode=_bag_of_words))
    with pytest.raises(InputError, match="found 2 and 0"):
        run(semantic=path, semantic_fields=["s1", "s2", "gold"], semantic_limit=2,
            embedder=Embedder("bow", encode=_bag_of_words))


def test_run_skips_or_refuses_missing_files(tmp_path):
    out = run(exact=tmp_path / "absent.tsv", minhash=None)
    assert out["exact"] == {"skipped": f"{tmp_path / 'absent.tsv'} not found"} and out["docs_per_s"] == {}
    with pytest.raises(SourceNotFoundError, match="no such file"):
        run(exact=tmp_path / "absent.tsv", missing="error")
    with pytest.raises(InputError, match="at least one data file"):
        run()


# --- the CLI --------------------------------------------------------------------------------------------------


def test_bench_dedup_command_writes_the_figures(tmp_path):
    out = tmp_path / "dedup.json"
    result = runner.invoke(app, ["bench", "dedup", "--exact", str(_sms(tmp_path / "sms.tsv")), "--minhash",
                                 str(_alpaca(tmp_path / "a.json")), "--minhash-fields", "instruction,output",
                                 "--n-originals", "4", "--n-unrelated", "4", "--seed", "5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert set(figures) == {"machine", "exact", "minhash", "semantic", "docs_per_s"}
    assert figures["exact"]["all_found"] is True and figures["exact"]["found_exact_duplicates"] == 3
    assert figures["minhash"]["fields"] == ["instruction", "output"] and len(figures["minhash"]["grid"]) == 60
    assert figures["semantic"] == {"skipped": "no file given"} and set(figures["docs_per_s"]) == {"exact", "minhash"}
    assert "found 3 / 3 exact" in result.output and "recall" in result.output and "grid" not in result.output


def test_bench_dedup_command_errors(tmp_path):
    result = runner.invoke(app, ["bench", "dedup"])
    assert isinstance(result.exception, InputError) and "at least one data file" in str(result.exception)
    result = runner.invoke(app, ["bench", "dedup", "--minhash", str(tmp_path / "absent.json")])
    assert isinstance(result.exception, SourceNotFoundError) and "no such file (--minhash)" in str(result.exception)
    (tmp_path / "bad.json").write_text("[{")
    result = runner.invoke(app, ["bench", "dedup", "--minhash", str(tmp_path / "bad.json")])
    assert isinstance(result.exception, InputError) and "line 1: broken JSON" in str(result.exception)
    result = runner.invoke(app, ["bench", "dedup", "--semantic", str(tmp_path / "bad.json"),
                                 "--semantic-fields", "a,b"])
    assert isinstance(result.exception, InputError) and "--semantic-fields needs 3" in str(result.exception)


def test_bench_dedup_errors_are_one_message_without_traceback(tmp_path):
    (tmp_path / "bad.json").write_text("[{")
    for args, message in [([], "give at least one data file"),
                          (["--exact", str(tmp_path / "absent.tsv")], "no such file (--exact)"),
                          (["--minhash", str(tmp_path / "bad.json")], "bad.json, element 1 on line 1: broken JSON")]:
        code = "from curate.cli.main import main; main()"
        proc = subprocess.run([sys.executable, "-c", code, "bench", "dedup", *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert message in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr + proc.stdout


def test_sentence_pairs_are_read_from_tsv_or_jsonl(tmp_path):
    from curate.bench.dedup import read_pairs

    pairs = [("A man plays a guitar.", "A man is playing guitar.", 4.8), ("A cat sleeps.", "Stocks fell.", 0.2)]
    (tmp_path / "sts.tsv").write_text("score\tsentence1\tsentence2\n" + "".join(
        f"{s}\t{a}\t{b}\n" for a, b, s in pairs), encoding="utf-8")
    (tmp_path / "sts.jsonl").write_text("".join(
        json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n" for a, b, s in pairs))
    assert read_pairs(tmp_path / "sts.tsv") == read_pairs(tmp_path / "sts.jsonl") == pairs
    (tmp_path / "bad.tsv").write_text("score\tsentence1\tsentence2\nhigh\ta\tb\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.tsv, line 2: needs the fields sentence1, sentence2"):
        read_pairs(tmp_path / "bad.tsv")


def test_exact_reads_records_by_field_and_refuses_to_read_them_as_lines(tmp_path):
    import csv

    texts = ["Hello there", "Buy now", "Hello there", "hello there!", "Buy now", "Unique, with a comma", "Buy now"]
    path = tmp_path / "sms.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "text"])
        writer.writerows([["spam" if "Buy" in t else "ham", t] for t in texts])
    with pytest.raises(InputError, match="holds records, not one text per line: .* --exact-field text"):
        bench_exact(path)  # lines of a CSV (header, labels, quotes) are not the texts
    r = bench_exact(path, field="text")
    assert (r["rows"], r["expected_exact_duplicates"], r["found_exact_duplicates"], r["column"]) == (7, 3, 3, "text")
    assert r == {**bench_exact(_sms(tmp_path / "sms.tsv")), "file": str(path), "column": "text"} | {
        k: r[k] for k in ("seconds", "docs_per_s")}  # the same figures as the tab-separated file's
    with pytest.raises(InputError, match=r"no record has any of the fields body \(--exact-field\); the records have "
                                         r"label, text"):
        bench_exact(path, field="body")
