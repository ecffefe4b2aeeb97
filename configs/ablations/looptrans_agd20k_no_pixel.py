# Ablation: no pixel alignment (no part discovery, no pixel head); the ego CAM is the distillation teacher
# and the test heatmap.
_base_ = ['../looptrans_agd20k.py']
model = dict(pixel_head=None, test_cfg=dict(heatmap='cam'))
custom_hooks = []
