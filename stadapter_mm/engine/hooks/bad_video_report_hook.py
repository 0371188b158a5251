"""Hook that checks labels early and reports unreadable videos at the end."""
from __future__ import annotations

import os.path as osp
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from mmaction.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop

from ...checkpoints.adapter_state import unwrap_model
from ...datasets.robust_video_dataset import (RobustVideoDataset,
                                              iter_datasets)

if TYPE_CHECKING:
    from mmengine.runner import Runner

#: Runner attributes holding each split's loop. Private on purpose: the
#: public ``runner.train_loop``/``val_loop``/``test_loop`` build a loop not
#: built yet (``runner.test()`` would build the training loop and its
#: dataloader); these hold a built loop only for the splits the run uses.
#: Pinned by tests/test_private_apis.py.
_SPLITS = (('train', '_train_loop'), ('val', '_val_loop'),
           ('test', '_test_loop'))


def _robust_datasets(dataset: Any) -> Iterator[RobustVideoDataset]:
    """``RobustVideoDataset`` instances inside (wrapped) datasets."""
    return (d for d in iter_datasets(dataset)
            if isinstance(d, RobustVideoDataset))


@HOOKS.register_module()
class BadVideoReportHook(Hook):
    """Keep the bad-video record of a run and report it when the run ends.

    - ``before_run``: checks that the labels of every
      :class:`~stadapter_mm.datasets.RobustVideoDataset` fit the model
      head's ``num_classes`` (before any weight is loaded or step taken) and
      moves each dataset's bad-video record to
      ``<log_dir>/bad_videos_<split>.jsonl``.
    - ``after_run``: logs how many videos could not be read, per split, with
      their paths, and writes the list to ``<log_dir>/bad_videos.txt``.

    Args:
        check_labels (bool): Compare dataset labels with the head.
            Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_labels: bool = True) -> None:
        self.check_labels = check_labels

    @staticmethod
    def _datasets(runner: 'Runner') -> Dict[str, List[RobustVideoDataset]]:
        found: Dict[str, List[RobustVideoDataset]] = {}
        for split, attr in _SPLITS:
            loop = getattr(runner, attr, None)
            if isinstance(loop, BaseLoop):
                datasets = list(_robust_datasets(loop.dataloader.dataset))
                if datasets:
                    found[split] = datasets
        return found

    @staticmethod
    def _head_classes(runner: 'Runner') -> Optional[int]:
        head = getattr(unwrap_model(runner.model), 'cls_head', None)
        return getattr(head, 'num_classes', None)

    def before_run(self, runner: 'Runner') -> None:
        """Check labels against the head; put the records in ``log_dir``."""
        num_classes = self._head_classes(runner)
        for split, datasets in self._datasets(runner).items():
            for i, dataset in enumerate(datasets):
                if self.check_labels and num_classes is not None:
                    self._check(dataset, split, num_classes)
                suffix = f'_{i}' if i else ''
                dataset.set_bad_video_log(
                    osp.join(runner.log_dir,
                             f'bad_videos_{split}{suffix}.jsonl'))

    @staticmethod
    def _check(dataset: RobustVideoDataset, split: str,
               num_classes: int) -> None:
        if dataset.num_classes is not None and \
                dataset.num_classes != num_classes:
            raise ValueError(
                f'The {split} dataset ({dataset.ann_file}) has num_classes='
                f'{dataset.num_classes} but the model head has '
                f'num_classes={num_classes}: make them equal.')
        if dataset.label_range and dataset.label_range[1] >= num_classes:
            raise ValueError(
                f'The {split} annotation list {dataset.ann_file} uses label '
                f'{dataset.label_range[1]} but the model head has '
                f'num_classes={num_classes} (labels 0..{num_classes - 1}): '
                'fix the list or set model.cls_head.num_classes.')

    def after_run(self, runner: 'Runner') -> None:
        """Log the count and list of unreadable videos of the run."""
        if not is_main_process():
            return
        lines: List[str] = []
        counts = []
        for split, datasets in self._datasets(runner).items():
            entries = [e for d in datasets for e in d.bad_videos.entries()]
            counts.append(f'{split}: {len(entries)}')
            lines += [f'{split}\t{e["filename"]}\t{e.get("reason", "")}'
                      for e in entries]
        if not counts:
            return
        if not lines:
            runner.logger.info('Every video the run tried could be read.')
            return
        report = osp.join(runner.log_dir, 'bad_videos.txt')
        with open(report, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')
        runner.logger.warning(
            f'{len(lines)} unreadable videos ({", ".join(counts)}); they '
            f'were skipped. List in {report}:\n' + '\n'.join(
                '  ' + line.split('\t', 2)[1] for line in lines))
