"""Where results come from: a hash of the source that computed them and the git commit it runs from."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def source_version(root: Path | None = None, exclude: tuple[str, ...] = ()) -> str:
    """Hash of the package's source: every ``*.py`` and the tiers' tuned settings (``data/tuned/*.json``) under
    ``root`` (default: this package), but the paths that start with one of ``exclude`` (relative, ``/``-separated).
    Derived from the files, so a cache keyed by it is never reused by other code."""
    root = Path(root) if root else Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted([*root.rglob("*.py"), *root.glob("data/tuned/*.json")]):
        rel = f.relative_to(root).as_posix()
        if "__pycache__" not in rel and not rel.startswith(exclude):
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def git_commit() -> str | None:
    """The git commit this code runs from, where it runs from a clone."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
