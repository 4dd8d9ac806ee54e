"""The sandbox the grader runs students' cells in, and the wire format it answers in.

Nothing from the sandbox is unpickled; a timeout, a crash or garbage is an error for that call
only; as root (the CI container) the process runs as nobody, without network, with the grading
files hidden.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from course_utils.instructor.grading import sandbox_server as wire
from course_utils.instructor.grading.sandbox import (
    Sandbox,
    SandboxCrashed,
    SandboxTimeout,
    StudentCodeError,
    StudentFunction,
    isolation,
)

CELLS = [("cell 1", '''
import os
import socket

def double(x):
    return 2 * x

def pair(x):
    return x, {"shape": x.shape}, object()

def identity(value):
    return value

def forever():
    while True:
        pass

def die():
    os._exit(3)

def whoami():
    return os.getuid()

def can_connect():
    try:
        socket.create_connection(("1.1.1.1", 80), timeout=1)
        return True
    except OSError:
        return False

def sees(path):
    return os.path.exists(path) and bool(os.listdir(path))

def write(path):
    try:
        with open(path, "w") as handle:
            handle.write("fake")
        return True
    except OSError:
        return False
'''), ("cell 2", "raise ValueError('this cell fails')"), ("cell 3", "after = 7")]


def test_values_round_trip_without_pickle() -> None:
    blobs: list[bytes] = []
    value = (np.arange(6.0).reshape(2, 3), [1, 2.5, None, "text", True], {"k": np.float32(2)},
             float("nan"), ...)
    data = wire.encode(value, blobs)
    back = wire.decode(data, blobs)
    assert np.array_equal(back[0], value[0]) and back[1] == value[1]
    assert back[2]["k"] == np.float32(2) and np.isnan(back[3]) and back[4] is Ellipsis
    pickled = io.BytesIO()
    np.save(pickled, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        wire.decode({"nd": 0}, [pickled.getvalue()])
    with pytest.raises(wire.ProtocolError):
        wire.decode({"pickle": "gASV"}, [])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    box = Sandbox(CELLS, isolation(), call_timeout=2, cell_timeout=5,
                  hide=[tmp_path_factory.mktemp("grades")],
                  log_dir=tmp_path_factory.mktemp("log"))
    box.start()
    yield box
    box.kill()


def test_cells_run_and_failures_are_reported(sandbox: Sandbox) -> None:
    assert sandbox.cell_status["cell 1"] == "ok" and sandbox.cell_status["cell 3"] == "ok"
    assert "ValueError: this cell fails" in sandbox.cell_status["cell 2"]
    assert sandbox.describe(["double", "after", "nothing"]) == \
        {"double": "callable", "after": "value", "nothing": "missing"}
    assert sandbox.get("after") == 7


def test_calls_return_plain_values_and_opaque_handles(sandbox: Sandbox) -> None:
    assert np.array_equal(StudentFunction(sandbox, "double")(np.arange(3)), [0, 2, 4])
    array, info, other = StudentFunction(sandbox, "pair")(np.zeros((2, 2)))
    assert info == {"shape": (2, 2)} and isinstance(other, wire.Handle)
    assert StudentFunction(sandbox, "identity")(other) is not other  # a new handle...
    assert "object" in repr(StudentFunction(sandbox, "identity")(other))  # ...to the same object
    with pytest.raises(StudentCodeError, match="TypeError"):
        StudentFunction(sandbox, "double")(None)


def test_a_timeout_or_a_crash_fails_that_call_only(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxTimeout, match="no answer within 2 s"):
        StudentFunction(sandbox, "forever")()
    with pytest.raises(SandboxTimeout, match="not called again"):
        StudentFunction(sandbox, "forever")()
    assert StudentFunction(sandbox, "double")(4) == 8  # restarted, cells replayed
    with pytest.raises(SandboxCrashed):
        StudentFunction(sandbox, "die")()
    assert StudentFunction(sandbox, "double")(5) == 10


@pytest.mark.skipif(os.geteuid() != 0, reason="uid drop and namespaces need root")
def test_as_root_the_sandbox_is_confined(sandbox: Sandbox) -> None:
    from course_utils.paths import PROJECT_ROOT

    assert isolation().namespaces, "unshare should work in this container"
    assert StudentFunction(sandbox, "whoami")() == 65534
    assert StudentFunction(sandbox, "can_connect")() is False
    assert StudentFunction(sandbox, "sees")(str(PROJECT_ROOT / "course_utils")) is False
    assert StudentFunction(sandbox, "sees")(str(PROJECT_ROOT / "notebooks")) is False
    assert StudentFunction(sandbox, "write")(str(PROJECT_ROOT / "grades.csv")) is False
    assert sandbox.confinement["uid"] == 65534 and not sandbox.confinement["not_hidden"]


def test_without_isolation_values_and_timeouts_still_work(tmp_path) -> None:
    box = Sandbox(CELLS, isolation("none"), call_timeout=1, cell_timeout=5, log_dir=tmp_path)
    try:
        box.start()
        assert StudentFunction(box, "double")(np.ones(2)).tolist() == [2.0, 2.0]
        with pytest.raises(SandboxTimeout):
            StudentFunction(box, "forever")()
        assert box.get("after") == 7
    finally:
        box.kill()
