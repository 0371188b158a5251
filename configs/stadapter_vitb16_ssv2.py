# Short name for the official Something-Something v2 recipe (ViT-B/16, 24x384
# adapters, 8 uniformly sampled frames, 8 GPUs x 32 clips = the official 256,
# 50 epochs):
#   bash tools/dist_train.sh configs/stadapter_vitb16_ssv2.py 8
_base_ = ['./recognition/stadapter/stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py']  # noqa: E501
