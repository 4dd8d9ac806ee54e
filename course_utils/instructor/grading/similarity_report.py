"""The similarity report of one assignment: ``similarity.md`` and ``similarity.html``, the
pairs of ``similarity.similar_pairs`` ranked, each with the two answers side by side (the
students' own code, as handed in), and who handed in the master's solution itself."""

from __future__ import annotations

import html
from pathlib import Path

from course_utils.atomic import atomic_write_text
from course_utils.instructor.grading.grade_reports import quoted
from course_utils.instructor.grading.similarity import THRESHOLD, Pair, similar_pairs

MAX_SHOWN = 200  # pairs shown side by side (the table ranks them all)
STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;width:100%}"
         "td,th{border:1px solid #ccc;vertical-align:top;padding:4px}"
         "pre{white-space:pre-wrap;font-size:12px;margin:0}td.code{width:50%}")


def _intro(name: str, pairs: list[Pair], threshold: float) -> str:
    return (f"{len(pairs)} pairs of {name}'s answers share at least {threshold:.0%} of their "
            "code after normalising names, comments, docstrings and layout (copydetect "
            "fingerprints; the stub's code never counts). Similar is not copied: read both.")


def similarity_markdown(name: str, pairs: list[Pair], like_master: dict[str, list[str]],
                        answers: dict[str, dict[str, str]], threshold: float) -> str:
    lines = [f"# {name}: near-identical answers", "", _intro(name, pairs, threshold), ""]
    if pairs:
        lines += ["| rank | question | students | similarity | shares |", "|---|---|---|---|---|"]
        lines += [f"| {i} | {p.question} | {p.first}, {p.second} | {p.similarity:.0%} | "
                  f"{p.shares[0]:.0%} / {p.shares[1]:.0%} |" for i, p in enumerate(pairs, 1)]
    if len(pairs) > MAX_SHOWN:
        lines += ["", f"The first {MAX_SHOWN} pairs are shown side by side below."]
    for i, p in enumerate(pairs[:MAX_SHOWN], 1):
        lines += ["", f"## {i}. {p.question}: {p.first} and {p.second} ({p.similarity:.0%})"]
        for student in (p.first, p.second):
            lines += ["", f"**{student}**", "", *quoted(answers[student][p.question])]
    if like_master:
        lines += ["", "## Answers near-identical to the master's solution (in no pair)", ""]
        lines += [f"- {q}: {', '.join(s)}" for q, s in sorted(like_master.items())]
    return "\n".join(lines) + "\n"


def similarity_html(name: str, pairs: list[Pair], like_master: dict[str, list[str]],
                    answers: dict[str, dict[str, str]], threshold: float) -> str:
    def esc(text: str) -> str:
        return html.escape(text, quote=True)

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(name)}: "
             f"similarity</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(name)}: near-identical answers</h1>",
             f"<p>{esc(_intro(name, pairs, threshold))}</p>"]
    if len(pairs) > MAX_SHOWN:
        parts.append(f"<p>The first {MAX_SHOWN} of {len(pairs)} pairs (ranked; all are in "
                     "similarity.md's table).</p>")
    for i, p in enumerate(pairs[:MAX_SHOWN], 1):
        parts.append(f"<h2>{i}. {esc(p.question)}: {esc(p.first)} and {esc(p.second)} "
                     f"({p.similarity:.0%}; shares {p.shares[0]:.0%} / {p.shares[1]:.0%})</h2>"
                     f"<table><tr><th>{esc(p.first)}</th><th>{esc(p.second)}</th></tr><tr>")
        for student in (p.first, p.second):
            parts.append(f"<td class='code'><pre>{esc(answers[student][p.question])}</pre></td>")
        parts.append("</tr></table>")
    if like_master:
        parts.append("<h2>Answers near-identical to the master's solution (in no pair)</h2><ul>")
        parts += [f"<li>{esc(q)}: {esc(', '.join(s))}</li>" for q, s in sorted(like_master.items())]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_similarity(out: Path, name: str, answers: dict[str, dict[str, str]], info: dict,
                     threshold: float = THRESHOLD) -> int:
    """Write ``out/similarity.md`` and ``.html`` for one assignment; returns the pair count.
    ``info``: the plan's entry for it (its ``stubs`` and ``solutions``: left out)."""
    pairs, like_master = similar_pairs(answers, info.get("stubs", {}),
                                       info.get("solutions", {}), threshold)
    atomic_write_text(Path(out) / "similarity.md",
                      similarity_markdown(name, pairs, like_master, answers, threshold))
    atomic_write_text(Path(out) / "similarity.html",
                      similarity_html(name, pairs, like_master, answers, threshold))
    return len(pairs)
