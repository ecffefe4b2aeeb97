# Ablation row of the paper's module table: shared CAM + pixel alignment, no denoising distillation.
# On the generated data (see README, Results).
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_synthetic.py']
model = dict(cam_head=dict(shared=True), noise_head=None)
