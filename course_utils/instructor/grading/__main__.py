"""Command line: ``python -m course_utils.instructor.grading
{release,grade,merge,lms,fixtures,submit,questions,export} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.paths import PROJECT_ROOT


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

    grade = commands.add_parser("grade", help="grade every submission in a folder: each "
                                              "against the assignment its notebook declares")
    grade.add_argument("submissions", type=Path, help="folder of submissions (folders or zips)")
    grade.add_argument("--assignment", action="append", default=None,
                       help="grade only this assignment (repeat for several; default: every "
                            "assignment released in --autograders)")
    grade.add_argument("--autograders", type=Path, default=PROJECT_ROOT / "dist" / "autograder",
                       help="the released assignments (make release)")
    grade.add_argument("--autograder", type=Path, default=None,
                       help="one assignment's autograder: grade every entry as that assignment "
                            "(serially) straight into --out, as before the course mode")
    grade.add_argument("--out", type=Path, default=PROJECT_ROOT / "grades")
    grade.add_argument("--jobs", type=int, default=None,
                       help="submissions graded at once, each in its own sandbox (default: "
                            "the cores this process may use)")
    grade.add_argument("--shard", default=None, metavar="K/N",
                       help="grade only the K-th of N parts of the inbox (then `merge`)")
    grade.add_argument("--regrade", action="store_true",
                       help="grade again what an earlier run already graded")
    grade.add_argument("--timeout", type=float, default=10.0,
                       help="seconds per cell and per call of a student's function")
    grade.add_argument("--budget", type=float, default=120.0,
                       help="seconds for all the tests of one submission")
    grade.add_argument("--memory-mb", type=int, default=1024,
                       help="memory of one submission: its cgroup (all processes and /tmp) "
                            "where the machine allows one, and each process's address space")
    grade.add_argument("--isolation", choices=("auto", "none"), default="auto",
                       help="auto: bubblewrap, and stop where it cannot confine the sandbox; "
                            "none: no confinement (only for notebooks you trust)")
    grade.add_argument("--marks", type=Path, default=None,
                       help="CSV of the hand-graded questions' points (fill in "
                            "<out>/marks_template.csv), merged into grades.csv and gradebook.csv")

    merge = commands.add_parser("merge", help="the course's tables from `grade --shard` folders")
    merge.add_argument("shards", nargs="+", type=Path, help="every shard's --out folder")
    merge.add_argument("--out", type=Path, default=PROJECT_ROOT / "grades")
    merge.add_argument("--marks", type=Path, default=None)

    lms = commands.add_parser("lms", help="gradebook.csv as a Canvas or Moodle upload")
    lms.add_argument("grades", type=Path, help="the folder holding gradebook.csv")
    lms.add_argument("--format", choices=("canvas", "moodle"), required=True)
    lms.add_argument("--mapping", type=Path, required=True,
                     help="CSV: student -> the LMS's id (see lms.py / README)")
    lms.add_argument("--moodle-id", choices=("email", "idnumber"), default="email")
    lms.add_argument("--out", type=Path, default=None, help="default: <grades>/lms/<format>.csv")

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
        elif args.command == "grade" and args.autograder:
            from course_utils.instructor.grading.grade import grade_all

            grade_all(args.submissions, args.autograder, args.out, timeout=args.timeout,
                      budget=args.budget, memory_mb=args.memory_mb,
                      isolation_mode=args.isolation, marks=args.marks)
        elif args.command == "grade":  # only submissions: fixtures are the `fixtures` command
            from course_utils.instructor.grading.course_run import grade_course
            from course_utils.instructor.grading.shards import parse_shard

            grade_course(args.submissions, args.autograders, args.out, only=args.assignment,
                         jobs=args.jobs, shard=parse_shard(args.shard) if args.shard else None,
                         regrade=args.regrade, marks=args.marks, timeout=args.timeout,
                         budget=args.budget, memory_mb=args.memory_mb,
                         isolation_mode=args.isolation)
        elif args.command == "merge":
            from course_utils.instructor.grading.course_run import merge as merge_shards

            merge_shards(args.shards, args.out, args.marks)
            print(f"merged {len(args.shards)} shards into {args.out}")
        elif args.command == "lms":
            from course_utils.instructor.grading.lms import write_export

            path = write_export(args.grades, args.format, args.mapping, args.out, args.moodle_id)
            print(f"wrote {path}")
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
