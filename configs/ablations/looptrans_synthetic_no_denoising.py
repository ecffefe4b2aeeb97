# Ablation on the generated data: no denoising distillation.
_base_ = ['../looptrans_synthetic.py']
model = dict(noise_head=None)
