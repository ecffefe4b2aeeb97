# A multi-scale mmseg backbone for LoopTrans: ResNetV1c-50 stages 2-4 (strides 8, 16, 32) through mmseg's FPN neck
# (256 channels each), merged by the heads themselves as mmseg decode heads do (input_transform='resize_concat':
# every level resized to the first one's 28x28 grid and concatenated, 3 x 256 channels). Holds one variable,
# `r50_fpn` (no `model`): the `backbone` (without weights), `neck` and head-input entries of a model, shared by the
# AGD20K config (ImageNet weights) and its generated-data twin (random weights):
#   _base_ = ['../looptrans_agd20k.py', '../_base_/models/r50_fpn.py']
#   model = dict(
#       backbone=dict(_delete_=True, **_base_.r50_fpn.backbone, init_cfg=...),
#       neck=_base_.r50_fpn.neck,
#       cam_head=_base_.r50_fpn.cam_head,
#       pixel_head=_base_.r50_fpn.pixel_head,
#       descriptor=_base_.model.backbone,
#   )
r50_fpn = dict(
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
    ),
    # mmseg's FPN brings every level to 256 channels; without it the heads would concatenate 3584 channels
    # and the CAM head's token MLP alone (4x hidden) would hold 103M parameters (1.8 GB checkpoints)
    neck=dict(type='FPN', in_channels=[512, 1024, 2048], out_channels=256, num_outs=3),
    cam_head=dict(in_channels=[256, 256, 256], in_index=[0, 1, 2], input_transform='resize_concat'),
    pixel_head=dict(in_channels=[256, 256, 256], in_index=[0, 1, 2], input_transform='resize_concat'),
)
