"""Read the weights of a TorchScript archive without executing its code.

OpenAI's CLIP releases (``ViT-B-16.pt`` and friends) are TorchScript archives.
``torch.jit.load`` would compile and run the archive's code; instead we read
the zip records directly and unpickle ``data.pkl`` with an unpickler that only
knows how to build tensors, plain containers and inert attribute holders for
the scripted modules. Anything else in the pickle is refused.
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from typing import Any, Dict

import torch

_STORAGE_DTYPES = {
    'FloatStorage': torch.float32,
    'HalfStorage': torch.float16,
    'BFloat16Storage': torch.bfloat16,
    'DoubleStorage': torch.float64,
    'LongStorage': torch.int64,
    'IntStorage': torch.int32,
    'ShortStorage': torch.int16,
    'CharStorage': torch.int8,
    'ByteStorage': torch.uint8,
    'BoolStorage': torch.bool,
}


class TorchScriptReadError(RuntimeError):
    """Raised when an archive cannot be read as plain weights."""


class _StorageType:

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _ScriptObject:
    """Inert holder for the attributes of one scripted module."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {'_': state}


def _script_class(qualname: str) -> type:
    return type(qualname.rsplit('.', 1)[-1], (_ScriptObject, ), {})


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any,
                    stride: Any, *args: Any) -> torch.Tensor:
    return storage.as_strided(tuple(size), tuple(stride), offset).clone()


def _rebuild_parameter(data: torch.Tensor, *args: Any) -> torch.Tensor:
    return data


class _WeightsUnpickler(pickle.Unpickler):

    def __init__(self, file: Any, archive: zipfile.ZipFile,
                 root: str) -> None:
        super().__init__(file)
        self._archive = archive
        self._root = root
        self._storages: Dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith('__torch__'):
            return _script_class(f'{module}.{name}')
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == 'torch._utils' and name == '_rebuild_tensor_v2':
            return _rebuild_tensor
        if module == 'torch._utils' and name == '_rebuild_parameter':
            return _rebuild_parameter
        if module == 'collections' and name == 'OrderedDict':
            return OrderedDict
        raise TorchScriptReadError(
            f'the archive needs {module}.{name} to be unpickled, which is '
            f'not plain weight data; refusing to execute it.')

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'):
            raise TorchScriptReadError(f'unknown persistent id {pid!r}')
        storage_type, key = pid[1], str(pid[2])
        if key not in self._storages:
            raw = self._archive.read(f'{self._root}/data/{key}')
            dtype = storage_type.dtype
            self._storages[key] = torch.frombuffer(
                bytearray(raw), dtype=dtype) if raw else torch.empty(
                    0, dtype=dtype)
        return self._storages[key]


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (zip with ``code/``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.split('/', 1)[-1].startswith('code/') for n in names) and \
        any(n.endswith('/constants.pkl') for n in names)


def _flatten(obj: Any, prefix: str, out: Dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix[:-1]] = obj
    elif isinstance(obj, _ScriptObject):
        for key, value in obj.state.items():
            _flatten(value, f'{prefix}{key}.', out)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(value, f'{prefix}{key}.', out)


def read_torchscript_weights(path: str) -> Dict[str, torch.Tensor]:
    """Extract every tensor attribute of a TorchScript archive.

    Args:
        path (str): Path of the archive (e.g. OpenAI's ``ViT-B-16.pt``).

    Returns:
        dict[str, Tensor]: Flat ``module.path.name -> tensor`` mapping, the
        same keys ``torch.jit.load(path).state_dict()`` would give (plus any
        tensor attributes such as buffers).

    Raises:
        TorchScriptReadError: If the archive holds anything but weights.
    """
    with zipfile.ZipFile(path) as archive:
        data_pkls = [n for n in archive.namelist() if n.endswith('/data.pkl')
                     and n.count('/') == 1]
        if not data_pkls:
            raise TorchScriptReadError(f'{path} has no data.pkl record')
        root = data_pkls[0].split('/', 1)[0]
        with archive.open(data_pkls[0]) as f:
            obj = _WeightsUnpickler(f, archive, root).load()
    out: Dict[str, torch.Tensor] = {}
    _flatten(obj, '', out)
    return out
