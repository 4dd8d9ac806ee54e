"""``--list-parameters``: every notebook's parameters as plain text, or as the README's
markdown table (the block between the ``parameters:start/end`` markers)."""

from __future__ import annotations

from pathlib import Path

from course_utils.instructor.markdown import markdown_table
from course_utils.instructor.notebook_parameters import NotebookParameter


def format_parameters(declared: dict[str, list[NotebookParameter]]) -> str:
    """Plain-text listing: each notebook, then ``name: type = default  # help`` lines."""
    lines = []
    for notebook, plist in declared.items():
        lines.append(notebook)
        if not plist:
            lines.append("  (no cell tagged 'parameters')")
        for p in plist:
            comment = f"  # {p.help}" if p.help else ""
            lines.append(f"  {p.name}: {p.type} = {p.default}{comment}")
    return "\n".join(lines) + "\n"


def format_parameters_markdown(declared: dict[str, list[NotebookParameter]]) -> str:
    """The README's parameter table (the block between the ``parameters:start/end`` markers)."""
    rows = []
    for notebook, plist in declared.items():
        stem = Path(notebook).stem
        if not plist:
            rows.append([stem, "(none)", "", "", ""])
        for p in plist:
            rows.append([stem, f"`{p.name}`", p.type, f"`{p.default}`", p.help])
    return markdown_table(["notebook", "parameter", "type", "default", "meaning"], rows)
