"""Shared helpers for the course notebooks."""
