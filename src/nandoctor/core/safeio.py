"""The one door every input and every output of nandoctor goes through.

Inputs (:func:`open_input`, :func:`read_input`, :func:`check_input`): only regular files
are read. A FIFO would block the open (or the read) forever, ``/dev/zero`` never ends and a
socket is no file at all, so each of them, also reached through a symlink, is an
:class:`InputError` before a byte is read. Each reader states the size it can hold in
memory; a larger file is an error, not a MemoryError fifteen gigabytes later.

Outputs (:class:`OutputDir`): a command writes into one folder it was given. Every file is
first written under a fresh temporary name created with ``O_EXCL | O_NOFOLLOW`` inside that
folder and then renamed over its final name, so

* a symlink planted in the folder is replaced, never written through;
* a name is a single safe path component (:func:`safe_name` makes one from input text), so
  nothing lands outside the folder;
* a file that is one of the command's inputs is never replaced;
* an output appears only when complete: a kill leaves at most a ``.NAME.partial-*`` entry,
  which no reader mistakes for the output.

:func:`terminate_as_exit` turns SIGTERM into ``SystemExit`` while a large output is
written, so its temporary files are removed on that exit path too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

from nandoctor.core.types import InputError

MB = 1 << 20
GB = 1 << 30
MAX_NAME = 200  # bytes; file systems allow 255, the temporary prefix and suffix need the rest

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@,-]")


# --------------------------------------------------------------------------- inputs


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _not_regular(path: str, mode: int, what: str) -> InputError:
    if stat.S_ISDIR(mode):
        return InputError(f"is a directory, expected {what}", path)
    return InputError(f"is {_kind(mode)}, not a regular file: {what} must be a file", path)


def _too_large(path: str, size: int, limit: int, what: str) -> InputError:
    return InputError(f"{what} is {size:,} bytes, more than the {limit:,} bytes nandoctor reads for it", path)


def _open_error(path: str, exc: OSError, what: str) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError("file not found", path)
    if isinstance(exc, IsADirectoryError):
        return InputError(f"is a directory, expected {what}", path)
    return InputError(f"cannot read {what}: {exc.strerror or exc}", path)


def check_input(path: str | os.PathLike, what: str = "a file", limit: int | None = None) -> os.stat_result:
    """Stat ``path`` (following symlinks, as a reader would) and insist on a regular file.

    For paths handed to a library that opens them itself (h5py, LMDB, Pillow).
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _open_error(p, exc, what) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(p, st.st_mode, what)
    if limit is not None and st.st_size > limit:
        raise _too_large(p, st.st_size, limit, what)
    return st


def open_input(path: str | os.PathLike, what: str = "a file", limit: int | None = None) -> BinaryIO:
    """Open a regular file for reading in binary mode; anything else is an InputError.

    The file is opened non-blocking, so a FIFO cannot hold the open until a writer comes;
    its type is then judged on the open descriptor (no race with a swapped path).
    """
    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _open_error(p, exc, what) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(p, st.st_mode, what)
        if limit is not None and st.st_size > limit:
            raise _too_large(p, st.st_size, limit, what)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# A log may come through a pipe (``nandoctor log <(zcat run.log.gz)``, a FIFO some program
# writes to); one that no program opens for writing within this many seconds never will.
FIFO_WRITER_WAIT = 10.0


def open_stream_input(path: str | os.PathLike, what: str = "a log", wait: float | None = None) -> BinaryIO:
    """Open a regular file or a pipe for streaming; a device (``/dev/zero``), a socket or a
    folder is an InputError, and so is a FIFO no writer opens within ``wait`` seconds."""
    import select

    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _open_error(p, exc, what) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode):
            poll = select.poll()
            poll.register(fd, select.POLLIN | select.POLLHUP)
            timeout = FIFO_WRITER_WAIT if wait is None else wait
            if not poll.poll(int(timeout * 1000)):
                raise InputError(f"is a FIFO (named pipe) that no program wrote to within {timeout:g} s", p)
        elif not stat.S_ISREG(mode):
            raise _not_regular(p, mode, what)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path: str | os.PathLike, what: str = "a file", limit: int = 256 * MB) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes (a file still growing is cut off there)."""
    p = os.fspath(path)
    with open_input(p, what, limit) as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise _open_error(p, exc, what) from None
    if len(data) > limit:
        raise _too_large(p, len(data), limit, what)
    return data


# --------------------------------------------------------------------------- names


def safe_name(text: str, default: str = "output") -> str:
    """One path component made from input text: no separator, no ``..``, no control character.

    Characters outside a conservative set become ``_``; a leading dot becomes ``_`` too, so
    the name is neither hidden nor ``.``/``..``; the result is at most :data:`MAX_NAME` bytes.
    """
    name = _UNSAFE.sub("_", text)
    if name.startswith("."):
        name = "_" + name[1:]
    name = name[:MAX_NAME]
    return name or default


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name or (os.altsep and os.altsep in name):
        raise ValueError(f"not a single file name: {name!r}")  # a programming error, not bad input


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


# --------------------------------------------------------------------------- outputs


class OutputDir:
    """The folder a command writes into; every write stays in it and never follows a symlink.

    ``inputs`` are the files the command read: none of them is ever replaced, even when the
    folder is theirs or holds a hard link to one. ``create`` makes the folder (and its parents)
    when missing; an existing non-folder, or a dangling symlink, is an InputError.
    """

    def __init__(self, path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *,
                 what: str = "output folder", create: bool = True):  # fmt: skip
        self.path = Path(path)
        self.what = what
        self._inputs: list[os.stat_result] = []
        for i in inputs:
            with contextlib.suppress(OSError):
                self._inputs.append(os.stat(i))
        p = os.fspath(self.path)
        if os.path.islink(p) and not os.path.exists(p):
            raise InputError(f"the {what} is a dangling symlink", p)
        if os.path.exists(p) and not os.path.isdir(p):
            raise InputError(f"the {what} exists and is not a folder", p)
        if create:
            try:
                os.makedirs(p, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create the {what}: {exc.strerror or exc}", p) from None
        self.real = Path(os.path.realpath(p))

    # -- places

    def __truediv__(self, name: str) -> Path:
        """The final path of ``name`` (for messages and for files that refer to each other)."""
        _check_name(name)
        return self.path / name

    def real_path(self, name: str) -> Path:
        _check_name(name)
        return self.real / name

    def holds_input(self, name: str) -> bool:
        """Whether the entry ``name`` of the folder is one of the inputs (not following a symlink there)."""
        try:
            st = os.lstat(self.real_path(name))
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and any(_same_file(st, i) for i in self._inputs)

    def _fail(self, name: str, exc: OSError) -> InputError:
        return InputError(f"cannot write {name} in the {self.what}: {exc.strerror or exc}", str(self.path / name))

    def _dirfd(self) -> int:
        try:
            return os.open(self.real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"cannot open the {self.what}: {exc.strerror or exc}", str(self.path)) from None

    def _check_target(self, name: str, dfd: int) -> None:
        _check_name(name)
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail(name, exc) from None
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{name} in the {self.what} is a folder; not replacing it", str(self.path / name))
        if any(_same_file(st, i) for i in self._inputs):
            raise InputError(
                f"{name} in the {self.what} is one of the inputs; choose another folder (inputs are never overwritten)",
                str(self.path / name),
            )

    # -- files

    @contextlib.contextmanager
    def open(self, name: str, mode: str = "w", *, executable: bool = False, **text_options) -> Iterator[IO]:
        """A new file ``name`` to write; it replaces any old entry of that name only when the block ends well."""
        dfd = self._dirfd()
        tmp = None
        try:
            self._check_target(name, dfd)
            tmp = f".{name}.partial-{secrets.token_hex(4)}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o777 if executable else 0o666, dir_fd=dfd)  # fmt: skip
            except OSError as exc:
                tmp = None
                raise self._fail(name, exc) from None
            binary = "b" in mode
            with os.fdopen(
                fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"} | text_options)
            ) as fh:
                yield fh
            try:
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError as exc:
                raise self._fail(name, exc) from None
            tmp = None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
            os.close(dfd)

    def open_log(self, name: str) -> BinaryIO:
        """A new file ``name`` written in place, for a log that must survive an interrupt.

        An old entry of that name (a file, a symlink) is removed first, never written
        through; the file is then created exclusively.
        """
        dfd = self._dirfd()
        try:
            self._check_target(name, dfd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dfd)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=dfd)
        except OSError as exc:
            raise self._fail(name, exc) from None
        finally:
            os.close(dfd)
        return os.fdopen(fd, "wb")

    def write_bytes(self, name: str, data: bytes, *, executable: bool = False) -> Path:
        with self.open(name, "wb", executable=executable) as fh:
            fh.write(data)
        return self / name

    def write_text(self, name: str, text: str, *, executable: bool = False, errors: str = "strict") -> Path:
        return self.write_bytes(name, text.encode("utf-8", errors), executable=executable)

    # -- folders

    def subdir(self, name: str, what: str | None = None) -> OutputDir:
        """A folder ``name`` inside this one (made when missing; a symlink there is refused, not followed)."""
        dfd = self._dirfd()
        try:
            _check_name(name)
            try:
                os.mkdir(name, 0o777, dir_fd=dfd)
            except FileExistsError:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise InputError(f"{name} in the {self.what} exists and is not a folder",
                                     str(self.path / name)) from None  # fmt: skip
            except OSError as exc:
                raise self._fail(name, exc) from None
        finally:
            os.close(dfd)
        return OutputDir(self.path / name, (), what=what or self.what, create=False)._with_inputs(self._inputs)

    def _with_inputs(self, inputs: list[os.stat_result]) -> OutputDir:
        self._inputs = list(inputs)
        return self

    @contextlib.contextmanager
    def staged_dir(self, name: str) -> Iterator[Path]:
        """A fresh private folder to fill; it becomes ``name`` only when the block ends well.

        ``name`` must be missing or an empty folder (a symlink is refused); a failure, an
        interrupt or SIGTERM (see :func:`terminate_as_exit`) removes the partial folder.
        """
        _check_name(name)
        final = self.real / name
        if os.path.islink(final):
            raise InputError(f"{name} in the {self.what} is a symlink; not replacing it", str(self.path / name))
        if os.path.lexists(final) and (not os.path.isdir(final) or os.listdir(final)):
            raise InputError("output exists and is not an empty directory: choose a new path", str(self.path / name))
        try:
            tmp = Path(_mkdtemp(self.real, f".{name}.partial-"))
        except OSError as exc:
            raise self._fail(name, exc) from None
        done = False
        try:
            yield tmp
            umask = _umask()
            os.chmod(tmp, 0o777 & ~umask)
            try:
                os.rename(tmp, final)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise InputError("output appeared while writing it: choose a new path", str(final)) from None
                raise self._fail(name, exc) from None
            done = True
        finally:
            if not done:
                shutil.rmtree(tmp, ignore_errors=True)


def _mkdtemp(parent: Path, prefix: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- signals


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``SystemExit(143)`` so ``finally`` clauses clean up.

    Only the main thread can set a handler; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(_sig, _frame):
        raise SystemExit(128 + signal.SIGTERM)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def write_file(path: str | os.PathLike, data: str | bytes, inputs: Iterable[str | os.PathLike] = (), *,
               what: str = "output file") -> Path:  # fmt: skip
    """Write one output file the user named (``--html``, ``--output``): through its folder, as above."""
    p = Path(path)
    if not p.name or p.name in (".", ".."):
        raise InputError(f"the {what} needs a file name", str(p))
    folder = OutputDir(p.parent, inputs, what=f"folder of the {what}")
    if isinstance(data, str):
        return folder.write_text(p.name, data)
    return folder.write_bytes(p.name, data)
