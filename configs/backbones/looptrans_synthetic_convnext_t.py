# Generated-data twin of looptrans_agd20k_convnext_t.py: the same mmpretrain ConvNeXt-T backbone (stage 3,
# stride 16, 384 channels), but with random weights (nothing is downloaded), a random 2-block DINO ViT-S/16 for
# part discovery, and the quick start's data, classes and schedule (configs/looptrans_synthetic.py). It trains
# out of the box on CPU:
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
#   python tools/train.py configs/backbones/looptrans_synthetic_convnext_t.py
# It shows that the backbone plugs in, not how well it does: random ConvNeXt weights are no ImageNet features.
# tests/test_backbone_configs.py checks that the backbone equals looptrans_agd20k_convnext_t.py's.
_base_ = ['../looptrans_synthetic.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch='tiny',
        out_indices=(2,),
        gap_before_final_norm=False,
        drop_path_rate=0.1,
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
