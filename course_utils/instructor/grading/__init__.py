"""Exercises and grading (issue 9): release, submit, grade, and the notebook-to-package export.

- ``release``: otter-grader's ``otter assign`` on a master notebook -> ``dist/student/<nb>/``
  and ``dist/autograder/<nb>/`` (``make release``).
- ``grade``: every submission's answer cells run in a sandbox; the tests run in the grader's
  process against proxies, so the verdict is computed outside the student's kernel
  (``make grade SUBMISSIONS=dir``).
- ``submit``: the zip a student hands in (``make submit STUDENT=id``).
- ``export``: cells marked ``#| export`` in a master notebook -> a package module
  (``make export``).

Run ``python -m course_utils.instructor.grading --help``.
"""
