"""Command line: ``python -m course_utils.instructor.grading {release,grade,fixtures,submit,export}
...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.paths import PROJECT_ROOT

DEFAULT_ASSIGNMENT = "07_im2col_and_fold"


def master_notebooks() -> list[Path]:
    """Every notebook in notebooks/ with an ``# ASSIGNMENT CONFIG`` cell, in course order."""
    from course_utils.instructor.grading.release import is_master_notebook

    return [p for p in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
            if is_master_notebook(p)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.instructor.grading",
                                     description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    release = commands.add_parser("release", help="student + autograder versions (otter assign)")
    release.add_argument("notebooks", nargs="*", type=Path,
                         help="master notebooks (default: every notebook with an "
                              "'# ASSIGNMENT CONFIG' cell)")
    release.add_argument("--out", type=Path, default=PROJECT_ROOT / "dist")
    release.add_argument("--backup", action="store_true",
                         help="move a student folder holding changed work to "
                              "<out>/student-backup/ instead of stopping")

    grade = commands.add_parser("grade", help="grade every submission in a folder")
    grade.add_argument("submissions", type=Path, help="folder of submissions (folders or zips)")
    grade.add_argument("--assignment", default=DEFAULT_ASSIGNMENT)
    grade.add_argument("--autograder", type=Path, default=None,
                       help="default: dist/autograder/<assignment>")
    grade.add_argument("--out", type=Path, default=PROJECT_ROOT / "grades")
    grade.add_argument("--timeout", type=float, default=10.0,
                       help="seconds per cell and per call of a student's function")
    grade.add_argument("--budget", type=float, default=120.0,
                       help="seconds for all the tests of one submission")
    grade.add_argument("--memory-mb", type=int, default=1024,
                       help="memory of one submission: its cgroup (all processes and /tmp) "
                            "where the machine allows one, and each process's address space")
    grade.add_argument("--isolation", choices=("auto", "none"), default="auto")
    grade.add_argument("--marks", type=Path, default=None,
                       help="CSV of the hand-graded questions' points (fill in "
                            "<out>/written/marks_template.csv), merged into grades.csv")

    sub = commands.add_parser("submit", help="zip a notebook for the grader as "
                                             "<student>__<assignment>.zip (course_utils.submit)")
    sub.add_argument("notebook", type=Path)
    sub.add_argument("--student", required=True, help="your student id (the zip's name)")
    sub.add_argument("--assignment", default=None, help="checked against the notebook's own")
    sub.add_argument("--out", type=Path, default=PROJECT_ROOT / "submissions")
    sub.add_argument("--replace", action="store_true", help="replace an earlier zip")
    sub.add_argument("--allow-empty", action="store_true", help="hand in unanswered stubs")

    demo = commands.add_parser("fixtures", help="grade the made-up fixture submissions "
                                                "(tests/fixtures/submissions) of every exercise")
    demo.add_argument("assignments", nargs="*", help="default: every fixture folder")
    demo.add_argument("--out", type=Path, default=PROJECT_ROOT / "grades" / "fixtures")

    commands.add_parser("questions", help="the table of every exercise question (markdown)")

    export = commands.add_parser("export", help="write the modules of '#| export' cells")
    export.add_argument("--check", action="store_true", help="only report stale modules")

    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            from course_utils.instructor.grading.release import release_all

            released = release_all(args.notebooks or master_notebooks(), args.out,
                                   backup=args.backup)
            for notebook, (student, autograder) in released.items():
                print(f"{notebook.name}: {student} (for students), {autograder} (hidden tests)")
            from course_utils.instructor.grading.bundle import build_bundle

            folder, archive = build_bundle(args.out)
            print(f"student course bundle: {folder} and {archive} (hand out either)")
        elif args.command == "grade":  # only submissions: fixtures are the `fixtures` command
            from course_utils.instructor.grading.grade import grade_all

            autograder = args.autograder or PROJECT_ROOT / "dist" / "autograder" / args.assignment
            grade_all(args.submissions, autograder, args.out, timeout=args.timeout,
                      budget=args.budget, memory_mb=args.memory_mb,
                      isolation_mode=args.isolation, marks=args.marks)
        elif args.command == "fixtures":
            from course_utils.instructor.grading.fixtures import grade_fixtures

            tables = grade_fixtures(args.out, args.assignments or None)
            for name, table in tables.items():
                print(f"== {name} (grades in {args.out / name / 'grades'})\n{table}\n")
        elif args.command == "questions":
            from course_utils.instructor.grading.release import questions_markdown

            print(questions_markdown(master_notebooks()), end="")
        elif args.command == "submit":
            from course_utils.submit import submit

            target, replaced = submit(args.notebook, args.student, args.out, args.assignment,
                                      replace=args.replace, allow_empty=args.allow_empty)
            print(f"{'replaced' if replaced else 'wrote'} {target}: hand this file in")
        elif args.command == "export":
            from course_utils.instructor.grading.export import export_all

            stale = export_all(check=args.check)
            verb = "stale" if args.check else "rewritten"
            for module in stale:
                print(f"{verb}: {module.relative_to(PROJECT_ROOT)}")
            if args.check and stale:
                print("run `make export` (python -m course_utils.instructor.grading export)")
                return 1
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
