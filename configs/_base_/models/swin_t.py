# mmseg's Swin-T as LoopTrans's trainable backbone: its stage 3 (stride 16, 384 channels) matches the DINO ViT-S/16
# grid and width, so the heads keep their published input. Holds one variable, `swin_t` (no `model`), the
# architecture without weights, shared by the AGD20K config (ImageNet-1k weights) and its generated-data twin (random
# weights):
#   _base_ = ['../looptrans_agd20k.py', '../_base_/models/swin_t.py']
#   model = dict(backbone=dict(_delete_=True, **_base_.swin_t, init_cfg=...), descriptor=_base_.model.backbone)
swin_t = dict(
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
)
