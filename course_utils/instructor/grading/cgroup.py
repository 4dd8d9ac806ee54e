"""One submission's control group: a memory limit for all its processes *and* the tmpfs pages
they write (the kernel charges shared memory to the writer's cgroup), a process count, and one
core's worth of CPU time (``CPU_CORES``) for all its processes together.

The CPU quota is what keeps submissions graded side by side (``--jobs N``) from changing each
other's grades: every time limit is wall-clock, so without it one submission spinning up 64
busy processes would take the cores its neighbours need to finish their cells in time. With it,
a submission gets at most one core however many processes it starts, so N jobs on N cores each
get theirs (the kernel's CFS bandwidth control: ``cpu.max`` in v2, ``cpu.cfs_quota_us`` in v1).

RLIMIT_AS is per process (three children and a parent held 2.5 GB against a 1 GB "limit"), so
the sandbox is started inside a cgroup of its own when this machine lets the grader make one:
cgroup v1 (``memory``, ``pids`` and ``cpu`` hierarchies) or v2 (one unified tree with those
controllers enabled). Where it cannot (not root, no writable cgroup),
``SubmissionCgroup.create`` returns None with the reason, and only the rlimits hold.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CPU_CORES = 1.0  # CPU time of one submission, all its processes together, in cores
CPU_PERIOD_US = 100_000


def _own_paths() -> dict[str, str]:
    """{controller or "": this process's cgroup path} from /proc/self/cgroup."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _folders(name: str) -> tuple[str, dict[str, Path]]:
    """("v1" | "v2", {controller: the new cgroup's folder}) for a child cgroup ``name``."""
    own = _own_paths()
    if (ROOT / "cgroup.controllers").exists():  # unified hierarchy mounted at the root
        parent = ROOT / own.get("", "/").lstrip("/")
        return "v2", {"memory": parent / name, "pids": parent / name, "cpu": parent / name}
    return "v1", {c: ROOT / c / own[c].lstrip("/") / name for c in ("memory", "pids", "cpu")
                  if c in own and (ROOT / c).is_dir()}


class SubmissionCgroup:
    """A cgroup the sandbox runs in; ``procs_files`` are what the starter writes its pid to."""

    def __init__(self, version: str, folders: dict[str, Path]):
        self.version, self.folders = version, folders
        self.cpu_limited = False

    def _limit_cpu(self, cores: float) -> bool:
        """At most ``cores`` of CPU time for the whole cgroup; False where the controller is
        not there (v2 without ``cpu`` enabled for children)."""
        folder = self.folders.get("cpu")
        quota = int(cores * CPU_PERIOD_US)
        if folder is None:
            return False
        if self.version == "v2":
            if not (folder / "cpu.max").exists():
                return False
            (folder / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
            return True
        (folder / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (folder / "cpu.cfs_quota_us").write_text(str(quota))
        return True

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_pids: int
               ) -> tuple[SubmissionCgroup | None, str]:
        """The cgroup, or (None, why not)."""
        try:
            version, folders = _folders(name)
            if "memory" not in folders:
                return None, "no memory cgroup controller"
            for folder in set(folders.values()):
                folder.mkdir()
            group = cls(version, folders)
            memory = folders["memory"]
            if version == "v2":
                (memory / "memory.max").write_text(str(memory_bytes))
                if (memory / "memory.swap.max").exists():
                    (memory / "memory.swap.max").write_text("0")
            else:
                (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
                if (memory / "memory.memsw.limit_in_bytes").exists():  # no swapping out of it
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            if "pids" in folders and (folders["pids"] / "pids.max").exists():
                (folders["pids"] / "pids.max").write_text(str(max_pids))
            group.cpu_limited = group._limit_cpu(CPU_CORES)
            return group, ""
        except OSError as error:
            for folder in locals().get("folders", {}).values():
                try:
                    folder.rmdir()
                except OSError:
                    pass
            return None, f"cannot create a cgroup ({error.strerror or error})"

    @property
    def procs_files(self) -> list[str]:
        return sorted({str(folder / "cgroup.procs") for folder in self.folders.values()})

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.procs_files:
            try:
                found |= {int(p) for p in Path(path).read_text().split()}
            except OSError:
                pass
        return sorted(found)

    def peak_bytes(self) -> int | None:
        """The most memory the cgroup held (processes and tmpfs), if the kernel says."""
        name = "memory.peak" if self.version == "v2" else "memory.max_usage_in_bytes"
        try:
            return int((self.folders["memory"] / name).read_text())
        except (OSError, ValueError):
            return None

    def oom_killed(self) -> bool:
        """Whether the kernel killed one of its processes for memory."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        try:
            for line in (self.folders["memory"] / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def remove(self, timeout: float = 5.0) -> None:
        """Kill whatever is left in it, then delete it (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids()
            if not left or time.monotonic() > deadline:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        for folder in set(self.folders.values()):
            try:
                folder.rmdir()
            except OSError:
                pass


def remove_stale(prefix: str = "grading-", min_age: float = 2.0) -> list[str]:
    """Remove the empty cgroups ``<prefix><pid>-...`` a grader left when it was killed (a
    SIGKILL ends its sandboxes, ``--die-with-parent``, but cannot remove their folders), when
    that grader's pid is gone and the cgroup is older than ``min_age`` seconds (never one
    being set up: created, not yet joined); returns what was removed."""
    removed = []
    try:
        version, folders = _folders("x")
    except (OSError, KeyError, ValueError):
        return removed
    for parent in {folder.parent for folder in folders.values()}:
        for group in parent.glob(f"{prefix}*"):
            pid = group.name[len(prefix):].split("-", 1)[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            try:
                if time.time() - group.stat().st_mtime >= min_age and \
                        not (group / "cgroup.procs").read_text().split():
                    group.rmdir()
                    removed.append(str(group))
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
