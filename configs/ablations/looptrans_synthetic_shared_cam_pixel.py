# Ablation row of the paper's module table: shared CAM + pixel alignment, no denoising distillation.
# On the generated data (see docs/results.md, "The paper's six ablation rows on the generated data").
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_synthetic.py']
model = dict(cam_head=dict(shared=True), noise_head=None, noise_on_cam_head=False)
