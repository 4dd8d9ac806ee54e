"""How the grading sandbox is confined: bubblewrap's command line, and what this machine gives.

``bwrap`` (Debian's ``bubblewrap``) starts the sandbox in new namespaces: no network, its own
PID namespace (when the sandbox ends, every process it started ends, even one that called
``setsid()``), its own IPC namespace (SysV shared memory and message queues are neither shared
between sandboxes nor left on the host), its own UTS and mount namespaces. The filesystem is
empty but for what Python needs, bound read-only (``/usr`` and the interpreter's and virtual
environment's prefixes, torch hidden unless the assignment allows it), the server script, a
``/proc`` of its own, a minimal ``/dev`` and a private ``/tmp`` and ``/dev/shm`` with a size
cap. No host socket, no host folder that is writable, no ``/run`` or ``/var`` at all.

As root, bwrap runs without a user namespace and the server then drops to ``nobody`` itself
(bwrap keeps only CAP_SETUID and CAP_SETGID for that). As another user, bwrap builds an
unprivileged user namespace and the sandbox runs as that user, mapped. Where bwrap is missing
or cannot start (user namespaces disabled), ``isolation`` says so and the sandbox runs with
rlimits and timeouts only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534
TMP_MB = 64  # each of /tmp and /dev/shm in the sandbox (and both count in its memory cgroup)
SERVER_INSIDE = "/grading/sandbox_server.py"


@dataclass
class Isolation:
    """What confinement this machine gives (decided once per grading run)."""

    bwrap: str | None  # the bwrap binary, or None: rlimits only
    drop_uid: bool  # started as root, so the sandbox runs as nobody
    notes: list[str] = field(default_factory=list)

    @property
    def namespaces(self) -> bool:
        return self.bwrap is not None

    def describe(self) -> str:
        parts = [("bubblewrap: no network, own PID, IPC, UTS and mount namespaces, only the "
                  "Python prefix visible (read-only), private size-capped /tmp")
                 if self.bwrap else "NO namespaces (bwrap unavailable): rlimits and timeouts only"]
        parts.append("runs as nobody" if self.drop_uid else "runs as the grader's user")
        return "; ".join(parts + self.notes)


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def python_folders() -> list[str]:
    """The interpreter's folders (base prefix, virtual environment, site-packages), outermost."""
    import site
    import sysconfig

    import numpy

    folders = {sys.prefix, sys.base_prefix, os.path.dirname(numpy.__file__),
               sysconfig.get_paths()["stdlib"], *site.getsitepackages(),
               os.path.dirname(os.path.realpath(sys.executable))}
    outermost: list[str] = []
    for folder in sorted((os.path.realpath(f) for f in folders if os.path.isdir(f)), key=len):
        if not any(folder == kept or folder.startswith(kept + "/") for kept in outermost):
            outermost.append(folder)
    return outermost


def bwrap_command(bwrap: str, root: bool, server: str, *, hide: list[str] = ()) -> list[str]:
    """bwrap's arguments up to (not including) the command it runs."""
    command = [bwrap, "--die-with-parent", "--new-session"]
    if root:  # no user namespace: the server drops to nobody (keeps only what that needs)
        command += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                    "--unshare-cgroup-try", "--cap-drop", "ALL",
                    "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        command += ["--unshare-all"]
    size = str(TMP_MB << 20)
    command += ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
                "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
    for link in ("/bin", "/lib", "/lib64", "/sbin", "/lib32"):
        if os.path.islink(link):
            command += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            command += ["--ro-bind", link, link]
    made: set[str] = {"/", "/usr", "/tmp", "/dev", "/proc"}
    bound = [f for f in python_folders() if not f.startswith("/usr/")]  # /usr is bound already
    for folder in [*bound, os.path.dirname(SERVER_INSIDE)]:
        for parent in [*_ancestors(folder + "/x")]:
            if parent not in made:  # folders bwrap makes are 0700 unless told
                command += ["--perms", "0755", "--dir", parent]
                made.add(parent)
    for folder in bound:
        command += ["--ro-bind", folder, folder]
    for folder in hide:  # only what lies inside a bound folder (torch in site-packages) is
        folder = os.path.realpath(folder)  # visible at all: cover it with an empty folder
        inside = any(folder.startswith(b + "/") for b in [*bound, "/usr"])
        covers = any(b == folder or b.startswith(folder + "/") for b in bound)
        if os.path.isdir(folder) and inside and not covers:
            command += ["--perms", "0555", "--size", "4096", "--tmpfs", folder,
                        "--remount-ro", folder]
    command += ["--ro-bind", server, SERVER_INSIDE, "--chdir", "/tmp"]
    return command


def isolation(requested: str = "auto") -> Isolation:
    """``auto``: bwrap if it starts here; ``none``: rlimits only (for tests, debugging)."""
    if requested == "none":
        return Isolation(None, False, ["isolation off (--isolation none)"])
    root = os.geteuid() == 0
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Isolation(None, False, ["bwrap not installed (apt-get install bubblewrap)",
                                       memory_note()])
    probe = subprocess.run(bwrap_command(bwrap, root, __file__) + [sys.executable, "-I", "-c",
                                                                    "import numpy"],
                           capture_output=True, timeout=60, text=True)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["?"])[-1][:200]
        return Isolation(None, False, [f"bwrap cannot start here ({why}): rlimits only",
                                       memory_note()])
    notes = [] if root else ["not root: unprivileged user namespace, no uid drop"]
    return Isolation(bwrap, root, notes + [memory_note()])


class ConfinementUnavailable(RuntimeError):
    """Student code would run unconfined: bwrap is missing or cannot start here."""


def confined(requested: str = "auto") -> Isolation:
    """The isolation to grade with: ``auto`` stops (``ConfinementUnavailable``, naming the fix)
    where bwrap cannot confine the sandbox, since an unconfined submission could read the
    hidden tests or rewrite a classmate's result file; ``none`` is the explicit way to grade
    notebooks one trusts without confinement (rlimits and timeouts only)."""
    iso = isolation(requested)
    if requested != "none" and not iso.namespaces:
        raise ConfinementUnavailable(
            f"grading stopped before any submission ran: {iso.notes[0]}. Student code runs "
            "only inside bubblewrap's namespaces: install it (apt-get install bubblewrap) or "
            "allow unprivileged user namespaces, or pass --isolation none to grade notebooks "
            "you trust without confinement")
    return iso


def memory_note() -> str:
    """Whether each submission gets a memory cgroup here (tried once, removed at once)."""
    from course_utils.instructor.grading.cgroup import SubmissionCgroup

    group, why = SubmissionCgroup.create(f"grading-probe-{os.getpid()}", 1 << 30, 64)
    if group is None:
        return f"memory: RLIMIT_AS per process only ({why}); CPU: not capped"
    group.remove()
    cpu = ("CPU: one core for all its processes" if group.cpu_limited
           else "CPU: not capped (no cpu controller)")
    return f"memory: one cgroup per submission (all its processes and its /tmp); {cpu}"
