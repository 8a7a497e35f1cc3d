"""Reading data files into string frames."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, write
from data_modules.readers import detect_format, read_row_ids, read_table, read_texts, require_column
from medtext.core.errors import DataError

EXPECTED = pd.DataFrame({"text": ["Fever and cough.", "Chest pain, at rest.", "Headache"],
                         "label": ["1", "2", "10"]})


def assert_string_frame(frame: pd.DataFrame, expected: pd.DataFrame = EXPECTED) -> None:
    assert list(frame.columns) == list(expected.columns)
    assert len(frame) == len(expected)
    for column in expected.columns:
        values = frame[column].tolist()
        assert all(isinstance(v, str) for v in values), (column, values)
        assert values == expected[column].tolist()


# ------------------------------------------------------------------------------------------ readers
def test_read_csv_gives_strings(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\nFever and cough.,1\n"Chest pain, at rest.",2\nHeadache,10\n')
    assert_string_frame(read_table(path))


def test_read_csv_keeps_na_like_values_as_text_and_missing_as_empty(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nNA,1\nnull,\n")
    frame = read_table(path)
    assert frame["text"].tolist() == ["NA", "null"]
    assert frame["label"].tolist() == ["1", ""]


def test_read_csv_with_utf8_bom_and_crlf(tmp_path):
    path = write(tmp_path / "a.csv", "\ufefftext,label\r\nFever and cough.,1\r\n\"Chest pain, at rest.\",2\r\n"
                                     "Headache,10\r\n".encode("utf-8"))
    assert_string_frame(read_table(path))


def test_read_tsv(tmp_path):
    path = write(tmp_path / "a.tsv", "text\tlabel\nFever and cough.\t1\nChest pain, at rest.\t2\nHeadache\t10\n")
    assert detect_format(path) == "tsv"
    assert_string_frame(read_table(path))


def test_read_csv_file_that_is_tab_separated(tmp_path):
    """Like HoC: a ``.csv`` with TAB separators and an empty first header field."""
    path = write(tmp_path / "hoc_like.csv",
                 '\tlabel-1\tlabel-2\n"A ""reactive"" stroma, in mice ."\t0\t1\nPlain text .\t1\t0\n')
    frame = read_table(path)
    assert frame.shape == (2, 3)
    assert list(frame.columns)[1:] == ["label-1", "label-2"]
    assert frame.iloc[:, 0].tolist() == ['A "reactive" stroma, in mice .', "Plain text ."]
    assert frame["label-1"].tolist() == ["0", "1"]
    assert frame["label-2"].tolist() == ["1", "0"]


def test_explicit_file_format_overrides_suffix(tmp_path):
    path = write(tmp_path / "data.txt", "text\tlabel\nFever and cough.\t1\nChest pain, at rest.\t2\nHeadache\t10\n")
    with pytest.raises(DataError, match="suffix"):
        read_table(path)
    assert_string_frame(read_table(path, file_format="tsv"))
    with pytest.raises(DataError, match="unknown file_format 'xlsx'"):
        read_table(path, file_format="xlsx")


def test_read_jsonl_converts_numbers_and_nulls_to_strings(tmp_path):
    rows = [{"text": "Fever and cough.", "label": 1}, {"text": "Chest pain, at rest.", "label": 2},
            {"text": "Headache", "label": 10}]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    assert_string_frame(read_table(path))
    path = write(tmp_path / "b.jsonl", '{"text": "x", "label": null}\n{"text": "y", "label": 2.0}\n')
    assert read_table(path)["label"].tolist() == ["", "2"]


def test_read_parquet(tmp_path):
    path = tmp_path / "a.parquet"
    pd.DataFrame({"text": EXPECTED["text"].tolist(), "label": [1, 2, 10]}).to_parquet(path)
    assert_string_frame(read_table(path))
    # integer labels with a gap come back from Parquet as floats; they must still read as "1", ""
    path = tmp_path / "b.parquet"
    pd.DataFrame({"text": ["x", "y"], "label": [1.0, np.nan]}).to_parquet(path)
    assert read_table(path)["label"].tolist() == ["1", ""]


def test_same_table_in_every_format_reads_the_same(tmp_path):
    EXPECTED.to_csv(tmp_path / "t.csv", index=False)
    EXPECTED.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    EXPECTED.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    EXPECTED.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.tsv", "t.jsonl", "t.parquet"):
        assert_string_frame(read_table(tmp_path / name))


def test_missing_pyarrow_is_one_line(tmp_path, monkeypatch):
    """Simulated: ``import pyarrow`` fails whether or not it is installed."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = write(tmp_path / "a.parquet", b"PAR1")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == f'{path}: reading parquet needs pyarrow: pip install pyarrow (or pip install -e ".[parquet]")'


# ------------------------------------------------------------------------------------------ duplicate columns
@pytest.mark.parametrize("name, content, column, where", [
    ("a.csv", "condition_label,medical_abstract,condition_label\n1,Tumour.,3\n", "condition_label", "columns 1 and 3"),
    ("a.tsv", "text\tlabel\ttext\nx\t1\ty\n", "text", "columns 1 and 3"),
    ("a.csv", '"a\nb",label,"a\nb"\n1,2,3\n', "a\nb", "columns 1 and 3"),  # a quoted name with a newline
    ("a.csv", "text,label,x.1,x,x\na,1,2,3,4\n", "x", "columns 4 and 5"),
], ids=["csv", "tsv", "quoted_newline", "beside_x.1"])
def test_duplicate_header_column_is_an_error(tmp_path, name, content, column, where):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == f"{path}: header: column {column!r} appears twice ({where}); rename or drop one"


def test_columns_named_like_pandas_renames_are_kept(tmp_path):
    path = write(tmp_path / "a.csv", "x,x.1,text,label\n1,2,Fever.,a\n")
    assert read_table(path).to_dict("list") == {"x": ["1"], "x.1": ["2"], "text": ["Fever."], "label": ["a"]}


def test_several_unnamed_columns_are_an_error_only_when_used(tmp_path):
    path = write(tmp_path / "a.csv", ",label,\nFever.,a,b\n")
    frame = read_table(path)
    assert require_column(frame, path, "label", "label").tolist() == ["a"]
    with pytest.raises(DataError, match="text column '' appears more than once in the header"):
        read_texts(frame, path, "")


def test_duplicate_key_in_json_lines_row(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": 2, "text": "c"}\n')
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == f"{path}: row 2: key 'text' appears twice (keys 1 and 3); rename or drop one"


def test_duplicate_parquet_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    pq.write_table(pa.table([pa.array(["a"]), pa.array(["1"]), pa.array(["b"])], names=["text", "label", "text"]), path)
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == f"{path}: column 'text' appears twice (columns 1 and 3); rename or drop one"


# ------------------------------------------------------------------------------------------ malformed rows
@pytest.mark.parametrize("name, content, message", [
    ("a.csv", "text,label\nFever.,x\nCough.,y,extra\n", "row 2: expected 2 fields, found 3"),
    ("a.csv", "text,label\nFever.,x,extra\nCough.,y\n", "row 1: expected 2 fields, found 3"),  # pandas: an index
    ("a.csv", 'text,label\n"Fever.\nSecond line.",x\n\nCough.,y\nRash.,x,a,b\n', "row 4: expected 2 fields, found 4"),
    ("a.tsv", "text\tlabel\nFever.\tx\nCough.\ty\tz\n", "row 2: expected 2 fields, found 3"),
    ("a.csv", 'text,label\r\n"Fever.\r\nMore.",x\r\n\r\nCough.,y,z\r\n', "row 3: expected 2 fields, found 3"),
    ("a.csv", "text,label\rFever.,x\rCough.,y,z\r", "row 2: expected 2 fields, found 3"),
    ("a.csv", 'text,label\n"Fever.\nSecond line.",x\n"Cough.,y\nRash.,x\n', "row 2: a quoted field is never closed"),
], ids=["extra_field", "extra_field_in_first_row", "after_multiline_and_blank_rows", "tsv", "crlf",
                          "cr_only", "unclosed_quote"])
def test_malformed_row_is_named_by_row(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)
    assert "C error" not in str(info.value) and "line" not in str(info.value)


def test_malformed_row_after_a_field_too_long_for_the_csv_module(tmp_path):
    long_text = "x" * (csv.field_size_limit() + 1)
    path = write(tmp_path / "a.csv", f"text,label\n{long_text},1\nFever.,2\nCough.,y,z\n")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == f"{path}: row 3: expected 2 fields, found 3"


def test_require_column_and_read_texts(tmp_path):
    path = write(tmp_path / "a.csv", "abstract,label\nSome text,1\n")
    frame = read_table(path)
    assert require_column(frame, path, "abstract", "text").tolist() == ["Some text"]
    with pytest.raises(DataError, match=r"text column 'text' not found; the columns are \['abstract', 'label'\]"):
        read_texts(frame, path, "text")
    assert read_texts(frame, path, "abstract") == ["Some text"]


def test_row_ids_are_the_id_column_else_row_numbers(tmp_path):
    path = write(tmp_path / "a.csv", "pmid,abstract\nP7,Some text\nP9,More text\n")
    frame = read_table(path)
    assert read_row_ids(frame, path, "pmid") == ["P7", "P9"]
    assert read_row_ids(frame, path, None) == ["1", "2"]
    with pytest.raises(DataError, match=r"a.csv: id column 'id' not found"):
        read_row_ids(frame, path, "id")


@pytest.mark.skipif(not (SHARED_DATA / "hoc" / "hoc_train.csv").is_file(), reason="shared HoC data absent")
def test_read_real_hoc_file():
    frame = read_table(SHARED_DATA / "hoc" / "hoc_train.csv")
    assert frame.shape == (1303, 11)
    assert list(frame.columns)[1:] == [f"label-{i}" for i in range(1, 10)] + ["label-a"]
    assert set(np.unique(frame.iloc[:, 1:].to_numpy())) <= {"0", "1"}
    assert all(isinstance(t, str) and t.strip() for t in frame.iloc[:, 0])


@pytest.mark.skipif(not (SHARED_DATA / "medical_abstracts" / "medical_tc_train_partial.csv").is_file(),
                    reason="shared Medical Abstracts data absent")
def test_read_real_medical_abstracts_file():
    path = SHARED_DATA / "medical_abstracts" / "medical_tc_train_partial.csv"
    frame = read_table(path)
    assert len(frame) == 3115
    counts = frame["condition_label"].value_counts().to_dict()
    assert counts == {"1": 829, "2": 275, "3": 439, "4": 930, "5": 642}
    assert len(read_texts(frame, path, "medical_abstract")) == 3115
