# ST-Adapter on Kinetics-400 with MMPretrain's CLIP ViT-B/16
# (./clip_vitb16.yaml): the same image model and weights as the official
# recipe (../stadapter/stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py),
# built by MMPretrain instead of our CLIP blocks; everything else is that
# recipe: 12 adapters of width 384 before the MLPs, 8 frames at interval 16,
# 12 epochs. Its logits equal ViTCLIPSTAdapter's for the same weights (a test
# at full size); README's benchmark command compares the two.
_base_ = [
    '../stadapter/stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py',
    './clip_vitb16.yaml'
]

model = _base_.clip_model  # the image model (the YAML file)
model.backbone.adapter = '12x384'  # before the MLP of every block
