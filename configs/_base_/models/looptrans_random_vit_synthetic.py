# LoopTrans for the generated datasets: the published model (looptrans_dino_vits16.py, the published LoopTrans
# code's recipe), but the frozen ViT is randomly initialised (no DINO weights can be downloaded on the development
# machines) and shallower (2 blocks), so it trains on a CPU in minutes. With the official weights use
# _base_/models/looptrans_dino_vits16.py; tests/test_recipe.py checks that nothing else differs.
_base_ = ['./looptrans_dino_vits16.py']
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536), init_cfg=None
    ),
    # A random ViT's CLS attention is no saliency: drop the border-dominated part instead (object-centric
    # ego images; see PartDiscovery). The published code's CAM threshold (0.92) stays.
    part_discovery=dict(exclude_background='border'),
)
