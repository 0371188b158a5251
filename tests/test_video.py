"""The one video writer/reader (stadapter_mm.utils.video)."""
import numpy as np
import pytest

from stadapter_mm.utils.video import VideoSink, read_frames, write_video


def _red_square_frames(count=6, size=(40, 32)):
    width, height = size
    for i in range(count):
        frame = np.full((height, width, 3), 60, dtype=np.uint8)
        frame[8:24, 2 * i:2 * i + 16] = (230, 20, 20)  # red in RGB
        yield frame


def test_round_trip_keeps_rgb_order_and_frame_count(tmp_path):
    path = write_video(str(tmp_path / 'sub' / 'v.mp4'), _red_square_frames(),
                       fps=12)
    frames = read_frames(path)
    assert len(frames) == 6 and frames[0].shape == (32, 40, 3)
    red, green, blue = frames[0][12:20, 4:12].reshape(-1, 3).mean(0)
    assert red > 150 and green < 80 and blue < 80
    half = read_frames(path, target_resolution=(20, -1))
    assert half[0].shape == (16, 20, 3)


def test_codec_option_and_its_checks(tmp_path):
    array = np.stack(list(_red_square_frames(4)))[::-1]  # negative strides
    path = write_video(str(tmp_path / 'v.avi'), array, fps=5, codec='XVID')
    assert len(read_frames(path)) == 4
    with pytest.raises(ValueError, match='4-character'):
        VideoSink(str(tmp_path / 'x.mp4'), codec='mp4')
    with pytest.raises(ValueError, match='FourCC'):
        VideoSink(str(tmp_path / 'x.gif'), codec='mp4v')
    with pytest.raises(ValueError, match='fps must be positive'):
        VideoSink(str(tmp_path / 'x.mp4'), fps=0)
