"""The package's shape, kept by a test (issue 11): one job per module and the rules that say so.

- no module over ``MAX_LINES`` lines (the generated ones included: a notebook that grows its
  exported code past it should split it too);
- matplotlib imported by ``course_utils/figures.py`` only (the computing modules run without it);
- no private name (``_x``) imported from another module of the package;
- the README's package tree names every module, and only existing ones.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from course_utils.paths import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "course_utils"
MAX_LINES = 400
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def _imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def test_no_module_is_over_the_line_limit() -> None:
    long = {_name(p): n for p in MODULES
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these by job (over {MAX_LINES} lines): {long}"


def test_only_the_figures_module_imports_matplotlib() -> None:
    importers = set()
    for path in MODULES:
        for node in _imports(path):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            if any(n.split(".")[0] == "matplotlib" for n in names):
                importers.add(_name(path))
    assert importers == {"course_utils/figures.py"}


def test_no_private_name_is_imported_across_modules() -> None:
    found = []
    for path in MODULES:
        for node in _imports(path):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils"):
                found += [f"{_name(path)}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_")]
    assert not found, found


def test_readme_tree_lists_every_module() -> None:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    tree = text.split("<!-- package-tree:start -->", 1)[1].split("<!-- package-tree:end -->")[0]
    listed, folders = set(), []  # folders: (indent, name) of the folders above this line
    for line in tree.splitlines():
        match = re.match(r"^(\s*)([\w/]+\.py|[\w]+/)", line)
        if not match or match.group(2) == "course_utils/":
            continue
        indent, entry = len(match.group(1)), match.group(2)
        folders = [(i, name) for i, name in folders if i < indent]
        if entry.endswith("/"):
            folders.append((indent, entry))
        else:
            listed.add("course_utils/" + "".join(name for _, name in folders) + entry)
    expected = {_name(p) for p in MODULES if p.name != "__init__.py"}
    assert listed == expected, (f"README tree misses {sorted(expected - listed)}; "
                                f"lists missing {sorted(listed - expected)}")
