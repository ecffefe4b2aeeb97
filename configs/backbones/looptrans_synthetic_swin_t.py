# Generated-data twin of looptrans_agd20k_swin_t.py: the same mmseg Swin-T backbone (stage 3, stride 16, 384
# channels), but with random weights (nothing is downloaded), a random 2-block DINO ViT-S/16 for part discovery,
# and the quick start's data, classes and schedule (configs/looptrans_synthetic.py). It trains out of the box on CPU:
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
#   python tools/train.py configs/backbones/looptrans_synthetic_swin_t.py
# It shows that the backbone plugs in, not how well it does: random Swin weights are no ImageNet features.
# tests/test_backbone_configs.py checks that the backbone equals looptrans_agd20k_swin_t.py's and trains it.
_base_ = ['../looptrans_synthetic.py']
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
        init_cfg=None,
    ),
    descriptor=dict(
        type='DINOVisionTransformer',
        arch=dict(embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536),
        patch_size=16,
        frozen=True,
        init_cfg=None,
    ),
)
