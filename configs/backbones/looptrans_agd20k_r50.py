# LoopTrans with mmseg's dilated ResNetV1c-50 (output stride 8) and a 2048 -> 384 neck as the trainable backbone
# (_base_/models/r50_d8.py), ImageNet weights. Part-discovery descriptors still come from the frozen DINO ViT-S/16
# of configs/looptrans_agd20k.py (model.descriptor).
_base_ = ['../looptrans_agd20k.py', '../_base_/models/r50_d8.py']
model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.r50_d8.backbone,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c'),
    ),
    neck=_base_.r50_d8.neck,
    descriptor=_base_.model.backbone,  # the frozen DINO ViT-S/16, with its official weights
)
