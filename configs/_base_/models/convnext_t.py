# mmpretrain's ConvNeXt-T as LoopTrans's trainable backbone: its stage 3 (stride 16, 384 channels) matches the DINO
# ViT-S/16 grid and width, so the heads keep their published input. Holds one variable, `convnext_t` (no `model`),
# the architecture without weights, shared by the AGD20K config (ImageNet-1k weights) and its generated-data twin
# (random weights), as swin_t.py.
convnext_t = dict(
    type='mmpretrain.ConvNeXt',
    arch='tiny',
    out_indices=(2,),
    gap_before_final_norm=False,
    drop_path_rate=0.1,
)
