# ST-Adapter on Something-Something v2: the official recipe.
# CLIP ViT-B/16, frozen; 384-wide ST-Adapters before the attention and before
# the MLP of each of the 12 blocks (24 adapters); 8 frames sampled uniformly
# over the whole video; RandAugment (rand-m7-n4-mstd0.5-inc1, one policy per
# clip) on the full frames, then a random resized crop (bicubic); no flip
# (SSv2 labels depend on left and right); 8 GPUs x 32 = 256 clips per step
# (official: 4 GPUs x 64), lr 1e-3; 50 epochs (2 warm-up, cosine); test 1 clip
# x 3 crops. Optimizer and runtime as for Kinetics-400 (docs/recipes.md).
_base_ = ['./stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py']

# ----------------------------------------------------------------- paths
data_root = 'data/sthv2/videos'
data_root_val = 'data/sthv2/videos'
num_classes = 174
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
ann_file_test = 'data/sthv2/sthv2_val_list_videos.txt'
label_map = 'data/label_maps/label_map_sthv2.txt'

# ----------------------------------------------------------------- model
model = dict(
    backbone=dict(adapter='24x384'),  # before attention and before MLP
    cls_head=dict(num_classes=num_classes))

# ------------------------------------------------------------------ data
file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSegmentSample', clip_len=8),
    dict(type='DecordDecode'),
    # On the full decoded frames, as officially; then crop and resize.
    dict(
        type='VideoRandAugment', num_ops=4, magnitude=7, magnitude_std=0.5),
    dict(
        type='FloatRandomResizedCrop',
        size=224,
        scale=(0.08, 1.0),
        ratio=(3 / 4, 4 / 3),
        interpolation='bicubic'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSegmentSample', clip_len=8, test_mode=True),
    dict(type='DecordDecode'),
    dict(
        type='FloatShortSideResize', scale=(-1, 224),
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
# Official protocol: 1 clip x 3 crops along the long side.
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSegmentSample', clip_len=8, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(
        type='FloatShortSideResize', scale=(-1, 224),
        interpolation='bicubic'),
    # Left/top, centre, right/bottom at offsets 0, margin // 2, margin.
    dict(type='LongSideThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
total_batch = 256
train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        ann_file=ann_file_train,
        num_classes=num_classes,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        ann_file=ann_file_val,
        num_classes=num_classes,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(
        ann_file=ann_file_test,
        num_classes=num_classes,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline))

# -------------------------------------------------------------- schedule
max_epochs = 50
warmup_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=1e-3 * total_batch / 256))
auto_scale_lr = dict(base_batch_size=total_batch)
param_scheduler = [
    dict(
        type='WarmupCosineLR',
        warmup=warmup_epochs,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]
