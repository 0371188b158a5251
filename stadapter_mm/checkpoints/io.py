"""Crash-safe writing and code-free loading of checkpoints.

A file written with :func:`atomic_write_bytes` is either the complete old
version or the complete new version, never a torn mix, whatever moment the
process is killed at: the data goes to a temporary file in the same folder,
is flushed and ``fsync``-ed, then ``os.replace`` swaps it in (atomic on POSIX
and Windows within one file system) and the folder entry is ``fsync``-ed.

:class:`AtomicLocalBackend` is mmengine's ``LocalBackend`` with atomic
``put``/``put_text``. It is registered in mmengine's file-backend registry
as ``'atomic_local'``, so ``backend_args=dict(backend='atomic_local')``
makes ``Runner.save_checkpoint`` (which writes through ``backend.put``)
atomic without patching mmengine. :class:`~stadapter_mm.engine.hooks.
AtomicCheckpointHook` uses it by default.

:func:`load_local_weights_only` is the local checkpoint loader that
:func:`stadapter_mm.compat.fix_weights_only_loader` gives mmengine;
:func:`load_weights_only` reads any checkpoint file as plain data and turns
a failure into the caller's error type with a one-line reason.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import pickle
import secrets
from pathlib import Path
from typing import Any, Iterable, List, Optional, Type, Union

import torch
from mmengine.fileio import LocalBackend, register_backend

#: Prefix of the temporary files; a leftover one means a killed write.
TMP_PREFIX = '.tmp-'


def _fsync_dir(dirname: str) -> None:
    """Persist a folder entry (a rename) where the OS supports it."""
    if os.name != 'posix':
        return
    fd = os.open(dirname, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(data: Union[bytes, Iterable[bytes]],
                       filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` so that readers never see a torn file.

    Args:
        data (bytes | Iterable[bytes]): The complete file content, or its
            pieces in order (streamed to disk one by one).
        filepath (str | Path): Destination. Its folder is created if needed.
            A symlink is followed: its target is replaced.
    """
    target = osp.realpath(str(filepath))
    dirname = osp.dirname(target)
    os.makedirs(dirname, exist_ok=True)
    tmp = osp.join(
        dirname, f'{TMP_PREFIX}{osp.basename(target)}.{os.getpid()}.'
        f'{secrets.token_hex(4)}')
    # os.open with mode 0o666 lets the umask decide the permissions, as a
    # plain open() would (mkstemp would force 0o600).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            for piece in ((data, ) if isinstance(
                    data, (bytes, bytearray, memoryview)) else data):
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(dirname)


def atomic_write_text(text: str,
                      filepath: Union[str, Path],
                      encoding: str = 'utf-8') -> None:
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(text.encode(encoding), filepath)


def stale_temp_files(dirname: str) -> List[str]:
    """Temporary files left in ``dirname`` by writes that were killed.

    Args:
        dirname (str): A checkpoint folder.

    Returns:
        list[str]: Paths of leftover ``.tmp-*`` files, sorted.
    """
    return sorted(glob.glob(osp.join(glob.escape(dirname), TMP_PREFIX + '*')))


def load_local_weights_only(filename: str,
                            map_location: Optional[Any] = None) -> Any:
    """mmengine's local checkpoint loader, with ``weights_only=True`` set.

    mmengine calls ``torch.load`` without ``weights_only`` and so relies on
    torch's default (True since torch 2.6), which the environment variable
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` can turn off. Passing it explicitly
    keeps code in a checkpoint from running whatever the environment says.

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (optional): As for ``torch.load``.

    Returns:
        The loaded checkpoint (plain data and tensors).

    Raises:
        pickle.UnpicklingError: The file needs more than plain data; the
            message names the one-file opt-in for a trusted file
            (``tools/convert/trust_checkpoint.py``).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist.')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(
            f'{err}\n{filename} needs more than the weights-only allow-list '
            'of stadapter_mm. Only if you trust where the file comes from, '
            'convert this one file once: python tools/convert/'
            f'trust_checkpoint.py {filename} <new file>, and load the new '
            'file (see "Process-wide effects" in the README).') from err


def error_summary(err: BaseException) -> str:
    """``'TypeName: first line of the message'`` of an exception."""
    text = str(err)
    return f'{type(err).__name__}: {text.splitlines()[0] if text else ""}'


def load_weights_only(path: str, error: Type[Exception],
                      what: str = 'a checkpoint') -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, one error type.

    Args:
        path (str): An existing file.
        error (type): Exception raised when the file cannot be read as
            plain data (e.g. ``CheckpointError``).
        what (str): What the file should be, for the message.

    Returns:
        The loaded object (plain data and tensors).

    Raises:
        error: For a truncated, corrupt or code-carrying file, naming the
            file and the reason.
    """
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle raises many error types
        raise error(f'cannot read {path} as {what} ({error_summary(err)})'
                    ) from err


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine ``LocalBackend`` whose writes are atomic.

    Use with ``backend_args=dict(backend='atomic_local')`` wherever mmengine
    takes ``backend_args`` (``CheckpointHook``, ``Runner.save_checkpoint``,
    ``mmengine.dump``). Reading, listing and removing are unchanged.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Atomically write bytes to ``filepath`` (folder created if needed).

        Args:
            obj (bytes): Data to write.
            filepath (str | Path): Destination path.
        """
        atomic_write_bytes(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Atomically write text to ``filepath`` (folder created if needed).

        Args:
            obj (str): Text to write.
            filepath (str | Path): Destination path.
            encoding (str): Text encoding. Defaults to ``'utf-8'``.
        """
        atomic_write_text(obj, filepath, encoding)
