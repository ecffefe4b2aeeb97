# LoopTrans with mmseg's dilated ResNetV1c-50 (output stride 8) as the trainable backbone.
# Part-discovery descriptors still come from the frozen DINO ViT-S/16 (model.descriptor).
_base_ = ['../looptrans_agd20k.py']
dino = dict(
    type='DINOVisionTransformer',
    arch='deit-small',
    patch_size=16,
    frozen=True,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dino_deitsmall16_pretrain.pth'),
)
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(3,),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c'),
    ),
    # 2048 -> 384 channels so the heads keep their published width.
    neck=dict(type='MultiLevelNeck', in_channels=[2048], out_channels=384, scales=[1]),
    descriptor=dino,
)
