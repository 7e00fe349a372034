"""`driftwire profile` on broken data files: one line naming the file, line and column, exit status 2."""

from __future__ import annotations

import json

import pytest

from driftwire.stream.cli import main


def profile(capsys, path, *options) -> tuple[int, str, str]:
    code = main(["profile", str(path), "--model", "m", *options])
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys, tmp_path, name: str, data: bytes, *options) -> str:
    """The one error line of profiling ``data`` written as ``name``."""
    path = tmp_path / name
    path.write_bytes(data)
    code, out, err = profile(capsys, path, *options)
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("driftwire profile: "), err
    return err.strip()


CSV_ERRORS = [
    # a short row and a long one: the line and both field counts
    ("ragged.csv", b"a,b,c\n1,2,3\n4,5\n", ["ragged.csv:3:", "2 fields where the header has 3"]),
    ("long.csv", b"a,b\n1,2\n3,4\n5,6,7\n", ["long.csv:4:", "3 fields where the header has 2"]),
    ("semicolons.csv", b"a;b;c\n1;2;3\n", ["semicolons.csv:1:", "'a;b;c'", "--delimiter semicolon"]),
    ("tabs.csv", b"a\tb\n1\t2\n", ["tabs.csv:1:", "--delimiter tab"]),
    ("repeated.csv", b"a,b,a\n1,2,3\n", ["repeated.csv:1:", "columns 1 and 3 are both named 'a'"]),
    ("unnamed.csv", b"a,,c\n1,2,3\n", ["unnamed.csv:1:", "column 2 has no name"]),
    ("inf.csv", b"a,b\n1,2\ninf,3\n", ["inf.csv:3:", "column 'a'", "'inf', not a finite number"]),
    ("minus_inf.csv", b"a,b\n1,2\n3,-inf\n", ["minus_inf.csv:3:", "column 'b'", "'-inf'"]),
    ("nan.csv", b"a,b\nNaN,2\n1,3\n", ["nan.csv:2:", "column 'a'", "'NaN'", "leave the field empty"]),
    ("latin1.csv", "a,b\n1,café\n".encode("latin-1"), ["latin1.csv:2:", "byte 0xe9 at byte offset 9", "UTF-8"]),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["binary.csv:1:", "byte 0x89 at byte offset 0"]),
    ("nul.csv", b"a,b\n1,2\x00\n", ["nul.csv:2:", "NUL byte at byte offset 7"]),
    # the quote opened on line 3 swallows the rest of the file
    ("open_quote.csv", b"a,b\n1,2\n3,\"4\n5,6\n7,8\n", ["open_quote.csv:3:", "quote", "never closed"]),
    ("stray_quote.csv", b"a,b\n1,\"2\"x\n", ["stray_quote.csv:2:", "malformed CSV"]),
    ("mixed.csv", b"a,b\n1,2\n3,x\n",
     ["mixed.csv: column 'b' mixes numbers (line 2: 2.0) and categories (line 3: 'x')"]),
    ("empty.csv", b"", ["empty.csv:1:", "no header"]),
    ("header_only.csv", b"a,b\n", ["header_only.csv: no rows"]),
]


@pytest.mark.parametrize("name, data, expected", CSV_ERRORS, ids=[c[0] for c in CSV_ERRORS])
def test_a_broken_csv_is_one_line_naming_file_line_and_column(capsys, tmp_path, name, data, expected):
    err = fails(capsys, tmp_path, name, data)
    for text in expected:
        assert text in err


JSONL_ERRORS = [
    ("truncated.jsonl", b'{"a": 1}\n{"a": 2\n', ["truncated.jsonl:2:", "not JSON", "one JSON object"]),
    ("array.jsonl", b'{"a": 1}\n[1, 2]\n', ["array.jsonl:2:", "a row must be a JSON object"]),
    ("nested.jsonl", b'{"a": 1}\n{"a": {"b": 1}}\n', ["nested.jsonl:2:", "column 'a' holds a JSON object"]),
    ("binary.jsonl", b'{"a": 1}\n\xff\xfe{"a": 2}\n', ["binary.jsonl:2:", "byte 0xff at byte offset 9"]),
    ("mixed.jsonl", b'{"a": 1}\n{"a": "x"}\n',
     ["mixed.jsonl: column 'a' mixes numbers (line 1: 1) and categories (line 2: 'x')"]),
]


@pytest.mark.parametrize("name, data, expected", JSONL_ERRORS, ids=[c[0] for c in JSONL_ERRORS])
def test_a_broken_json_lines_file_is_one_line_naming_file_and_line(capsys, tmp_path, name, data, expected):
    err = fails(capsys, tmp_path, name, data)
    for text in expected:
        assert text in err


def test_a_missing_file_and_an_unknown_format_are_named(capsys, tmp_path):
    code, _, err = profile(capsys, tmp_path / "missing.csv")
    assert code == 2 and err.strip() == f"driftwire profile: {tmp_path / 'missing.csv'}: No such file or directory"
    assert "unknown format '.xlsx'" in fails(capsys, tmp_path, "data.xlsx", b"PK\x03\x04")


def test_the_delimiter_option_reads_a_semicolon_separated_file(capsys, tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text("a;b\n1;x\n2;y\n3;x\n")
    code, out, err = profile(capsys, path, "--delimiter", "semicolon")
    assert code == 0, err
    signals = json.loads(out)["signals"]
    assert signals["a"]["type"] == "numeric" and signals["b"]["frequencies"] == {"x": 2, "y": 1}


def test_a_tsv_file_is_tab_separated_and_a_byte_order_mark_is_skipped(capsys, tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes("\ufeffa\tb\n1\tx\n2\ty\n".encode())
    code, out, err = profile(capsys, path)
    assert code == 0, err
    assert set(json.loads(out)["signals"]) == {"a", "b"}


def test_empty_fields_are_missing_values_and_a_quoted_field_may_span_lines(capsys, tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text('a,b,note\n1,,"two\nlines"\n2,3,x\n\n4,5,y\n')
    code, out, err = profile(capsys, path)
    assert code == 0, err
    profile_ = json.loads(out)
    assert profile_["rows"] == 3
    assert profile_["signals"]["b"]["missing_rate"] == pytest.approx(1 / 3)
    assert profile_["signals"]["note"]["type"] == "categorical"


def test_an_unwritable_output_is_one_line(capsys, tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("a\n1\n2\n")
    code, _, err = profile(capsys, path, "--out", str(tmp_path / "no" / "such" / "dir.json"))
    assert code == 2 and err.startswith("driftwire profile: cannot write ") and err.count("\n") == 1


def test_an_infinity_in_parquet_is_an_error_and_nan_a_missing_value(capsys, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"a": [1.0, float("nan"), 3.0], "b": [1.0, 2.0, float("inf")]}), path)
    err = fails(capsys, tmp_path, "train.parquet", path.read_bytes())
    assert "train.parquet: row 3: column 'b' is inf, not a finite number" in err
    assert "not a readable Parquet file" in fails(capsys, tmp_path, "broken.parquet", b"PAR1 not really")
