"""Readers: every format streams rows with line numbers; unreadable rows come back as errors, not exceptions."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from curate.errors import InputError, SourceNotFoundError, UnsupportedFormatError
from curate.ingest.readers import detect_format, read_csv, read_json, read_jsonl, read_rows


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_jsonl_rows_carry_their_physical_line_and_skip_blank_lines(tmp_path):
    path = _write(tmp_path / "a.jsonl", b'{"text": "a"}\n\n{"text": "b"}\n')
    rows = list(read_jsonl(path))
    assert [(r.line, r.data) for r in rows] == [(1, {"text": "a"}), (3, {"text": "b"})]


def test_jsonl_broken_json_and_invalid_utf8_are_row_errors(tmp_path):
    path = _write(tmp_path / "a.jsonl", b'{"text": "ok"}\n{"text": "broken\n{"text": "caf\xe9"}\n{"text": "ok2"}\n')
    rows = list(read_jsonl(path))
    assert [r.line for r in rows] == [1, 2, 3, 4]
    assert rows[1].error.startswith("broken JSON")
    assert rows[2].error.startswith("invalid UTF-8")
    assert rows[3].data == {"text": "ok2"}


def test_overlong_line_is_skipped_without_losing_the_next_row(tmp_path):
    big = b'{"text": "' + b"x" * 3_000_000 + b'"}\n'
    path = _write(tmp_path / "a.jsonl", b'{"text": "first"}\n' + big + b'{"text": "after"}\n')
    rows = list(read_jsonl(path, max_row_bytes=1_000_000))
    assert rows[1].line == 2 and "longer than the limit" in rows[1].error
    assert len(rows[1].raw) < 5000  # an excerpt, not the whole line
    assert rows[2].data == {"text": "after"} and rows[2].line == 3


def test_gzip_is_read_transparently(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b'{"text": "zipped"}\n')
    assert detect_format(path) == "jsonl"
    assert [r.data for r in read_rows(path)] == [{"text": "zipped"}]


def test_json_array_is_streamed_with_lines_and_a_broken_element_is_skipped(tmp_path):
    text = '[\n  {"text": "a"},\n  {"text": "b" "oops"},\n  {"text": "c"}\n]\n'
    rows = list(read_json(_write(tmp_path / "a.json", text.encode())))
    assert [r.data for r in rows if r.error is None] == [{"text": "a"}, {"text": "c"}]
    bad = [r for r in rows if r.error]
    assert len(bad) == 1 and bad[0].line == 3 and "broken JSON" in bad[0].error
    assert [r.line for r in rows if r.error is None] == [2, 4]


def test_json_array_spanning_many_chunks(tmp_path):
    items = [{"text": f"row {i} " + "y" * 500} for i in range(5000)]
    path = _write(tmp_path / "big.json", json.dumps(items).encode())
    rows = list(read_json(path))
    assert len(rows) == 5000 and all(r.error is None for r in rows)
    assert rows[-1].data["text"].startswith("row 4999")


def test_truncated_json_array_keeps_the_complete_elements(tmp_path):
    path = _write(tmp_path / "t.json", b'[{"text": "a"}, {"text": "b"}, {"text": "c')
    rows = list(read_json(path))
    assert [r.data for r in rows if r.error is None] == [{"text": "a"}, {"text": "b"}]
    assert rows[-1].error is not None


def test_minified_json_array_element_with_unbalanced_brackets_loses_nothing_after_it(tmp_path):
    """On one line, counting brackets finds no end for ``[1, 2}``: reading goes on at the next run of whole
    elements, and every row is found again by its element number (the line is 1 for all)."""
    text = ('[{"text": "a"},{"text": "b", "x": [1, 2},{"text": "c", "tags": [{"k": 1}, {"k": 2}]},'
            '{"text": "d"},{"text": "e"}]')
    rows = list(read_json(_write(tmp_path / "m.json", text.encode())))
    assert [r.data["text"] for r in rows if r.error is None] == ["a", "c", "d", "e"]
    bad = [r for r in rows if r.error]
    assert len(bad) == 1 and "broken JSON" in bad[0].error and bad[0].raw == '{"text": "b", "x": [1, 2}'
    assert [r.element for r in rows] == [1, 2, 3, 4, 5] and {r.line for r in rows} == {1}
    assert bad[0].where == "element 2 on line 1"


def test_resync_needs_whole_elements_after_the_break_not_an_object_nested_in_it(tmp_path):
    """Objects in a list inside the broken element are followed by that list's ']', not by the array's end:
    they are not read as rows; the array's own next elements are."""
    for n in (2, 4):
        nested = "[" + ", ".join(f'{{"text": "k{i}"}}' for i in range(n)) + "]"
        text = '[{"text": "a", "x": [1, 2}, "items": ' + nested + ', "y": 3},{"text": "b"},7,{"text": "c"}]'
        rows = list(read_json(_write(tmp_path / "n.json", text.encode())))
        assert [r.data for r in rows if r.error is None] == [{"text": "b"}, 7, {"text": "c"}]
        assert [(r.element, r.error is None) for r in rows] == [(1, False), (2, True), (3, True), (4, True)]


def test_a_stray_quote_on_one_line_does_not_swallow_the_next_element(tmp_path):
    """'"x,{"text": "a"}' reads as the string "x,{" and then garbage: the string is taken for the start of a broken
    element, and reading goes on at the object inside it (found by the fuzz target of minified arrays)."""
    text = '["unterminated,{"text": "a"},"x,"x,,{"text": "b"}]'
    rows = list(read_json(_write(tmp_path / "q.json", text.encode())))
    assert [r.data for r in rows if r.error is None] == [{"text": "a"}, {"text": "b"}]
    assert all("stray quote" in r.error for r in rows if r.error)


def test_places_name_lines_or_json_array_elements():
    from curate.ingest.raw_rows import RawRow, places

    assert places([(4, None)]) == "line 4"
    assert places([(4, None), (9, None), (9, None)]) == "lines 4, 9"
    assert places([(1, 2336), (1, 4659)]) == "elements 2336, 4659 on line 1"
    assert places([(2, 1), (5, 2)]) == "elements 1, 2 on lines 2, 5"
    assert RawRow(7).where == "line 7" and RawRow(1, element=3).where == "element 3 on line 1"


def test_json_file_holding_json_lines_is_read_as_jsonl(tmp_path):
    path = _write(tmp_path / "lines.json", b'{"text": "a"}\n{"text": "b"}\n')
    assert [r.data for r in read_rows(path)] == [{"text": "a"}, {"text": "b"}]


def test_csv_rows_with_multiline_cells_wrong_width_and_bad_bytes(tmp_path):
    data = b'text,label\n"two\nlines",a\nonly_one_cell\n"caf\xe9",b\nfine,c\n'
    rows = list(read_csv(_write(tmp_path / "a.csv", data)))
    assert rows[0].data == {"text": "two\nlines", "label": "a"} and rows[0].line == 2
    assert rows[1].line == 4 and "1 cells but the header has 2" in rows[1].error
    assert rows[2].line == 5 and "invalid UTF-8" in rows[2].error
    assert rows[3].data == {"text": "fine", "label": "c"} and rows[3].line == 6


def test_csv_overlong_line_is_a_row_error(tmp_path):
    data = b"text,label\nshort,a\n" + b"x" * 2_000_000 + b",b\nlast,c\n"
    rows = list(read_csv(_write(tmp_path / "a.csv", data), max_row_bytes=1_000_000))
    assert [r.line for r in rows] == [2, 3, 4]
    assert "longer than the limit" in rows[1].error and rows[2].data == {"text": "last", "label": "c"}


def test_tsv_and_empty_cells(tmp_path):
    rows = list(read_rows(_write(tmp_path / "a.tsv", b"text\tlabel\nhello\t\n")))
    assert rows[0].data == {"text": "hello", "label": None}


def test_tsv_lines_with_literal_quotes_are_rows_not_broken_quotes(tmp_path):
    """Unquoted TSV (most TSV files): a quote inside a text is a character, and a quote that is never closed
    must not swallow the lines after it."""
    data = (b'label\ttext\nham\t"Hi" she said\nspam\tWIN a 5" screen now\nham\tplain\n'
            b'ham\t"quoted\ttab"\n')
    rows = list(read_rows(_write(tmp_path / "a.tsv", data)))
    assert [r.error for r in rows] == [None] * 4
    assert [r.line for r in rows] == [2, 3, 4, 5]
    assert rows[0].data == {"label": "ham", "text": '"Hi" she said'}
    assert rows[1].data == {"label": "spam", "text": 'WIN a 5" screen now'}
    assert rows[2].data == {"label": "ham", "text": "plain"}
    assert rows[3].data == {"label": "ham", "text": "quoted\ttab"}  # a properly quoted cell is still unquoted


@pytest.mark.parametrize(("data", "expected"), [
    (b'text;label\n"Refund, please";billing\n', {"text": "Refund, please", "label": "billing"}),  # Excel, de/fr
    (b'\n"text|x";label\n3,5 kg;kg\n', {"text|x": "3,5 kg", "label": "kg"}),  # quoted bar; first line blank
    (b"text|label\nabc|x\n", {"text": "abc", "label": "x"}),
    (b"text\nuse a; or a |\n", {"text": "use a; or a |"}),  # one column: commas are the default
    (b'"a;b",label\nx,y\n', {"a;b": "x", "label": "y"}),  # a comma outside quotes wins
])
def test_csv_delimiter_is_sniffed_from_the_first_line(tmp_path, data, expected):
    rows = list(read_rows(_write(tmp_path / "a.csv", data)))
    assert rows[0].error is None and rows[0].data == expected


def test_headerless_csv_and_tsv_with_columns(tmp_path):
    tsv = _write(tmp_path / "spam", b"ham\tGo until jurong point\nspam\tFree entry\n")
    rows = list(read_rows(tsv, fmt="tsv", columns=["label", "text"]))
    assert [(r.line, r.data) for r in rows] == [(1, {"label": "ham", "text": "Go until jurong point"}),
                                                (2, {"label": "spam", "text": "Free entry"})]
    csv_rows = list(read_rows(_write(tmp_path / "a.csv", b"1,one\n2\n"), columns=[" id ", "text"]))
    assert csv_rows[0].data == {"id": "1", "text": "one"} and "1 cells but the header has 2" in csv_rows[1].error
    with pytest.raises(InputError, match="twice"):
        list(read_rows(tsv, fmt="tsv", columns=["a", "a"]))
    with pytest.raises(InputError, match="non-empty name"):
        list(read_rows(tsv, fmt="tsv", columns=["a", ""]))
    with pytest.raises(InputError, match="is read as jsonl"):
        list(read_rows(_write(tmp_path / "a.jsonl", b'{"text": "x"}\n'), columns=["text"]))


def test_parquet_and_saved_dataset_folder(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    ds.to_parquet(str(tmp_path / "a.parquet"))
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "saved"))
    assert [r.data["text"] for r in read_rows(tmp_path / "a.parquet")] == ["a", "b"]
    assert detect_format(tmp_path / "saved") == "hf"
    assert [r.data["text"] for r in read_rows(tmp_path / "saved", split="test")] == ["a"]
    assert [r.data["text"] for r in read_rows(tmp_path / "saved" / "train")] == ["a", "b"]  # one split's folder
    datasets.DatasetDict({"part1": ds, "part2": ds.select([0])}).save_to_disk(str(tmp_path / "parts"))
    assert [r.data["text"] for r in read_rows(tmp_path / "parts")] == ["a", "b", "a"]  # no held-out split


@pytest.mark.parametrize("held_out", ["test", "validation", "test_prefs", "dev"])
def test_a_saved_dataset_with_a_held_out_split_is_not_read_whole(tmp_path, held_out):
    """Reading every split of load_dataset(...).save_to_disk(...) would put its test rows in the pool."""
    import datasets

    ds = datasets.Dataset.from_list([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    datasets.DatasetDict({"train": ds, held_out: ds.select([0])}).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(UnsupportedFormatError, match=rf"holds the splits train \(2 rows\), {held_out} \(1 row\); "
                                                     rf"read together, the held-out rows \({held_out}\) would land"):
        list(read_rows(tmp_path / "saved"))
    assert [r.data["text"] for r in read_rows(tmp_path / "saved", split=held_out)] == ["a"]


def test_missing_source_and_unknown_suffix_raise_clear_errors(tmp_path):
    with pytest.raises(SourceNotFoundError, match="no such file"):
        detect_format(tmp_path / "nope.jsonl")
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFormatError, match="is a spreadsheet; curate reads CSV: save it as CSV UTF-8"):
        detect_format(tmp_path / "data.xlsx")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UnsupportedFormatError, match="not a saved Hugging Face dataset"):
        detect_format(tmp_path / "folder")


@pytest.mark.parametrize(("data", "fmt"), [
    (b"ham\tGo until jurong point\n", "tsv"),
    (b"text,label\nhi,x\n", "csv"),
    (b"text;label\nhi;x\n", "csv"),
    (b'{"text": "hi"}\n{"text": "yo"}\n', "jsonl"),
    (b'\xef\xbb\xbf{\n  "text": "one object"\n}\n', "json"),
    (b'[{"text": "hi"}]', "json"),
    (b"PAR1\x00\x01", "parquet"),
])
def test_a_file_without_a_known_suffix_is_read_by_its_content(tmp_path, data, fmt):
    assert detect_format(_write(tmp_path / "SMSSpamCollection", data)) == fmt
    assert detect_format(_write(tmp_path / "export.txt", data)) == fmt


def test_content_that_fits_no_format_still_asks_for_format(tmp_path):
    for name, data in (("notes.txt", b"just one line of words\n"), ("blob", b"\x00\x01\x02"), ("empty", b"")):
        with pytest.raises(UnsupportedFormatError, match="or the content.*Pass --format"):
            detect_format(_write(tmp_path / name, data))


def test_truncated_gzip_keeps_rows_before_the_damage(tmp_path):
    import gzip as gz

    blob = gz.compress(b"".join(f'{{"text": "row {i}"}}\n'.encode() for i in range(2000)))
    path = _write(tmp_path / "cut.jsonl.gz", blob[: len(blob) // 2])
    rows = list(read_rows(path))
    good = [r for r in rows if r.error is None]
    assert len(good) > 0 and good[0].data == {"text": "row 0"}
    assert "corrupt or truncated" in rows[-1].error


def test_a_file_that_is_not_parquet_is_a_clear_error(tmp_path):
    path = _write(tmp_path / "fake.parquet", b"this is not parquet")
    with pytest.raises(UnsupportedFormatError, match="cannot be read as Parquet"):
        list(read_rows(path))


def test_benchmarks_read_every_row_or_stop_at_the_first_unreadable_one(tmp_path):
    from curate.ingest.readers import read_every_row, tabular_columns

    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "a"}\n\n{"text": "b"}\n', encoding="utf-8")
    assert read_every_row(good, "texts") == [(1, {"text": "a"}), (3, {"text": "b"})]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl, line 2: broken JSON.*The texts must be JSON lines"):
        read_every_row(bad, "texts")
    headerless = tmp_path / "t.tsv"
    headerless.write_text("pos\tgood\n", encoding="utf-8")
    assert tabular_columns(headerless, ["label", "text"]) == ["label", "text"]
    assert tabular_columns(good, ["label", "text"]) is None and tabular_columns(headerless, None) is None


def test_hugging_face_class_labels_are_read_as_their_names(tmp_path):
    """A saved dataset or a Parquet file written by datasets keeps ClassLabel names: annotators see 'pos', not 1."""
    import datasets

    from curate.ingest.readers import read_rows

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    ds = datasets.Dataset.from_dict({"text": ["bad film", "good film", "fine"], "label": [0, 1, 1]},
                                    features=features)
    ds.save_to_disk(str(tmp_path / "saved"))
    ds.to_parquet(str(tmp_path / "rows.parquet"))
    for source in (tmp_path / "saved", tmp_path / "rows.parquet"):
        assert [r.data["label"] for r in read_rows(source)] == ["neg", "pos", "pos"]
