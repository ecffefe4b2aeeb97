# Ablation on the generated data: no pixel alignment (the ego CAM is the teacher and the heatmap).
_base_ = ['../looptrans_synthetic.py']
model = dict(pixel_head=None, test_cfg=dict(heatmap='cam'))
custom_hooks = []
