"""How bad data is reported: the dataset errors and warnings, and the unreadable-file rules.

A broken layout or an unusable parameter raises ``DatasetError``; a single bad file is skipped
with a ``DatasetWarning`` naming it (one warning per group of files, see ``warn_grouped``). A
split left empty or mostly unreadable (``MAX_UNREADABLE_SHARE``) raises.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from course_utils.paths import display_path

#: A split with more than this share of its (chosen) files unreadable is an error, not a skip:
#: it usually means a broken copy, and training on the rest would mislead.
MAX_UNREADABLE_SHARE = 0.5


class DatasetError(ValueError):
    """The dataset (or a loading parameter) cannot be used; the message says how to fix it."""


class DatasetWarning(UserWarning):
    """Something in the dataset was skipped or converted; the message names the files."""


class UnreadableImageError(DatasetError):
    """An image file that exists but does not decode (corrupt, truncated, unsupported).

    path: the file; reason: why, without the path (for grouped warnings).
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"cannot load {display_path(path)}: {reason}; remove or re-export it "
                         "(find_images skips corrupt headers; loaders skip truncated files)")


def warn_grouped(root: Path, items: list[tuple[Path, str]], what: str, fix: str,
                 stacklevel: int = 4) -> None:
    """One warning for a group of files: how many, the first few, and what to do.

    stacklevel: frames up to the caller's code (so the warning points at the user's line).
    """
    if not items:
        return
    shown = "; ".join(f"{display_path(p)}: {reason}" for p, reason in items[:5])
    more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
    warnings.warn(f"{display_path(root)}: {len(items)} file(s) {what}: {shown}{more}. {fix}",
                  DatasetWarning, stacklevel=stacklevel)


def check_split_readable(root: str | os.PathLike, split: str, total: int,
                         skipped: Sequence[tuple[Path, str]]) -> None:
    """DatasetError naming ``root/split`` if its ``total`` files are all or mostly unreadable.

    skipped: (path, reason) of the files of that split that did not decode.
    """
    if not skipped or len(skipped) <= MAX_UNREADABLE_SHARE * total and len(skipped) < total:
        return
    shown = "; ".join(f"{display_path(p)}: {reason}" for p, reason in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    left = "no image is left" if len(skipped) >= total else "most of its images are unusable"
    raise DatasetError(
        f"{display_path(Path(root) / split)}: {len(skipped)} of {total} images cannot be "
        f"decoded, so {left} ({shown}{more}). This usually means a broken copy: copy or export "
        "the images again (or remove the broken files), then run again")


def warn_unreadable(root: str | os.PathLike, skipped: Sequence[tuple[Path, str]],
                    stacklevel: int = 2) -> None:
    """One DatasetWarning naming the files that were skipped because they do not decode.

    stacklevel: as for warnings.warn, counted from the caller of this function.
    """
    warn_grouped(Path(root), list(skipped), "skipped (they do not decode)",
                 "Remove or re-export them (they are left out of training, testing and "
                 "statistics).", stacklevel=stacklevel + 2)
