# Ablation row of the paper's module table: shared CAM + pixel alignment, no denoising distillation.
# Paper, AGD20K Seen (KLD / SIM / NSS): 1.149 / 0.425 / 1.266.
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_agd20k.py']
model = dict(cam_head=dict(shared=True), noise_head=None, noise_on_cam_head=False)
