"""A checkpoint's saved data settings when ``validate``/``test``/``predict --ckpt_path`` reads another file.

The checkpoint's data settings are the command's defaults; what the user states overrides them. Two
things make that hold for a differently shaped file: a ``--data.labels_file`` the user gives replaces
the saved inline ``label_map`` (which would otherwise win inside the label set), its values mapped onto
the checkpoint's classes by name; and an error about a column or label that a *saved* setting named says
which saved setting it was and how to override it.
"""

from __future__ import annotations

import re
from typing import Any, Optional

# the settings whose saved value names something in the user's file: their errors get a hint
COLUMN_SETTINGS = ("text_column", "id_column", "label_column", "label_columns")
MISSING_COLUMN = re.compile(r"\b(?:text|id|label) column '([^']+)' not found")
UNKNOWN_LABEL = re.compile(r"label '[^']*' is not in the label set")


def _init_args(config: Any) -> dict:
    args = config.get("init_args") if hasattr(config, "get") else None
    if args is None:
        return {}
    return dict(vars(args)) if hasattr(args, "__dict__") and not isinstance(args, dict) else dict(args)


def saved_settings_in_effect(data_config: Any, saved: Optional[dict]) -> dict[str, Any]:
    """The data settings of this command that still hold the checkpoint's saved value (the user did not
    change them), for the error hints. Empty when the data class itself was changed."""
    if not saved or data_config is None or data_config.get("class_path") != saved.get("class_path"):
        return {}
    given, stored = _init_args(data_config), saved.get("init_args") or {}
    return {key: value for key, value in stored.items() if value is not None and given.get(key) == value}


def prefer_given_labels_file(data_config: Any, saved: Optional[dict]) -> bool:
    """``--data.labels_file`` given for this command (differing from the saved one) while ``label_map``
    is still the checkpoint's: drop the saved map, so the given file's label values are read. True if dropped."""
    in_effect = saved_settings_in_effect(data_config, saved)
    given = _init_args(data_config)
    stored = (saved or {}).get("init_args") or {}
    if "label_map" in in_effect and given.get("labels_file") and given.get("labels_file") != stored.get("labels_file"):
        setattr(data_config.init_args, "label_map", None)
        return True
    return False


def hint_for(message: str, in_effect: dict[str, Any], ckpt_path: str) -> Optional[str]:
    """What to add to a data error ``message`` when a saved setting caused it, or ``None``."""
    missing = MISSING_COLUMN.search(message)
    if missing:
        column = missing.group(1)
        for key in COLUMN_SETTINGS:
            value = in_effect.get(key)
            if value == column or (isinstance(value, (list, tuple)) and column in value):
                none = ", or null for none" if key == "id_column" else ""
                return (f"data.{key}={value!r} is a setting saved in {ckpt_path}: give --data.{key} "
                        f"with this file's column{none}")
    if UNKNOWN_LABEL.search(message) and "label_map" in in_effect:
        return (f"the label set is data.label_map saved in {ckpt_path}: give --data.labels_file FILE mapping "
                "this file's label values to the checkpoint's class names")
    return None
