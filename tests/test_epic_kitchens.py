"""EPIC-KITCHENS-100: CSV reading, segment sampling, head, metric, tools.

The data is made here: two long videos (30 and 20 fps) and a frame folder
whose pixels encode the frame number, official-layout CSVs with adjacent
segments and one shorter than the clip, class files, a broken video and a
segment whose video is missing.
"""
import csv
import math
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS, METRICS, MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config

from stadapter_mm.datasets.epic_kitchens import (EpicAnnotationError,
                                                 parse_segments,
                                                 read_class_names,
                                                 segment_frame_range)
from stadapter_mm.models import ViTCLIPSTAdapter
from stadapter_mm.apis import (MultiTaskInferencer, describe_prediction,
                               topk_actions)
from stadapter_mm.utils.video import write_video

from conftest import ROOT, TINY_ARCH, load_tool

PRIMITIVE = osp.join(ROOT, 'configs', 'recognition', 'stadapter',
                     'stadapter_vitb16-24x384_8xb32-u8-50e_ek100-rgb.py')
HEADER = ['narration_id', 'participant_id', 'video_id', 'narration_timestamp',
          'start_timestamp', 'stop_timestamp', 'start_frame', 'stop_frame',
          'narration', 'verb', 'verb_class', 'noun', 'noun_class',
          'all_nouns', 'all_noun_classes']
VERBS = ['take', 'put', 'open', 'close']
NOUNS = ['plate', 'cup', 'door']
#: (video, fps, frames) of the generated videos.
VIDEOS = [('P01_01', 30, 200), ('P02_01', 20, 120)]
#: (narration_id, start, stop, verb, noun); P01_01_1 starts where _0 stops,
#: P01_01_2 has 7 frames (fewer than the 8 of a clip).
SEGMENTS = [('P01_01_0', '00:00:00.10', '00:00:01.00', 0, 0),
            ('P01_01_1', '00:00:01.00', '00:00:02.50', 1, 1),
            ('P01_01_2', '00:00:02.50', '00:00:02.70', 2, 2),
            ('P01_01_3', '00:00:03.00', '00:00:05.00', 3, 0),
            ('P02_01_0', '00:00:00.55', '00:00:02.05', 0, 1),
            ('P02_01_1', '00:00:02.05', '00:00:04.00', 1, 2)]
BROKEN = ('P04_01_0', '00:00:00.00', '00:00:01.00', 2, 1)  # random bytes
MISSING = ('P03_01_0', '00:00:00.00', '00:00:01.00', 3, 2)  # no file


def encode(index, size=32):
    """A frame whose left/right halves encode ``index`` (mp4v-proof)."""
    frame = np.zeros((size, size, 3), np.uint8)
    frame[:, :size // 2] = (index // 16) * 16 + 8
    frame[:, size // 2:] = (index % 16) * 16 + 8
    return frame


def decode(frames):
    """Frame numbers encoded by :func:`encode` in (T, H, W, 3) frames."""
    frames = np.asarray(frames, dtype=float)
    h, w = frames.shape[1:3]
    hi = frames[:, h // 8:-h // 8, 1:w // 2 - 1].mean(axis=(1, 2, 3)) // 16
    lo = frames[:, h // 8:-h // 8, w // 2 + 1:-1].mean(axis=(1, 2, 3)) // 16
    return (hi * 16 + lo).astype(int)


def fps_of(narration_id):
    return dict((v, f) for v, f, _ in VIDEOS)[narration_id.rsplit('_', 1)[0]]


def seconds(text):
    h, m, s = text.split(':')
    return int(h) * 3600 + int(m) * 60 + float(s)


def row(segment, fps=30):
    nid, start, stop, verb, noun = segment
    video = nid.rsplit('_', 1)[0]
    first = math.ceil(round(seconds(start) * fps, 6)) + 1
    last = math.floor(round(seconds(stop) * fps, 6)) + 1
    return [nid, video.split('_')[0], video, start, start, stop, first, last,
            f'{VERBS[verb]} {NOUNS[noun]}', VERBS[verb], verb, NOUNS[noun],
            noun, f"['{NOUNS[noun]}', 'x']", f'[{noun}, 1]']


def write_csv(path, rows, header=HEADER):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope='module')
def ek(tmp_path_factory):
    """Media in both layouts, annotation and class files."""
    root = tmp_path_factory.mktemp('ek100')
    for video, fps, count in VIDEOS:
        folder = root / video[:3] / 'videos'
        folder.mkdir(parents=True, exist_ok=True)
        write_video(str(folder / f'{video}.MP4'),
                    (encode(i) for i in range(count)), fps=fps)
    frames = root / 'P01' / 'rgb_frames' / 'P01_01'
    frames.mkdir(parents=True)
    for k in range(1, VIDEOS[0][2] + 1):  # 1-based files, pixels encode k
        cv2.imwrite(str(frames / f'frame_{k:010d}.jpg'), encode(k))
    (root / 'P04' / 'videos').mkdir(parents=True)
    (root / 'P04' / 'videos' / 'P04_01.MP4').write_bytes(
        np.random.default_rng(0).bytes(4096))
    ann = root / 'annotations'
    ann.mkdir()
    rows = [row(s, fps_of(s[0])) for s in SEGMENTS]
    paths = dict(
        root=str(root),
        train=write_csv(ann / 'EPIC_100_train.csv', rows + [row(BROKEN)]),
        val=write_csv(ann / 'EPIC_100_validation.csv',
                      rows + [row(MISSING)]),
        frames=write_csv(ann / 'frames.csv',
                         [r for r in rows if r[2] == 'P01_01']),
        verbs=write_csv(ann / 'EPIC_100_verb_classes.csv',
                        [[i, v, f"['{v}']", 'c'] for i, v in enumerate(VERBS)],
                        ['id', 'key', 'instances', 'category']),
        nouns=write_csv(ann / 'EPIC_100_noun_classes.csv',
                        [[i, n, f"['{n}']", 'c'] for i, n in enumerate(NOUNS)],
                        ['id', 'key', 'instances', 'category']))
    return paths


# ------------------------------------------------------------------- CSVs
def test_official_csv_and_class_files(ek):
    segments = parse_segments(ek['train'], len(VERBS), len(NOUNS))
    assert [s['narration_id'] for s in segments] == \
        [s[0] for s in SEGMENTS] + [BROKEN[0]]
    first = segments[0]
    assert (first['video_id'], first['participant_id']) == ('P01_01', 'P01')
    assert (first['start_time'], first['stop_time']) == (0.1, 1.0)
    assert (first['start_frame'], first['stop_frame']) == (4, 31)
    assert [s['label'] for s in segments[:3]] == [[0, 0], [1, 1], [2, 2]]
    assert read_class_names(ek['verbs']) == VERBS


def corrupt(ek, tmp_path, column, value, line=3):
    """A copy of the train CSV with one field of data line ``line - 1``."""
    with open(ek['train'], newline='') as f:
        rows = list(csv.reader(f))
    if value is None:  # drop the column
        index = rows[0].index(column)
        rows = [r[:index] + r[index + 1:] for r in rows]
    else:
        rows[line - 1][rows[0].index(column)] = value
    return write_csv(tmp_path / 'bad.csv', rows[1:], rows[0])


@pytest.mark.parametrize('column, value, message', [
    ('verb_class', None, r'bad\.csv:1: missing column\(s\) verb_class'),
    ('noun_class', '3', r"bad\.csv:3: field 'noun_class': 3 is outside "
     r'\[0, 2\]'),
    ('stop_frame', '2', r"bad\.csv:3: field 'stop_frame': 2 is before "
     'start_frame 31'),
    ('start_timestamp', '1.5', r"bad\.csv:3: field 'start_timestamp': "
     "'1.5' is not a timestamp"),
    ('verb_class', 'take', r"bad\.csv:3: field 'verb_class': 'take' is not"),
])
def test_bad_csv_line_names_file_line_and_field(ek, tmp_path, column, value,
                                                message):
    bad = corrupt(ek, tmp_path, column, value)
    with pytest.raises(EpicAnnotationError, match=message):
        parse_segments(bad, len(VERBS), len(NOUNS))
    # The dataset fails at construction, before any training step.
    with pytest.raises(EpicAnnotationError, match=message):
        DATASETS.build(dataset_cfg(ek, bad, verb_classes=ek['verbs'],
                                   noun_classes=ek['nouns']))


def test_bad_class_file(tmp_path):
    path = write_csv(tmp_path / 'verbs.csv', [[0, 'take'], [2, 'put']],
                     ['id', 'key'])
    with pytest.raises(EpicAnnotationError,
                       match=r"verbs\.csv:3: field 'id': 2 where 1"):
        read_class_names(path)


# --------------------------------------------------------------- sampling
def decode_pipeline(media, split='train'):
    """The recipe's pipeline up to decoding (its sampler, its segment step).

    For extracted frames, the video steps give way to ``RawFrameDecode`` as
    docs/training.md shows.
    """
    recipe = Config.fromfile(PRIMITIVE)[f'{split}_pipeline']
    steps = recipe[:[t['type'] for t in recipe].index('DecordDecode') + 1]
    if media == 'frames':
        return [dict(type='RawFrameDecode') if t['type'] == 'DecordDecode'
                else t for t in steps
                if t['type'] not in ('DecordInit', 'SegmentFrameRange')]
    return steps


def dataset_cfg(ek, ann_file, media='video', pipeline=None, **kwargs):
    return dict(type='EpicKitchensDataset', ann_file=ann_file, media=media,
                data_prefix=dict(video=ek['root']),
                pipeline=pipeline or decode_pipeline(media),
                num_verb_classes=len(VERBS), num_noun_classes=len(NOUNS),
                **kwargs)


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_video_frames_stay_inside_their_segment(ek, split):
    test_mode = split != 'train'
    dataset = DATASETS.build(dataset_cfg(
        ek, ek['val'] if test_mode else ek['train'],
        pipeline=decode_pipeline('video', split), test_mode=test_mode))
    for idx, (nid, start, stop, _, _) in enumerate(SEGMENTS):
        fps = fps_of(nid)
        first = math.ceil(round(seconds(start) * fps, 6))
        last = math.floor(round(seconds(stop) * fps, 6))
        seen = set()
        for _ in range(1 if test_mode else 6):
            data = dataset[idx]
            shown = decode(data['imgs'])
            assert list(shown) == list(data['frame_inds'])  # what was read
            assert first <= shown.min() and shown.max() <= last, nid
            assert data['segment_frames'] == (first, last)
            seen.update(shown.tolist())
        if last - first + 1 >= 16 and not test_mode:
            assert len(seen) > 8  # random positions, not a fixed clip
    short = dataset[2]  # 7 frames, clip of 8: frames repeat, never leave
    assert len(short['imgs']) == 8 * (2 if split == 'test' else 1)
    assert set(decode(short['imgs'])) <= set(range(75, 82))


def test_extracted_frames_stay_inside_start_and_stop_frame(ek):
    dataset = DATASETS.build(dataset_cfg(ek, ek['frames'], media='frames'))
    for idx, info in enumerate(parse_segments(ek['frames'], 4, 3)):
        for _ in range(4):
            shown = decode(dataset[idx]['imgs'])  # pixels encode the file
            assert info['start_frame'] <= shown.min()
            assert shown.max() <= info['stop_frame']


def test_segment_frame_range_edges():
    assert segment_frame_range(0.1, 1.0, 30, 200) == (3, 30)
    assert segment_frame_range(1.0, 1.01, 30, 200) == (30, 30)
    assert segment_frame_range(1.01, 1.02, 30, 200) == (30, 30)  # nearest
    assert segment_frame_range(6.0, 9.0, 30, 200) == (180, 199)  # clipped
    with pytest.raises(ValueError, match='starts at 7.00 s'):
        segment_frame_range(7.0, 8.0, 30, 200)


def test_pipeline_must_reach_the_segment(ek):
    pipeline = [dict(type='DecordInit'),
                dict(type='UniformSample', clip_len=8),
                dict(type='DecordDecode')]
    with pytest.raises(ValueError, match='SegmentFrameRange'):
        DATASETS.build(dataset_cfg(ek, ek['train'], pipeline=pipeline))
    with pytest.raises(ValueError, match='RawFrameDecode'):
        DATASETS.build(dataset_cfg(ek, ek['frames'], media='frames',
                                   pipeline=decode_pipeline('video')))


# ------------------------------------------------------------ head, metric
def test_head_weighted_losses_and_two_predictions():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='VerbNounHead', num_verb_classes=4,
                             num_noun_classes=3, in_channels=8,
                             verb_loss_weight=2.0, noun_loss_weight=0.5,
                             dropout_ratio=0.0))
    feats = torch.randn(2, 8)
    samples = [ActionDataSample().set_gt_label([1, 2]),
               ActionDataSample().set_gt_label([3, 0])]
    losses = head.loss(feats, samples)
    logits = head(feats)
    ce = torch.nn.functional.cross_entropy
    assert float(losses['loss_verb']) == pytest.approx(
        2.0 * float(ce(logits[:, :4], torch.tensor([1, 3]))), rel=1e-5)
    assert float(losses['loss_noun']) == pytest.approx(
        0.5 * float(ce(logits[:, 4:], torch.tensor([2, 0]))), rel=1e-5)

    views = torch.randn(2 * 3, 8)  # 3 views per video
    out = head.predict(views, [ActionDataSample(), ActionDataSample()])
    logits = head(views).reshape(2, 3, 7)
    verb = logits[..., :4].softmax(-1).mean(1)
    noun = logits[..., 4:].softmax(-1).mean(1)
    for i, sample in enumerate(out):
        assert torch.allclose(sample.pred_verb_score, verb[i])
        assert torch.allclose(sample.pred_noun_score, noun[i])
        assert sample.pred_label.tolist() == [int(verb[i].argmax()),
                                              int(noun[i].argmax())]


def test_topk_actions_equals_brute_force():
    gen = torch.Generator().manual_seed(1)
    verb = torch.rand(97, generator=gen).softmax(0)
    noun = torch.rand(300, generator=gen).softmax(0)
    outer = (verb[:, None] * noun[None, :]).flatten()
    values, flat = outer.topk(5)
    expected = [(int(i) // 300, int(i) % 300) for i in flat]
    got = topk_actions(verb, noun, 5)
    assert [(v, n) for v, n, _ in got] == expected
    assert [s for _, _, s in got] == pytest.approx(values.tolist())
    top = describe_prediction(
        dict(pred_verb_score=verb, pred_noun_score=noun),
        [f'v{i}' for i in range(97)], [f'n{i}' for i in range(300)], 3)
    assert [(a['verb'], a['noun']) for a in top['actions']] == expected[:3]
    assert top['actions'][0]['label'] == \
        f'v{expected[0][0]} n{expected[0][1]}'
    assert [v['index'] for v in top['verbs']] == verb.topk(3).indices.tolist()
    assert top['nouns'][0] == dict(label=f'n{int(noun.argmax())}',
                                   score=pytest.approx(float(noun.max())),
                                   index=int(noun.argmax()))
    with pytest.raises(ValueError, match='no VerbNounHead'):
        describe_prediction(dict(pred_score=verb))


def prediction(verb, noun, v_scores, n_scores):
    return dict(gt_label=torch.tensor([verb, noun]),
                pred_verb_score=torch.tensor(v_scores),
                pred_noun_score=torch.tensor(n_scores))


def test_metric_against_hand_computed_values():
    metric = METRICS.build(dict(type='EpicKitchensMetric', topk=(1, 2)))
    metric.process(None, [
        # verb right, noun right -> action right (top-1).
        prediction(0, 0, [.7, .2, .1], [.6, .3, .1]),
        # verb right, noun 2nd: action ranked (0,1) .42 > (0,0) .35 ... so
        # the true (0,0) is 2nd -> action top-2 only.
        prediction(0, 0, [.7, .2, .1], [.5, .6, .0]),
        # verb 2nd, noun right: actions (2,1) .32, (1,1) .24 -> top-2.
        prediction(1, 1, [.1, .3, .4], [.1, .8, .1]),
        # both wrong and out of the top-2 (verb 2 is 3rd).
        prediction(2, 2, [.5, .4, .1], [.2, .3, .5]),
        # unlabelled: not scored.
        prediction(-1, -1, [.5, .4, .1], [.2, .3, .5]),
    ])
    results = metric.evaluate(5)
    expected = {
        'verb_top1': 2 / 4, 'verb_top2': 3 / 4,
        'noun_top1': 3 / 4, 'noun_top2': 4 / 4,
        'action_top1': 1 / 4, 'action_top2': 3 / 4,
        # per class top-1 recall: verbs {0: 2/2, 1: 0/1, 2: 0/1},
        # nouns {0: 1/2, 1: 1/1, 2: 1/1}, actions {(0,0): 1/2, (1,1): 0,
        # (2,2): 0}.
        'verb_mean_class_acc': 1 / 3, 'noun_mean_class_acc': 2.5 / 3,
        'action_mean_class_acc': 0.5 / 3,
    }
    assert set(results) == {f'epic/{k}' for k in expected}
    for key, value in expected.items():
        assert results[f'epic/{key}'] == pytest.approx(value), key
    assert next(iter(results)) == 'epic/action_top1'  # save_best='auto'


# ------------------------------------------------------- tools, end to end
def run(cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                            errors='replace',
                            env=dict(os.environ, OMP_NUM_THREADS='1'),
                            timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope='module')
def config_file(ek, tmp_path_factory):
    """The EK100 recipe on the tiny ViT and the generated data."""
    folder = tmp_path_factory.mktemp('ek_config')
    torch.manual_seed(0)
    frozen = folder / 'frozen_vit.pth'
    torch.save(ViTCLIPSTAdapter(arch=dict(TINY_ARCH),
                                adapter=None).state_dict(), frozen)
    # The recipe's own pipelines, at the size of the generated frames.
    sizes = dict(FloatRandomResizedCrop=dict(size=32),
                 FloatShortSideResize=dict(scale=(-1, 32)),
                 CenterCrop=dict(crop_size=32),
                 LongSideThreeCrop=dict(crop_size=32),
                 VideoRandAugment=dict(num_ops=2))
    lines = [
        f'_base_ = [{PRIMITIVE!r}]',
        f'model = dict(backbone=dict(arch={dict(TINY_ARCH, _delete_=True)!r}, '
        "adapter=dict(_delete_=True, preset='24x384', width=16), "
        f'init_cfg=dict(type="Pretrained", checkpoint={str(frozen)!r})), '
        'cls_head=dict(num_verb_classes=4, num_noun_classes=3, '
        'in_channels=64))',
        f'tiny_sizes = {sizes!r}',
    ] + [
        f'{split}_pipeline = [dict(t, **tiny_sizes.get(t["type"], {{}})) '
        f'for t in _base_.{split}_pipeline]'
        for split in ('train', 'val', 'test')
    ]
    for split, ann, batch in (('train', ek['train'], 2),
                              ('val', ek['val'], 4), ('test', ek['val'], 2)):
        lines.append(
            f'{split}_dataloader = dict(batch_size={batch}, num_workers=0, '
            f'persistent_workers=False, dataset=dict(ann_file={ann!r}, '
            f"data_prefix=dict(video={ek['root']!r}), "
            f"verb_classes={ek['verbs']!r}, noun_classes={ek['nouns']!r}, "
            f'pipeline={split}_pipeline))')
    lines += ['train_cfg = dict(max_epochs=1, val_begin=1, val_interval=1)',
              'default_hooks = dict(logger=dict(interval=1))']
    path = folder / 'tiny_ek100.py'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


@pytest.fixture(scope='module')
def trained(config_file, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('ek_train')
    output = run([sys.executable, osp.join(ROOT, 'tools', 'train.py'),
                  config_file, '--work-dir', str(work_dir)],
                 cwd=str(work_dir))
    return work_dir, output


def test_train_validate_test_and_dump(trained, config_file, ek, tmp_path):
    work_dir, output = trained
    # 7 training segments in batches of 2; the broken video is replaced.
    assert 'Epoch(train) [1][4/4]' in output
    assert re.search(r'loss_verb: \S+\s+loss_noun: \S+', output)
    reports = list(work_dir.glob('*/bad_videos.txt'))  # in the log folder
    assert len(reports) == 1
    assert 'P04_01.MP4' in reports[0].read_text()
    assert re.search(r'Epoch\(val\) \[1\]\[2/2\].*epic/action_top1', output)
    assert 'epic/verb_mean_class_acc' in output
    assert re.search(r'num_bad_videos: 1\b', output)  # P03_01 is missing

    checkpoint = torch.load(work_dir / 'epoch_1.pth', map_location='cpu',
                            weights_only=True)
    state = checkpoint['state_dict']
    assert state['cls_head.fc_verb.weight'].shape == (4, 64)
    assert state['cls_head.fc_noun.weight'].shape == (3, 64)
    assert 'backbone.conv1.weight' not in state  # slim: frozen CLIP left out

    dump = tmp_path / 'preds.pkl'
    output = run([sys.executable, osp.join(ROOT, 'tools', 'test.py'),
                  config_file, str(work_dir / 'epoch_1.pth'), '--work-dir',
                  str(tmp_path / 'test'), '--dump', str(dump)],
                 cwd=str(tmp_path))
    assert re.search(r'Epoch\(test\).*epic/action_top5', output)
    assert 'P03_01.MP4' in output  # reported, not scored
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == len(SEGMENTS) + 1
    bad = [s for s in predictions if s.get('bad_video')]
    assert [osp.basename(s['bad_video']) for s in bad] == ['P03_01.MP4']
    for sample in predictions:
        if sample.get('bad_video'):
            continue
        # 2 clips x 3 crops, probabilities averaged per classifier.
        assert float(sample['pred_verb_score'].sum()) == pytest.approx(1)
        assert sample['pred_noun_score'].shape == (3, )
        assert sample['gt_label'].numel() == 2

    demo = load_tool('demo/demo.py')
    video = osp.join(ek['root'], 'P01', 'videos', 'P01_01.MP4')
    top = demo.main([config_file, str(work_dir / 'epoch_1.pth'), video,
                     ek['verbs'], '--noun-label', ek['nouns'], '--device',
                     'cpu', '--topk', '3'])
    assert [len(top[k]) for k in ('verbs', 'nouns', 'actions')] == [3, 3, 3]
    assert all(v['label'] == VERBS[v['index']] for v in top['verbs'])
    assert all(a['label'] == f'{VERBS[a["verb"]]} {NOUNS[a["noun"]]}'
               for a in top['actions'])


def test_inferencer_top_verbs_nouns_actions(trained, config_file, ek,
                                            tmp_path, capsys):
    """A task file of the EK100 model; the inferencer = the demo."""
    work_dir, _ = trained
    checkpoint = str(work_dir / 'epoch_1.pth')
    task = str(tmp_path / 'ek100.task.pth')
    load_tool('tools/convert/export_adapter.py').main([
        config_file, checkpoint, '--label-map', ek['verbs'],
        '--noun-label-map', ek['nouns'], '--name', 'ek100', '--out', task])
    video = osp.join(ek['root'], 'P02', 'videos', 'P02_01.MP4')
    clip = osp.join(osp.dirname(config_file), 'frozen_vit.pth')
    result = MultiTaskInferencer(clip, [task])(video, topk=3)['ek100']
    assert result['predictions'] == result['actions']
    assert all(a['label'] == f'{VERBS[a["verb"]]} {NOUNS[a["noun"]]}'
               for a in result['actions'])
    scores = torch.tensor(result['pred_score'])  # verbs, then nouns
    assert [v['index'] for v in result['verbs']] == \
        scores[:4].topk(3).indices.tolist()
    assert [n['label'] for n in result['nouns']] == \
        [NOUNS[i] for i in scores[4:].topk(3).indices.tolist()]

    demo = load_tool('demo/demo.py').main([
        config_file, checkpoint, video, ek['verbs'], '--noun-label',
        ek['nouns'], '--device', 'cpu', '--topk', '3'])
    for key in ('verbs', 'nouns', 'actions'):
        assert [d['label'] for d in demo[key]] == \
            [d['label'] for d in result[key]]
        assert [d['score'] for d in demo[key]] == pytest.approx(
            [d['score'] for d in result[key]], abs=1e-5)
    capsys.readouterr()
    load_tool('demo/multi_task_demo.py').main(
        ['--clip', clip, '--task', task, '--topk', '2', video])
    out = capsys.readouterr().out
    assert 'top verbs:' in out and 'top actions:' in out
    assert f"{result['actions'][0]['label']}: " in out


def test_compact_list_tool(ek, tmp_path):
    tool = load_tool('tools/data/epic_kitchens_list.py')
    out = tmp_path / 'compact.csv'
    kept = tool.main([ek['val'], '--out', str(out), '--num-verbs', '4',
                      '--num-nouns', '3', '--media-root', ek['root']])
    assert kept == len(SEGMENTS)  # P03_01's video is missing
    compact = parse_segments(str(out), 4, 3)
    full = parse_segments(ek['val'], 4, 3)[:len(SEGMENTS)]
    for a, b in zip(compact, full):
        for key in ('narration_id', 'video_id', 'start_time', 'stop_time',
                    'start_frame', 'stop_frame', 'label'):
            assert a[key] == b[key], key
    with pytest.raises(SystemExit, match="field 'stop_frame'"):
        tool.main([corrupt(ek, tmp_path, 'stop_frame', '2'), '--out',
                   str(tmp_path / 'x.csv'), '--num-verbs', '4',
                   '--num-nouns', '3'])
