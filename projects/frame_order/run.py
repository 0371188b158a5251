"""Frame order: what ST-Adapter learns and a frozen image model cannot.

The project's main job: ST-Adapter vs. a linear probe on a frozen image
model, on generated videos whose classes differ only in the order of their
frames. Runs anywhere, with no downloads, in a few minutes on 2 CPU cores::

    python projects/frame_order/run.py

1. Generates (seeded) the "sweeps" dataset of ``sweeps.py`` (next to this
   script): two coloured squares sweep one after the other, to the right or
   to the left; the four classes are the colour order x the direction.
   Every class is a frame permutation of the same base videos, so no single
   frame and no average over frames tells the classes apart.
2. Saves a randomly initialised small ViT (the "frozen CLIP" stand-in) that
   both models share.
3. Trains ST-Adapter (frozen ViT + ST-Adapters + linear head) and a linear
   probe (the same frozen ViT, mean over frames, linear head) with mmengine's
   Runner, from the ``configs/`` folder next to this script.
4. Tests both with multi-view testing (3 clips x 3 crops by default), prints
   the top-1 accuracies, writes ``learning_curves.png`` and ``summary.json``
   to the work dir, and exits with status 1 if ST-Adapter is below 90% or
   the linear probe is not near chance (``--no-check`` to skip).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import DictAction

# The script's folder is on sys.path when it runs (and in pytest's pythonpath).
from sweeps import SWEEP_CLASSES, SweepSpec, generate_sweep_dataset

#: The project's configs (next to this script).
CONFIG_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'configs')
STADAPTER_CONFIG = osp.join(
    CONFIG_DIR, 'stadapter_vitw96l4p8-8x96_1xb32-8x2x1-10e_sweeps-rgb.py')
PROBE_CONFIG = osp.join(
    CONFIG_DIR, 'linearprobe_vitw96l4p8_1xb32-8x2x1-10e_sweeps-rgb.py')
#: ``--image-model``: (ST-Adapter config, linear-probe config). ``clip``: our
#: CLIP-layout ViT (ViTCLIPSTAdapter); ``mmpretrain``: MMPretrain's
#: VisionTransformer of the same size (MMPretrainSTAdapter).
IMAGE_MODELS = {
    'clip': (STADAPTER_CONFIG, PROBE_CONFIG),
    'mmpretrain': tuple(osp.join(CONFIG_DIR, name) for name in (
        'stadapter_vitw96l4p8mmpretrain-8x96_1xb32-8x2x1-10e_sweeps-rgb.py',
        'linearprobe_vitw96l4p8mmpretrain_1xb32-8x2x1-10e_sweeps-rgb.py')),
}
#: Pass marks: ST-Adapter at least this top-1; the probe at most chance plus
#: this margin.
MIN_STADAPTER_TOP1 = 0.90
MAX_PROBE_MARGIN = 0.15


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description='ST-Adapter vs. linear probe on generated videos')
    parser.add_argument(
        '--work-dir',
        default=osp.join('work_dirs', 'frame_order'),
        help='output folder (logs, checkpoints, plot, summary)')
    parser.add_argument(
        '--data-root',
        default=osp.join('data', 'synthetic_sweeps'),
        help='where the generated dataset goes (reused if it matches)')
    parser.add_argument('--train-per-class', type=int, default=160)
    parser.add_argument(
        '--eval-per-class',
        type=int,
        default=40,
        help='validation and test videos per class')
    parser.add_argument(
        '--views',
        default='3x3',
        help='test views, CLIPSxCROPS (crops: 1 or 3)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--image-model',
        choices=sorted(IMAGE_MODELS),
        default='clip',
        help='the frozen image model: our CLIP-layout ViT or MMPretrain\'s '
        'VisionTransformer (same size)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides applied to both models\' configs, e.g. '
        '"train_cfg.max_epochs=5"')
    parser.add_argument(
        '--no-check',
        action='store_true',
        help='exit 0 whatever the accuracies')
    return parser.parse_args(argv)


def weights_cfg(cfg) -> dict:
    """The ``init_cfg`` naming the frozen weights file of a config's model."""
    backbone = cfg.model.backbone
    if backbone.type == 'MMPretrainSTAdapter':
        return backbone.image_model.init_cfg
    return backbone.init_cfg


def save_random_backbone(cfg, seed: int) -> str:
    """Save the seeded random ViT both models load as their frozen weights.

    Args:
        cfg (mmengine.Config): A config whose backbone names the file in
            its ``init_cfg`` (the image model's for ``MMPretrainSTAdapter``).
        seed (int): Seed of the weights.

    Returns:
        str: The file written: a CLIP-layout state dict, or an MMPretrain
        classifier checkpoint (``backbone.*`` keys) initialised by
        MMPretrain.
    """
    import torch

    from stadapter_mm.models import ViTCLIPSTAdapter
    from stadapter_mm.models.backbones.mmpretrain_utils import \
        build_image_model

    path = weights_cfg(cfg).checkpoint
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    backbone_cfg = cfg.model.backbone
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        if backbone_cfg.type == 'MMPretrainSTAdapter':
            image_model = build_image_model(
                dict(backbone_cfg.image_model, init_cfg=None))
            image_model.init_weights()
            state = dict(meta={}, state_dict={
                f'backbone.{k}': v
                for k, v in image_model.state_dict().items()})
        else:
            state = ViTCLIPSTAdapter(arch=backbone_cfg.arch,
                                     adapter=None).state_dict()
    finally:
        torch.random.set_rng_state(generator_state)
    torch.save(state, path)
    return path


def load_config(path: str, args: argparse.Namespace, name: str):
    """Load a frame-order config with the command line's data and overrides."""
    from mmengine.config import Config

    cfg = Config.fromfile(path)
    root = args.data_root
    init_cfg = weights_cfg(cfg)
    init_cfg.checkpoint = osp.join(root, osp.basename(init_cfg.checkpoint))
    for loader, ann in (('train_dataloader', 'train_list.txt'),
                        ('val_dataloader', 'val_list.txt'),
                        ('test_dataloader', 'test_list.txt')):
        cfg[loader].dataset.ann_file = osp.join(root, ann)
        cfg[loader].dataset.data_prefix = dict(video=osp.join(root, 'videos'))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.experiment_name = f'frame_order_{name}'
    cfg.randomness = dict(seed=args.seed)
    return cfg


def read_scalars(log_dir: str) -> Dict[str, list]:
    """Training loss per iteration and validation top-1 per epoch.

    Args:
        log_dir (str): A Runner's ``log_dir`` (holds
            ``vis_data/scalars.json``).

    Returns:
        dict: ``train`` [(iteration, loss)], ``val`` [(epoch, top-1)].
    """
    curves = dict(train=[], val=[])
    with open(osp.join(log_dir, 'vis_data', 'scalars.json')) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record:
                curves['train'].append((record['step'], record['loss']))
            elif 'acc/top1' in record:
                curves['val'].append((record['step'], record['acc/top1']))
    return curves


def plot_curves(results: Dict[str, dict], chance: float, path: str) -> None:
    """Write the learning curves of both models to a PNG.

    Args:
        results (dict): Per model name, ``curves`` from :func:`read_scalars`
            and ``test_top1``.
        chance (float): Chance accuracy.
        path (str): Output PNG.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (name, result), colour in zip(results.items(),
                                      ('tab:blue', 'tab:orange')):
        train = result['curves']['train']
        val = result['curves']['val']
        if train:
            ax_loss.plot(*zip(*train), color=colour, label=name)
        if val:
            ax_acc.plot(*zip(*val), marker='o', color=colour,
                        label=f'{name} (val)')
        ax_acc.axhline(result['test_top1'], color=colour, linestyle=':',
                       label=f'{name} test {result["views"]} views: '
                       f'{100 * result["test_top1"]:.1f}%')
    ax_acc.axhline(chance, color='grey', linestyle='--',
                   label=f'chance ({100 * chance:.0f}%)')
    ax_loss.set(title='Training loss', xlabel='iteration',
                ylabel='cross-entropy')
    ax_acc.set(title='Top-1 accuracy', xlabel='epoch', ylabel='top-1',
               ylim=(0, 1.05))
    ax_loss.legend()
    ax_acc.legend(loc='center right', fontsize=8)
    fig.suptitle('Frozen random ViT on the sweeps dataset: ST-Adapter vs. '
                 'linear probe (mean over frames)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_and_test(cfg, views: str) -> dict:
    """Train with mmengine's Runner, then test with multi-view testing.

    Returns:
        dict: ``val_top1`` (last epoch), ``test_top1``, ``curves``,
        ``trainable`` / ``total`` parameters, ``seconds``.
    """
    from mmengine.runner import Runner

    from stadapter_mm.datasets.views import parse_views, set_test_views

    clips, crops = parse_views(views)
    set_test_views(cfg, clips, crops)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    model = runner.model
    curves = read_scalars(runner.log_dir)
    return dict(
        test_top1=float(metrics['acc/top1']),
        val_top1=curves['val'][-1][1] if curves['val'] else None,
        views=views,
        curves=curves,
        trainable=sum(p.numel() for p in model.parameters()
                      if p.requires_grad),
        total=sum(p.numel() for p in model.parameters()),
        seconds=time.time() - start)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    start = time.time()

    print(f'[frame order] 1/4 generating the sweeps dataset in '
          f'{args.data_root}', flush=True)
    spec = SweepSpec(train_per_class=args.train_per_class,
                     val_per_class=args.eval_per_class,
                     test_per_class=args.eval_per_class, seed=args.seed)
    generate_sweep_dataset(args.data_root, spec)

    stadapter_config, probe_config = IMAGE_MODELS[args.image_model]
    configs = {
        'ST-Adapter': load_config(stadapter_config, args, 'stadapter'),
        'linear probe': load_config(probe_config, args, 'linear_probe'),
    }
    backbone = save_random_backbone(configs['ST-Adapter'], args.seed)
    print(f'[frame order] 2/4 saved the frozen random ViT to {backbone}',
          flush=True)

    results = {}
    for step, (name, cfg) in enumerate(configs.items(), start=3):
        print(f'[frame order] {step}/4 training and testing {name}',
              flush=True)
        results[name] = train_and_test(cfg, args.views)

    chance = 1.0 / len(SWEEP_CLASSES)
    os.makedirs(args.work_dir, exist_ok=True)
    plot = osp.join(args.work_dir, 'learning_curves.png')
    plot_curves(results, chance, plot)
    stadapter, probe = results['ST-Adapter'], results['linear probe']
    passed = (stadapter['test_top1'] >= MIN_STADAPTER_TOP1
              and probe['test_top1'] <= chance + MAX_PROBE_MARGIN)
    total = time.time() - start
    summary = dict(
        image_model=args.image_model,
        chance=chance,
        views=args.views,
        passed=passed,
        seconds=total,
        models={
            k: {m: v[m] for m in ('test_top1', 'val_top1', 'trainable',
                                  'total', 'seconds')}
            for k, v in results.items()
        })
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)

    print('\n' + '=' * 72)
    print(f'Sweeps dataset: {len(SWEEP_CLASSES)} classes (chance '
          f'{100 * chance:.0f}%), test with {args.views} views '
          '(clips x crops)')
    print(f'{"model":<14}{"trainable params":>18}{"val top-1":>12}'
          f'{"test top-1":>12}{"time":>9}')
    for name, result in results.items():
        val = result['val_top1']
        print(f'{name:<14}{result["trainable"]:>18,}'
              f'{"-" if val is None else f"{100 * val:.1f}%":>12}'
              f'{100 * result["test_top1"]:>11.1f}%'
              f'{result["seconds"]:>8.0f}s')
    print(f'Learning curves: {plot}')
    print(f'Total time: {total:.0f} s')
    verdict = ('PASS' if passed else 'FAIL') + (
        f': ST-Adapter >= {100 * MIN_STADAPTER_TOP1:.0f}% and linear probe '
        f'<= chance + {100 * MAX_PROBE_MARGIN:.0f} points')
    print(verdict)
    print('=' * 72)
    return 0 if passed or args.no_check else 1


if __name__ == '__main__':
    sys.exit(main())
