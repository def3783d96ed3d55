"""Benchmark data: loaders for the real files and deterministic synthetic generators."""

from __future__ import annotations

import json
import os
from pathlib import Path


class DataError(ValueError):
    """Bad benchmark data; the message names the file, the row and the field."""

    def __init__(self, path: str | Path, message: str, row: int | None = None, field: str | None = None):
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
        self.path, self.row, self.field = str(path), row, field


def json_rows(path: str | Path, text: str, *, lines: bool | None = None) -> list:
    """The rows of a JSON array or of JSON Lines (``lines``: None decides by the text, a leading "[" is an array);
    a :class:`DataError` naming the file, and the line or the row, when the text is neither."""
    if lines is None:
        lines = not text.lstrip().startswith("[")
    if not lines:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(path, f"malformed JSON array: {err.msg} at line {err.lineno}") from None
        if not isinstance(rows, list):
            raise DataError(path, f"expected a JSON array of rows, got {type(rows).__name__}")
        return rows
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(path, f"malformed JSON line {lineno}: {err.msg}", row=len(rows)) from None
    return rows


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """--data-dir wins, then UNLEARN_DATA_DIR; None means 'no local data' (use hub or synthetic)."""
    chosen = data_dir if data_dir is not None else os.environ.get("UNLEARN_DATA_DIR")
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {str(path)!r} does not exist or is not a folder")
    return path
