"""The instructor's side: graded runs of the notebooks and grading."""
