# DINOv2 ViT-S/14 (frozen) as LoopTrans's backbone and part-discovery descriptor: beyond the paper, which uses DINO
# ViT-S/16; no published figure exists for it. Holds one variable, `dinov2_vits14` (no `model`), the architecture
# without weights, so that the AGD20K config (which adds the official weights) and its generated-data twin (random
# weights, fewer blocks) both take it from here next to their own model:
#   _base_ = [..., '../_base_/models/dinov2_vits14.py']
#   model = dict(backbone=dict(_delete_=True, **_base_.dinov2_vits14, init_cfg=...))
# 384 dims, 12 blocks, 6 heads, patch 14, LayerScale in every block; its position embeddings are laid out for
# 518 x 518 (37 x 37 patches) and interpolated at each forward to the input's grid (16 x 16 at 224) the way DINOv2's
# own code does (bicubic, scale factor with its 0.1 offset). The heads read the last block's keys (384 channels).
dinov2_vits14 = dict(
    type='DINOVisionTransformer',
    arch='dinov2-small',
    patch_size=14,
    img_size=518,
    layer_scale_init_value=1e-5,  # any value > 0 builds LayerScale; the official file holds the learned factors
    interpolate_offset=0.1,
    frozen=True,
)
