# ST-Adapter on Something-Something v2 with DINOv2 ViT-B/14 (MMPretrain,
# ./dinov2_vitb14.yaml; why DINOv2: see the K400 config of this folder).
# Everything else is the official SSv2 recipe (../stadapter/
# stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py): 24 adapters (before
# attention and before MLP), 8 uniform frames, no flip, 50 epochs.
_base_ = [
    '../stadapter/stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py',
    './dinov2_vitb14.yaml'
]

model = _base_.dinov2_model  # the image model (the YAML file)
model.backbone.adapter = '24x384'  # before attention and before the MLP
