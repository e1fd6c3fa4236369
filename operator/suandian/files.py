"""The files users hand Suandian, read in one place so that every error names the file.

Scenario files, manifests for ``suandian plan``, signal CSVs and job traces are all read
through these functions; whatever goes wrong becomes an :class:`~suandian.errors.InputFileError`
whose message starts with the file's path and says where in it and what to do: a missing
file, a directory, no permission, text that is not UTF-8, YAML that does not parse (with
its line and column). Parsing what the file means is left to the caller, which reports
problems through the same error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from suandian.errors import FieldError, InputFileError

__all__ = ["load_yaml", "load_yaml_all", "parse_yaml", "read_text"]


def read_text(path: Path | str) -> str:
    """The file's text (UTF-8)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(path, [FieldError("", "no such file")]) from None
    except IsADirectoryError:
        raise InputFileError(path, [FieldError("", "is a directory, not a file")]) from None
    except PermissionError:
        raise InputFileError(path, [FieldError("", "not readable (permission denied)")]
                             ) from None
    except UnicodeDecodeError as exc:
        raise InputFileError(path, [FieldError(
            f"byte {exc.start}", "not UTF-8 text (is it the file you meant?)")]) from None
    except OSError as exc:
        raise InputFileError(path, [FieldError("", exc.strerror or str(exc))]) from None


def parse_yaml(text: str, path: Path | str, *, many: bool = False) -> Any:
    """One YAML document of ``text`` (``many``: the list of all), errors naming ``path``."""
    try:
        return list(yaml.safe_load_all(text)) if many else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise InputFileError(path, [FieldError(where, f"not valid YAML: {detail}")]) from None


def load_yaml(path: Path | str) -> Any:
    """The one YAML document in the file."""
    return parse_yaml(read_text(path), path)


def load_yaml_all(path: Path | str) -> list[Any]:
    """Every YAML document in the file (``---`` separated), empty ones included as None."""
    return list(parse_yaml(read_text(path), path, many=True))
