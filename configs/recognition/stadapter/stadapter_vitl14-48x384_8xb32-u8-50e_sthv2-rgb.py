# ST-Adapter with CLIP ViT-L/14 on SSv2: 384-wide adapters before the
# attention and before the MLP of each of the 24 blocks (48 adapters);
# gradient checkpointing. Everything else, the per-GPU batch of 32 included,
# as in the ViT-B/16 recipe; the memory of ViT-L/14 at 32 clips per GPU is not
# measured here. If it does not fit, keep the total of 256 with fewer clips
# per GPU and more accumulation, e.g.
#   --cfg-options train_dataloader.batch_size=8 \
#       optim_wrapper.accumulative_counts=4
# (8 GPUs x 8 x 4 = 256; docs/recipes.md).
_base_ = ['./stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py',
          './clip_vitl14.yaml']

model = _base_.vitl14_model  # CLIP ViT-L/14 (./clip_vitl14.yaml)
clip_checkpoint = model.backbone.init_cfg.checkpoint
# 48 adapters: before attention and before the MLP of every block.
model.backbone.adapter = dict(
    _delete_=True, positions=('attn', 'mlp'), width=384, blocks='all')
