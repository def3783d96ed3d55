"""On-disk cache of built artefacts (models, tokenizers), keyed by a hash of their recipe and built
once under a file lock so concurrent pytest-xdist workers never build or corrupt the same entry."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from filelock import FileLock

DONE = "UNLEARN_DONE"


def cache_root() -> Path:
    root = os.environ.get("UNLEARN_CACHE_DIR") or Path.home() / ".cache" / "unlearn"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def recipe_hash(recipe: dict) -> str:
    """Stable 16-hex digest of a JSON-serialisable recipe (sorted keys; non-JSON values via repr)."""
    blob = json.dumps(recipe, sort_keys=True, default=repr).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cached_artefact(kind: str, recipe: dict, build: Callable[[Path], None], root: Path | None = None) -> Path:
    """Return the folder of the artefact for ``recipe``, calling ``build(tmp_dir)`` once if it is absent.

    The build writes into a temporary sibling folder that is renamed into place only when complete,
    so an interrupted build leaves nothing that looks finished.
    """
    root = Path(root) if root is not None else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{kind}-{recipe_hash(recipe)}"
    if (final / DONE).is_file():
        return final
    with FileLock(str(final) + ".lock"):
        if (final / DONE).is_file():  # another worker finished it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
        try:
            build(tmp)
            (tmp / "recipe.json").write_text(json.dumps(recipe, sort_keys=True, indent=1, default=repr))
            (tmp / DONE).write_text("ok\n")
            if final.exists():  # a stale, unfinished folder from a killed run
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def cached_json(path: Path, compute: Callable[[], object]) -> object:
    """The JSON stored at ``path``, else ``compute()``, written there atomically. The computation runs under a
    file lock beside ``path``, so concurrent workers asking for the same result (a target's or gold's
    reference evaluation) compute it once and the others read it. A folder that cannot be written to (a
    read-only model folder) gets no file and no lock: the result is computed and returned."""
    path = Path(path)
    if path.is_file():
        return json.loads(path.read_text())
    if not os.access(path.parent, os.W_OK):
        return compute()
    with FileLock(str(path.with_suffix(".lock"))):
        if path.is_file():  # another worker wrote it while we waited
            return json.loads(path.read_text())
        result = compute()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)
    return result
