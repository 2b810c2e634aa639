"""Files, written so that a crash never costs what was there before: minigen's one atomic writer.

Every file minigen writes (checkpoints, models, JSON, figures, downloads) goes through
:func:`atomic_write`:

1. the bytes go to a temporary file ``.tmp-<name>-<random>`` in the same folder (same filesystem, so
   the last step is a rename, not a copy), created with mode 0o666 less the umask, like any file a
   program makes with ``open(path, "w")`` (``tempfile.mkstemp`` would make it 0600, unreadable to
   the other users of a shared run folder);
2. the file is flushed and ``fsync``-ed, so its bytes are on the disk before it gets its name;
3. ``os.replace`` gives it the final name in one step (POSIX and Windows): a reader sees the old
   file or the new one, never half of one; then the folder is ``fsync``-ed so the rename is durable;
4. on any failure (a full disk, a permission error, Ctrl-C, an exception in the caller's code) the
   temporary file is removed and the old file is left untouched.

A process killed with SIGKILL cannot clean up after itself, so a temporary file may stay behind;
:func:`remove_stale_temporaries` removes them (the training command does so when it starts on a
run folder).

JSON is written strictly (:func:`write_json`): NaN and infinities, which the JSON standard does not
have and many readers refuse, become ``null``.  :func:`read_json` names the file in its errors.

Arrays (checkpoints, models, optimizer states) are NumPy .npz archives: :func:`save_arrays` writes
them atomically, :func:`load_arrays` refuses pickled objects and names the file when it is damaged
(``mg.backend.save_arrays`` and ``mg.backend.load_arrays`` are the same functions).

One process at a time writes a run folder: :func:`folder_lock` holds the operating system's lock on
the folder's ``.lock`` file, and a second process gets :class:`FolderInUse`, naming the holder.
"""

import contextlib
import errno
import json
import math
import os
import secrets
import socket
import warnings
import zipfile
import zlib

try:                         # POSIX: flock; Windows: msvcrt.locking (both released when the holder
    import fcntl             # exits, however it exits)
    msvcrt = None
except ImportError:
    fcntl = None
    import msvcrt

__all__ = ["BadFileError", "FolderInUse", "atomic_write", "remove_stale_temporaries",
           "folder_lock", "write_json", "read_json", "strict_json", "save_arrays", "load_arrays",
           "TMP_PREFIX", "LOCK_NAME"]

TMP_PREFIX = ".tmp-"
LOCK_NAME = ".lock"


class BadFileError(ValueError):
    """A file minigen reads is damaged or is not what it should be; the message names the file."""


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:          # Windows, or a folder we may rename in but not open: nothing to do
        return
    try:
        os.fsync(fd)
    except OSError:          # some filesystems (and /proc-like ones) refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="wb", fsync=True):
    """``with atomic_write(path) as f: f.write(...)``: ``path`` gets the new content all at once
    when the block ends without an exception, and is left as it was otherwise.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, UTF-8).  The folder is created when missing.
    ``fsync=False`` skips the two ``fsync`` calls: the file is still replaced in one step (a killed
    process or a full disk cannot leave half of it), but a power failure within the next seconds
    may lose it.  On a slow disk an ``fsync`` can cost as much as an epoch of a small model, so the
    training loop syncs its per-epoch files only now and then.  An ``OSError`` about no file
    or about the temporary one (a full disk, a permission error) is re-raised with ``filename`` set
    to ``path``, so that a message built from it names the file the user knows.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', not {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f"{TMP_PREFIX}{os.path.basename(path)}-{secrets.token_hex(4)}")
    try:
        os.makedirs(folder, exist_ok=True)
        # O_EXCL: never reuse a file someone else made; 0o666 & ~umask: readable like any new file
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as err:
        raise _naming(err, path) from None
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(err, OSError) and err.filename in (None, tmp):
            raise _naming(err, path) from None
        raise
    if fsync:
        _fsync_folder(folder)


def _naming(err, path):
    """The same kind of OSError (PermissionError, ...) as ``err``, naming ``path``."""
    if err.errno is None:
        return err
    return OSError(err.errno, err.strerror, path)


def remove_stale_temporaries(folder):
    """Remove the temporary files that :func:`atomic_write` leaves in ``folder`` when its process
    is killed mid-write; returns their names.  Only names starting with ``.tmp-`` are touched."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in sorted(names):
        path = os.path.join(folder, name)
        if name.startswith(TMP_PREFIX) and os.path.isfile(path) and not os.path.islink(path):
            with contextlib.suppress(OSError):
                os.remove(path)
                removed.append(name)
    return removed


class FolderInUse(RuntimeError):
    """Another process holds :func:`folder_lock` on a folder; ``holder`` says which ("process 4242
    on host node1"), or is None when it had not written its name yet."""

    def __init__(self, folder, holder):
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder} is in use by {holder or 'another process'}")


_LOCKED_BYTE = 1 << 20      # Windows locks a byte range: one byte far past the holder's name,
#                             which the others must be able to read


def _try_lock(fd):
    """Take the exclusive lock of the open file ``fd``: True, or False when another process holds
    it.  Never waits."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _unlock(fd):
    """Give the lock of ``fd`` back before the file is closed.  Closing alone releases it too, but
    Windows documents that it may do so only some time after the close, and a training started
    right after this one ended would find the folder still in use."""
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


@contextlib.contextmanager
def folder_lock(folder):
    """``with folder_lock(run_folder): ...`` holds an exclusive lock on ``folder`` for the block, so
    that two processes never write into one folder at once: the second gets :class:`FolderInUse`
    at once, naming the folder and the holder (its pid and host).

    The lock is the operating system's lock (``flock``; ``msvcrt.locking`` on Windows) on the file
    ``.lock`` in the folder, which holds the holder's name and is removed when the block ends (not
    on Windows, which cannot remove an open file: there it stays, unlocked, until the next holder
    takes it).  The
    system releases the lock when the holder exits in any way, SIGKILL included, so a ``.lock`` that
    a killed process left behind blocks nobody: the next process locks it and goes on.  On a
    filesystem without locks (some network mounts) the block runs unlocked, with a warning.
    """
    path = os.path.join(os.fspath(folder), LOCK_NAME)
    fd = _acquire(path, os.fspath(folder))
    if fd is None:                    # no locks on this filesystem: warned
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"process {os.getpid()} on host {socket.gethostname()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            # before unlocking: nobody can lock a file that then goes (Windows refuses to remove an
            # open file, so there the .lock stays, and the next holder locks it again)
            os.remove(path)
        _unlock(fd)
        os.close(fd)


def _acquire(path, folder):
    """The open, locked lock file ``path`` of ``folder``; None (with a warning) on a filesystem
    without locks; :class:`FolderInUse` when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            locked = _try_lock(fd)
        except OSError as err:          # no locks on this filesystem (ENOLCK, EOPNOTSUPP...)
            os.close(fd)
            with contextlib.suppress(OSError):
                os.remove(path)
            warnings.warn(f"cannot lock {folder} ({err.strerror}): a second process writing into "
                          "it at the same time would not be stopped", RuntimeWarning, stacklevel=4)
            return None
        if not locked:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or None
            os.close(fd)
            raise FolderInUse(folder, holder)
        # The holder before us may have removed the file between our open and our lock (and a
        # third process made and locked a new one): then ours is not the lock; try again.
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def strict_json(obj):
    """``obj`` with every non-finite float (NaN, inf, -inf) replaced by None, recursively through
    dicts, lists and tuples (JSON has no NaN or Infinity; its ``null`` says "no number")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_json(path, obj, fsync=True):
    """Write ``obj`` as indented, standard JSON (non-finite numbers as ``null``), atomically."""
    text = json.dumps(strict_json(obj), indent=2, allow_nan=False) + "\n"
    with atomic_write(path, "w", fsync=fsync) as f:
        f.write(text)


def _refuse_constant(name):
    raise ValueError(f"{name} is not standard JSON")


def read_json(path):
    """The JSON value in ``path``.  A file that is not (standard) JSON raises :class:`BadFileError`
    naming the file and the line; a missing or unreadable file raises the ``OSError``."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
            raise BadFileError(f"{path} is not valid JSON ({err})") from None


# a zip archive's first bytes (an empty one: the second)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def save_arrays(path, arrays, fsync=True):
    """Write ``{name: array}`` (arrays of any backend) to ``path`` as .npz, atomically
    (:func:`atomic_write`, which says what ``fsync`` does): a crash mid-write never leaves a
    half-written file where a good one was."""
    from . import backend     # backend.py imports this module, so it is looked up when called
    with atomic_write(path, fsync=fsync) as f:
        backend.write_npz(f, arrays)


def load_arrays(path):
    """Read a .npz written by :func:`save_arrays` into ``{name: NumPy array}``.

    Pickled objects are refused (``allow_pickle=False``): loading a file from a stranger cannot run
    code. A file that is not an .npz of plain arrays (truncated, random bytes, a pickle, object
    arrays) raises :class:`BadFileError` naming the file; a missing or unreadable one the
    ``OSError``.
    """
    from . import backend
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in _ZIP_MAGIC:
        raise BadFileError(f"{path} is not a minigen checkpoint: not an .npz archive of arrays")
    try:
        return backend.read_npz(path)
    except ValueError as err:
        if "pickle" in str(err):        # object arrays: refused, and no advice to load them anyway
            raise BadFileError(f"{path} is not a minigen checkpoint: it holds Python objects, not "
                               "plain arrays (refused: loading them could run code)") from None
        raise BadFileError(f"{path} is not a minigen checkpoint of plain arrays ({err})") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, KeyError, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise
        raise BadFileError(f"{path} is damaged (truncated or not a complete .npz archive: "
                           f"{err})") from None
