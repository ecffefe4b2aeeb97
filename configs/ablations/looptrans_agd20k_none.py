# Ablation row of the paper's module table: none of the three modules: separate exo / ego CAM
# branches (LOCATE-style), no pixel alignment, no denoising distillation; the ego CAM is the test
# heatmap.
# Paper, AGD20K Seen (KLD / SIM / NSS): 1.318 / 0.384 / 1.135.
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_agd20k.py']
model = dict(
    cam_head=dict(shared=False),
    pixel_head=None,
    pixel_on_cam_head=False,
    concentration_loss=None,
    noise_head=None,
    noise_on_cam_head=False,
    test_cfg=dict(heatmap='cam'),
)
custom_hooks = []  # no pixel head: no pseudo-mask supervision to switch on
