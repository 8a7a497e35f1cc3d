"""benchmarks/quality_merge.py: seeds fitted in separate sessions joined into one quality row, with
the statistics recomputed over all of them, and files of another row refused; and, slow, the whole
path with benchmarks/quality.py on the tiny encoder."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import quality  # noqa: E402
import quality_merge  # noqa: E402
from cli_helpers import tiny_config  # noqa: E402
from data_helpers import text_of  # noqa: E402
from quality import summarise  # noqa: E402
from quality_merge import merge  # noqa: E402

NAMES = ["a", "b", "c"]


def result_file(seeds: list[int], gold: torch.Tensor, settings: dict | None = None) -> dict:
    """A quality.py result of ``seeds`` with random predictions (each seed right on about 60% of rows)."""
    runs = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        wrong = torch.randint(0, len(NAMES), gold.shape, generator=generator)
        runs.append((torch.where(torch.rand(gold.shape, generator=generator) < 0.6, gold, wrong), gold))
    return {"settings": {"config": "c.yaml", "extra": ["--trainer.max_epochs", "3"], "test_abstracts": len(gold),
                         "resamples": 50, "cpu_flags": "avx2", **(settings or {})},
            "checks": [{"seed": seed, "fit_minutes": 1.0} for seed in seeds],
            **summarise(runs, NAMES, False, 50), "ensemble": None,
            "predictions": {"test_sha256": "x", "label_names": NAMES, "multi_label": False, "gold": gold.tolist(),
                            "per_seed": {str(seed): pred.tolist() for seed, (pred, _) in zip(seeds, runs)}}}


@pytest.fixture
def gold() -> torch.Tensor:
    return torch.randint(0, len(NAMES), (40,), generator=torch.Generator().manual_seed(0))


def test_merged_seeds_are_scored_as_if_fitted_in_one_run(gold):
    merged = merge([("one.json", result_file([43, 44], gold)), ("two.json", result_file([42], gold))])
    together = result_file([42, 43, 44], gold)
    assert merged["settings"]["seeds"] == [42, 43, 44]
    assert [c["seed"] for c in merged["checks"]] == [42, 43, 44]
    assert merged["macro_f1"]["per_seed"] == pytest.approx(together["macro_f1"]["per_seed"])
    assert merged["macro_f1"]["std"] == pytest.approx(together["macro_f1"]["std"])
    assert merged["macro_f1"]["ci95"] == pytest.approx(together["macro_f1"]["ci95"])  # same resamples, same seeds
    assert merged["predictions"]["per_seed"] == together["predictions"]["per_seed"]
    assert merged["ensemble"] is None  # needs the checkpoints


@pytest.mark.parametrize("change, message", [
    (lambda r: r["settings"].update(extra=["--trainer.max_epochs", "2"]), "settings.extra"),
    (lambda r: r["predictions"].update(label_names=["c", "b", "a"]), "predictions.label_names"),
    (lambda r: r["predictions"].update(gold=r["predictions"]["gold"][::-1]), "predictions.gold"),
    (lambda r: r.pop("predictions"), "no per-abstract predictions"),
    (lambda r: r["checks"].__setitem__(0, {"seed": 42}) or r["predictions"]["per_seed"].update({"42": []}), "more than one file"),
])
def test_a_file_of_another_row_is_refused_by_name(gold, change, message):
    other = result_file([43], gold)
    change(other)
    with pytest.raises(SystemExit, match=message):
        merge([("first.json", result_file([42], gold)), ("other.json", other)])


def test_the_command_writes_the_merged_file(gold, tmp_path, monkeypatch, capsys):
    for name, seeds in (("a.json", [42]), ("b.json", [43])):
        (tmp_path / name).write_text(json.dumps(result_file(seeds, gold)))
    out = tmp_path / "merged.json"
    # In process: a child would import quality.py's medtext and Lightning again for one JSON file.
    monkeypatch.setattr(sys, "argv", ["quality_merge.py", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                                      "--out", str(out)])
    quality_merge.main()
    assert "2 seeds [42, 43]" in capsys.readouterr().out
    assert json.loads(out.read_text())["settings"]["merged_from"] == [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    assert not list(tmp_path.glob("*.tmp"))


def test_result_files_keep_a_line_per_abstract_and_read_back_unchanged(gold):
    result = result_file([42, 43], gold)
    result["predictions"]["per_seed"]["44"] = [[0, 1, 1], [1, 0, 0]]  # a multi-label seed: a line per abstract
    result["settings"]["extra"] = ["--x", "[1, 2]"]  # a list of strings stays as it was
    text = quality.result_json(result)
    assert json.loads(text) == result
    assert f'"gold": {json.dumps(gold.tolist())}' in text
    assert "\n    [0, 1, 1],\n    [1, 0, 0]\n" in text and '"[1, 2]"' in text
    assert len(text.splitlines()) < 150  # not a line per number (three of them per abstract and seed)


def test_an_unreadable_file_is_one_line_naming_it(tmp_path, monkeypatch):
    (tmp_path / "cut.json").write_text('{"settings": ')
    monkeypatch.setattr(sys, "argv", ["quality_merge.py", str(tmp_path / "cut.json"), "--out", str(tmp_path / "m.json")])
    with pytest.raises(SystemExit, match="cut.json: not a readable quality.py result"):
        quality_merge.main()
    assert not (tmp_path / "m.json").exists()


def tiny_quality_setup(folder: Path, encoder: str, vocabulary: list[str], **trainer) -> tuple[Path, Path]:
    """A tiny-encoder fit config (30 training abstracts, 3 classes; ``trainer`` settings) and a 12-abstract test file."""
    def abstracts(path: Path, rows: int, offset: int) -> Path:
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows([("abstract", "diagnosis"), *(
                (text_of(vocabulary, 6 + i % 5, shift=3 * (i % 3)), NAMES[i % 3]) for i in range(offset, offset + rows))])
        return path

    data = {"train_file": str(abstracts(folder / "train.csv", 30, 0)), "text_column": "abstract",
            "label_column": "diagnosis"}
    config = tiny_config(folder / "tiny.yaml", encoder, data, **{"precision": "32-true", **trainer})
    settings = yaml.safe_load(config.read_text())  # quality.py reads the kept epoch from the checkpoint's name
    settings["trainer"]["callbacks"][0]["init_args"]["filename"] = "best-{epoch}"
    config.write_text(yaml.safe_dump(settings))
    return config, abstracts(folder / "test.csv", 12, 100)


@pytest.mark.slow
def test_seeds_scored_in_separate_runs_merge_into_the_row_of_one_run(tiny_encoder, vocabulary, tmp_path, monkeypatch):
    """The whole path on the tiny encoder: quality.py fits and scores seed 7, then seed 8, each into its
    own file; their merge equals the scores of one quality.py run over both seeds."""
    config, test = tiny_quality_setup(tmp_path, tiny_encoder, vocabulary)

    def quality_run(out: str, *seeds: str) -> dict:
        monkeypatch.setattr(sys, "argv", ["quality.py", "--config", str(config), "--test", str(test), "--runs",
                                          str(tmp_path / "runs"), "--name", "tiny", "--resamples", "50", "--reuse",
                                          "--out", str(tmp_path / out), *seeds])
        quality.main()
        return json.loads((tmp_path / out).read_text())

    quality_run("seed7.json", "--seeds", "1", "--first-seed", "7")
    quality_run("seed8.json", "--seeds", "1", "--first-seed", "8")
    together = quality_run("both.json", "--seeds", "2", "--first-seed", "7")  # --reuse: the two runs above, not refitted
    merged = merge([(name, json.loads((tmp_path / name).read_text())) for name in ("seed7.json", "seed8.json")])
    assert together["settings"]["seeds"] == merged["settings"]["seeds"] == [7, 8]
    assert merged["predictions"]["per_seed"] == together["predictions"]["per_seed"]
    assert merged["predictions"]["gold"] == together["predictions"]["gold"] and len(merged["predictions"]["gold"]) == 12
    for score in ("macro_f1", "micro_f1", "accuracy"):
        assert merged[score]["per_seed"] == pytest.approx(together[score]["per_seed"])
        assert merged[score]["ci95"] == pytest.approx(together[score]["ci95"])
