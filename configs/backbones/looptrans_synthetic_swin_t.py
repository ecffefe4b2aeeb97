# Generated-data twin of looptrans_agd20k_swin_t.py: the same mmseg Swin-T backbone (_base_/models/swin_t.py), but
# with random weights (nothing is downloaded), the quick start's random 2-block DINO ViT-S/16 for part discovery, and
# its data, classes and schedule (configs/looptrans_synthetic.py). It trains out of the box on CPU:
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
#   python tools/train.py configs/backbones/looptrans_synthetic_swin_t.py
# It shows that the backbone plugs in, not how well it does: random Swin weights are no ImageNet features.
# tests/test_backbone_configs.py checks that the backbone equals looptrans_agd20k_swin_t.py's and trains it.
_base_ = ['../looptrans_synthetic.py', '../_base_/models/swin_t.py']
model = dict(
    backbone=dict(_delete_=True, **_base_.swin_t, init_cfg=None),
    descriptor=_base_.model.backbone,  # the quick start's random 2-block ViT
)
