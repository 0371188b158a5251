"""Shared test set-up: repository on the path, MMAction2 scope, tiny archs."""
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import stadapter_mm  # noqa: E402,F401
from mmengine.registry import init_default_scope  # noqa: E402

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
