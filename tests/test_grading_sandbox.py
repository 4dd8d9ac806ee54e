"""The sandbox the grader runs students' cells in, and the wire format it answers in.

Nothing from the sandbox is unpickled; a timeout, a crash or garbage is an error for that call
only; as root (the CI container) the process runs as nobody, without network, with the grading
files hidden.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from course_utils.instructor.grading import sandbox_server as wire
from course_utils.instructor.grading.sandbox import (
    MAX_STARTS,
    BudgetExceeded,
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

    assert isolation().namespaces, "bwrap should work in this container (make test installs it)"
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


# -- issue 17: every wait bounded, the budget inside cells, confinement as measured ------------

STALL = '''
import fcntl
import sys
import time

fcntl.fcntl(int(sys.argv[1]), 1031, 4096)  # F_SETPIPE_SZ: the request pipe holds 4 KB
sys.modules["__main__"].read_message = lambda *args: time.sleep(3600)  # and stops reading

def echo(value):
    return value
'''


def test_a_sandbox_that_stops_reading_cannot_block_the_grader(tmp_path) -> None:
    box = Sandbox([("cell 1", STALL)], isolation(), call_timeout=1, cell_timeout=5,
                  log_dir=tmp_path)
    try:
        box.start()
        started = time.monotonic()
        with pytest.raises(SandboxTimeout):  # a 8 MB request into a pipe nobody reads
            StudentFunction(box, "echo")(np.zeros(1 << 20))
        assert time.monotonic() - started < 3
    finally:
        box.kill()


def test_the_budget_holds_while_cells_run(tmp_path) -> None:
    """Cells that each sleep just under the cell limit: the submission's deadline stops them."""
    cells = [(f"cell {i}", "import time\ntime.sleep(0.8)") for i in range(10)]
    box = Sandbox(cells, isolation(), cell_timeout=1, log_dir=tmp_path,
                  deadline=time.monotonic() + 2.5)
    started = time.monotonic()
    with pytest.raises(BudgetExceeded):
        box.start()
    assert time.monotonic() - started < 3.5
    assert not box.alive()


def test_replays_after_timeouts_are_bounded(tmp_path) -> None:
    """Each hanging cell used to replay every earlier cell (time ~ cells squared): the number
    of restarts is capped, so the time is at most MAX_STARTS replays."""
    cells = [("slow", "import time\ntime.sleep(0.1)")]
    cells += [(f"hang {i}", "while True:\n    pass") for i in range(30)]
    box = Sandbox(cells, isolation(), cell_timeout=0.3, log_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(SandboxCrashed, match="restarted"):
        box.start()
    assert time.monotonic() - started < MAX_STARTS * (0.1 + 0.3 + 0.5) + 2
    assert len(box.skipped) == MAX_STARTS  # one skipped per start, then no more starts


CONFINED_CELL = '''
import ctypes
import os

def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as error:
        return type(error).__name__

def fill(path, mb):
    written = 0
    try:
        with open(path, "wb") as handle:
            for _ in range(mb):
                handle.write(b"x" * (1 << 20))
                written += 1
    except OSError:
        pass
    return written

def shm_segment(key):
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.shmget(key, 4096, 0o1600)  # IPC_CREAT | 0600: -1 only if refused

def shm_exists(key):
    return ctypes.CDLL(None).shmget(key, 4096, 0) >= 0
'''


@pytest.mark.skipif(os.geteuid() != 0 or not isolation().namespaces,
                    reason="bwrap as root, as in CI")
def test_bwrap_confinement_as_measured(tmp_path) -> None:
    """The README's isolation table: what the sandbox sees and may write."""
    import socket

    host = tmp_path / "host"
    host.mkdir(mode=0o777)
    os.chmod(host, 0o777)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(host / "socket"))
    boxes = [Sandbox([("cell 1", CONFINED_CELL)], isolation(), log_dir=tmp_path / str(i))
             for i in range(2)]
    try:
        for box in boxes:
            box.start()
        call = lambda name, *args: StudentFunction(boxes[0], name)(*args)  # noqa: E731
        assert {"etc", "home", "run", "var", "srv", "mnt"}.isdisjoint(call("listing", "/"))
        for path in ("/run", "/var", "/run/lock", "/var/lock", str(host), "/home", "/etc"):
            assert call("listing", path) == "FileNotFoundError", path
        assert call("listing", "/grading") == ["sandbox_server.py"]
        assert call("fill", "/tmp/big", 100) < 64  # /tmp: 64 MB
        assert call("fill", "/usr/x", 1) == 0  # read-only
        assert call("shm_segment", 0x5EED17) >= 0
        assert call("shm_exists", 0x5EED17)
        assert not StudentFunction(boxes[1], "shm_exists")(0x5EED17)  # own IPC namespace
        assert boxes[0].confinement["uid"] == 65534
    finally:
        server.close()
        for box in boxes:
            box.kill()


SPIN_CELL = '''
import os
import resource
import time

def spin(processes, seconds):
    """CPU seconds that ``processes`` busy processes used in ``seconds`` of wall time."""
    started = time.monotonic()
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() - started < seconds:
                pass
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime, time.monotonic() - started
'''


@pytest.mark.skipif(os.geteuid() != 0 or not isolation().namespaces,
                    reason="bwrap and a cgroup as root, as in CI")
def test_a_submission_gets_its_cpu_quota_however_many_processes_it_starts(tmp_path,
                                                                           monkeypatch) -> None:
    """Submissions graded side by side cannot take each other's cores (every time limit is
    wall-clock): the cgroup caps the CPU time of all of one submission's processes. A quarter
    core here, so four busy processes that would take every core of a 2-core machine stay
    under it."""
    from course_utils.instructor.grading import cgroup

    monkeypatch.setattr(cgroup, "CPU_CORES", 0.25)
    box = Sandbox([("cell 1", SPIN_CELL)], isolation(), call_timeout=20, cell_timeout=5,
                  log_dir=tmp_path)
    try:
        box.start()
        assert box.cgroup is not None and box.cgroup.cpu_limited
        used, wall = StudentFunction(box, "spin")(4, 2.0)
    finally:
        box.kill()
    assert wall >= 2.0 and used <= 0.25 * wall * 1.3 + 0.1, (used, wall)


NOT_ROOT_SCRIPT = '''
import os, subprocess, sys, tempfile, time
from pathlib import Path
from course_utils.instructor.grading.sandbox import Sandbox, isolation
iso = isolation()
cell = """
import os
def info():
    return os.getuid(), sorted(os.listdir("/"))
def orphan():
    if os.fork() == 0:
        os.setsid()
        import time
        time.sleep(3600)
    return True
"""
def servers():
    table = subprocess.run(["ps", "-eo", "pid,uid,args"], capture_output=True, text=True).stdout
    return {line for line in table.splitlines() if "sandbox_server" in line}
before = servers()  # other sandboxes (this test file's module fixture) are not ours
box = Sandbox([("c", cell)], iso, log_dir=Path(tempfile.mkdtemp(dir=sys.argv[1])))
box.start()
uid, listing = box.call("info", (), {})
box.call("orphan", (), {})
box.kill()
time.sleep(0.5)
print(repr((os.getuid(), iso.bwrap is not None, iso.describe(), uid, listing,
            sorted(servers() - before))))
'''


def _closed(path: str) -> str | None:
    current = "/"
    for part in Path(path).resolve().parts[1:]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not isolation().namespaces,
                    reason="needs root to become nobody, and bwrap")
def test_a_grader_that_is_not_root_still_gets_bwrap(tmp_path) -> None:
    """The grader run as nobody: bwrap in an unprivileged user namespace, the same
    namespaces, no cgroup, and no process left. (An interpreter under a closed folder such as
    /root is made reachable for the test in a private mount namespace.)"""
    import ast
    import shutil
    import subprocess
    import sys

    from course_utils.paths import PROJECT_ROOT

    if _closed(sys.prefix) or _closed(str(PROJECT_ROOT)) or not shutil.which("setpriv"):
        pytest.skip("the virtual environment or the checkout is not readable by nobody")
    work = Path(tempfile.mkdtemp(prefix="not-root-"))
    work.chmod(0o777)
    (work / "t.py").write_text(NOT_ROOT_SCRIPT)
    base = str(Path(sys.base_prefix).resolve())
    closed = _closed(base)
    reach = (f"mkdir -p {work}/stage && mount --bind {base} {work}/stage && "
             f"mount -t tmpfs -o mode=0755 tmpfs {closed} && mkdir -p {base} && "
             f"mount --bind {work}/stage {base} && " if closed else "")
    command = (reach + f"cd {work} && setpriv --reuid 65534 --regid 65534 --clear-groups "
               f"env HOME={work} PYTHONPATH={PROJECT_ROOT} {sys.executable} t.py {work}")
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        grader_uid, bwrap, described, uid, listing, left = ast.literal_eval(
            done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert (grader_uid, bwrap, uid) == (65534, True, 65534)
    assert "not root: unprivileged user namespace" in described
    assert "RLIMIT_AS per process only" in described
    assert {"etc", "home", "run", "var"}.isdisjoint(listing)
    assert left == []


def test_grading_stops_when_bwrap_cannot_confine_the_sandbox(monkeypatch, tmp_path) -> None:
    """No submission runs unconfined by default: without bwrap, grading stops before the first
    sandbox with the fix named; ``--isolation none`` is the explicit way round it."""
    from course_utils.instructor.grading import confine
    from course_utils.instructor.grading.course_run import grade_course

    monkeypatch.setattr(confine.shutil, "which", lambda name: None)
    with pytest.raises(confine.ConfinementUnavailable, match="apt-get install bubblewrap"):
        confine.confined("auto")
    assert not confine.confined("none").namespaces
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with pytest.raises(confine.ConfinementUnavailable, match="--isolation none"):
        grade_course(inbox, tmp_path / "autograder", tmp_path / "out", echo=False)
    assert not (tmp_path / "out" / "results").exists()
