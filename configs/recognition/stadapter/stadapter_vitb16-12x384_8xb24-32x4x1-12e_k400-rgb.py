# ST-Adapter ViT-B/16 on Kinetics-400 with 32 frames at interval 4 (the same
# temporal span as the 8x16 recipe); everything else as in the 8-frame recipe.
_base_ = ['./stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py']

clip_len = 32
frame_interval = 4
sampling = dict(clip_len=clip_len, frame_interval=frame_interval)

model = dict(backbone=dict(num_frames=clip_len, with_cp=True))

train_pipeline = [
    dict(t, **sampling) if t['type'] == 'FixedStrideSample' else t
    for t in _base_.train_pipeline
]
val_pipeline = [
    dict(t, **sampling) if t['type'] == 'FixedStrideSample' else t
    for t in _base_.val_pipeline
]
test_pipeline = [
    dict(t, **sampling) if t['type'] == 'FixedStrideSample' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
