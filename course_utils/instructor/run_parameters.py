"""The parameters given to a run (a YAML file, ``-p NAME VALUE`` pairs), checked against those
the notebooks declare and handed to each notebook that declares them."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from course_utils.instructor.notebook_parameters import NotebookParameter, RunnerError
from course_utils.paths import display_path


def parse_value(text: str) -> Any:
    """Convert a ``-p NAME VALUE`` string the way papermill's own ``-p`` does.

    "True"/"False"/"None" become bool/None, then int, then float; anything else stays a string.
    """
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def read_params_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping ``name: value`` of parameters for all notebooks."""
    path = Path(path)
    if not path.is_file():
        raise RunnerError(f"parameters file {display_path(path)!r} not found "
                          "(pass --params with a YAML file of `name: value` lines)")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RunnerError(f"could not parse {display_path(path)!r} as YAML: {exc}") from exc
    if loaded is None:  # an empty file: no overrides
        return {}
    if not isinstance(loaded, dict):
        raise RunnerError(f"{display_path(path)!r} must be a YAML mapping of `name: value` "
                          f"lines (e.g. `epochs: 2`), got a {type(loaded).__name__}")
    for name, value in loaded.items():
        _check_name(name, f"in {display_path(path)!r}")
        if not _is_plain(value):
            raise RunnerError(f"parameter {name!r} in {display_path(path)!r}: YAML read "
                              f"{value!r} as a {type(value).__name__}; quote it to pass text")
    return loaded


def collect_params(params_file: str | os.PathLike | None,
                   pairs: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """Merge the YAML file and ``-p NAME VALUE`` pairs; like papermill, later sources win."""
    params = read_params_file(params_file) if params_file else {}
    for name, text in pairs:
        _check_name(name, "given with -p")
        params[name] = parse_value(text)
    return params


def _is_plain(value: Any) -> bool:
    """Values papermill can write into a notebook and the run can save as JSON."""
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return value is None or isinstance(value, str | int | float | bool)


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise RunnerError(f"parameter name {name!r} {where} is not a Python variable name")


def check_known(params: dict[str, Any], declared: dict[str, list[NotebookParameter]]) -> None:
    """Raise if a parameter is declared by no notebook: a typo must not grade with defaults."""
    known = sorted({p.name for plist in declared.values() for p in plist})
    unknown = [name for name in params if name not in known]
    if not unknown:
        return
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        lines.append(f"unknown parameter {name!r}: no notebook declares it{hint}")
    lines.append(f"known parameters: {', '.join(known) or 'none'}; see "
                 "`python -m course_utils.instructor.run_notebooks --list-parameters`")
    raise RunnerError("\n".join(lines))


def params_for(params: dict[str, Any], declared: Sequence[NotebookParameter]) -> dict[str, Any]:
    """The subset of ``params`` that one notebook declares (papermill would warn on the rest)."""
    names = {p.name for p in declared}
    return {name: value for name, value in params.items() if name in names}
