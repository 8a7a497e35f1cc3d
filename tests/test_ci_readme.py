"""CI (``.ci/run``) runs the README's two commands as written, and fails whenever one of them fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def readme_commands(text: str) -> list[str]:
    """The line after ``# 1.`` and after ``# 2.`` in the README's first ```bash block."""
    lines = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    return [lines[i + 1] for n in (1, 2) for i, line in enumerate(lines) if line.startswith(f"# {n}. ")]


def run_ci(tmp_path: Path, *args: str, readme: Path | None = None) -> subprocess.CompletedProcess:
    """``bash .ci/run``; a ``python3`` that fails at once stands in, so nothing builds a virtualenv."""
    stub = tmp_path / "stub_bin"
    stub.mkdir(exist_ok=True)
    (stub / "python3").write_text("#!/bin/sh\necho 'python3 called' >&2\nexit 97\n")
    (stub / "python3").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CI_README", "CI_VENV", "TORCH_INDEX_URL")}
    env["PATH"] = f"{stub}{os.pathsep}{os.environ['PATH']}"
    if readme is not None:
        env["CI_README"] = str(readme)
    return subprocess.run(["bash", str(ROOT / ".ci" / "run"), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_ci_reads_the_readme_commands_verbatim(tmp_path):
    expected = readme_commands((ROOT / "README.md").read_text())
    assert len(expected) == 2 and expected[0].startswith("pip install torch==") and "pytest" in expected[1]
    result = run_ci(tmp_path, "--print-commands")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_readme_test_command_installs_pyarrow():
    """The Parquet reader is tested, so the extras the README's test command installs include pyarrow."""
    test_command = readme_commands((ROOT / "README.md").read_text())[1]
    extras = [extra for group in re.findall(r"\.\[([^\]]+)\]", test_command) for extra in group.split(",")]
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    requirements = [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for e in extras for req in optional[e]]
    assert "pyarrow" in requirements, (extras, requirements)


def fake_readme(tmp_path: Path, first: str, second: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(f"# x\n\n```bash\n# 1. install\n{first}\n\n# 2. test\n{second}\n```\n")
    return path


def test_ci_runs_both_commands_in_order(tmp_path):
    log = tmp_path / "log"
    readme = fake_readme(tmp_path, f"echo one >> {log} && echo again >> {log}", f"echo two >> {log}")
    result = run_ci(tmp_path, "--no-venv", readme=readme)
    assert result.returncode == 0, result.stderr
    assert log.read_text().split() == ["one", "again", "two"]


@pytest.mark.parametrize("first, status", [("exit 3", 3), ("false; echo ran >> {log}", 1),
                                           ("true && false && echo ran >> {log}", 1)])
def test_ci_stops_at_a_failing_readme_command(tmp_path, first, status):
    log = tmp_path / "log"
    readme = fake_readme(tmp_path, first.format(log=log), f"echo two >> {log}")
    result = run_ci(tmp_path, "--no-venv", readme=readme)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert f"README command 1 failed with exit status {status}" in result.stderr
    assert not log.exists(), "nothing after the failure may run"


def test_ci_fails_when_pytest_collects_no_tests(tmp_path):
    empty = tmp_path / "no_tests"
    empty.mkdir()
    (empty / "pytest.ini").write_text("[pytest]\n")
    second = f"{sys.executable} -m pytest -q -p no:cacheprovider -c {empty / 'pytest.ini'} {empty}"
    result = run_ci(tmp_path, "--no-venv", readme=fake_readme(tmp_path, "true", second))
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "README command 2 failed with exit status 5 (pytest collected no tests)" in result.stderr


def test_ci_fails_on_a_readme_without_the_commands(tmp_path):
    readme = tmp_path / "README.md"
    # only the first ```bash block counts, even if a later one has a "# 2."
    readme.write_text("# x\n\n```bash\n# 1. install\npip install -e .\n```\n\n```bash\n# 2. other\ntrue\n```\n")
    result = run_ci(tmp_path, "--print-commands", readme=readme)
    assert result.returncode == 1
    assert "no command after '# 2.'" in result.stderr
