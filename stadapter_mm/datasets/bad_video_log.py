"""A record of unreadable videos shared by the processes of a run.

Data-loader workers are separate processes with their own copy of the
dataset, so the list of bad videos lives in a small JSON-lines file. An
exclusive ``flock`` around check-and-append makes every video appear once,
whichever worker (or rank on the same machine) meets it first.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from contextlib import contextmanager
from typing import IO, Iterator, List, Set

try:
    import fcntl
except ImportError:  # not POSIX: line appends only, dedup best-effort
    fcntl = None


@contextmanager
def _locked(f: IO) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _parse(lines: List[str]) -> List[dict]:
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a killed writer
        if isinstance(entry, dict) and 'filename' in entry:
            entries.append(entry)
    return entries


class BadVideoLog:
    """Append-only, process-safe list of videos that failed to load.

    Args:
        path (str): JSON-lines file (created on the first bad video). Each
            line is ``{"filename": ..., "reason": ...}``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: Set[str] = set()

    def add(self, filename: str, reason: str) -> bool:
        """Record a bad video.

        Args:
            filename (str): The video path.
            reason (str): Why it failed (one line).

        Returns:
            bool: True if the video was not recorded before, by this or any
            other process sharing the file: the caller should log it.
        """
        if filename in self._seen:
            return False
        self._seen.add(filename)
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        with open(self.path, 'a+', encoding='utf-8') as f:
            with _locked(f):
                f.seek(0)
                known = {e['filename'] for e in _parse(f.readlines())}
                if filename in known:
                    return False
                f.write(json.dumps(dict(filename=filename,
                                        reason=reason)) + '\n')
                f.flush()
        return True

    def __contains__(self, filename: str) -> bool:
        return filename in self._seen

    def entries(self) -> List[dict]:
        """All recorded videos, first occurrence order, one entry each."""
        if not osp.isfile(self.path):
            return []
        with open(self.path, encoding='utf-8') as f:
            entries = _parse(f.readlines())
        unique = {}
        for entry in entries:
            unique.setdefault(entry['filename'], entry)
        return list(unique.values())

    def filenames(self) -> List[str]:
        """Paths of all recorded videos."""
        return [e['filename'] for e in self.entries()]
