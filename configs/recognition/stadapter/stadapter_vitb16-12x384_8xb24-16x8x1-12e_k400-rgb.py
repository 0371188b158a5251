# ST-Adapter ViT-B/16 on Kinetics-400 with 16 frames at interval 8 (the same
# temporal span as the 8x16 recipe); everything else as in the 8-frame recipe.
_base_ = ['./stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py']
from stadapter_mm.datasets.views import with_frame_sampling  # noqa: E402

model = dict(backbone=dict(num_frames=16))
# The base's pipelines and data loaders with this frame sampling.
(train_pipeline, val_pipeline, test_pipeline, train_dataloader,
 val_dataloader, test_dataloader) = with_frame_sampling(
     _base_, clip_len=16, frame_interval=8)
