"""Dataset downloads: sha256 verification, recorded digests, and the offline error."""

import hashlib

import pytest

from data_modules import MedicalAbstractsDataModule
from data_modules.download import fetch
from medtext.core.errors import DataError


def test_fetch_verifies_sha256(tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("condition_label,condition_name\n1,neoplasms\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = fetch(source.as_uri(), tmp_path / "cache" / "labels.csv", digest)
    assert target.read_bytes() == source.read_bytes()

    with pytest.raises(DataError, match="does not match"):
        fetch(source.as_uri(), tmp_path / "cache2" / "labels.csv", "0" * 64)
    assert not (tmp_path / "cache2" / "labels.csv").exists()


def test_fetch_records_first_digest_and_rejects_a_changed_copy(tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("a\n")
    target = fetch(source.as_uri(), tmp_path / "cache" / "train.csv", None)
    recorded = target.with_name("train.csv.sha256").read_text().strip()
    assert recorded == hashlib.sha256(b"a\n").hexdigest()
    target.write_text("tampered\n")
    with pytest.raises(DataError, match="does not match"):
        fetch(source.as_uri(), target, None)


def test_offline_download_names_the_files_and_the_folder(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    data = MedicalAbstractsDataModule(cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError) as error:
        data.label_names
    message = str(error.value)
    assert "\n" not in message
    for name in ("medical_tc_train.csv", "medical_tc_test.csv", "medical_tc_labels.csv", "--data.data_dir",
                 str(tmp_path / "cache" / "medical_abstracts")):
        assert name in message


def test_data_dir_with_partial_train_file(tmp_path):
    (tmp_path / "medical_tc_train_partial.csv").write_text(
        "condition_label,medical_abstract\n1,A tumour.\n2,A liver disease.\n")
    (tmp_path / "medical_tc_labels.csv").write_text("condition_label,condition_name\n1,neoplasms\n2,digestive\n")
    data = MedicalAbstractsDataModule(str(tmp_path))
    assert data.label_names == ["neoplasms", "digestive"]
    files = data.resolve_files()
    assert files["train"].endswith("medical_tc_train_partial.csv") and files["test"] is None


def test_a_given_train_file_keeps_the_data_dirs_class_names(tmp_path):
    """``--data.data_dir D --data.train_file fold.csv`` (e.g. ``medtext distil``'s folds): the classes are
    still named by D's labels file, not the raw ids 1..5."""
    (tmp_path / "medical_tc_labels.csv").write_text("condition_label,condition_name\n1,neoplasms\n2,digestive\n")
    fold = tmp_path / "fold.csv"
    fold.write_text("condition_label,medical_abstract\n2,A liver disease.\n1,A tumour.\n")
    data = MedicalAbstractsDataModule(str(tmp_path), train_file=str(fold))
    assert data.label_names == ["neoplasms", "digestive"]
