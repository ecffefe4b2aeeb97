# LoopTrans on AGD20K Seen with a frozen DINOv2 ViT-S/14 instead of DINO ViT-S/16 (beyond the paper: no published
# figure). The ViT is both the backbone and the part-discovery descriptor: its last-block keys feed the heads and
# the K-means, its CLS attention is the saliency (16 x 16 grid at 224). Everything else is configs/looptrans_agd20k.py.
# Official weights (loaded as is, or converted by tools/model_converters/dino2looptrans.py):
#   wget -P checkpoints https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth
#   python tools/train.py configs/backbones/looptrans_agd20k_dinov2_vits14.py
# See docs/backbones.md.
_base_ = ['../looptrans_agd20k.py', '../_base_/models/dinov2_vits14.py']
model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.dinov2_vits14,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth'),
    ),
    # the published cluster module was trained on DINO ViT-S/16 keys, not DINOv2's: K-means parts
    part_discovery=dict(clusterer=None),
)
