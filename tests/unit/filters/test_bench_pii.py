"""curate bench pii on a small Presidio-research file the test writes: figures are computed, errors are clear."""

from __future__ import annotations

import gzip
import json

from typer.testing import CliRunner

from curate.bench.pii import evaluate, load_presidio
from curate.cli.main import app


def _write(path, records):
    path.write_text(json.dumps(records))
    return path


def test_evaluate_counts_overlap_matches_per_type():
    data = [("Ann lives in Paris", [("PERSON", 0, 3), ("LOCATION", 13, 18)])]
    result = evaluate(data, lambda text: [("PERSON", 0, 3), ("PERSON", 13, 18)], ["PERSON", "LOCATION"])
    assert result["per_type"]["PERSON"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "gold": 1, "predicted": 2}
    assert result["per_type"]["LOCATION"]["recall"] == 0.0
    assert result["micro"]["precision"] == 0.5 and result["micro"]["recall"] == 0.5


def test_bench_pii_command_on_a_small_file(tmp_path):
    text = "Contact John Smith at john.smith@example.com or 4111 1111 1111 1111."
    records = [{"full_text": text, "spans": [
        {"entity_type": "PERSON", "start_position": 8, "end_position": 18},
        {"entity_type": "EMAIL_ADDRESS", "start_position": 22, "end_position": 44},
        {"entity_type": "CREDIT_CARD", "start_position": 48, "end_position": 67},
    ]}]
    path = _write(tmp_path / "gold.json", records)
    result = CliRunner().invoke(app, ["bench", "pii", "--data", str(path), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["records"] == 1
    assert figures["curate"]["per_type"]["EMAIL_ADDRESS"]["recall"] == 1.0
    assert figures["curate"]["per_type"]["CREDIT_CARD"]["recall"] == 1.0
    assert "baseline_presidio_stock" in figures


def test_bench_pii_speed_reports_characters_per_second_of_curate_and_stock(tmp_path):
    rows = [{"prompt": f"Write to Maria Lopez about order {i}.",
             "chosen": f"Dear Maria, order {i} ships from Leeds on Monday; mail maria@example.org. " * 8,
             "rejected": f"Order {i} is late. " * 20} for i in range(4)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = CliRunner().invoke(app, ["bench", "pii", "--speed-data", str(path), "--speed-limit", "12", "--json",
                                      str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    (name, figures), = json.loads((tmp_path / "s.json").read_text())["speed"].items()
    assert name == "pairs.jsonl" and figures["texts"] == 12
    assert figures["characters"] == sum(len(r[k]) for r in rows for k in ("prompt", "chosen", "rejected"))
    for way in ("curate_batched", "curate_per_text", "stock_per_text", "stock_batched"):
        assert figures[way]["chars_per_second"] > 0 and len(figures[way]["rounds_chars_per_second"]) == 2
    assert figures["curate_batched"]["findings"] == figures["curate_per_text"]["findings"] > 0  # same findings
    assert figures["curate_vs_stock"] == round(figures["curate_batched"]["chars_per_second"]
                                               / figures["stock_per_text"]["chars_per_second"], 3)
    assert "characters per second" in result.output


def test_bad_files_are_named(tmp_path):
    import pytest

    from curate.errors import InputError

    with pytest.raises(InputError, match=r"record 0 has no text \(full_text, text, source_text\)"):
        load_presidio(_write(tmp_path / "bad.json", [{"body": "x"}]))
    with pytest.raises(InputError, match="record 1 has a span without a label, start and end"):
        load_presidio(_write(tmp_path / "nolabel.json", [{"text": "x"}, {"text": "Ann", "spans": [{"start": 0}]}]))
    with pytest.raises(InputError, match="broken.jsonl, line 1: broken JSON"):
        (tmp_path / "broken.jsonl").write_text('{"text": "x"\n')
        load_presidio(tmp_path / "broken.jsonl")


def test_gold_spans_in_the_layouts_of_public_sets(tmp_path):
    """spaCy/Prodigy, doccano and ai4privacy records read as Presidio's: types mapped, a split name joined."""

    from curate.bench.pii_data import load_gold

    text = "Call John Smith in Leeds on +44 20 7946 0958 or mail js@example.org"
    rows = [
        {"text": text, "spans": [{"start": 5, "end": 9, "label": "FIRSTNAME"},
                                 {"start": 10, "end": 15, "label": "lastname"},
                                 {"start": 19, "end": 24, "label": "CITY"}]},
        {"text": text, "label": [[27, 44, "TELEPHONENUM"], [53, 67, "EMAIL"], [0, 4, "VERB"]]},
        {"source_text": text, "privacy_mask": [{"value": "John", "start": 5, "end": 9, "label": "GIVENNAME"},
                                               {"value": "Smith", "start": 10, "end": 15, "label": "SURNAME"}]},
    ]
    path = tmp_path / "gold.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    data = load_gold(path)
    assert [spans for _, spans in data] == [
        [("PERSON", 5, 15), ("LOCATION", 19, 24)],
        [("VERB", 0, 4), ("PHONE_NUMBER", 27, 44), ("EMAIL_ADDRESS", 53, 67)],  # unknown names kept, not scored
        [("PERSON", 5, 15)],
    ]
    assert [text[s:e] for _, s, e in data[0][1]] == ["John Smith", "Leeds"]


def test_gold_spans_held_as_text_in_csv_or_tsv_exports(tmp_path):
    """CSV/TSV exports hold the span list as text (JSON, or a Python list's repr as ai4privacy's): read as spans;
    a file with no spans column, or a cell that spells no list, is an error, never a benchmark without gold."""
    import pytest

    from curate.errors import InputError

    (tmp_path / "gold.csv").write_text('text,spans\nAnn Lee lives here,"[{""start"":0,""end"":7,""label"":""PER""}]"\n'
                                       "Nobody here,[]\n", encoding="utf-8")
    assert load_presidio(tmp_path / "gold.csv") == [("Ann Lee lives here", [("PERSON", 0, 7)]), ("Nobody here", [])]
    (tmp_path / "ai4.tsv").write_text("source_text\tprivacy_mask\nCall Ann at 555\t"
                                      "[{'value': 'Ann', 'start': 5, 'end': 8, 'label': 'FIRSTNAME'}]\n",
                                      encoding="utf-8")
    assert load_presidio(tmp_path / "ai4.tsv") == [("Call Ann at 555", [("PERSON", 5, 8)])]
    (tmp_path / "texts.csv").write_text("text,label\nhello,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="no record has gold spans"):
        load_presidio(tmp_path / "texts.csv")
    (tmp_path / "bad.csv").write_text("text,spans\nAnn,[oops\n", encoding="utf-8")
    with pytest.raises(InputError, match="record 0: the 'spans' column holds text that is not a list of spans"):
        load_presidio(tmp_path / "bad.csv")


def test_conll_posts_become_presidio_spans():
    from curate.bench.pii_data import conll_records

    lines = ["@ann\tO", "met\tO", "Ana\tB-person", "Holm\tI-person", "in\tO", "New\tB-location", "York\tI-location",
             "\t", "Apple\tB-corporation", "rocks\tO", "", "\ufeff"]
    data = conll_records(lines)
    assert len(data) == 2
    text, spans = data[0]
    assert text == "@ann met Ana Holm in New York"
    assert [(t, text[s:e]) for t, s, e in spans] == [("PERSON", "Ana Holm"), ("LOCATION", "New York")]
    assert data[1] == ("Apple rocks", [])


def test_conll_2003_columns_iob1_and_bioes_tags_are_read():
    from curate.bench.pii_data import conll_records

    conll2003 = ["-DOCSTART- -X- -X- O", "", "EU NNP B-NP I-ORG", "rejects VBZ B-VP O", "Peter NNP B-NP I-PER",
                 "Blackburn NNP I-NP I-PER", "in IN B-PP O", "Brussels NNP B-NP I-LOC", "-DOCSTART- -X- -X- O",
                 "Ann NNP B-NP I-PER", "Lee NNP I-NP B-PER", "left VBD B-VP O"]
    data = conll_records(conll2003)
    assert [[(t, text[s:e]) for t, s, e in spans] for text, spans in data] == [
        [("PERSON", "Peter Blackburn"), ("LOCATION", "Brussels")],
        [("PERSON", "Ann"), ("PERSON", "Lee")],  # IOB1: B- starts a second name right after the first
    ]
    bioes = ["Ann\tB-PER", "Marie\tI-PER", "Lee\tE-PER", "Bo\tS-PER", "from\tO", "Oslo\tU-GPE", "Kim\tL-PER"]
    text, spans = conll_records(bioes)[0]
    assert [(t, text[s:e]) for t, s, e in spans] == [
        ("PERSON", "Ann Marie Lee"), ("PERSON", "Bo"), ("LOCATION", "Oslo"), ("PERSON", "Kim")]


def test_a_conll_file_without_a_personal_data_tag_is_refused_with_its_tags(tmp_path):
    import pytest

    from curate.bench.pii_data import load_gold
    from curate.errors import InputError

    path = tmp_path / "orgs.conll"
    path.write_text("Apple\tB-ORG\nrocks\tO\n\nEU\tB-MISC\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no gold span of a personal-data type \(posts: 2; tag types found: MISC, "
                                         r"ORG\); expected IOB tags such as B-PER"):
        load_gold(path)


def test_false_positive_figures_and_verdicts(tmp_path):
    from curate.bench.pii_fp import finding_key, load_verdicts, measure

    texts = ["Paris is big", "nothing here at all", "Ann met Bob"]

    def predict(text):
        return [("LOCATION", 0, 5)] if text.startswith("Paris") else [("PERSON", 0, 3)] if text[0] == "A" else []

    key = finding_key("t", texts[0], ("LOCATION", 0, 5))
    (tmp_path / "v.json").write_text(json.dumps({key: {"verdict": "not_private", "note": "a capital city"}}))
    r = measure("t", texts, predict, ["PERSON", "LOCATION"], verdicts=load_verdicts(tmp_path / "v.json"))
    assert r["findings"] == 2 and r["words"] == 10 and r["per_1000_words"] == 200.0
    assert r["records_changed"] == round(2 / 3, 4)
    loc = r["sample"]["LOCATION"]
    assert loc[0] == {"verdicts": {"not_private": 1}} and loc[1]["value"] == "Paris"
    assert r["sample"]["PERSON"][1]["verdict"] == "unchecked"


def test_texts_from_jsonl_and_hh_prompts(tmp_path):
    from curate.bench.pii_data import load_texts

    path = tmp_path / "t.jsonl"
    path.write_text('{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: yo\\n\\nHuman: more\\n\\nAssistant: ok"}\n'
                    '{"chosen": ""}\n')
    assert load_texts(path, "chosen:prompt") == ["\n\nHuman: hi\n\nAssistant: yo\n\nHuman: more"]
    chats = tmp_path / "chats.jsonl"  # a list item by its number, as --map reads it
    chats.write_text(json.dumps({"messages": [{"role": "user", "content": "Call Ann"},
                                              {"role": "assistant", "content": "Done"}]}) + "\n"
                     + json.dumps({"messages": []}) + "\n")
    assert load_texts(chats, "messages.0.content") == ["Call Ann"]
    assert load_texts(chats, "messages.-1.content") == ["Done"]


def test_texts_from_a_csv_of_tickets_like_ingest_reads(tmp_path):
    """A support team's CSV (what `curate ingest` reads) measures false positives without conversion."""
    import csv

    import pytest

    from curate.bench.pii_data import load_texts
    from curate.errors import InputError

    with (tmp_path / "tickets.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerows([["id", "body"], ["1", "The export button does nothing."], ["2", ""],
                          ["3", "Invoice, line 2: charged twice."], ["4", "The export button does nothing."]])
    assert load_texts(tmp_path / "tickets.csv", "body") == ["The export button does nothing.",
                                                            "Invoice, line 2: charged twice."]
    assert len(load_texts(tmp_path / "tickets.csv", "body", unique=False)) == 3
    with pytest.raises(InputError, match="no string values at field 'text'"):
        load_texts(tmp_path / "tickets.csv", "text")


def test_wnut_conversion_matches_the_shared_json():

    from curate.bench.pii_data import load_gold
    from tests.conftest import shared_file

    conll, converted = shared_file("wnut17", "emerging.dev.conll"), shared_file("wnut17", "dev_presidio.json")
    rows = json.loads(converted.read_text(encoding="utf-8"))
    want = [(r["full_text"], [(s["entity_type"], s["start_position"], s["end_position"]) for s in r["spans"]])
            for r in rows]
    assert load_gold(conll) == want


def test_gold_with_no_span_of_a_detected_type_is_refused_before_scoring(tmp_path):
    import pytest

    from curate.bench.pii import run
    from curate.errors import InputError

    path = tmp_path / "orgs.jsonl"
    path.write_text(json.dumps({"text": "Apple hired Zed", "spans": [{"start": 0, "end": 5, "label": "ORG"}]}) + "\n")
    with pytest.raises(InputError, match=r"none of its gold spans is of a type curate detects \(gold types: ORG;"):
        run(path, fmt="auto")


_CONLL_2003 = ("-DOCSTART- -X- -X- O\n\nI PRP B-NP O\nmet VBD B-VP O\nMaria NNP B-NP B-PER\nKhan NNP I-NP I-PER\n"
               "in IN B-PP O\nNairobi NNP B-NP B-LOC\n")


def test_format_conll_reads_any_suffix_and_auto_tells_conll_from_the_content(tmp_path):
    """--format conll is honoured whatever the suffix (.bio, WNUT-17's emerging.test.annotated), in a single run
    and in a suite; auto reads CoNLL content too; a file neither way names the --format values and suffixes."""
    import pytest

    from curate.bench.pii_data import load_gold
    from curate.errors import InputError

    want = [("I met Maria Khan in Nairobi", [("PERSON", 6, 16), ("LOCATION", 20, 27)])]
    for name in ("conll2003.bio", "emerging.test.annotated"):
        path = tmp_path / name
        path.write_text(_CONLL_2003, encoding="utf-8")
        assert load_gold(path, fmt="conll") == want
        assert load_gold(path) == want  # auto: the content is CoNLL
    (tmp_path / "notes.annotated").write_text("just some words\nand more\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"CoNLL \(\.conll.*Pass --format conll .*or --format presidio"):
        load_gold(tmp_path / "notes.annotated")
    with pytest.raises(InputError, match="--format must be presidio"):
        load_gold(tmp_path / "notes.annotated", fmt="csv")


def test_format_is_passed_to_every_set_of_a_suite(tmp_path, monkeypatch):
    from curate.bench import pii

    seen = []
    monkeypatch.setattr(pii, "load_gold", lambda path, limit=None, **kw: seen.append(kw) or [("Ann", [])])
    monkeypatch.setattr(pii, "_scored_types", lambda data, path: ["PERSON"])
    monkeypatch.setattr(pii, "_analyzers", lambda: (lambda t: [], lambda t: [], ["PERSON"], "m", lambda t: []))
    pii.run_suite([("a", tmp_path / "a.bio"), ("b", tmp_path / "b.bio")], [], fmt="conll")
    assert [kw.get("fmt") for kw in seen] == ["conll", "conll"]


def test_presidio_layout_gold_names_are_mapped_like_every_layout(tmp_path):
    """PER / LOC in Presidio-research JSON become PERSON / LOCATION, as in the spaCy and CoNLL layouts."""
    text = "Ann Lee lives in Leeds near Bo"
    rows = [{"full_text": text, "spans": [{"entity_type": "PER", "start_position": 0, "end_position": 7},
                                          {"entity_type": "LOC", "start_position": 17, "end_position": 22},
                                          {"entity_type": "PERSON", "start_position": 28, "end_position": 30},
                                          {"entity_type": "TITLE", "start_position": 8, "end_position": 13}]}]
    assert load_presidio(_write(tmp_path / "gold.json", rows)) == [
        (text, [("PERSON", 0, 7), ("LOCATION", 17, 22), ("PERSON", 28, 30), ("TITLE", 8, 13)])]


def test_io_tags_without_prefix_are_read():
    """IO tagging (a bare PER / LOC): consecutive tokens of one type are one span."""
    from curate.bench.pii_data import conll_records

    lines = ["I\tO", "met\tO", "Maria\tPER", "Khan\tPER", "in\tO", "New\tLOC", "York\tLOC", "at\tO", "Acme\tORG",
             "with\tO", "Bo\tperson"]
    text, spans = conll_records(lines)[0]
    assert [(t, text[s:e]) for t, s, e in spans] == [("PERSON", "Maria Khan"), ("LOCATION", "New York"),
                                                     ("PERSON", "Bo")]


def test_hugging_face_token_rows_with_string_tags_or_tag_names(tmp_path):
    """Hub token layout: ``tokens`` + ``ner_tags``; string tags are read, integer tags need --tag-names."""
    import pytest

    from curate.bench.pii_data import load_gold
    from curate.errors import InputError

    want = [("I met Maria Khan in Nairobi", [("PERSON", 6, 16), ("LOCATION", 20, 27)])]
    tokens = ["I", "met", "Maria", "Khan", "in", "Nairobi"]
    strings = tmp_path / "s.jsonl"
    strings.write_text(json.dumps({"tokens": tokens, "ner_tags": ["O", "O", "B-PER", "I-PER", "O", "B-LOC"]}) + "\n")
    assert load_gold(strings) == want
    ints = tmp_path / "i.jsonl"
    ints.write_text(json.dumps({"id": "0", "tokens": tokens, "ner_tags": [0, 0, 1, 2, 0, 5]}) + "\n")
    with pytest.raises(InputError, match=r"record 0: ner_tags are numbers.*--tag-names O,B-PER,I-PER"):
        load_gold(ints)
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    assert load_gold(ints, tag_names=names) == want
    with pytest.raises(InputError, match="tag 5 of record 0 has no name"):
        load_gold(ints, tag_names=names[:5])


def test_limit_below_one_is_refused(tmp_path):
    path = _write(tmp_path / "gold.json", [{"full_text": "Ann", "spans": []}])
    result = CliRunner().invoke(app, ["bench", "pii", "--data", str(path), "--limit", "0"])
    assert result.exit_code != 0 and "greater than or equal to 1" in result.output


def test_table_marks_the_types_of_the_micro_average():
    from curate.bench.pii import table_rows

    cell = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "gold": 2}
    results = {"micro_types": ["PERSON"], "curate": {"per_type": {"PERSON": cell}},
               "baseline_presidio_stock": {"per_type": {"PERSON": cell, "URL": {**cell, "gold": 0}}}}
    assert [(r[0], r[-1]) for r in table_rows(results)] == [("PERSON", True), ("URL", False)]


def test_the_suite_reports_what_redaction_replaces_beside_what_detection_finds(tmp_path):
    """Redaction replaces a found name's parts and repeats too: its figures sit beside detection's."""
    from curate.bench import pii

    text = "Siobhan O'Connor wrote in. Thanks, Siobhan will call back."
    gold = [{"full_text": text, "spans": [{"entity_type": "PERSON", "start_position": 0, "end_position": 16},
                                          {"entity_type": "PERSON", "start_position": 35, "end_position": 42}]}]
    fp = tmp_path / "fp.jsonl"
    fp.write_text(json.dumps({"output": text}) + "\n")
    report = pii.run_suite([("g", _write(tmp_path / "gold.json", gold))], [("fp", fp, "output")])
    row = report["summary"]["g"]
    assert row["curate_redaction"]["person_recall"] == 1.0  # "Siobhan" alone is replaced as part of the name
    assert row["curate_redaction"]["person_recall"] >= row["curate"]["person_recall"]
    red = report["summary"]["fp"]["curate_redaction"]["per_1000_words"]
    assert red >= report["summary"]["fp"]["curate"]["per_1000_words"] > 0
