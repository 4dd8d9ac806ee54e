"""The grader side of the sandbox: start it, run a submission's cells in it, call into it.

``Sandbox`` starts ``sandbox_server.py`` in a separate process, confined as far as this machine
allows (``isolation()`` says how: as root, ``unshare`` gives it no network, its own mount and
PID namespaces, folders hidden behind empty tmpfs mounts, and the process drops to ``nobody``;
otherwise it runs as the grader's user with rlimits only). The grader never trusts anything the
sandbox sends beyond plain values: arrays are read with ``allow_pickle=False``, and every read
has a deadline. ``StudentFunction`` is the proxy the tests call: it forwards the call and
returns the decoded result, or raises ``StudentCodeError`` / ``SandboxTimeout`` /
``SandboxCrashed`` with a message for the feedback.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_utils.instructor.grading import sandbox_server as wire

SERVER = Path(wire.__file__).resolve()
NOBODY = 65534
SCRATCH = ["/tmp", "/var/tmp", "/dev/shm"]  # hidden behind empty *writable* tmpfs mounts


class SandboxError(Exception):
    """Base: the student's code could not give a value."""


class StudentCodeError(SandboxError):
    """The student's code raised (the message names the exception, the cell and the line)."""


class SandboxTimeout(SandboxError):
    """The student's code ran past its time limit; the sandbox was killed."""


class SandboxCrashed(SandboxError):
    """The sandbox died, or sent something that is not a valid message."""


@dataclass
class Isolation:
    """What confinement this machine gives (decided once per grading run)."""

    namespaces: bool  # unshare: no network, own mount and PID namespaces
    drop_uid: bool  # started as root, so the sandbox runs as nobody
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        parts.append("network off, own mount and PID namespaces (unshare), grading files "
                     "hidden" if self.namespaces else "NO network or filesystem isolation "
                     "(unshare unavailable)")
        parts.append("runs as nobody" if self.drop_uid else "runs as the grader's user")
        return "; ".join(parts + self.notes)


def isolation(requested: str = "auto") -> Isolation:
    """``auto``: the most this machine allows; ``none``: rlimits only (for tests, debugging)."""
    if requested == "none":
        return Isolation(False, False, ["isolation off (--isolation none)"])
    root = os.geteuid() == 0
    unshare = shutil.which("unshare")
    namespaces = False
    if root and unshare:
        probe = subprocess.run([unshare, "--net", "--mount-proc", "--pid", "--fork",
                                "--kill-child", "true"], capture_output=True, timeout=30)
        namespaces = probe.returncode == 0
    notes = [] if root else ["not root: cannot drop to an unprivileged uid"]
    drop_uid = root
    if root and not namespaces and wire._closed_ancestor(sys.base_prefix):
        # without a mount namespace an interpreter under e.g. /root cannot be re-exposed
        drop_uid = False
        notes.append(f"not dropping root: nobody cannot read {sys.base_prefix}")
    return Isolation(namespaces, drop_uid, notes)


def hidden_paths(extra: list[Path], allow_torch: bool = False) -> list[str]:
    """Folders the sandbox must not read: the course repo's folders (solutions, tests, the
    package's reference code), torch (the reference answers; kept when the assignment allows
    it), grading inputs and outputs, and the shared temporary folders."""
    from course_utils.paths import PROJECT_ROOT

    paths = [p for p in PROJECT_ROOT.iterdir() if p.is_dir() and p.name != ".venv"]
    try:
        import torch  # noqa: F401  (only its location)

        if not allow_torch:
            paths.append(Path(sys.modules["torch"].__file__).parent)
    except ImportError:
        pass
    paths += [Path(p) for p in extra]
    paths += [Path(p) for p in SCRATCH]
    seen, result = set(), []
    for path in paths:
        text = str(Path(path).resolve())
        if text not in seen and Path(text).is_dir():
            seen.add(text)
            result.append(text)
    return result


class Sandbox:
    """One submission's sandbox process; restarted (cells replayed) after a timeout or crash.

    ``cells``: (label, source) pairs, run in order by ``start``. A cell that times out or kills
    the process is skipped on every later start; a cell that raises is reported and the next
    cells still run.
    """

    def __init__(self, cells: list[tuple[str, str]], iso: Isolation, *, memory_mb: int = 1024,
                 cell_timeout: float = 10.0, call_timeout: float = 10.0,
                 hide: list[Path] | None = None, log_dir: Path | None = None,
                 allow_imports: tuple[str, ...] = ()):
        self.cells = cells
        self.allow_imports = tuple(allow_imports)
        self.iso = iso
        self.memory_mb = memory_mb
        self.cell_timeout = cell_timeout
        self.call_timeout = call_timeout
        self.hide = (hidden_paths(hide or [], allow_torch="torch" in self.allow_imports)
                     if iso.namespaces else [])
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="sandbox-log-"))
        self.cell_status: dict[str, str] = {}  # label -> "ok" | error message
        self.skipped: set[str] = set()
        self.failed_hard: dict[str, str] = {}  # function name -> why it is not called again
        self.confinement: dict[str, Any] = {}
        self.generation = 0
        self.process: subprocess.Popen | None = None
        self._fds: tuple[int, int] | None = None
        self._workdir: str | None = None

    # -- process management ------------------------------------------------------------------

    def _launch(self) -> None:
        self.generation += 1
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        if self.iso.namespaces:
            workdir = "/tmp/submission"  # inside the sandbox's own empty /tmp
        else:
            self._workdir = tempfile.mkdtemp(prefix="sandbox-work-")
            workdir = self._workdir
            if self.iso.drop_uid:
                os.chown(workdir, NOBODY, NOBODY)
        options = {"workdir": workdir, "memory_mb": self.memory_mb, "hide": self.hide,
                   "private_mounts": self.iso.namespaces, "generation": self.generation,
                   "scratch": SCRATCH, "allow_imports": list(self.allow_imports),
                   "uid": NOBODY if self.iso.drop_uid else None,
                   "gid": NOBODY if self.iso.drop_uid else None}
        command = [sys.executable, "-I", str(SERVER), str(to_child_r), str(from_child_w),
                   json.dumps(options)]
        if self.iso.namespaces:
            command = [shutil.which("unshare"), "--net", "--mount-proc", "--pid", "--fork",
                       "--kill-child", "--"] + command
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "HOME": workdir, "MPLBACKEND": "Agg"}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "sandbox.log", "ab")  # noqa: SIM115  (closed below)
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                pass_fds=(to_child_r, from_child_w), start_new_session=True)
        finally:
            log.close()
            os.close(to_child_r)
            os.close(from_child_w)
        self._fds = (to_child_w, from_child_r)
        header, _ = self._receive(30.0)  # python + numpy start, mounts
        if "ready" not in header:
            self.kill()
            raise SandboxCrashed(f"the sandbox did not start: {str(header)[:300]}")
        self.confinement = header["ready"]

    def kill(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None
        if self._fds:
            for fd in self._fds:
                os.close(fd)
            self._fds = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    close = kill

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _receive(self, timeout: float) -> tuple[dict, list[bytes]]:
        deadline = time.monotonic() + timeout

        def read(fd: int, size: int) -> bytes:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            return os.read(fd, size)

        try:
            header, blobs = wire.read_message(self._fds[1], read)
        except TimeoutError:
            self.kill()
            raise SandboxTimeout(f"no answer within {timeout:g} s (stopped)") from None
        except (EOFError, wire.ProtocolError, ValueError, OSError) as error:
            self.kill()
            raise SandboxCrashed(f"the sandbox died or sent garbage ({error}); it may have "
                                 f"run out of memory (limit {self.memory_mb} MB)") from None
        if not isinstance(header, dict):
            self.kill()
            raise SandboxCrashed("the sandbox sent garbage")
        return header, blobs

    def _request(self, header: dict, blobs: list[bytes], timeout: float) -> tuple[dict, list]:
        try:
            wire.write_message(self._fds[0], header, blobs)
        except OSError as error:
            self.kill()
            raise SandboxCrashed(f"the sandbox died ({error})") from None
        reply, reply_blobs = self._receive(timeout)
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            raise StudentCodeError(f"{str(error.get('type', 'Error'))[:100]}: "
                                   f"{str(error.get('message', ''))[:2000]}")
        return reply, reply_blobs

    # -- cells ---------------------------------------------------------------------------------

    def start(self) -> None:
        """(Re)start the process and run every cell that has not been skipped."""
        self.kill()
        self._launch()
        for label, source in self.cells:
            if label in self.skipped:
                continue
            try:
                self._request({"op": "exec", "source": source, "label": label}, [],
                              self.cell_timeout)
                self.cell_status.setdefault(label, "ok")
            except StudentCodeError as error:
                self.cell_status.setdefault(label, f"raised {error}")
            except (SandboxTimeout, SandboxCrashed) as error:
                self.cell_status[label] = f"skipped: {error}"
                self.skipped.add(label)
                self.start()  # again without that cell (ends: each time skips one more cell)
                return

    def ensure(self) -> None:
        if not self.alive():
            self.start()

    # -- values --------------------------------------------------------------------------------

    def describe(self, names: list[str]) -> dict[str, str]:
        self.ensure()
        reply, _ = self._request({"op": "describe", "names": names}, [], self.call_timeout)
        kinds = reply.get("kinds", {})
        return {name: kinds.get(name, "missing") for name in names}

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
        except (SandboxTimeout, SandboxCrashed) as error:
            self.failed_hard[name] = str(error)
            raise type(error)(f"{name}: {error}") from None
        return self._decode(reply, reply_blobs)

    def _decode(self, reply: dict, blobs: list[bytes]) -> Any:
        try:
            return wire.decode(reply["value"], blobs, None, self.generation)
        except Exception as error:  # anything malformed: the student's answer is garbage
            raise SandboxCrashed(f"the sandbox sent a value that could not be read ({error})") \
                from None


class StudentFunction:
    """Stands for a student's function in the grader's tests: calls it in the sandbox."""

    def __init__(self, sandbox: Sandbox, name: str):
        self._sandbox, self.__name__ = sandbox, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._sandbox.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"
