# Ablation: none of the three components (separate CAM branches, no pixel alignment, no denoising).
_base_ = ['../looptrans_agd20k.py']
model = dict(cam_head=dict(shared=False), pixel_head=None, noise_head=None, test_cfg=dict(heatmap='cam'))
custom_hooks = []
