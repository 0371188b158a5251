# Short name for the official Kinetics-400 recipe (ViT-B/16, 12x384 adapters,
# 8x16x1 frames, 8 GPUs x 24 clips = the official 192, 12 epochs):
#   bash tools/dist_train.sh configs/stadapter_vitb16_k400.py 8
_base_ = ['./recognition/stadapter/stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py']  # noqa: E501
