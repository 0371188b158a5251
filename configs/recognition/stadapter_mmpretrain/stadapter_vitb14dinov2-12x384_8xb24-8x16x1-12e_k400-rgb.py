# ST-Adapter on Kinetics-400 with an MMPretrain image model: DINOv2 ViT-B/14
# (./dinov2_vitb14.yaml). Everything else is the official K400 recipe
# (../stadapter/stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py): 12
# adapters of width 384 before the MLPs, 8 frames at interval 16, 12 epochs.
#
# Why DINOv2: trained without text (self-supervised on images), so it takes
# the recipe beyond CLIP; it is released as a general-purpose frozen backbone
# whose class token is trained as the global image descriptor, which the
# paper's pooling (class token averaged over frames, then the final norm)
# uses; ViT-B (86 M) like the CLIP recipe, with patch 14: 256 patches per
# 224 px frame instead of 196 (about 1.3x the FLOPs per frame).
_base_ = [
    '../stadapter/stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py',
    './dinov2_vitb14.yaml'
]

model = _base_.dinov2_model  # the image model (the YAML file)
model.backbone.adapter = '12x384'  # before the MLP of every block
