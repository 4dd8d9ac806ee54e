"""Atomic writes keep the previous file when a write fails half-way."""

import pytest

from course_utils.atomic import atomic_write, atomic_write_json, atomic_write_text


def test_write_then_replace(tmp_path):
    path = tmp_path / "sub" / "result.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "ckpt.bin"
    atomic_write_text(path, "previous")

    def crash(handle):
        handle.write(b"half")
        raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.bin"]
