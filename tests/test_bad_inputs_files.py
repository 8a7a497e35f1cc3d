"""Missing, unreadable, empty or unparsable data files (and missing columns) fail early with one clear line."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import write
from data_helpers import GOOD, check_message, module
from medtext.core.errors import DataError


# ------------------------------------------------------------------------------------------ missing things
def test_missing_train_file(tiny_encoder, tmp_path):
    path = tmp_path / "nowhere" / "train.csv"
    dm = module(tiny_encoder, train_file=str(path), label_map={"x": "x", "y": "y"})
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    check_message(err, path, contains="file not found")


def test_missing_train_file_when_inferring_labels(tiny_encoder, tmp_path):
    path = tmp_path / "train.csv"
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).label_names
    check_message(err, path, contains="file not found")


def test_missing_labels_file(tiny_encoder, tmp_path):
    train = write(tmp_path / "train.csv", GOOD)
    labels = tmp_path / "labels.csv"
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(train), labels_file=str(labels)).label_names
    check_message(err, labels, contains="file not found")


def test_missing_test_file_is_found_before_training(tiny_encoder, tmp_path):
    train = write(tmp_path / "train.csv", GOOD)
    test = tmp_path / "test.csv"
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(train), test_file=str(test)).prepare_data()
    check_message(err, test, contains="file not found")


def test_missing_text_column(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", GOOD.replace("text,", "abstract,", 1))
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).prepare_data()
    message = check_message(err, path, contains="text column 'text' not found")
    assert "['abstract', 'label']" in message


def test_missing_label_column_inferring_labels(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", GOOD.replace(",label", ",condition", 1))
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).label_names
    check_message(err, path, contains="label column 'label' not found")


def test_missing_label_column_with_labels_file(tiny_encoder, tmp_path):
    labels = write(tmp_path / "labels.csv", "value,name\nx,ex\ny,why\n")
    path = write(tmp_path / "train.csv", GOOD.replace(",label", ",condition", 1))
    dm = module(tiny_encoder, train_file=str(path), labels_file=str(labels))
    assert dm.label_names == ["ex", "why"]
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    check_message(err, path, contains="label column 'label' not found")


def test_missing_label_column_in_validation_file(tiny_encoder, tmp_path):
    train = write(tmp_path / "train.csv", GOOD)
    val = write(tmp_path / "val.csv", "text\nFever.\n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(train), val_file=str(val)).prepare_data()
    check_message(err, val, contains="label column 'label' not found")


# ------------------------------------------------------------------------------------------ bad files
@pytest.mark.parametrize("name, data, line, byte", [
    ("train.csv", b"text,label\nFever.,x\nCaf\xe9 au lait spots.,y\nCough.,x\n", 3, "0xe9"),
    ("train.tsv", b"text\tlabel\nFever.\tx\nCough.\ty\nBad \xff\xfe bytes.\tx\n", 4, "0xff"),
    ("train.jsonl", b'{"text": "Fever.", "label": "x"}\n{"text": "\xc3(", "label": "y"}\n', 2, "0xc3"),
])
def test_bad_utf8_names_the_line(tiny_encoder, tmp_path, name, data, line, byte):
    path = write(tmp_path / name, data)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path), label_map={"x": "x", "y": "y"}).prepare_data()
    check_message(err, path, f"line {line}", f"invalid UTF-8 byte {byte}")


def test_bad_utf8_when_inferring_labels(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", b"text,label\nFever.,x\nCough.,y\xa0\n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).label_names
    check_message(err, path, "line 3", "invalid UTF-8")


@pytest.mark.parametrize("name, data", [("train.csv", b""), ("train.tsv", b""), ("train.jsonl", b""),
                                        ("train.parquet", b""), ("train.csv", b"  \n\n")])
def test_empty_file(tiny_encoder, tmp_path, name, data):
    path = write(tmp_path / name, data)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path), label_map={"x": "x", "y": "y"}).prepare_data()
    check_message(err, path, contains="file is empty")


@pytest.mark.parametrize("name, data", [("train.csv", "text,label\n"), ("train.csv", "text,label"),
                                        ("train.tsv", "text\tlabel\n")])
def test_header_only_file(tiny_encoder, tmp_path, name, data):
    path = write(tmp_path / name, data)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path), label_map={"x": "x", "y": "y"}).prepare_data()
    check_message(err, path, contains="no data rows (header only)")


def test_header_only_file_when_inferring_labels(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", "text,label\n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path)).label_names
    check_message(err, path, contains="header only")


def test_header_only_parquet(tiny_encoder, tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}).to_parquet(path)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path), label_map={"x": "x", "y": "y"}).prepare_data()
    check_message(err, path, contains="no data rows")


@pytest.mark.parametrize("name, data, where, contains", [
    ("train.csv", b'text,label\n"unterminated,x\nCough.,y\n', "row 1", "a quoted field is never closed"),
    ("train.csv", b"text,label\nFever.,x\nCough.,y,extra,fields\n", "row 2", "expected 2 fields, found 4"),
    ("train.csv", b"text,label\nFever.,x,extra\nCough.,y\n", "row 1", "expected 2 fields, found 3"),
    ("train.jsonl", b'{"text": "Fever.", "label": "x"}\n{"text": \n', "row 2", "cannot parse as jsonl"),
    ("train.parquet", b"PAR1 not really parquet", None, "cannot parse as parquet"),
    ("train.xlsx", b"whatever", None, "cannot tell the format from the suffix '.xlsx'"),
])
def test_unparsable_file(tiny_encoder, tmp_path, name, data, where, contains):
    path = write(tmp_path / name, data)
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(path), label_map={"x": "x", "y": "y"}).prepare_data()
    assert "C error" not in check_message(err, path, where, contains)


def test_duplicated_header_column(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", "condition_label,medical_abstract,condition_label\n1,Tumour growth.,3\n"
                                         "2,Gastric ulcer.,4\n")
    dm = module(tiny_encoder, train_file=str(path), text_column="medical_abstract", label_column="condition_label")
    with pytest.raises(DataError) as err:
        dm.label_names
    check_message(err, path, "header", "column 'condition_label' appears twice (columns 1 and 3)")


def test_single_class_training_file(tiny_encoder, tmp_path):
    path = write(tmp_path / "train.csv", "text,label\nFever.,x\nCough.,x\n")
    with pytest.raises(DataError, match="at least two classes"):
        module(tiny_encoder, train_file=str(path)).label_names


def test_no_label_source(tiny_encoder):
    with pytest.raises(DataError, match="no label set"):
        module(tiny_encoder, test_file="test.csv").label_names


def test_error_in_predict_file_names_that_file(tiny_encoder, tmp_path):
    train = write(tmp_path / "train.csv", GOOD)
    predict = write(tmp_path / "new.csv", "id,text\nA1,Fever.\nA2, \n")
    with pytest.raises(DataError) as err:
        module(tiny_encoder, train_file=str(train), predict_file=str(predict)).prepare_data()
    check_message(err, predict, "row 2", "empty text")
