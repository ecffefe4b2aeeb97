# mmseg's dilated ResNetV1c-50 (output stride 8) as LoopTrans's trainable backbone, with the neck that brings its
# 2048 channels to the heads' published 384. Holds one variable, `r50_d8` (no `model`): the `backbone` (without
# weights) and `neck` entries of a model, shared by the AGD20K config (ImageNet weights) and its generated-data twin
# (random weights):
#   _base_ = ['../looptrans_agd20k.py', '../_base_/models/r50_d8.py']
#   model = dict(
#       backbone=dict(_delete_=True, **_base_.r50_d8.backbone, init_cfg=...),
#       neck=_base_.r50_d8.neck,
#       descriptor=_base_.model.backbone,
#   )
r50_d8 = dict(
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(3,),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        contract_dilation=True,
    ),
    # 2048 -> 384 channels so the heads keep their published width.
    neck=dict(type='MultiLevelNeck', in_channels=[2048], out_channels=384, scales=[1]),
)
