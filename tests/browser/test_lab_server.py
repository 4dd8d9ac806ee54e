"""The private JupyterLab stops completely: server and kernels, even mid-test."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from lab_server import LabServer, start_lab, stop_lab

PROC = Path("/proc")


def processes_mentioning(text: str) -> list[int]:
    """Ids of running processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # the process ended while we looked
            continue
        if text in command_line:
            found.append(int(entry.name))
    return found


def start_kernel(server: LabServer) -> str:
    """Start a python3 kernel through the REST API, as opening a notebook does; its id."""
    request = urllib.request.Request(server.url("api/kernels"), method="POST",
                                     data=json.dumps({"name": "python3"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)["id"]


def wait_for_process(text: str, timeout_s: float) -> None:
    """Wait until some process's command line contains ``text``."""
    deadline = time.monotonic() + timeout_s
    while not processes_mentioning(text):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no process mentioning {text!r} after {timeout_s} s")
        time.sleep(0.2)


@pytest.mark.skipif(not PROC.is_dir(), reason="needs Linux /proc to list processes")
def test_stop_lab_ends_server_and_its_kernels(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    server = start_lab(root, tmp_path / "home")
    try:
        kernel_id = start_kernel(server)
        # The kernel's command line names its connection file, kernel-<id>.json.
        wait_for_process(f"kernel-{kernel_id}.json", timeout_s=60)
        assert processes_mentioning(str(tmp_path))  # server and kernel are both up
    finally:
        stop_lab(server)

    assert server.process.poll() is not None
    time.sleep(0.5)  # a killed process can take a moment to leave /proc
    assert processes_mentioning(str(tmp_path)) == []
