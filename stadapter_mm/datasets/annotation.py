"""Strict reading of MMAction2 video annotation lists.

The format is MMAction2's: one video per line, ``<path><delimiter><label>``
(single label), ``<path> <label> <label> ...`` (``multi_class``) or just
``<path>`` (unlabelled, test lists only). Every problem is reported with the
file name and line number and what to change.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Union

from mmengine.fileio import get_text

Label = Union[int, List[int]]


class AnnotationError(ValueError):
    """An annotation list that cannot be used as it is."""


def _bad_line(ann_file: str, lineno: int, line: str, what: str) -> str:
    shown = line if len(line) <= 120 else line[:117] + '...'
    return f'{ann_file}:{lineno}: {what}\n    line: {shown!r}'


def _parse_label(token: str, ann_file: str, lineno: int, line: str,
                 num_classes: Optional[int]) -> int:
    try:
        label = int(token)
    except ValueError:
        raise AnnotationError(
            _bad_line(
                ann_file, lineno, line,
                f'label {token!r} is not an integer class index. Expected '
                '"<video path> <label>"; for a path containing the '
                'delimiter, change the dataset\'s delimiter (e.g. to "\\t")'
                '.')) from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        valid = f'[0, {num_classes - 1}]' if num_classes else '>= 0'
        raise AnnotationError(
            _bad_line(
                ann_file, lineno, line,
                f'label {label} is outside the class range {valid}'
                f'{f" of num_classes={num_classes}" if num_classes else ""}. '
                'Fix the label, or set num_classes (dataset and model head) '
                'to the real number of classes.'))
    return label


def parse_annotation_lines(lines: Sequence[str],
                           ann_file: str = '<annotations>',
                           delimiter: str = ' ',
                           multi_class: bool = False,
                           num_classes: Optional[int] = None,
                           allow_unlabelled: bool = False,
                           data_prefix: Optional[str] = None,
                           first_lineno: int = 1) -> List[dict]:
    """Parse annotation lines into ``dict(filename, label)`` records.

    Blank lines are skipped. With a single label per line, the label is the
    last field, so a path may contain the delimiter.

    Args:
        lines (Sequence[str]): The lines of the list.
        ann_file (str): Name used in error messages.
        delimiter (str): Field separator. Defaults to ``' '``.
        multi_class (bool): Several labels per line. Defaults to False.
        num_classes (int, optional): Labels must lie in
            ``[0, num_classes)``. Defaults to None (only ``>= 0`` checked).
        allow_unlabelled (bool): Accept lines with a path only (label
            ``-1``), as for inference lists. Defaults to False.
        data_prefix (str, optional): Folder prepended to each path.
        first_lineno (int): Line number of ``lines[0]`` in the file, for
            messages. Defaults to 1.

    Returns:
        list[dict]: ``filename`` (prefixed path), ``label`` (int, list of
        int for ``multi_class``, or -1 when unlabelled) and ``lineno``.

    Raises:
        AnnotationError: Naming the file and line of the first bad line.
    """
    if multi_class and num_classes is None:
        raise AnnotationError(
            f'{ann_file}: multi_class=True needs num_classes to be set.')
    records = []
    for lineno, raw in enumerate(lines, start=first_lineno):
        line = raw.strip()
        if not line:
            continue
        if delimiter == ' ':
            fields = line.split()
        else:
            fields = [f.strip() for f in line.split(delimiter)]
        if any(not f for f in fields):
            raise AnnotationError(
                _bad_line(ann_file, lineno, line,
                          f'empty field (delimiter {delimiter!r}).'))
        if len(fields) == 1:
            if not allow_unlabelled:
                raise AnnotationError(
                    _bad_line(
                        ann_file, lineno, line,
                        'no label. Training and validation lists need '
                        '"<video path><delimiter><label>" (delimiter '
                        f'{delimiter!r}).'))
            filename, label = fields[0], -1
        elif multi_class:
            filename = fields[0]
            label = [
                _parse_label(t, ann_file, lineno, line, num_classes)
                for t in fields[1:]
            ]
        else:
            filename = delimiter.join(fields[:-1]) if delimiter != ' ' \
                else line[:len(line) - len(fields[-1])].rstrip()
            label = _parse_label(fields[-1], ann_file, lineno, line,
                                 num_classes)
        if data_prefix:
            filename = osp.join(data_prefix, filename)
        records.append(dict(filename=filename, label=label, lineno=lineno))
    if not records:
        raise AnnotationError(
            f'{ann_file} lists no videos: expected lines of '
            f'"<video path>{delimiter}<label>".')
    return records


def read_annotation_file(ann_file: str, **kwargs) -> List[dict]:
    """Read and parse an annotation list (see :func:`parse_annotation_lines`).

    Args:
        ann_file (str): Path of the list (any mmengine file backend).
        **kwargs: Options of :func:`parse_annotation_lines`.

    Raises:
        FileNotFoundError: If the local file does not exist.
        AnnotationError: For a malformed line or a label out of range.
    """
    if '://' not in ann_file and not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'annotation file {ann_file!r} does not exist: check ann_file '
            '(and data_root) in the dataset config.')
    text = get_text(ann_file)
    return parse_annotation_lines(text.splitlines(), ann_file=ann_file,
                                  **kwargs)
