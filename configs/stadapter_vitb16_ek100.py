# Short name for the EPIC-KITCHENS-100 recipe (ViT-B/16, 24x384 adapters,
# 8 frames sampled uniformly inside each action segment, verb + noun heads,
# 8 GPUs x 32 clips, 50 epochs):
#   bash tools/dist_train.sh configs/stadapter_vitb16_ek100.py 8
_base_ = ['./recognition/stadapter/stadapter_vitb16-24x384_8xb32-u8-50e_ek100-rgb.py']  # noqa: E501
