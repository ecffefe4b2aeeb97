# LoopTrans with mmpretrain's ConvNeXt-T as the trainable backbone: its stage 3 (stride 16, 384 channels)
# matches the DINO ViT-S/16 grid and width. Part-discovery descriptors come from the frozen DINO ViT-S/16.
_base_ = ['../looptrans_agd20k.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch='tiny',
        out_indices=(2,),
        gap_before_final_norm=False,
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/'
            'convnext-tiny_32xb128_in1k_20220124-18abde00.pth',
        ),
    ),
    descriptor=dict(
        type='DINOVisionTransformer',
        arch='deit-small',
        patch_size=16,
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dino_deitsmall16_pretrain.pth'),
    ),
)
