"""Errors that medtext reports to the user as one clear line instead of a traceback."""


class MedtextError(Exception):
    """Base class: the CLI prints ``medtext: error: <message>`` and exits with status 2."""


class DataError(MedtextError, ValueError):
    """Bad input data: a missing file or column, an empty text, an unknown label, ..."""


class EncoderLoadError(MedtextError, OSError):
    """A pretrained encoder or tokenizer could not be found or downloaded."""
