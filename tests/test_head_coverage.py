"""Every head that ``medtext.heads`` exports is in each table of heads the tests run through."""

import inspect

import pytest

import medtext.heads
from medtext.heads import ClassificationHead

HEAD_TABLES = ["test_heads_in_model", "test_ddp_training", "test_onnx_export"]


def exported_heads() -> set[str]:
    return {name for name in medtext.heads.__all__ if inspect.isclass(cls := getattr(medtext.heads, name))
            and issubclass(cls, ClassificationHead) and cls is not ClassificationHead}


def named_heads(table: dict) -> set[str]:
    """The head classes a test table names (class objects, partials, class paths or CLI options)."""
    return {name for name in exported_heads() if name in repr(table)}


@pytest.mark.parametrize("module", HEAD_TABLES)
def test_every_exported_head_is_tested(module):
    heads = named_heads(__import__(module).HEADS)
    assert heads == exported_heads(), f"tests/{module}.py HEADS lacks {sorted(exported_heads() - heads)}"


def test_head_capabilities_are_declared_on_the_class():
    for name in exported_heads():
        head = getattr(medtext.heads, name)
        overrides = head.forward_with_attention is not ClassificationHead.forward_with_attention
        assert head.has_attention_weights == overrides, f"{name}: has_attention_weights and forward_with_attention disagree"
