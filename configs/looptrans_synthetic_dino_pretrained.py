# The quick start (configs/looptrans_synthetic.py: its data, classes, schedule and background rule) on a small ViT
# (4 blocks, width 192, 6 heads, patch 16) pretrained with DINO's self-supervised objective on generated images,
# so that its last-block keys and CLS attention mean something (the quick start's random ViT's do not), loaded as
# the real configs load the official DINO weights. First write the weights (no download; deterministic for a CPU
# kind and thread count; about 29 minutes on 2 CPU cores), then train:
#   python tools/misc/pretrain_dino_synthetic.py --out checkpoints/dino_synthetic_vit4x192.pth
#   python tools/train.py configs/looptrans_synthetic_dino_pretrained.py
# The background rule is the random-ViT configs' 'border': within a CPU budget the CLS attention of these weights
# is no usable saliency (tools/analysis_tools/rank_saliency_heads.py finds no object-centred head in them;
# docs/generated_benchmark.md, where 'saliency' is measured too).
_base_ = ['./looptrans_synthetic.py']
vit_dims = 192
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=vit_dims, num_layers=4, num_heads=6, feedforward_channels=4 * vit_dims),
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='checkpoints/dino_synthetic_vit4x192.pth'),
    ),
    cam_head=dict(in_channels=vit_dims, channels=vit_dims),
    pixel_head=dict(in_channels=vit_dims, channels=vit_dims),  # the pixel decoder ends in the CAM head's classifier
    noise_head=dict(channels=vit_dims),
)
