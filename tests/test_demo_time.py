"""The demo's run time is stated once: in the README's paragraph after the first code block."""

import re

from conftest import ROOT

DURATION = re.compile(r"\b(?:\d+\s*|(?:a|an|one|two|three)\s+)(?:seconds?|minutes?|hours?|sec|min|s)\b", re.IGNORECASE)


def test_demo_time_is_stated_once_with_the_cpu():
    readme = (ROOT / "README.md").read_text()
    paragraph = readme.split("```", 2)[2].strip().split("\n\n")[0]
    assert paragraph.startswith("The demo") and len(DURATION.findall(paragraph)) == 1
    assert "AMD EPYC" in paragraph
    demo_row = next(line for line in readme.splitlines() if line.startswith("| `configs/demo.yaml`"))
    assert not DURATION.search(demo_row)
    assert not DURATION.search((ROOT / "configs" / "demo.yaml").read_text())
