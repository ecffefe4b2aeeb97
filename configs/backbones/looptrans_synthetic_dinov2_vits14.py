# Generated-data twin of looptrans_agd20k_dinov2_vits14.py: the same DINOv2 ViT-S/14 backbone (patch 14, LayerScale,
# 518-grid position embeddings interpolated to 16 x 16 at 224), but random weights with the quick start's 2 blocks
# (nothing is downloaded), and the quick start's data, classes and schedule (configs/looptrans_synthetic.py):
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
#   python tools/train.py configs/backbones/looptrans_synthetic_dinov2_vits14.py
# It shows that the backbone plugs in, not how well it does: random weights are no DINOv2 features.
_base_ = ['../looptrans_synthetic.py', '../_base_/models/dinov2_vits14.py']
model = dict(
    backbone=dict(
        _base_.dinov2_vits14,
        _delete_=True,
        arch=_base_.model.backbone.arch,  # the quick start's random 2-block ViT-S (384 dims, 6 heads)
        # Random weights: a LayerScale of 1 (DINOv2 trains from 1e-5) keeps the random blocks in the forward.
        layer_scale_init_value=1.0,
    )
)
