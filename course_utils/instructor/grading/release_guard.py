"""``make release`` never overwrites a student's work in ``dist/student/<notebook>/``.

Students work in that folder (the README says so): answers in the notebook, ``grader.export``'s
zip, otter's ``.OTTER_LOG``. Each release records what it wrote there (a hash per file) in
``dist/autograder/<notebook>/student_files.json``; before the next release replaces the folder,
every file in it is compared with that record (or, for a folder released before records
existed, with the fresh release). A notebook is compared without its cell ids (otter draws new
ones each run). Any file that is new or changed is the student's: the release stops and names
it, or, with ``backup=True`` (``release --backup``), moves the whole folder aside to
``dist/student-backup/<notebook>-<time>/`` and says so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

RECORD_NAME = "student_files.json"


def _digest(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".ipynb":
        try:  # otter assign draws new cell ids on every run: they are not the student's work
            notebook = json.loads(data)
            for cell in notebook.get("cells", []):
                if isinstance(cell, dict):
                    cell.pop("id", None)
            data = json.dumps(notebook, sort_keys=True).encode()
        except (ValueError, AttributeError, TypeError):
            pass  # not JSON any more: compared as bytes, so it counts as changed
    return hashlib.sha256(data).hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """{path relative to ``folder``: digest} of every file under it, hidden files included
    (not Python's ``__pycache__``: running the public tests may write it, it is no work)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): _digest(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
            and "__pycache__" not in p.relative_to(folder).parts}


def read_record(autograder: Path) -> dict[str, str] | None:
    """What the last release wrote into the student folder, or None (no record yet)."""
    path = Path(autograder) / RECORD_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def changed_files(target: Path, record: dict[str, str]) -> list[str]:
    """Files under ``target`` that the release did not write as they are now (a copy of a
    released file, such as a JupyterLab checkpoint of the untouched notebook, is not work)."""
    if not Path(target).exists():
        return []
    written = set(record.values())
    return [name for name, digest in folder_digests(target).items()
            if record.get(name) != digest and digest not in written]


def protect_student_work(target: Path, record: dict[str, str], out: Path,
                         backup: bool = False) -> Path | None:
    """Make way for a release into ``target``: return None if it holds no student work, or
    the backup folder it was moved to (``backup=True``); otherwise raise RuntimeError naming
    the changed files and what to do."""
    changed = changed_files(target, record)
    if not changed:
        return None
    if not backup:
        shown = ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else "")
        raise RuntimeError(f"{target} holds work that release did not write ({shown}): it would "
                           "be overwritten. Move that folder elsewhere, or release with --backup "
                           "(make release RELEASE_ARGS=--backup) to move it aside first")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    destination = Path(out) / "student-backup" / f"{Path(target).name}-{stamp}"
    number = 1
    while destination.exists():  # two releases in one second
        number += 1
        destination = destination.with_name(f"{Path(target).name}-{stamp}-{number}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(target), destination)
    return destination
