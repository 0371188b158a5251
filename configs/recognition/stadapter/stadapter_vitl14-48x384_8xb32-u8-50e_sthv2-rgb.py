# ST-Adapter with CLIP ViT-L/14 on SSv2: 384-wide adapters before the
# attention and before the MLP of each of the 24 blocks (48 adapters);
# gradient checkpointing to fit 8 clips per GPU. Everything else as in the
# ViT-B/16 recipe.
_base_ = ['./stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py']

clip_checkpoint = 'checkpoints/clip/ViT-L-14.pt'

model = dict(
    backbone=dict(
        arch='ViT-L/14',
        # 48 adapters: before attention and before MLP of every block.
        adapter=dict(
            _delete_=True,
            positions=('attn', 'mlp'),
            width=384,
            blocks='all'),
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=clip_checkpoint)),
    cls_head=dict(in_channels=1024))
