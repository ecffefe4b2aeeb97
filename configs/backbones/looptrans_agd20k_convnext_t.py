# LoopTrans with mmpretrain's ConvNeXt-T as the trainable backbone (_base_/models/convnext_t.py), ImageNet-1k
# weights. Part-discovery descriptors come from the frozen DINO ViT-S/16 of configs/looptrans_agd20k.py.
_base_ = ['../looptrans_agd20k.py', '../_base_/models/convnext_t.py']
model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.convnext_t,
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/'
            'convnext-tiny_32xb128_in1k_20220124-18abde00.pth',
        ),
    ),
    descriptor=_base_.model.backbone,  # the frozen DINO ViT-S/16, with its official weights
)
