# The frame-order job with an MMPretrain image model (run.py --image-model
# mmpretrain): MMPretrain's own VisionTransformer of the same size (width 96,
# 4 blocks, 4 heads, patch 8, 32x32 frames), randomly initialised by
# MMPretrain, frozen, saved in MMPretrain's checkpoint layout and loaded
# through its init_cfg; the same ST-Adapters (before attention and before the
# MLP, 3x3x3 kernels), data, schedule and test views as the CLIP-layout job.
_base_ = ['./stadapter_vitw96l4p8-8x96_1xb32-8x2x1-10e_sweeps-rgb.py']

clip_checkpoint = None  # no CLIP-layout file
# Written by run.py next to the dataset (it replaces the folder).
mmpretrain_checkpoint = ('data/synthetic_sweeps/'
                         'random_vitw96l4p8_mmpretrain.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='MMPretrainSTAdapter',
        image_model=dict(
            type='VisionTransformer',
            arch=dict(
                embed_dims=96,
                num_layers=4,
                num_heads=4,
                feedforward_channels=384),
            img_size=32,
            patch_size=8,
            init_cfg=dict(
                type='Pretrained',
                checkpoint=mmpretrain_checkpoint,
                prefix='backbone.')),
        adapter=dict(
            positions=('attn', 'mlp'),
            width=96,
            blocks='all',
            kernel_size=(3, 3, 3)),
        num_frames=8))
