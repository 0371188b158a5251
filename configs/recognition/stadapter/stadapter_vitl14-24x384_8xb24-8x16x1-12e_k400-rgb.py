# ST-Adapter with CLIP ViT-L/14 on Kinetics-400: one 384-wide adapter before
# the MLP of each of the 24 blocks; gradient checkpointing to fit 8 clips per
# GPU. Everything else as in the ViT-B/16 recipe.
_base_ = ['./stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py']

clip_checkpoint = 'checkpoints/clip/ViT-L-14.pt'

model = dict(
    backbone=dict(
        arch='ViT-L/14',
        # 24 adapters: before the MLP of every block.
        adapter=dict(
            _delete_=True,
            positions=('mlp', ),
            width=384,
            blocks='all'),
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=clip_checkpoint)),
    cls_head=dict(in_channels=1024))
