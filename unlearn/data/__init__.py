"""Benchmark data: loaders for the real files and deterministic synthetic generators."""

from __future__ import annotations

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


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """--data-dir wins, then UNLEARN_DATA_DIR; None means 'no local data' (use hub or synthetic)."""
    chosen = data_dir if data_dir is not None else os.environ.get("UNLEARN_DATA_DIR")
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {str(path)!r} does not exist or is not a folder")
    return path
