# Generated-data twin of looptrans_agd20k_r50_multiscale.py: the same ResNetV1c-50 stages 2-4 and FPN neck merged by
# the heads with input_transform='resize_concat' (_base_/models/r50_fpn.py), but random weights (nothing is
# downloaded), the quick start's random 2-block DINO ViT-S/16 for part discovery and its data, classes and schedule.
#   python tools/train.py configs/backbones/looptrans_synthetic_r50_multiscale.py
# It shows that a multi-scale mmseg backbone plugs in by config alone, not how well it does.
_base_ = ['../looptrans_synthetic.py', '../_base_/models/r50_fpn.py']
model = dict(
    backbone=dict(_delete_=True, **_base_.r50_fpn.backbone, init_cfg=None),
    neck=_base_.r50_fpn.neck,
    cam_head=_base_.r50_fpn.cam_head,
    pixel_head=_base_.r50_fpn.pixel_head,
    descriptor=_base_.model.backbone,  # the quick start's random 2-block ViT
)
