# ST-Adapter on Kinetics-400: the official recipe (Pan et al., NeurIPS 2022).
# CLIP ViT-B/16, frozen; one 384-wide ST-Adapter before the MLP of each of the
# 12 blocks; 8 frames at interval 16, 1 clip; 8 GPUs x 24 clips = 192 clips per
# optimizer step (official: 3 GPUs x 64), AdamW lr 1e-3 x 192 / 256; 12 epochs
# (2 warm-up from 0, half-cosine to 0); test 3 clips x 1 crop. Every value and
# its source in the official code: docs/recipes.md (fewer GPUs: same total
# batch via optim_wrapper.accumulative_counts, commands there).
_base_ = ['mmaction::_base_/default_runtime.py']

# Registers every model, dataset, transform, hook, loop, scheduler and metric.
custom_imports = dict(imports=['stadapter_mm'], allow_failed_imports=False)

# ----------------------------------------------------------------- paths
clip_checkpoint = 'checkpoints/clip/ViT-B-16.pt'  # OpenAI CLIP file
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'
ann_file_test = 'data/kinetics400/kinetics400_val_list_videos.txt'
label_map = 'data/label_maps/label_map_k400.txt'

# ----------------------------------------------------------------- model
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ViTCLIPSTAdapter',
        arch='ViT-B/16',
        adapter='12x384',  # before the MLP of every block
        num_frames=8,
        init_cfg=dict(type='Pretrained', checkpoint=clip_checkpoint)),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=400,
        in_channels=768,
        dropout_ratio=0.5,
        init_std=0.02,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        # CLIP's mean and std, exactly, in 0-255 units.
        mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
        std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255],
        format_shape='NCTHW'))

# ------------------------------------------------------------------ data
# VideoDataset that replaces (train) or reports (val/test) broken videos and
# checks labels against num_classes at build time (docs/robustness.md).
dataset_type = 'RobustVideoDataset'
num_classes = 400
file_client_args = dict(io_backend='disk')
# The official loader's frame indices and float bicubic resizing
# (stadapter_mm/datasets/transforms); frames stay float32 after the resize.
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='FixedStrideSample', clip_len=8, frame_interval=16),
    dict(type='DecordDecode'),
    # Short side scale jitter to round([1.0, 1.15] x 224), then a 224 crop.
    dict(
        type='FloatShortSideResize',
        scale_range=(224, 258),
        interpolation='bicubic'),
    dict(type='RandomCrop', size=224),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(
        type='FixedStrideSample',
        clip_len=8,
        frame_interval=16,
        num_clips=1,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(
        type='FloatShortSideResize', scale=(-1, 224),
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
# Official protocol: 3 temporal clips x 1 centre crop; otherwise the
# validation pipeline.
test_pipeline = [
    dict(t, num_clips=3) if t['type'] == 'FixedStrideSample' else t
    for t in val_pipeline
]

# Total batch per optimizer step = GPUs x batch_size x accumulative_counts.
total_batch = 192
train_dataloader = dict(
    batch_size=24,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        num_classes=num_classes,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        num_classes=num_classes,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        num_classes=num_classes,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

# AccMetric plus the number of videos scored / unreadable.
val_evaluator = dict(type='BadVideoAwareMetric', metric=dict(type='AccMetric'))
test_evaluator = val_evaluator

# -------------------------------------------------------------- schedule
max_epochs = 12
warmup_epochs = 2
train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_begin=1,
    val_interval=5)  # official --eval_freq 5 (and the last epoch)
# Evaluation under fp16 autocast on CUDA (as the official evaluate()), fp32
# on a CPU-only machine.
val_cfg = dict(type='CudaAutocastValLoop')
test_cfg = dict(type='CudaAutocastTestLoop')

# AdamW, lr 1e-3 per 256 clips of the *effective* batch (official --blr),
# weight decay 0.01 except on biases. The lr is fixed here rather than by
# auto_scale_lr, which ignores accumulative_counts.
base_lr_per_256 = 1e-3
# Mixed precision (fp16 AMP) when training on CUDA, fp32 on a CPU-only
# machine: CudaAmpOptimWrapper decides when built, for every tool.
optim_wrapper = dict(
    type='CudaAmpOptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=base_lr_per_256 * total_batch / 256,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.01),
    # GPUs x 24 x accumulative_counts must equal total_batch (8 GPUs: 1).
    accumulative_counts=1,
    paramwise_cfg=dict(bias_decay_mult=0.0))
auto_scale_lr = dict(enable=False, base_batch_size=total_batch)

# The official per-step factor (main.py lr_func): linear from 0 over the
# warm-up epochs, then half-cosine to 0 at max_epochs.
param_scheduler = [
    dict(
        type='WarmupCosineLR',
        warmup=warmup_epochs,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]

# --------------------------------------------------------------- runtime
default_hooks = dict(
    # CheckpointHook with atomic writes (a kill never leaves a torn file).
    # The result is the last epoch's checkpoint, as officially. For
    # best-on-val (optimistic: val and test are the same split) add
    # --cfg-options default_hooks.checkpoint.save_best=auto
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=50, ignore_last=False))
# Checkpoints keep adapters and head only (about 1/10 of the model); the
# frozen CLIP weights come back from clip_checkpoint on every load.
custom_hooks = [
    dict(
        type='FrozenParamHook',
        save_trainable_only=True,
        max_trainable_ratio=0.2),
    # Prints the count and list of unreadable videos at the end of a run.
    dict(type='BadVideoReportHook'),
    # A resumed run replays the random numbers of the run it replaces
    # (seeded samples, random state in checkpoints; docs/robustness.md).
    dict(type='RandomStateHook')
]
