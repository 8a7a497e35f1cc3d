"""The benchmark overlay that makes a HoC config select by the global-threshold micro-F1
(benchmarks/configs/select_by_global_threshold.yaml, the issue-14 measurement) layers on a shipped
config without losing a callback."""

from conftest import ROOT
from test_configs import BEST, SHARED_CALLBACKS, resolved


def test_the_benchmark_selection_overlay_keeps_every_callback_and_monitors_the_global_micro_f1():
    """benchmarks/configs/select_by_global_threshold.yaml (issue-14 measurement), after a HoC config."""
    overlay = ROOT / "benchmarks" / "configs" / "select_by_global_threshold.yaml"
    plain = resolved(ROOT / "configs" / "hoc" / "minilm_label_attention.yaml")["trainer"]["callbacks"]
    overlaid = resolved(ROOT / "configs" / "hoc" / "minilm_label_attention.yaml", "--config", str(overlay))
    callbacks = overlaid["trainer"]["callbacks"]
    assert [c["class_path"] for c in callbacks] == [c["class_path"] for c in plain] == SHARED_CALLBACKS
    monitors = {c["class_path"]: c["init_args"].get("monitor") for c in callbacks}
    assert monitors[BEST] == monitors["callbacks.SelectionEarlyStopping"] == "val/micro_f1"
    assert plain[0]["init_args"].get("monitor") is None  # the shipped config follows the model's metric
