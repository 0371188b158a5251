# ST-Adapter with CLIP ViT-L/14 on Kinetics-400: one 384-wide adapter before
# the MLP of each of the 24 blocks; gradient checkpointing. Everything else,
# the per-GPU batch of 24 included, as in the ViT-B/16 recipe; the memory of
# ViT-L/14 at 24 clips per GPU is not measured here. If it does not fit, keep
# the total of 192 with fewer clips per GPU and more accumulation, e.g.
#   --cfg-options train_dataloader.batch_size=8 \
#       optim_wrapper.accumulative_counts=3
# (8 GPUs x 8 x 3 = 192; docs/recipes.md).
_base_ = ['./stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py',
          './clip_vitl14.yaml']

model = _base_.vitl14_model  # CLIP ViT-L/14 (./clip_vitl14.yaml)
clip_checkpoint = model.backbone.init_cfg.checkpoint
# 24 adapters: before the MLP of every block.
model.backbone.adapter = dict(
    _delete_=True, positions=('mlp', ), width=384, blocks='all')
