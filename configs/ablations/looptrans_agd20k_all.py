# Ablation row of the paper's module table: all three modules (shared CAM + pixel alignment +
# denoising distillation): the full model, identical to the main config.
# Paper, AGD20K Seen (KLD / SIM / NSS): 1.088 / 0.443 / 1.322.
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_agd20k.py']
