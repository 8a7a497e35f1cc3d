"""CI (``.ci/run``) runs the README's two commands as written, and fails whenever one of them fails."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def readme_commands(text: str) -> list[str]:
    """The line after ``# 1.`` and after ``# 2.`` in the README's first ```bash block."""
    lines = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    return [lines[i + 1] for n in (1, 2) for i, line in enumerate(lines) if line.startswith(f"# {n}. ")]


STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$*" in *"-m pytest"*) printf '%s' "$PYTEST_ADDOPTS" > "$STUB_LOG.pytest_addopts" ;; esac
case "$*" in
    *"-m pip"*) exit 0 ;;
    *"-m medtext"*) exit "${STUB_MEDTEXT_STATUS:-0}" ;;
    *"-m pytest"*) exit "${STUB_PYTEST_STATUS:-0}" ;;
esac
[ "$(basename "$0")" = pip ] && case "$*" in *torch*) exit "${STUB_PIP_STATUS:-0}" ;; esac
exit 0
"""


def run_ci(tmp_path: Path, *args: str, **statuses: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``bash .ci/run ARGS`` with ``pip`` and ``python`` stubs first on PATH that log their arguments
    and exit with ``STUB_<PIP|MEDTEXT|PYTEST>_STATUS``; returns the result and the logged calls."""
    stub = tmp_path / "stub_bin"
    stub.mkdir(exist_ok=True)
    for name in ("pip", "python", "python3"):
        (stub / name).write_text(STUB)
        (stub / name).chmod(0o755)
    log = tmp_path / "calls.log"
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_INDEX_URL", "PYTEST_ADDOPTS")}
    env.update({"PATH": f"{stub}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(log),
                **{f"STUB_{name.upper()}_STATUS": str(value) for name, value in statuses.items()}})
    result = subprocess.run(["bash", str(ROOT / ".ci" / "run"), *args], env=env, capture_output=True, text=True,
                            timeout=120)
    calls = [line for line in log.read_text().splitlines() if "-m pip" not in line] if log.exists() else []
    return result, calls


def test_ci_runs_the_readme_commands_verbatim():
    expected = readme_commands((ROOT / "README.md").read_text())
    assert len(expected) == 2 and expected[0].startswith("pip install torch==") and "pytest" in expected[1]
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    lines = [next((i for i, line in enumerate(script) if line == f"{command} || failed {n} $?"), None)
             for n, command in enumerate(expected, 1)]
    assert None not in lines and lines == sorted(lines), (expected, lines)


def test_readme_test_command_installs_pyarrow():
    """The Parquet reader is tested, so the extras the README's test command installs include pyarrow."""
    test_command = readme_commands((ROOT / "README.md").read_text())[1]
    extras = [extra for group in re.findall(r"\.\[([^\]]+)\]", test_command) for extra in group.split(",")]
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    requirements = [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for e in extras for req in optional[e]]
    assert "pyarrow" in requirements, (extras, requirements)


def test_ci_runs_both_commands_in_order(tmp_path):
    result, calls = run_ci(tmp_path, "--no-venv")
    assert result.returncode == 0, result.stderr
    assert calls == ["pip install torch==2.13.0", "pip install -e .[offline]",
                     "python -m medtext fit --config configs/demo.yaml", "pip install -e .[test]", "python -m pytest -q"]
    # the README's test command, unchanged, lists the 15 slowest tests in CI's log (pytest reads PYTEST_ADDOPTS)
    assert (tmp_path / "calls.log.pytest_addopts").read_text() == "--durations=15"


@pytest.mark.parametrize("statuses, command, status, ran", [
    ({"pip": 3}, 1, 3, 1), ({"medtext": 1}, 1, 1, 3), ({"pytest": 1}, 2, 1, 5)])
def test_ci_stops_at_a_failing_readme_command(tmp_path, statuses, command, status, ran):
    result, calls = run_ci(tmp_path, "--no-venv", **statuses)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert f"README command {command} failed with exit status {status}" in result.stderr
    assert len(calls) == ran, f"nothing after the failure may run: {calls}"


def test_ci_fails_when_pytest_collects_no_tests(tmp_path):
    result, _ = run_ci(tmp_path, "--no-venv", pytest=5)
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "README command 2 failed with exit status 5 (pytest collected no tests)" in result.stderr

