"""Label maps and label encoding."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from conftest import SHARED_DATA, write
from data_modules.labels import (check_label_names, encode_delimited, encode_labels, infer_label_map,
                                 warn_conflicting_duplicates, warn_empty_classes)
from data_modules.readers import load_label_map
from medtext.core.errors import DataError


# ------------------------------------------------------------------------------------------ label maps
@pytest.mark.skipif(not (SHARED_DATA / "medical_abstracts" / "medical_tc_labels.csv").is_file(),
                    reason="shared Medical Abstracts data absent")
def test_label_map_from_real_two_column_csv():
    mapping = load_label_map(SHARED_DATA / "medical_abstracts" / "medical_tc_labels.csv")
    assert mapping == {"1": "neoplasms", "2": "digestive system diseases", "3": "nervous system diseases",
                       "4": "cardiovascular diseases", "5": "general pathological conditions"}
    assert list(mapping) == ["1", "2", "3", "4", "5"]


def test_label_map_from_csv_keeps_file_order_and_strips_names(tmp_path):
    path = write(tmp_path / "labels.csv", "value,name\n10,  ten \n2,two\n1,one\n")
    mapping = load_label_map(path)
    assert list(mapping.items()) == [("10", "ten"), ("2", "two"), ("1", "one")]


def test_label_map_from_json(tmp_path):
    path = write(tmp_path / "labels.json", json.dumps({"b": "beta", "a": "alpha", "3": "three"}))
    assert list(load_label_map(path).items()) == [("b", "beta"), ("a", "alpha"), ("3", "three")]


@pytest.mark.skipif(not (SHARED_DATA / "hoc" / "labels.json").is_file(), reason="shared HoC data absent")
def test_label_map_from_real_hoc_json():
    mapping = load_label_map(SHARED_DATA / "hoc" / "labels.json")
    assert list(mapping) == [f"label-{i}" for i in range(1, 10)] + ["label-a"]
    assert mapping["label-7"].startswith("Inducing angiogenesis")


@pytest.mark.parametrize("content, message", [
    ("value,name\n1,one\n1,uno\n", "row 2: label value '1' is listed twice"),
    ("value,name\n1,one\n2,\n", "row 2: empty label value or name"),
    ("value\n1\n2\n", "needs two columns"),
])
def test_bad_label_csv(tmp_path, content, message):
    path = write(tmp_path / "labels.csv", content)
    with pytest.raises(DataError, match=message) as info:
        load_label_map(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content, message", [("[1, 2]", "expected a JSON object"), ("{}", "expected a JSON object"),
                                              ('{"a": ', "invalid JSON")])
def test_bad_label_json(tmp_path, content, message):
    path = write(tmp_path / "labels.json", content)
    with pytest.raises(DataError, match=message):
        load_label_map(path)


def test_infer_label_map_natural_sort():
    values = ["10", "2", "1", "", "2", "label-10", "label-9", "label-a", "b", "a"]
    mapping = infer_label_map(values)
    assert list(mapping) == ["1", "2", "10", "a", "b", "label-9", "label-10", "label-a"]
    assert all(k == v for k, v in mapping.items())


def test_integers_written_with_leading_zeros_are_one_class():
    raw = ["01", "1", "2", "02", "1.0", "10", "007"]
    mapping = infer_label_map(raw)
    assert mapping == {"1": "1", "2": "2", "7": "7", "10": "10"}
    assert encode_labels(raw, mapping, "train.csv", "label").tolist() == [0, 0, 1, 1, 0, 3, 2]
    assert encode_labels(["1", "01"], {"01": "neoplasms", "02": "digestive"}, "t.csv", "label").tolist() == [0, 0]
    with pytest.raises(DataError, match="ambiguous"):
        encode_labels(["1"], {"01": "a", "1": "b"}, "t.csv", "label")


def test_check_label_names():
    check_label_names(["a", "b"], "labels.csv")
    with pytest.raises(DataError, match="distinct"):
        check_label_names(["a", "a"], "labels.csv")
    with pytest.raises(DataError, match="at least two classes"):
        check_label_names(["a"], "labels.csv")


# ------------------------------------------------------------------------------------------ encoding
def test_encode_labels_uses_label_map_order():
    label_map = {"3": "c", "1": "a", "2": "b"}
    ids = encode_labels(["1", "2", "3", " 3 ", "1"], label_map, "train.csv", "label")
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 2, 0, 0, 1]


@pytest.mark.parametrize("raw, row, message", [
    (["1", "", "2"], 2, "missing label in column 'label'"),
    (["1", "2", "NaN"], 3, "missing label in column 'label'"),
    (["  "], 1, "missing label"),
    (["1", "2", "7"], 3, r"label '7' is not in the label set \['1', '2'\]"),
])
def test_encode_labels_errors_name_file_and_row(raw, row, message):
    with pytest.raises(DataError, match=message) as info:
        encode_labels(raw, {"1": "a", "2": "b"}, "train.csv", "label")
    assert str(info.value).startswith(f"train.csv: row {row}: ")



MEDICAL = {"1": "neoplasms", "2": "digestive system diseases", "3": "nervous system diseases"}


def test_encode_labels_accepts_class_names_and_integers_written_as_floats():
    raw = ["neoplasms", "2", "3.0", " nervous system diseases ", "1.", "digestive system diseases", "2.00"]
    assert encode_labels(raw, MEDICAL, "train.csv", "label").tolist() == [0, 1, 2, 2, 0, 1, 1]
    # and the other way round: a labels file that writes its values "1.0" takes data written "1"
    assert encode_labels(["1", "2.0"], {"1.0": "a", "2.0": "b"}, "train.csv", "label").tolist() == [0, 1]


def test_encode_delimited_accepts_class_names_and_integers_written_as_floats():
    matrix = encode_delimited(["neoplasms;2.0", "", "3"], MEDICAL, ";", "train.csv", "labels")
    assert matrix.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]


@pytest.mark.parametrize("encode", [
    lambda raw, label_map: encode_labels(raw, label_map, "train.csv", "label"),
    lambda raw, label_map: encode_delimited([f"{v};{v}" for v in raw], label_map, ";", "train.csv", "label"),
], ids=["single", "delimited"])
@pytest.mark.parametrize("label_map, raw, message", [
    (MEDICAL, ["1", "1.5"], "label '1.5' is not in the label set ['1', '2', '3'] (class names ['neoplasms', "),
    (MEDICAL, ["1", "1e0"], "label '1e0' is not in the label set"),
    (MEDICAL, ["1", "Neoplasms"], "label 'Neoplasms' is not in the label set"),
    # "b" is the value of class "c" and the name of class "a"
    ({"a": "b", "b": "c"}, ["a", "b"], "label 'b' in column 'label' is ambiguous: it matches the label set entries "
                                       "{'a': 'b', 'b': 'c'}"),
    ({"1": "one", "1.0": "uno"}, ["one", "1"], "label '1' in column 'label' is ambiguous"),
], ids=["not_an_integer", "exponent", "name_in_other_case", "name_is_another_value", "two_spellings_listed"])
def test_ambiguous_or_unknown_label_stays_an_error(encode, label_map, raw, message):
    with pytest.raises(DataError) as info:
        encode(raw, label_map)
    assert str(info.value).startswith(f"train.csv: row 2: {message}"), str(info.value)


def test_infer_label_map_merges_integer_spellings():
    assert infer_label_map(["2.0", "1", "1.0", "2.0"]) == {"1": "1", "2": "2"}  # named by the integer
    assert infer_label_map(["1.0", "2.0"]) == {"1": "1", "2": "2"}
    mapping = infer_label_map(["1", "1.0", "2"])
    assert encode_labels(["1", "1.0", "2"], mapping, "train.csv", "label").tolist() == [0, 0, 1]


def test_inferred_label_map_encodes_its_own_values():
    raw = [" x", "x", "y ", " y", "x"]
    mapping = infer_label_map(raw)
    ids = encode_labels(raw, mapping, "train.csv", "label")
    assert sorted(set(ids.tolist())) == list(range(len(mapping)))


def test_warn_conflicting_duplicates_counts_conflicts():
    texts = ["Fever.", "Fever.", "Cough  and rash.", "Cough and\trash.", "Headache.", "Headache.", "Unique."]
    labels = [0, 1, 2, 0, 1, 1, 0]  # 2 conflicts (whitespace-normalised); "Headache." agrees
    with pytest.warns(UserWarning, match=r"train\.csv: 2 duplicated texts carry conflicting labels"):
        assert warn_conflicting_duplicates(texts, labels, "train.csv") == 2


def test_warn_conflicting_duplicates_multilabel_rows():
    texts = ["a", "a", "b", "b"]
    labels = np.array([[0, 1], [1, 1], [1, 0], [1, 0]])
    with pytest.warns(UserWarning, match=r"\b1 duplicated texts"):
        assert warn_conflicting_duplicates(texts, labels, "hoc.csv") == 1


def test_no_warning_without_conflicts():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_conflicting_duplicates(["a", "a", "b"], [1, 1, 0], "train.csv") == 0


def test_warn_empty_classes_names_them():
    label_map = {"1": "neoplasms", "2": "digestive", "3": "nervous", "4": "cardio"}
    with pytest.warns(UserWarning, match=r"^train\.csv: 2 of 4 classes have no training example: \['digestive', 'cardio'\]$"):
        assert warn_empty_classes(np.array([0, 2, 2, 0]), label_map, "train.csv") == ["digestive", "cardio"]


def test_warn_empty_classes_multilabel_matrix():
    matrix = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=np.float32)
    with pytest.warns(UserWarning, match=r"hoc\.csv: 1 of 3 classes have no training example: \['b'\]"):
        assert warn_empty_classes(matrix, {"a": "a", "b": "b", "c": "c"}, "hoc.csv") == ["b"]


def test_warn_empty_classes_is_silent_when_every_class_has_an_example():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_empty_classes(np.array([1, 0, 1]), {"x": "x", "y": "y"}, "train.csv") == []
        assert warn_empty_classes(np.array([[1, 0], [0, 1]]), {"x": "x", "y": "y"}, "train.csv") == []
