# LoopTrans for the generated datasets: the published model on a small ViT (4 blocks, width 192, 6 heads, patch
# 16) pretrained with DINO's self-supervised objective on generated images, so that its last-block keys and CLS
# attention mean something (a random ViT's do not), loaded as the real configs load the official DINO weights.
# Write the weights first (no download; deterministic for a CPU kind and thread count):
#   python tools/misc/pretrain_dino_synthetic.py --out checkpoints/dino_synthetic_vit4x192.pth
# With the official DINO ViT-S/16 on real data use _base_/models/looptrans_dino_vits16.py.
_base_ = ['./looptrans_dino_vits16.py']
vit_dims = 192
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=vit_dims, num_layers=4, num_heads=6, feedforward_channels=4 * vit_dims),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dino_synthetic_vit4x192.pth'),
    ),
    cam_head=dict(in_channels=vit_dims, channels=vit_dims),
    pixel_head=dict(in_channels=vit_dims),
    noise_head=dict(channels=vit_dims),
)
