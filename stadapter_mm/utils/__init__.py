"""Small helpers shared by the package, its tools and its tests."""
from .video import (VideoSink, check_output_path, draw_lines, read_frames,
                    write_video)

__all__ = [
    'VideoSink', 'check_output_path', 'draw_lines', 'read_frames',
    'write_video'
]
