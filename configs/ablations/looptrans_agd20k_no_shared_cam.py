# Ablation: separate exocentric / egocentric CAM branches (LOCATE-style), pixel alignment and denoising kept.
_base_ = ['../looptrans_agd20k.py']
model = dict(cam_head=dict(shared=False))
