"""Where the built-in templates and seeds live: beside the package in a checkout,
inside it (``digest/_data``) in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # digest/, not digest/core/


def _data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def builtin_templates() -> Path:
    return _data_dir("templates")


def builtin_seeds() -> Path:
    return _data_dir("seeds")
