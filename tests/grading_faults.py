"""What a grading worker runs, made to fail, for tests of ``parallel.grade_plan``: workers
import it by name, so it lives in a module of its own."""

from __future__ import annotations

import os

from course_utils.instructor.grading.parallel import grade_one

#: The student whose submission kills the worker grading it, every time.
DYING_STUDENT = "wrong_backward"


def grade_or_die(task, submission, context) -> dict:
    """``grade_one``, but the worker process dies on ``DYING_STUDENT``'s submission."""
    if task.student == DYING_STUDENT:
        os._exit(70)
    return grade_one(task, submission, context)
