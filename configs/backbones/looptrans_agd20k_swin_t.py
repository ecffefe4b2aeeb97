# LoopTrans with mmseg's Swin-T as the trainable backbone: its stage 3 (stride 16, 384 channels) matches the
# DINO ViT-S/16 grid and width. Part-discovery descriptors come from the frozen DINO ViT-S/16. The recipe of
# docs/contributing.md ("Swap in a backbone from mmseg"); the ImageNet-1k weights are mmseg's converted Swin-T.
_base_ = ['../looptrans_agd20k.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmseg.SwinTransformer',
        pretrain_img_size=224,
        embed_dims=96,
        patch_size=4,
        window_size=7,
        mlp_ratio=4,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        strides=(4, 2, 2, 2),
        out_indices=(2,),
        qkv_bias=True,
        drop_path_rate=0.3,
        patch_norm=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/'
            'swin_tiny_patch4_window7_224_20220317-1cdeb081.pth',
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
