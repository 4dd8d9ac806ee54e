"""Start and stop a private JupyterLab server for the browser test.

The server is the one a student gets from ``make lab`` (this project's venv), but isolated:
loopback only, a random free port, a random token, and fresh config/data/runtime/settings
folders under a temporary directory, so nothing from the user's own Jupyter set-up (extra
kernels, saved workspaces, news pop-ups) changes what the test sees.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: JupyterLab user settings written before the start (plugin id -> settings).
LAB_SETTINGS: dict[str, dict] = {
    # Render every cell: with windowing, cells scrolled out of view are not in the page and
    # their error outputs could not be found.
    # Start the notebook's kernel without the "Select Kernel" dialog JupyterLab 4 shows first.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none",
                                               "autoStartDefaultKernel": True},
    # The network is closed: no news or update checks, and no toast covering the menu.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    # The run happens only in the browser: never write the notebook back.
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its process, address and token.

    root_dir: the folder it serves (the notebooks under test are copied there);
    log_path: the server's stdout and stderr, for failure messages.
    """

    process: subprocess.Popen
    base_url: str
    token: str
    root_dir: Path
    log_path: Path

    def url(self, path: str) -> str:
        """``base_url/path`` with the token as a query parameter."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log (for error messages)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """Write ``LAB_SETTINGS`` as JupyterLab user settings files under ``settings_dir``."""
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def isolated_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: this venv first on PATH, every Jupyter folder under ``home``.

    extra: more variables (e.g. ``COURSE_FIGURES_DIR``); the kernel inherits all of them.
    """
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    folders = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
        "IPYTHONDIR": "ipython",
    }
    for variable, name in folders.items():
        (home / name).mkdir(parents=True, exist_ok=True)
        env[variable] = str(home / name)
    env["JUPYTER_PLATFORM_DIRS"] = "1"  # silences jupyter_core's deprecation warning
    env.pop("COURSE_RUN_DIR", None)  # not a graded run: results must not land in a run folder
    env.update(extra or {})
    return env


def lab_command(root_dir: Path, port: int, token: str) -> list[str]:
    """The command line that starts JupyterLab on 127.0.0.1:``port`` serving ``root_dir``."""
    # CI containers often run as root, where Jupyter refuses to start without this flag.
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # fail loudly instead of silently taking another port
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.extension_manager=readonly",  # no PyPI look-ups from the server
        *as_root,
    ]


def wait_until_ready(server: LabServer, timeout_s: float) -> None:
    """Poll ``/api/status`` until the server answers; raise with the log tail on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.process.returncode} "
                               f"before it was ready. Server log:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {server.base_url}/api/status within "
                       f"{timeout_s:.0f} s. Server log:\n{server.log_tail()}")


def start_lab(root_dir: Path, home: Path, extra_env: dict[str, str] | None = None,
              timeout_s: float = 120.0) -> LabServer:
    """Start JupyterLab serving ``root_dir`` and wait until it answers.

    home: a temporary folder for Jupyter's config/data/runtime/settings and the log.
    The server runs in its own process group so ``stop_lab`` can end it and its children.
    If it does not come up, it is stopped before the error is raised.
    """
    port = free_port()
    token = secrets.token_hex(16)
    write_lab_settings(home / "lab-settings")
    log_path = home / "jupyterlab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            lab_command(root_dir, port, token), cwd=root_dir, env=isolated_env(home, extra_env),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    server = LabServer(process, f"http://127.0.0.1:{port}", token, root_dir, log_path)
    try:
        wait_until_ready(server, timeout_s)
    except BaseException:
        stop_lab(server)
        raise
    return server


def request_shutdown(server: LabServer) -> None:
    """Ask the server to shut its kernels down and exit (``POST /api/shutdown``).

    Kernels run in process groups of their own, so this is what ends them; a server that
    does not answer is left to ``stop_lab``'s signals.
    """
    request = urllib.request.Request(server.url("api/shutdown"), method="POST", data=b"",
                                     headers={"Authorization": f"token {server.token}"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        pass  # already gone, or hung: the signals below deal with it


def stop_lab(server: LabServer, grace_s: float = 20.0) -> None:
    """Stop the server, whatever state it is in: ask it to shut down (kernels included),
    then SIGTERM its process group, then SIGKILL what is still there after ``grace_s``."""
    if server.process.poll() is None:
        request_shutdown(server)
        try:
            server.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(server.process.pid, signal.SIGTERM)
            try:
                server.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
    # Kill whatever is left in the group (a stuck server, a helper it started).
    _signal_group(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=grace_s)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
