# ST-Adapter ViT-B/16 on SSv2 with 32 frames sampled uniformly over the video,
# with gradient checkpointing; everything else as in the 8-frame recipe.
_base_ = ['./stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py']
from stadapter_mm.datasets.views import with_frame_sampling  # noqa: E402

model = dict(backbone=dict(num_frames=32, with_cp=True))
# The base's pipelines and data loaders with this frame sampling.
(train_pipeline, val_pipeline, test_pipeline, train_dataloader,
 val_dataloader, test_dataloader) = with_frame_sampling(
     _base_, clip_len=32)
