# ST-Adapter on the generated "sweeps" dataset (projects/frame_order/sweeps.py)
# of the frame-order job (projects/frame_order/run.py): a frozen, randomly
# initialised ViT (width 96, 4 blocks, patch 8, 32x32 frames) with 96-wide
# ST-Adapters before the attention and before the MLP of each block
# (8 adapters), whose depthwise convolution spans 3 frames x 3x3 patches;
# 8 frames at interval 2; 1 process x 32 clips; 10 epochs; test 3 clips x
# 3 crops. Runs on 2 CPU cores in a few minutes.
_base_ = ['mmaction::_base_/default_runtime.py']

custom_imports = dict(
    imports=['stadapter_mm', 'stadapter_mm.datasets'],
    allow_failed_imports=False)

# ----------------------------------------------------------------- paths
# Written by projects/frame_order/run.py (sweeps.generate_sweep_dataset).
data_root = 'data/synthetic_sweeps'
video_root = data_root + '/videos'
ann_file_train = data_root + '/train_list.txt'
ann_file_val = data_root + '/val_list.txt'
ann_file_test = data_root + '/test_list.txt'
label_map = data_root + '/label_map.txt'
# The frozen random backbone, saved once so that every model shares it.
clip_checkpoint = data_root + '/random_vitw96l4p8.pth'

# ----------------------------------------------------------------- model
arch = dict(input_resolution=32, patch_size=8, width=96, layers=4, heads=4)
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ViTCLIPSTAdapter',
        arch=arch,
        adapter=dict(
            positions=('attn', 'mlp'),
            width=96,
            blocks='all',
            kernel_size=(3, 3, 3)),
        num_frames=8,
        init_cfg=dict(type='Pretrained', checkpoint=clip_checkpoint)),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=4,
        in_channels=96,
        dropout_ratio=0.0,
        init_std=0.02,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[122.769, 116.74, 104.04],
        std=[68.493, 66.63, 70.32],
        format_shape='NCTHW'))

# ------------------------------------------------------------------ data
dataset_type = 'VideoDataset'
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='RandomCrop', size=32),  # frames are 32x40
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleFrames',
        clip_len=8,
        frame_interval=2,
        num_clips=1,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleFrames',
        clip_len=8,
        frame_interval=2,
        num_clips=3,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 32)),
    dict(type='ThreeCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=video_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=video_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        data_prefix=dict(video=video_root),
        pipeline=test_pipeline,
        test_mode=True))
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

# -------------------------------------------------------------- schedule
max_epochs = 10
warmup_epochs = 1
train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_begin=1,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(bias_decay_mult=0.0))
auto_scale_lr = dict(enable=False, base_batch_size=32)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-2,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]

# --------------------------------------------------------------- runtime
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', interval=5, max_keep_ckpts=1,
        save_best='auto'),
    logger=dict(type='LoggerHook', interval=10, ignore_last=False))
custom_hooks = [dict(type='FrozenParamHook')]
randomness = dict(seed=0)
