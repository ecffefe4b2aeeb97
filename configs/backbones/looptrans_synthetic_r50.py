# Generated-data twin of looptrans_agd20k_r50.py: the same dilated ResNetV1c-50 backbone and neck, but with
# random weights (nothing is downloaded), a random 2-block DINO ViT-S/16 for part discovery, and the quick
# start's data, classes and schedule (configs/looptrans_synthetic.py). It trains out of the box on CPU:
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
#   python tools/train.py configs/backbones/looptrans_synthetic_r50.py
# It shows that the backbone plugs in, not how well it does: random ResNet weights are no ImageNet features.
# tests/test_backbone_configs.py checks that the backbone and neck equal looptrans_agd20k_r50.py's.
_base_ = ['../looptrans_synthetic.py']
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
        init_cfg=None,
    ),
    # 2048 -> 384 channels so the heads keep their published width.
    neck=dict(type='MultiLevelNeck', in_channels=[2048], out_channels=384, scales=[1]),
    descriptor=dict(
        type='DINOVisionTransformer',
        arch=dict(embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536),
        patch_size=16,
        frozen=True,
        init_cfg=None,
    ),
)
