# Ablation: no denoising distillation (no noise-absorbing heads).
_base_ = ['../looptrans_agd20k.py']
model = dict(noise_head=None)
