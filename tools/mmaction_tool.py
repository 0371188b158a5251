"""Run one of MMAction2's own tools with stadapter-mm loaded first.

Examples::

    python tools/mmaction_tool.py confusion_matrix CONFIG CKPT --show-path cm.png
    python tools/mmaction_tool.py vis_cam CONFIG CKPT video.mp4 \\
        --device cpu --target-layer-name backbone/token_map --out-filename cam.gif
    python tools/mmaction_tool.py path/to/mmaction2/demo/long_video_demo.py ...

The first argument is a tool of the installed mmaction2 wheel
(``mmaction/.mim/tools/``), by file name without ``.py``
(``confusion_matrix``), by path inside that folder
(``analysis_tools/confusion_matrix.py``), or any script path (e.g. a demo of
an mmaction2 checkout). The rest is passed to the tool unchanged.

Why: MMAction2's ``train.py``/``test.py`` import our package through the
config's ``custom_imports``, but several tools import ``mmaction.models`` (or
``torch.load`` a checkpoint) *before* reading the config. In the mmaction2
1.2.0 wheel that import fails (``mmaction.models.localizers.drn`` is missing
from the wheel, fixed by ``stadapter_mm.compat``), and plain ``torch.load``
refuses mmengine checkpoints under torch >= 2.6 without the weights-only
allow-list. Importing ``stadapter_mm`` first applies both fixes; the tool
then runs as ``__main__`` exactly as ``python TOOL ARGS`` would.
"""
from __future__ import annotations

import glob
import os.path as osp
import runpy
import sys
from typing import List, Optional


def mmaction_tools_dir() -> str:
    """The ``tools`` folder the mmaction2 wheel installs."""
    import importlib.util
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit('mmaction2 is not installed')
    return osp.join(spec.submodule_search_locations[0], '.mim', 'tools')


def find_tool(name: str) -> str:
    """Path of the script ``name`` names (see the module doc).

    Raises:
        SystemExit: No such tool; the message lists the wheel's tools.
    """
    if osp.isfile(name):
        return osp.abspath(name)
    root = mmaction_tools_dir()
    if osp.isfile(osp.join(root, name)):
        return osp.join(root, name)
    stem = osp.splitext(osp.basename(name))[0]
    hits = sorted(glob.glob(osp.join(glob.escape(root), '**', stem + '.py'),
                            recursive=True))
    if len(hits) == 1:
        return hits[0]
    tools = sorted(
        osp.relpath(p, root)
        for p in glob.glob(osp.join(glob.escape(root), '*', '*.py')))
    raise SystemExit(
        f'{name!r} names {"several" if hits else "no"} MMAction2 tool'
        f'{": " + ", ".join(osp.relpath(h, root) for h in hits) if hits else ""}'
        f'; tools in {root}:\n  ' + '\n  '.join(tools))


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point: ``mmaction_tool.py TOOL [ARGS...]``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__)
        return
    script = find_tool(argv[0])
    import stadapter_mm  # noqa: F401  (compat fixes, registries)
    sys.argv = [script] + argv[1:]
    sys.path.insert(0, osp.dirname(script))
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
