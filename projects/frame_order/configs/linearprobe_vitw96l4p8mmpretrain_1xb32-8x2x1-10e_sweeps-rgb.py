# The frame-order job's baseline with the MMPretrain image model: the same
# frozen random MMPretrain ViT as the ST-Adapter config, without adapters:
# class tokens averaged over frames, then a linear head (the only part that
# trains). Same data, schedule and test views.
_base_ = [
    './stadapter_vitw96l4p8mmpretrain-8x96_1xb32-8x2x1-10e_sweeps-rgb.py'
]

model = dict(backbone=dict(adapter=None))
