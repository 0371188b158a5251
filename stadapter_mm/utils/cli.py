"""Command-line pieces the scripts in ``tools/`` share.

Every tool that takes a config offers the same ``--cfg-options`` and loads
the config the same way; ``tools/train.py`` and ``tools/test.py`` also share
MMAction2's launcher options, the default work dir and the Runner start.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction

from .dist import setup_cpu_distributed


def add_cfg_options(parser: argparse.ArgumentParser,
                    example: str = 'key=value') -> None:
    """Add MMAction2's ``--cfg-options key=value ...`` to ``parser``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        example (str): Example shown in the help text.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override config settings, e.g. {example}')


def add_launcher_args(parser: argparse.ArgumentParser, script: str) -> None:
    """Add ``--launcher`` and ``--local_rank`` (MMAction2's tools' options).

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        script (str): The ``tools/dist_*.sh`` script that passes
            ``--launcher pytorch`` (named in the help text).
    """
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help=f'job launcher ({script} passes "pytorch")')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> argparse.Namespace:
    """Set ``LOCAL_RANK`` from ``--local_rank`` unless a launcher set it."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config file and apply ``--cfg-options``.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Parsed ``--cfg-options``.

    Returns:
        mmengine.Config: The config.

    Raises:
        SystemExit: If ``path`` is not a file.
    """
    if not osp.isfile(path):
        raise SystemExit(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: Optional[str] = None) -> None:
    """``--work-dir``, else the config's, else ``./work_dirs/<config name>``.

    Args:
        cfg (mmengine.Config): Updated in place.
        config_path (str): The config file (its stem names the default).
        work_dir (str, optional): ``--work-dir``.
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def build_runner(cfg: Config, launcher: str):
    """Start mmengine's Runner, with gloo on a CPU-only distributed launch.

    Args:
        cfg (mmengine.Config): The full config (launcher already set).
        launcher (str): ``--launcher``.

    Returns:
        mmengine.runner.Runner: The runner.
    """
    from mmengine.runner import Runner

    setup_cpu_distributed(cfg, launcher)
    return Runner.from_cfg(cfg)
