"""Checks that the exercises' public tests call: each compares a student's function with an
independent reference (PyTorch, autograd, finite differences, a simulated device). Shipped to
students; the hidden tests' extra cases live with the grader."""
