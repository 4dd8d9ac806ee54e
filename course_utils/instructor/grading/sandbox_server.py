"""The sandbox side of grading: runs a student's cells, answers calls with plain values.

Started by ``course_utils.instructor.grading.sandbox.Sandbox`` as a script (``python -I
thisfile``, inside bwrap where it is available: see ``confine.py``), so it imports nothing from
``course_utils`` (stdlib and numpy only). Before it runs any student code it limits itself
(``confine``): caps memory (RLIMIT_AS, per process; the cgroup caps the whole submission),
file size, processes and CPU time, blocks the imports answers must not use (torch,
course_utils, otter), and, when started as root, drops to ``nobody``. Then it serves requests
from the grader over two pipes.

Wire format (both directions): an 8-byte big-endian length, a UTF-8 JSON header, then the
binary blobs the header lists (``"blobs": [size, ...]``). Values are encoded by ``encode``:
JSON for None/bool/int/float/str, tagged lists for tuples, lists and str-keyed dicts, numpy
arrays and scalars as ``.npy`` blobs (``np.save``/``np.load`` with ``allow_pickle=False``),
and anything else as an opaque handle the grader can only pass back. Nothing is pickled.
"""

from __future__ import annotations

import builtins
import importlib.abc
import io
import json
import linecache
import os
import resource
import signal
import struct
import sys
import traceback
import types
from typing import Any

import numpy as np

MAX_HEADER = 1 << 20  # bytes of JSON per message
MAX_BLOBS = 256 << 20  # bytes of arrays per message
MAX_ITEMS = 10_000  # values per message (nested tuples, lists, dicts)
MAX_DEPTH = 20
MAX_TEXT = 20_000  # characters of one string
BLOCKED_IMPORTS = ("torch", "course_utils", "otter")

# ---------------------------------------------------------------------------------------------
# Framing and values (also imported by the grader side)
# ---------------------------------------------------------------------------------------------


class ProtocolError(Exception):
    """A malformed or oversized message."""


class Handle:
    """An opaque reference to a value that stays in the sandbox (the grader cannot look in)."""

    def __init__(self, ident: int, type_name: str, generation: int = 0):
        self.ident, self.type_name, self.generation = ident, type_name, generation

    def __repr__(self) -> str:
        return f"<{self.type_name} object (kept in the sandbox)>"


def encode(value: Any, blobs: list[bytes], handles: dict[int, Any] | None = None,
           depth: int = 0, count: list[int] | None = None) -> Any:
    """``value`` as JSON-able data; arrays appended to ``blobs``; others become handles."""
    count = count if count is not None else [0]
    count[0] += 1
    if count[0] > MAX_ITEMS or depth > MAX_DEPTH:
        raise ProtocolError("value too large or too deeply nested")
    if value is None or isinstance(value, bool):
        return {"v": value}
    if type(value) is int:
        return {"v": value}
    if type(value) is float:
        return {"f": repr(value)}
    if type(value) is str:
        return {"v": value[:MAX_TEXT]}
    if value is Ellipsis:
        return {"ellipsis": 0}
    if isinstance(value, np.ndarray | np.generic) and not isinstance(value, np.object_):
        array = np.asarray(value)
        if array.dtype.hasobject:
            return _handle(value, handles)
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        blobs.append(buffer.getvalue())
        return {"nd" if isinstance(value, np.ndarray) else "scalar": len(blobs) - 1}
    if type(value) in (tuple, list):
        items = [encode(v, blobs, handles, depth + 1, count) for v in value]
        return {"tuple" if type(value) is tuple else "list": items}
    if type(value) is dict and all(type(k) is str for k in value):
        return {"dict": {k: encode(v, blobs, handles, depth + 1, count) for k, v in value.items()}}
    if isinstance(value, Handle):
        return {"handle": value.ident, "gen": value.generation}
    return _handle(value, handles)


def _handle(value: Any, handles: dict[int, Any] | None) -> dict:
    if handles is None:
        raise ProtocolError(f"cannot send a {type(value).__name__}")
    ident = len(handles) + 1
    handles[ident] = value
    return {"handle": ident, "type": type(value).__name__[:100]}


def decode(data: Any, blobs: list[bytes], handles: dict[int, Any] | None = None,
           generation: int = 0, depth: int = 0) -> Any:
    """Inverse of ``encode``. Handles resolve through ``handles`` (sandbox side) or become
    ``Handle`` objects (grader side). Arrays are read with ``allow_pickle=False``."""
    if depth > MAX_DEPTH or not isinstance(data, dict) or len(data) not in (1, 2):
        raise ProtocolError("malformed value")
    (tag, body), = list(data.items())[:1]
    if tag == "v":
        if body is not None and type(body) not in (bool, int, str):
            raise ProtocolError("malformed value")
        return body
    if tag == "f":
        return float(str(body))
    if tag == "ellipsis":
        return Ellipsis
    if tag in ("nd", "scalar"):
        if type(body) is not int or not 0 <= body < len(blobs):
            raise ProtocolError("bad array reference")
        array = np.load(io.BytesIO(blobs[body]), allow_pickle=False)
        return array if tag == "nd" else array[()]
    if tag in ("tuple", "list"):
        if not isinstance(body, list):
            raise ProtocolError("malformed value")
        items = [decode(v, blobs, handles, generation, depth + 1) for v in body]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        if not isinstance(body, dict):
            raise ProtocolError("malformed value")
        return {str(k): decode(v, blobs, handles, generation, depth + 1) for k, v in body.items()}
    if tag == "handle":
        if type(body) is not int:
            raise ProtocolError("malformed handle")
        if handles is not None:  # sandbox side: the object itself
            if data.get("gen", generation) != generation or body not in handles:
                raise LookupError("this value came from an earlier run of the sandbox")
            return handles[body]
        return Handle(body, str(data.get("type", "object"))[:100], generation)
    raise ProtocolError(f"unknown value tag {tag!r}")


def frame(header: dict, blobs: list[bytes] = ()) -> bytes:
    """One message as bytes: length, JSON header (listing the blobs' sizes), blobs."""
    header = dict(header, blobs=[len(b) for b in blobs])
    text = json.dumps(header, allow_nan=True).encode("utf-8")
    return struct.pack(">Q", len(text)) + text + b"".join(blobs)


def write_message(fd: int, header: dict, blobs: list[bytes] = ()) -> None:
    view = memoryview(frame(header, blobs))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int, read: Any = None) -> bytes:
    """``size`` bytes from ``fd`` (``read(fd, n)`` overrides os.read, e.g. with a deadline)."""
    read = read or os.read
    chunks, left = [], size
    while left:
        chunk = read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, read: Any = None) -> tuple[dict, list[bytes]]:
    (size,) = struct.unpack(">Q", read_exact(fd, 8, read))
    if size > MAX_HEADER:
        raise ProtocolError(f"message header of {size} bytes")
    header = json.loads(read_exact(fd, size, read).decode("utf-8"))
    sizes = header.get("blobs", []) if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes) \
            or sum(sizes) > MAX_BLOBS:
        raise ProtocolError("bad or oversized array list")
    return header, [read_exact(fd, s, read) for s in sizes]


# ---------------------------------------------------------------------------------------------
# Confinement (sandbox side only)
# ---------------------------------------------------------------------------------------------


class _BlockImports(importlib.abc.MetaPathFinder):
    """Refuse the packages an answer must not use: torch (it has the reference answers, unless
    the assignment allows it, as training with torch does), course_utils (the course's own
    solutions) and otter."""

    def __init__(self, blocked: tuple[str, ...] = BLOCKED_IMPORTS):
        self.blocked = blocked

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in self.blocked:
            raise ImportError(f"{name} is not available when grading this assignment; answers "
                              f"may not import {', '.join(self.blocked)}")
        return None


def confine(options: dict) -> dict:
    """Limit this process before any student code runs; returns what was done, for reports.
    (The namespaces and the filesystem are bwrap's, set up before this process started.)"""
    done: dict[str, Any] = {"hidden": [], "not_hidden": []}
    uid, gid = options.get("uid"), options.get("gid")
    memory = int(options["memory_mb"]) << 20
    for limit, value in ((resource.RLIMIT_AS, memory),
                         (resource.RLIMIT_FSIZE, int(options.get("file_mb", 16)) << 20),
                         (resource.RLIMIT_CPU, int(options.get("cpu_s", 600))),
                         (resource.RLIMIT_NPROC, int(options.get("nproc", 64))),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file: an error, not death
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    workdir = options["workdir"]  # made after the uid drop, so it is nobody's
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)
    done["uid"] = os.getuid()
    done["memory_mb"] = int(options["memory_mb"])
    allowed = set(options.get("allow_imports", []))
    blocker = _BlockImports(tuple(n for n in BLOCKED_IMPORTS if n not in allowed))
    sys.meta_path.insert(0, blocker)
    done["blocked_imports"] = list(blocker.blocked)
    for name in list(sys.modules):
        if name.split(".")[0] in blocker.blocked:
            del sys.modules[name]
    return done


# ---------------------------------------------------------------------------------------------
# The server loop
# ---------------------------------------------------------------------------------------------


def _error(error: BaseException) -> dict:
    frames = traceback.extract_tb(error.__traceback__)
    student = [f for f in frames if f.filename.startswith("<in cell")]
    where = (f" ({student[-1].filename[1:-1]}, line {student[-1].lineno}: "
             f"{(student[-1].line or '').strip()[:200]})" if student else "")
    return {"type": type(error).__name__, "message": str(error)[:2000] + where}


_FUNCTION_PARTS = ("__code__", "__defaults__", "__kwdefaults__")


def _snapshot(namespace: dict, names: list[str]) -> dict[str, tuple]:
    """The given names' objects, and for functions the parts a student could swap."""
    return {name: (namespace[name], [getattr(namespace[name], a, None) for a in _FUNCTION_PARTS])
            for name in names if name in namespace}


def _restore(namespace: dict, saved: dict[str, tuple]) -> None:
    """Put the given names back as the master's cells left them, before each call: a student's
    function that re-binds or patches a driver while it runs changes nothing later."""
    for name, (value, parts) in saved.items():
        namespace[name] = value
        if isinstance(value, types.FunctionType):
            for attribute, part in zip(_FUNCTION_PARTS, parts, strict=True):
                setattr(value, attribute, part)


def serve(request_fd: int, reply_fd: int, options: dict) -> None:
    done = confine(options)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "np": np}
    handles: dict[int, Any] = {}
    given: dict[str, tuple] = {}
    generation = int(options.get("generation", 0))
    write_message(reply_fd, {"ready": done})
    while True:
        header, blobs = read_message(request_fd)
        op = header.get("op")
        reply: dict[str, Any]
        out_blobs: list[bytes] = []
        try:
            if op in ("describe", "get", "call"):
                _restore(namespace, given)
            if op == "protect":
                given = _snapshot(namespace, [str(n) for n in header["names"]])
                reply = {"ok": True}
            elif op == "exec":
                filename = f"<in {header['label']}>"
                linecache.cache[filename] = (len(header["source"]), None,
                                             header["source"].splitlines(True), filename)
                code = compile(header["source"], filename, "exec")
                exec(code, namespace)
                reply = {"ok": True}
            elif op == "describe":
                reply = {"kinds": {name: ("missing" if name not in namespace else
                                          "callable" if callable(namespace[name]) else "value")
                                   for name in header["names"]}}
            elif op == "get":
                reply = {"value": encode(namespace[header["name"]], out_blobs, handles)}
            elif op == "call":
                function = namespace[header["name"]]
                args = decode(header["args"], blobs, handles, generation)
                kwargs = decode(header["kwargs"], blobs, handles, generation)
                result = function(*args, **kwargs)
                reply = {"value": encode(result, out_blobs, handles)}
            elif op == "bye":
                return
            else:
                reply = {"error": {"type": "ProtocolError", "message": f"unknown op {op!r}"}}
        except BaseException as error:  # noqa: B036  (SystemExit, KeyboardInterrupt: the student's)
            reply, out_blobs = {"error": _error(error)}, []
        write_message(reply_fd, reply, out_blobs)


if __name__ == "__main__":
    request, reply = int(sys.argv[1]), int(sys.argv[2])
    serve(request, reply, json.loads(sys.argv[3]))
