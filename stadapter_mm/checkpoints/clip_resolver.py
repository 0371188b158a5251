"""Find a CLIP checkpoint given by path or by name, from any working directory.

A backbone's ``init_cfg=dict(type='Pretrained', checkpoint=VALUE)`` may name
the CLIP weights in several ways: a path (``checkpoints/clip/ViT-B-16.pt``,
``/data/clip/ViT-B-16.pt``, a Hugging Face ``save_pretrained`` folder), a file
name (``ViT-B-16.pt``) or an OpenAI model name (``ViT-B/16``). VALUE is looked
up in this order, first hit wins:

1. VALUE itself as a path (``~`` expanded; a relative path is taken from the
   current working directory);
2. every folder listed in the environment variable ``STADAPTER_CLIP_DIR``
   (``os.pathsep``-separated), looking for VALUE's file name;
3. ``~/.cache/clip/``, where OpenAI's ``clip`` package keeps its downloads
   (``clip.load('ViT-B/16')`` saves ``ViT-B-16.pt`` there);
4. the repository root of this package (a source checkout or editable
   install): VALUE relative to it, then ``checkpoints/clip/<file name>``.

An OpenAI model name maps to the file name ``clip`` downloads
(``ViT-B/16`` -> ``ViT-B-16.pt``, ``ViT-L/14@336px`` -> ``ViT-L-14-336px.pt``).
When nothing is found, :class:`ClipCheckpointNotFoundError` lists every path
that was tried.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import List, Optional, Sequence

from .clip_formats import CheckpointError

#: Environment variable: folders holding CLIP files (``os.pathsep``-separated).
CLIP_DIR_ENV = 'STADAPTER_CLIP_DIR'
#: Where OpenAI's ``clip`` package stores downloaded models.
OPENAI_CLIP_CACHE = osp.join('~', '.cache', 'clip')
#: OpenAI model names and the file names ``clip.load`` saves them under.
OPENAI_FILE_NAMES = {
    'ViT-B/32': 'ViT-B-32.pt',
    'ViT-B/16': 'ViT-B-16.pt',
    'ViT-L/14': 'ViT-L-14.pt',
    'ViT-L/14@336px': 'ViT-L-14-336px.pt',
    'ViT-L/14-336': 'ViT-L-14-336px.pt',  # our arch name for the same model
}
#: This package's repository root (meaningful for a checkout/editable install).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class ClipCheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No CLIP checkpoint found for a path or name; lists where it looked."""


def file_names(value: str) -> List[str]:
    """File names under which ``value`` is looked for inside a folder.

    Args:
        value (str): Path, file name or OpenAI model name.

    Returns:
        list[str]: Candidate file (or folder) names, most specific first.
    """
    if value in OPENAI_FILE_NAMES:
        return [OPENAI_FILE_NAMES[value]]
    names = []
    base = osp.basename(osp.normpath(value))
    if base and base not in ('.', '..'):
        names.append(base)
        if '.' not in base:
            names.append(base + '.pt')
    return list(dict.fromkeys(names))


def search_dirs(env: Optional[dict] = None) -> List[str]:
    """Folders searched by name, in order (steps 2 to 4 of the module doc).

    Args:
        env (dict, optional): Environment to read ``STADAPTER_CLIP_DIR``
            from. Defaults to ``os.environ``.

    Returns:
        list[str]: Absolute folder paths (they need not exist).
    """
    env = os.environ if env is None else env
    dirs = [
        osp.abspath(osp.expanduser(d))
        for d in env.get(CLIP_DIR_ENV, '').split(os.pathsep) if d
    ]
    dirs.append(osp.expanduser(OPENAI_CLIP_CACHE))
    dirs.append(osp.join(REPO_ROOT, 'checkpoints', 'clip'))
    return dirs


def candidate_paths(value: str, env: Optional[dict] = None) -> List[str]:
    """Every path tried for ``value``, in the documented order.

    Args:
        value (str): Path, file name or OpenAI model name.
        env (dict, optional): Environment (for ``STADAPTER_CLIP_DIR``).

    Returns:
        list[str]: Absolute paths, without duplicates.
    """
    expanded = osp.expanduser(value)
    paths = [osp.abspath(expanded)]
    names = file_names(value)
    dirs = search_dirs(env)
    repo_dir = dirs.pop()  # the repository comes last, VALUE relative first
    for folder in dirs:
        paths += [osp.join(folder, name) for name in names]
    if not osp.isabs(expanded):
        paths.append(osp.join(REPO_ROOT, expanded))
    paths += [osp.join(repo_dir, name) for name in names]
    return list(dict.fromkeys(osp.normpath(p) for p in paths))


def resolve_clip_checkpoint(value: str,
                            env: Optional[dict] = None) -> str:
    """Find the CLIP file or folder that ``value`` names.

    Args:
        value (str): Path, file name or OpenAI model name (see module doc).
        env (dict, optional): Environment (for ``STADAPTER_CLIP_DIR``).
            Defaults to ``os.environ``.

    Returns:
        str: Absolute path of the first existing candidate.

    Raises:
        ClipCheckpointNotFoundError: Nothing found; the message lists every
            path tried and how to fix it.
    """
    tried = candidate_paths(value, env)
    for path in tried:
        if osp.exists(path):
            return path
    raise ClipCheckpointNotFoundError(not_found_message(value, tried))


def not_found_message(value: str, tried: Sequence[str]) -> str:
    """The error text for a CLIP checkpoint that was not found."""
    places = '\n'.join(f'  {p}' for p in tried)
    return (
        f'CLIP checkpoint {value!r} does not exist; set the backbone\'s '
        'init_cfg=dict(type="Pretrained", checkpoint=...) to a CLIP file '
        '(e.g. OpenAI ViT-B-16.pt or a Hugging Face model folder), given by '
        f'path or by name, or put the file in a folder named by '
        f'${CLIP_DIR_ENV}. Searched, in order:\n{places}')
