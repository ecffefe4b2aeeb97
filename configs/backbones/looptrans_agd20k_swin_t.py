# LoopTrans with mmseg's Swin-T as the trainable backbone (_base_/models/swin_t.py); the ImageNet-1k weights are
# mmseg's converted Swin-T. Part-discovery descriptors come from the frozen DINO ViT-S/16 of
# configs/looptrans_agd20k.py. The recipe of docs/contributing.md ("Swap in a backbone from mmseg").
_base_ = ['../looptrans_agd20k.py', '../_base_/models/swin_t.py']
model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.swin_t,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/'
            'swin_tiny_patch4_window7_224_20220317-1cdeb081.pth',
        ),
    ),
    descriptor=_base_.model.backbone,  # the frozen DINO ViT-S/16, with its official weights
)
