"""MMPretrain image models with ST-Adapters, and MMPretrain without torchvision.
"""
import importlib.util
import sys

import pytest
from mmaction.registry import MODELS

from stadapter_mm import compat


# ------------------------------------------------ compat fix 7 (torchvision)
def test_mmpretrain_imports_without_a_working_torchvision():
    """``import stadapter_mm`` (conftest) imported MMPretrain's models."""
    assert 'mmpretrain.models' in sys.modules
    assert 'MobileOneTSM' in MODELS.module_dict  # MMAction2's, needs them
    from mmpretrain.models.utils import box_utils
    if compat._torchvision_loads():
        assert box_utils.boxes.__name__ == 'torchvision.ops.boxes'
        return
    # Nothing else sees a torchvision; MMPretrain's box helpers say why.
    assert 'torchvision' not in sys.modules
    if importlib.util.find_spec('transformers') is not None:
        from transformers.utils import is_torchvision_available
        assert not is_torchvision_available()
    with pytest.raises(ImportError, match='torchvision is not installed or '
                       'does not load'):
        box_utils.boxes.box_iou
    assert compat.import_mmpretrain_models() is sys.modules[
        'mmpretrain.models']


@pytest.fixture
def fake_torchvision(tmp_path, monkeypatch):
    """Write a ``torchvision`` package on the path (working or broken)."""
    if 'torchvision' in sys.modules:
        pytest.skip('a real torchvision is loaded in this process')

    def make(broken: bool) -> None:
        ops = tmp_path / 'torchvision' / 'ops'
        ops.mkdir(parents=True)
        (tmp_path / 'torchvision' / '__init__.py').write_text('')
        (ops / '__init__.py').write_text('')
        (ops / 'boxes.py').write_text(
            'raise RuntimeError("operator torchvision::nms does not exist")'
            if broken else 'def box_iou(a, b):\n    return 0\n')
        monkeypatch.syspath_prepend(str(tmp_path))

    yield make
    for name in [n for n in sys.modules if n.split('.')[0] == 'torchvision']:
        del sys.modules[name]


def test_a_working_torchvision_is_used(fake_torchvision):
    fake_torchvision(broken=False)
    assert compat._torchvision_loads()
    assert sys.modules['torchvision.ops.boxes'].box_iou(1, 2) == 0


def test_a_broken_torchvision_leaves_nothing_behind(fake_torchvision):
    fake_torchvision(broken=True)
    assert not compat._torchvision_loads()
    assert not [n for n in sys.modules if n.split('.')[0] == 'torchvision']
