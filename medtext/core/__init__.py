"""The base of medtext: errors, atomic files, encoders, metrics and checkpoint files; the only part
of medtext that ``data_modules`` and ``callbacks`` import."""
