"""Shared test set-up: MMAction2 scope, tiny archs, loading repository scripts.

The package is installed (``pip install -e .``); this folder and the
frame-order project's are on the path through pytest's ``pythonpath`` option
(pyproject.toml).
"""
import importlib.util
import os

import pytest
from mmengine.registry import init_default_scope

import stadapter_mm  # noqa: F401

#: The repository root (scripts and configs are found from it).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

init_default_scope('mmaction')

#: A 2-layer ViT of width 64 on 32x32 frames: the size the tests use.
TINY_ARCH = dict(input_resolution=32, patch_size=8, width=64, layers=2,
                 heads=4)


@pytest.fixture
def tiny_arch():
    return dict(TINY_ARCH)


def load_tool(relpath):
    """Import a script of the repository (e.g. ``'tools/train.py'``)."""
    path = os.path.join(ROOT, relpath)
    spec = importlib.util.spec_from_file_location(
        os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
