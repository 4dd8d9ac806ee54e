"""The grader side of the sandbox: start it, run a submission's cells in it, call into it.

``Sandbox`` starts ``sandbox_server.py`` in a separate process, confined as far as this machine
allows (``confine.isolation()`` says how: bubblewrap namespaces, a cgroup for the memory of
the whole submission, the uid ``nobody`` as root; else rlimits only). The grader never trusts
anything the sandbox sends beyond plain values: arrays are read with ``allow_pickle=False``,
every message is checked for its shape, and every read *and write* has a deadline (the cell or
call limit, and the submission's budget). ``StudentFunction`` is the proxy the tests call: it
forwards the call and returns the decoded result, or raises ``StudentCodeError`` /
``SandboxTimeout`` / ``SandboxCrashed`` with a message for the feedback.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from course_utils.instructor.grading import sandbox_server as wire
from course_utils.instructor.grading.cgroup import SubmissionCgroup
from course_utils.instructor.grading.confine import (  # noqa: F401  (re-exported)
    NOBODY,
    Isolation,
    bwrap_command,
    isolation,
)

SERVER = Path(wire.__file__).resolve()
MAX_STARTS = 10  # a submission whose cells keep timing out is not replayed forever
MAX_PIDS = 64
# starts the sandbox inside its cgroup(s): writes its own pid to each cgroup.procs, then execs
JOIN_CGROUP = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; '
               'n=$((n-1)); done; exec "$@"')


class SandboxError(Exception):
    """Base: the student's code could not give a value."""


class StudentCodeError(SandboxError):
    """The student's code raised (the message names the exception, the cell and the line)."""


class SandboxTimeout(SandboxError):
    """The student's code ran past its time limit; the sandbox was killed."""


class BudgetExceeded(SandboxTimeout):
    """The submission's whole budget is used up: nothing more runs for it."""


class SandboxCrashed(SandboxError):
    """The sandbox died, or sent something that is not a valid message."""


def torch_folder() -> str | None:
    """Where torch is installed (the reference answers: hidden unless the assignment allows)."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    return os.path.dirname(spec.origin) if spec and spec.origin else None


def hidden_paths(extra: list) -> list[str]:
    """Folders the sandbox must not read: the course repository's (solutions, tests, the
    package's reference code; its .venv is the interpreter's), torch unless allowed, and the
    grading inputs and outputs (``extra``). bwrap binds none of them; these are covered
    with an empty folder only where one lies inside a bound folder (a checkout under /usr)."""
    from course_utils.paths import PROJECT_ROOT

    paths = [p for p in PROJECT_ROOT.iterdir() if p.is_dir() and p.name != ".venv"]
    return list(dict.fromkeys(str(Path(p).resolve()) for p in [*paths, *extra]))


class Sandbox:
    """One submission's sandbox process; restarted (cells replayed) after a timeout or crash.

    ``cells``: (label, source) pairs, run in order by ``start``. A cell that times out or kills
    the process is skipped on every later start; a cell that raises is reported and the next
    cells still run. ``deadline`` (time.monotonic()) bounds everything: cells, calls, writes.
    ``protect``: the given names, put back as the given cells left them before every call.
    """

    def __init__(self, cells: list[tuple[str, str]], iso: Isolation, *, memory_mb: int = 1024,
                 cell_timeout: float = 10.0, call_timeout: float = 10.0,
                 hide: list[Path] | None = None, log_dir: Path | None = None,
                 allow_imports: tuple[str, ...] = (), deadline: float | None = None,
                 protect: list[str] | None = None):
        self.cells = cells
        self.protect = list(protect or [])  # given names: restored before every call
        self.allow_imports = tuple(allow_imports)
        self.iso = iso
        self.memory_mb = memory_mb
        self.cell_timeout = cell_timeout
        self.call_timeout = call_timeout
        self.deadline = deadline
        torch = None if "torch" in self.allow_imports else torch_folder()
        self.hide = hidden_paths([*(hide or []), *([torch] if torch else [])])
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="sandbox-log-"))
        self.cell_status: dict[str, str] = {}  # label -> "ok" | error message
        self.skipped: set[str] = set()
        self.failed_hard: dict[str, str] = {}  # function name -> why it is not called again
        self.confinement: dict[str, Any] = {}
        self.notes: list[str] = []  # what the grader saw: memory peak, an OOM kill
        self.generation = 0
        self.process: subprocess.Popen | None = None
        self.cgroup: SubmissionCgroup | None = None
        self._fds: tuple[int, int] | None = None
        self._workdir: str | None = None

    # -- process management ------------------------------------------------------------------

    def _command(self, to_child_r: int, from_child_w: int, workdir: str) -> list[str]:
        options = {"workdir": workdir, "memory_mb": self.memory_mb,
                   "generation": self.generation, "allow_imports": list(self.allow_imports),
                   "nproc": MAX_PIDS if self.cgroup is None else 4 * MAX_PIDS,
                   "uid": NOBODY if self.iso.drop_uid else None,
                   "gid": NOBODY if self.iso.drop_uid else None}
        server = str(SERVER)
        prefix: list[str] = []
        if self.iso.bwrap:
            prefix = bwrap_command(self.iso.bwrap, os.geteuid() == 0, server, hide=self.hide)
            server = "/grading/sandbox_server.py"
        command = prefix + [sys.executable, "-I", server, str(to_child_r), str(from_child_w),
                            json.dumps(options)]
        if self.cgroup is not None:
            files = self.cgroup.procs_files
            command = ["/bin/sh", "-c", JOIN_CGROUP, "sh", str(len(files)), *files, *command]
        return command

    def _launch(self) -> None:
        self.generation += 1
        if self.generation > MAX_STARTS:
            raise SandboxCrashed(f"the sandbox was restarted {MAX_STARTS - 1} times; "
                                 "not again for this submission")
        self.cgroup, _ = SubmissionCgroup.create(  # none: isolation() says so in the summary
            f"grading-{os.getpid()}-{id(self):x}-{self.generation}", self.memory_mb << 20,
            MAX_PIDS)
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        if self.iso.bwrap:
            workdir = "/tmp/submission"  # inside the sandbox's own empty /tmp
        else:
            self._workdir = tempfile.mkdtemp(prefix="sandbox-work-")
            workdir = self._workdir
            if self.iso.drop_uid:
                os.chown(workdir, NOBODY, NOBODY)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "HOME": workdir, "MPLBACKEND": "Agg"}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "sandbox.log", "ab")  # noqa: SIM115  (closed below)
        try:
            self.process = subprocess.Popen(
                self._command(to_child_r, from_child_w, workdir), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, env=env, pass_fds=(to_child_r, from_child_w),
                start_new_session=True)
        finally:
            log.close()
            os.close(to_child_r)
            os.close(from_child_w)
        os.set_blocking(to_child_w, False)  # a sandbox that stops reading cannot block us
        fcntl.fcntl(to_child_w, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
        self._fds = (to_child_w, from_child_r)
        header, _ = self._receive(30.0)  # python + numpy start
        ready = header.get("ready")
        if not isinstance(ready, dict):
            self.kill()
            raise SandboxCrashed(f"the sandbox did not start: {str(header)[:300]}")
        self.confinement = ready

    def kill(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.process = None
        if self.cgroup is not None:  # every process it started, whatever its session
            peak = self.cgroup.peak_bytes()
            if self.cgroup.oom_killed():
                self.notes.append(f"a process was killed for memory (the submission's limit "
                                  f"is {self.memory_mb} MB, all processes and /tmp together)")
            if peak is not None:
                self.confinement["memory_peak_mb"] = max(
                    self.confinement.get("memory_peak_mb", 0), round(peak / 2**20, 1))
            self.cgroup.remove()
            self.cgroup = None
        if self._fds:
            for fd in self._fds:
                os.close(fd)
            self._fds = None
        if self._workdir:
            import shutil

            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    close = kill

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _limit(self, timeout: float) -> tuple[float, bool]:
        """(seconds to wait, whether the budget is what limits it)."""
        if self.deadline is None:
            return timeout, False
        left = self.deadline - time.monotonic()
        return (left, True) if left < timeout else (timeout, False)

    def _timed_out(self, timeout: float, budget: bool) -> SandboxTimeout:
        self.kill()
        if budget:
            return BudgetExceeded("the time budget of this submission was used up (stopped)")
        return SandboxTimeout(f"no answer within {timeout:g} s (stopped)")

    def _crashed(self, what: str) -> SandboxCrashed:
        self.kill()
        note = " ".join(self.notes[-1:])
        return SandboxCrashed(f"{what}; it may have run out of memory (limit {self.memory_mb} "
                              f"MB){': ' + note if note else ''}")

    def _receive(self, timeout: float) -> tuple[dict, list[bytes]]:
        wait, budget = self._limit(timeout)
        deadline = time.monotonic() + wait

        def read(fd: int, size: int) -> bytes:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            return os.read(fd, size)

        try:
            header, blobs = wire.read_message(self._fds[1], read)
        except TimeoutError:
            raise self._timed_out(timeout, budget) from None
        except EOFError:
            raise self._crashed("the sandbox died") from None
        except Exception as error:  # noqa: BLE001  (RecursionError, MemoryError...: garbage)
            self.kill()
            raise SandboxCrashed(f"sandbox sent garbage: {type(error).__name__}: "
                                 f"{str(error)[:200]}") from None
        if not isinstance(header, dict):
            self.kill()
            raise SandboxCrashed("sandbox sent garbage: the reply is not a JSON object")
        return header, blobs

    def _send(self, header: dict, blobs: list[bytes], timeout: float) -> None:
        wait, budget = self._limit(timeout)
        deadline = time.monotonic() + wait
        view = memoryview(wire.frame(header, blobs))
        fd = self._fds[0]
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise self._timed_out(timeout, budget)
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except OSError as error:
                if error.errno == errno.EPIPE:
                    raise self._crashed("the sandbox died") from None
                raise self._crashed(f"the sandbox died ({error})") from None

    def _request(self, header: dict, blobs: list[bytes], timeout: float) -> tuple[dict, list]:
        self._send(header, blobs, timeout)
        reply, reply_blobs = self._receive(timeout)
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            raise StudentCodeError(f"{str(error.get('type', 'Error'))[:100]}: "
                                   f"{str(error.get('message', ''))[:2000]}")
        return reply, reply_blobs

    # -- cells ---------------------------------------------------------------------------------

    def start(self) -> None:
        """(Re)start the process and run every cell that has not been skipped."""
        while True:
            self.kill()
            self._launch()
            if self._run_cells():
                if self.protect:
                    self._request({"op": "protect", "names": self.protect}, [],
                                  self.call_timeout)
                return

    def _run_cells(self) -> bool:
        """Run the cells; False when one timed out or crashed (skipped: start again)."""
        for label, source in self.cells:
            if label in self.skipped:
                continue
            try:
                self._request({"op": "exec", "source": source, "label": label}, [],
                              self.cell_timeout)
                self.cell_status.setdefault(label, "ok")
            except StudentCodeError as error:
                self.cell_status.setdefault(label, f"raised {error}")
            except BudgetExceeded as error:
                self.cell_status[label] = f"not finished: {error}"
                raise
            except (SandboxTimeout, SandboxCrashed) as error:
                self.cell_status[label] = f"skipped: {error}"
                self.skipped.add(label)
                return False
        return True

    def ensure(self) -> None:
        if not self.alive():
            self.start()

    # -- values --------------------------------------------------------------------------------

    def describe(self, names: list[str]) -> dict[str, str]:
        self.ensure()
        reply, _ = self._request({"op": "describe", "names": names}, [], self.call_timeout)
        kinds = reply.get("kinds")
        if not isinstance(kinds, dict):
            self.kill()
            raise SandboxCrashed("sandbox sent garbage: 'kinds' is not a mapping")
        return {name: (kinds.get(name) if kinds.get(name) in ("callable", "value") else
                       "missing") for name in names}

    def get(self, name: str) -> Any:
        self.ensure()
        reply, blobs = self._request({"op": "get", "name": name}, [], self.call_timeout)
        return self._decode(reply, blobs)

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        if name in self.failed_hard:
            raise SandboxTimeout(f"{name} is not called again: {self.failed_hard[name]}")
        self.ensure()
        blobs: list[bytes] = []
        encoded_args = wire.encode(tuple(args), blobs)
        encoded_kwargs = wire.encode(dict(kwargs), blobs)
        for value in [*args, *kwargs.values()]:
            if isinstance(value, wire.Handle) and value.generation != self.generation:
                raise SandboxCrashed("a value from before the sandbox restarted was passed back")
        try:
            reply, reply_blobs = self._request(
                {"op": "call", "name": name, "args": encoded_args, "kwargs": encoded_kwargs},
                blobs, self.call_timeout)
        except BudgetExceeded:
            raise
        except (SandboxTimeout, SandboxCrashed) as error:
            self.failed_hard[name] = str(error)
            raise type(error)(f"{name}: {error}") from None
        return self._decode(reply, reply_blobs)

    def _decode(self, reply: dict, blobs: list[bytes]) -> Any:
        try:
            return wire.decode(reply["value"], blobs, None, self.generation)
        except Exception as error:  # anything malformed: the student's answer is garbage
            raise SandboxCrashed(f"sandbox sent garbage: a value that could not be read "
                                 f"({type(error).__name__}: {str(error)[:200]})") from None


class StudentFunction:
    """Stands for a student's function in the grader's tests: calls it in the sandbox."""

    def __init__(self, sandbox: Sandbox, name: str):
        self._sandbox, self.__name__ = sandbox, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._sandbox.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"
