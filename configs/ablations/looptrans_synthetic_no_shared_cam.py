# Ablation on the generated data: separate exocentric / egocentric CAM branches.
_base_ = ['../looptrans_synthetic.py']
model = dict(cam_head=dict(shared=False))
