"""Demos and MMAction2's inference API on a tiny ST-Adapter recognizer."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from official_reference import tiny_config_text, write_video
from stadapter_mm.apis import StreamRecognizer
from stadapter_mm.utils.video import VideoSink, draw_lines, read_frames

from conftest import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NUM_CLASSES = 6


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny recognizer with non-trivial adapters, its files and videos."""
    from mmaction.apis import init_recognizer
    root = tmp_path_factory.mktemp('demo')
    cfg = root / 'tiny.py'
    cfg.write_text(tiny_config_text(positions=('attn', 'mlp'),
                                    num_classes=NUM_CLASSES))
    model = init_recognizer(str(cfg), None, device='cpu')
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    ckpt = str(root / 'tiny.pth')
    torch.save(dict(meta={}, state_dict=model.state_dict()), ckpt)
    labels = root / 'labels.txt'
    labels.write_text(''.join(f'action {i}\n' for i in range(NUM_CLASSES)))
    return dict(cfg=str(cfg), ckpt=ckpt, labels=str(labels), root=root,
                video=write_video(str(root / 'v.mp4'), frames=20,
                                  noise=False),
                window_video=write_video(str(root / 'w.mp4'), frames=8,
                                         seed=3))


@pytest.fixture(scope='module')
def model(setup):
    from mmaction.apis import init_recognizer
    return init_recognizer(setup['cfg'], setup['ckpt'], device='cpu')


def test_demo_prints_top5_and_writes_videos(setup, model, tmp_path, capsys):
    from mmaction.apis import inference_recognizer
    demo = load_tool('demo/demo.py')
    mp4 = str(tmp_path / 'out.mp4')
    top = demo.main([setup['cfg'], setup['ckpt'], setup['video'],
                     setup['labels'], '--device', 'cpu', '--out-filename',
                     mp4, '--draw-topk', '2'])
    scores = inference_recognizer(model, setup['video']).pred_score
    values, indices = scores.topk(5)
    assert [t[0] for t in top] == [f'action {i}' for i in indices.tolist()]
    assert [t[1] for t in top] == pytest.approx(values.tolist(), abs=1e-6)
    printed = capsys.readouterr().out
    assert 'top-5 labels' in printed
    assert all(f'{label}: ' in printed for label, _ in top)
    written = read_frames(mp4)
    source = read_frames(setup['video'])
    assert len(written) == len(source) == 20
    assert written[0].shape == source[0].shape
    # The labels are drawn in the top-left band; the rest is the video.
    band = np.abs(written[5][:12].astype(int) - source[5][:12]).mean()
    rest = np.abs(written[5][-6:].astype(int) - source[5][-6:]).mean()
    assert band > 20 > rest

    gif = str(tmp_path / 'out.gif')
    demo.main([setup['cfg'], setup['ckpt'], setup['video'], setup['labels'],
               '--device', 'cpu', '--out-filename', gif,
               '--target-resolution', '128', '-1', '--fps', '10'])
    from PIL import Image
    with Image.open(gif) as image:
        assert image.n_frames == 20
        assert image.size == (128, 96)
        assert image.info['duration'] == 100


def test_demo_errors(setup, tmp_path):
    demo = load_tool('demo/demo.py')
    short = tmp_path / 'short.txt'
    short.write_text('one\ntwo\n')
    with pytest.raises(SystemExit, match='2 labels.*6 classes'):
        demo.main([setup['cfg'], setup['ckpt'], setup['video'], str(short),
                   '--device', 'cpu'])
    with pytest.raises(ValueError, match='.mp4'):
        demo.main([setup['cfg'], setup['ckpt'], setup['video'],
                   setup['labels'], '--device', 'cpu', '--out-filename',
                   str(tmp_path / 'out.webm')])
    with pytest.raises(SystemExit, match='does not exist'):
        demo.main([setup['cfg'], setup['ckpt'], str(tmp_path / 'no.mp4'),
                   setup['labels'], '--device', 'cpu'])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='CUDA is not available'):
            demo.main([setup['cfg'], setup['ckpt'], setup['video'],
                       setup['labels']])


def test_demo_command_line(setup, tmp_path):
    """The script runs as a command from any directory."""
    out = str(tmp_path / 'cli.mp4')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'demo', 'demo.py'), setup['cfg'],
         setup['ckpt'], setup['video'], setup['labels'], '--device', 'cpu',
         '--out-filename', out],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=''))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count('action ') == 5
    assert len(read_frames(out)) == 20


def test_mmaction2_inferencer(setup, model):
    from mmaction.apis import MMAction2Inferencer, inference_recognizer
    inferencer = MMAction2Inferencer(rec=setup['cfg'],
                                     rec_weights=setup['ckpt'],
                                     device='cpu')
    result = inferencer(setup['video'])
    pred = result['predictions'][0]['rec_scores'][0]
    expected = inference_recognizer(model, setup['video']).pred_score
    assert pred == pytest.approx(expected.tolist(), abs=1e-6)


def test_stream_window_equals_file_inference(setup, model):
    """A stream of exactly one window scores like the file itself."""
    import cv2
    from mmaction.apis import inference_recognizer
    stream = StreamRecognizer(model)
    assert stream.window == 8  # clip_len 4 x frame_interval 2
    assert stream.frame_indices().tolist() == [0, 2, 4, 6]
    cap = cv2.VideoCapture(setup['window_video'])
    results = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        results.append(stream.push(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    assert all(r is None for r in results[:7]) and results[7] is not None
    expected = inference_recognizer(model, setup['window_video']).pred_score
    assert torch.allclose(results[7], expected, atol=1e-5, rtol=0)


def test_stream_demo_on_a_file(setup, tmp_path, capsys):
    demo = load_tool('demo/stream_demo.py')
    out = str(tmp_path / 'stream.mp4')
    history = demo.main([setup['cfg'], setup['ckpt'], setup['labels'],
                         '--input', setup['video'], '--device', 'cpu',
                         '--stride', '4', '--topk', '2', '--show',
                         '--out-filename', out])
    assert [h['frame'] for h in history] == [8, 12, 16, 20]
    assert all(len(h['top']) == 2 for h in history)
    assert len(read_frames(out)) == 20
    printed = capsys.readouterr()
    assert printed.out.count('frame ') == 4
    if not os.environ.get('DISPLAY'):
        assert 'no display found' in printed.err
    limited = demo.main([setup['cfg'], setup['ckpt'], setup['labels'],
                         '--input', setup['video'], '--device', 'cpu',
                         '--stride', '4', '--max-frames', '12'])
    assert [h['frame'] for h in limited] == [8, 12]
    with pytest.raises(SystemExit, match='neither a webcam'):
        demo.main([setup['cfg'], setup['ckpt'], setup['labels'], '--input',
                   str(tmp_path / 'missing.mp4'), '--device', 'cpu'])


def test_stream_averages_consecutive_windows(setup, model):
    frames = read_frames(setup['video'])
    single = StreamRecognizer(model, stride=4)
    double = StreamRecognizer(model, stride=4, average_size=2)
    once = [s for s in map(single.push, frames) if s is not None]
    twice = [s for s in map(double.push, frames) if s is not None]
    assert len(once) == len(twice) == 4
    assert torch.allclose(twice[0], once[0])
    for i in range(1, 4):
        assert torch.allclose(twice[i], (once[i - 1] + once[i]) / 2,
                              atol=1e-6)
    assert not torch.allclose(once[0], once[3], atol=1e-4)


def test_stream_recognizer_arguments(model):
    with pytest.raises(ValueError, match='shorter than clip_len'):
        StreamRecognizer(model, window=2)
    with pytest.raises(ValueError, match='stride'):
        StreamRecognizer(model, stride=0)
    stream = StreamRecognizer(model, window=12, num_clips=2)
    assert len(stream.frame_indices()) == 8
    with pytest.raises(RuntimeError, match='holds 0 of 12'):
        stream.classify()


def test_video_io_helpers(tmp_path):
    frame = np.full((80, 64, 3), 200, dtype=np.uint8)
    drawn = draw_lines(frame, ['hello', 'world'])
    assert (frame == 200).all()  # input untouched
    assert (drawn[:8] != 200).any() and (drawn[-5:] == 200).all()
    with pytest.raises(ValueError, match='use one of'):
        VideoSink(str(tmp_path / 'x.mkv'))
    with VideoSink(str(tmp_path / 'x.avi'), fps=5) as sink:
        for _ in range(3):
            sink.write(frame)
    assert sink.count == 3 and osp.getsize(tmp_path / 'x.avi') > 0


@pytest.mark.parametrize('kind', [
    'SampleFrames', 'UniformSample', 'UniformSampleFrames',
    'DenseSampleFrames', 'FixedStrideSample', 'UniformSegmentSample'
])
def test_stream_and_test_views_share_one_sampler_list(kind):
    """Every registered sampler is found by both pipeline editors."""
    from mmaction.registry import TRANSFORMS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from stadapter_mm.apis.stream import frames_pipeline
    from stadapter_mm.datasets.views import FRAME_SAMPLERS, set_test_views
    assert kind in FRAME_SAMPLERS and TRANSFORMS.get(kind) is not None
    init_default_scope('mmaction')
    pipeline = [dict(type='DecordInit'), dict(type=kind, clip_len=4),
                dict(type='DecordDecode'), dict(type='Resize', scale=(-1, 36)),
                dict(type='CenterCrop', crop_size=32)]
    _, sampler = frames_pipeline(pipeline)
    assert sampler == dict(type=kind, clip_len=4)
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=pipeline))))
    set_test_views(cfg, 1, 3)
    edited = cfg.test_dataloader.dataset.pipeline
    assert edited[1] == dict(type=kind, clip_len=4, num_clips=1,
                             test_mode=True)
    assert edited[-1] == dict(type='LongSideThreeCrop', crop_size=32)
