# LoopTrans with a multi-scale mmseg backbone: ResNetV1c-50 stages 2-4 through mmseg's FPN neck, merged by the heads
# themselves as mmseg decode heads do (_base_/models/r50_fpn.py), ImageNet weights. Part-discovery descriptors still
# come from the frozen DINO ViT-S/16 of configs/looptrans_agd20k.py (model.descriptor).
_base_ = ['../looptrans_agd20k.py', '../_base_/models/r50_fpn.py']
model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.r50_fpn.backbone,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c'),
    ),
    neck=_base_.r50_fpn.neck,
    cam_head=_base_.r50_fpn.cam_head,
    pixel_head=_base_.r50_fpn.pixel_head,
    descriptor=_base_.model.backbone,  # the frozen DINO ViT-S/16, with its official weights
)
