# Ablation row of the paper's module table: all three modules (shared CAM + pixel alignment +
# denoising distillation): the full model, identical to the main config.
# On the generated data (see docs/results.md, "The paper's six ablation rows on the generated data").
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_synthetic.py']
