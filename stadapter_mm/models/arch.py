"""CLIP ViT architectures and the one function that resolves an ``arch``."""
from __future__ import annotations

from typing import Dict, Optional, Union

from .layers.clip_transformer import MLP_ACTS

#: OpenAI CLIP image towers by release name.
CLIP_ARCHS: Dict[str, dict] = {
    'ViT-B/32': dict(input_resolution=224, patch_size=32, width=768,
                     layers=12, heads=12),
    'ViT-B/16': dict(input_resolution=224, patch_size=16, width=768,
                     layers=12, heads=12),
    'ViT-L/14': dict(input_resolution=224, patch_size=14, width=1024,
                     layers=24, heads=16),
    'ViT-L/14-336': dict(input_resolution=336, patch_size=14, width=1024,
                         layers=24, heads=16),
}
_REQUIRED = ('input_resolution', 'patch_size', 'width', 'layers', 'heads')


def resolve_arch(arch: Union[str, dict],
                 input_resolution: Optional[int] = None) -> dict:
    """Settings of a CLIP ViT, checked.

    Args:
        arch (str | dict): A name from :data:`CLIP_ARCHS` (``'ViT-B/16'``;
            ``'ViT-B-16'`` works too) or a dict with ``input_resolution,
            patch_size, width, layers, heads`` and optionally ``mlp_act``
            (``'quick_gelu'`` or ``'gelu'``).
        input_resolution (int, optional): Override the image size.

    Returns:
        dict: A new dict with at least the keys above.

    Raises:
        ValueError: For an unknown name, a dict lacking keys, a width not
            divisible by the heads, a size not a multiple of the patch, or an
            unknown ``mlp_act``.
        TypeError: If ``arch`` is neither a str nor a dict.
    """
    if isinstance(arch, str):
        key = arch.replace('-', '/', 1) if arch.count('/') == 0 else arch
        if key not in CLIP_ARCHS:
            raise ValueError(
                f'Unknown CLIP arch {arch!r}; choose one of '
                f'{sorted(CLIP_ARCHS)} or pass a dict with '
                f'{", ".join(_REQUIRED)}.')
        settings = dict(CLIP_ARCHS[key])
    elif isinstance(arch, dict):
        missing = set(_REQUIRED) - set(arch)
        if missing:
            raise ValueError(
                f'Custom arch dict lacks {sorted(missing)}; it needs '
                f'{sorted(_REQUIRED)}.')
        settings = dict(arch)
    else:
        raise TypeError(f'arch must be a str or dict, got {type(arch)}')
    if input_resolution is not None:
        settings['input_resolution'] = int(input_resolution)
    if settings['width'] % settings['heads']:
        raise ValueError(
            f'width {settings["width"]} is not divisible by heads '
            f'{settings["heads"]}.')
    if settings['input_resolution'] % settings['patch_size']:
        raise ValueError(
            f'input_resolution {settings["input_resolution"]} is not a '
            f'multiple of patch_size {settings["patch_size"]}.')
    if settings.get('mlp_act', 'quick_gelu') not in MLP_ACTS:
        raise ValueError(f'mlp_act must be one of {sorted(MLP_ACTS)}')
    return settings
