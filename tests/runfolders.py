"""Helpers for the tests of run folders (test_cli.py, test_faults.py): what a folder holds, and the
command line run in this process with its output captured."""

import contextlib
import io
import os

from minigen.cli import main


def snapshot(folder):
    """``{name: (bytes, mode, mtime_ns)}`` of every file under ``folder`` ({} when it is missing):
    two equal snapshots mean that nothing was written, removed or touched."""
    state = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            info = os.stat(path)
            with open(path, "rb") as f:
                state[os.path.relpath(path, folder)] = (f.read(), info.st_mode, info.st_mtime_ns)
    return state


def cli(*args):
    """``(exit code, stdout, stderr)`` of ``python -m minigen args`` run in this process; any
    exception escaping ``main`` (what a user would see as a traceback) fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()
