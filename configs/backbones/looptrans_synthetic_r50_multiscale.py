# Generated-data twin of looptrans_agd20k_r50_multiscale.py: the same ResNetV1c-50 stages 2-4 and FPN neck merged
# by the heads with input_transform='resize_concat', but random weights (nothing is downloaded), a random 2-block
# DINO ViT-S/16 for part discovery and the quick start's data, classes and schedule.
#   python tools/train.py configs/backbones/looptrans_synthetic_r50_multiscale.py
# It shows that a multi-scale mmseg backbone plugs in by config alone, not how well it does.
_base_ = ['../looptrans_synthetic.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None,
    ),
    # mmseg's FPN brings every level to 256 channels; without it the heads would concatenate 3584 channels
    # and the CAM head's token MLP alone (4x hidden) would hold 103M parameters (1.8 GB checkpoints)
    neck=dict(type='FPN', in_channels=[512, 1024, 2048], out_channels=256, num_outs=3),
    cam_head=dict(in_channels=[256, 256, 256], in_index=[0, 1, 2], input_transform='resize_concat'),
    pixel_head=dict(in_channels=[256, 256, 256], in_index=[0, 1, 2], input_transform='resize_concat'),
    descriptor=dict(
        type='DINOVisionTransformer',
        arch=dict(embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536),
        patch_size=16,
        frozen=True,
        init_cfg=None,
    ),
)
