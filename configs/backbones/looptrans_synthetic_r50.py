# Generated-data twin of looptrans_agd20k_r50.py: the same dilated ResNetV1c-50 backbone and neck
# (_base_/models/r50_d8.py), but with random weights (nothing is downloaded), the quick start's random 2-block DINO
# ViT-S/16 for part discovery, and its data, classes and schedule (configs/looptrans_synthetic.py). It trains out of
# the box on CPU:
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
#   python tools/train.py configs/backbones/looptrans_synthetic_r50.py
# It shows that the backbone plugs in, not how well it does: random ResNet weights are no ImageNet features.
# tests/test_backbone_configs.py checks that the backbone and neck equal looptrans_agd20k_r50.py's.
_base_ = ['../looptrans_synthetic.py', '../_base_/models/r50_d8.py']
model = dict(
    backbone=dict(_delete_=True, **_base_.r50_d8.backbone, init_cfg=None),
    neck=_base_.r50_d8.neck,
    descriptor=_base_.model.backbone,  # the quick start's random 2-block ViT
)
