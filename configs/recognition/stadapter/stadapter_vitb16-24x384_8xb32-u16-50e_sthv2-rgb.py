# ST-Adapter ViT-B/16 on SSv2 with 16 frames sampled uniformly over the video;
# everything else as in the 8-frame recipe.
_base_ = ['./stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py']

clip_len = 16

model = dict(backbone=dict(num_frames=clip_len))

train_pipeline = [
    dict(t, clip_len=clip_len) if t['type'] == 'UniformSegmentSample' else t
    for t in _base_.train_pipeline
]
val_pipeline = [
    dict(t, clip_len=clip_len) if t['type'] == 'UniformSegmentSample' else t
    for t in _base_.val_pipeline
]
test_pipeline = [
    dict(t, clip_len=clip_len) if t['type'] == 'UniformSegmentSample' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
