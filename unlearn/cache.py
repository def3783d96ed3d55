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


MANIFEST = "manifest.json"  # {file: [size, sha256]} of a finished artefact, checked before it is reused
_VERIFIED: dict[str, tuple] = {}  # folder -> the (file, size, mtime) state whose hashes matched in this process


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (DONE, MANIFEST))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    manifest = {str(p.relative_to(folder)): [p.stat().st_size, _sha256(p)] for p in _files(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=1))


def intact(folder: Path) -> bool:
    """A finished artefact whose files are the ones its build wrote (sizes, then hashes once per process and
    file state). A folder finished before manifests existed has none and is taken as it is."""
    if not (folder / DONE).is_file():
        return False
    if not (folder / MANIFEST).is_file():
        return True
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        state = tuple((name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns) for name in sorted(manifest))
    except (OSError, ValueError):
        return False
    if any(size != manifest[name][0] for name, size, _ in state):
        return False
    if _VERIFIED.get(str(folder)) == state:
        return True
    if any(_sha256(folder / name) != manifest[name][1] for name in manifest):
        return False
    _VERIFIED[str(folder)] = state
    return True


def cached_artefact(kind: str, recipe: dict, build: Callable[[Path], None], root: Path | None = None) -> Path:
    """Return the folder of the artefact for ``recipe``, calling ``build(tmp_dir)`` once if it is absent.

    The build writes into a temporary sibling folder that is renamed into place only when complete,
    so an interrupted build leaves nothing that looks finished. A finished folder whose files no longer
    match its manifest (a truncated or corrupted weight file) is built again, not loaded.
    """
    root = Path(root) if root is not None else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{kind}-{recipe_hash(recipe)}"
    if intact(final):
        return final
    with FileLock(str(final) + ".lock"):
        if intact(final):  # another worker finished it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
        try:
            build(tmp)
            (tmp / "recipe.json").write_text(json.dumps(recipe, sort_keys=True, indent=1, default=repr))
            write_manifest(tmp)
            (tmp / DONE).write_text("ok\n")
            if final.exists():  # a stale folder: unfinished (a killed run) or no longer intact
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary sibling, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary readable files
    os.replace(tmp, path)


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
