# Ablation row of the paper's module table: shared CAM + denoising distillation, no pixel
# alignment; the ego CAM is the distillation teacher and the test heatmap.
# Paper, AGD20K Seen (KLD / SIM / NSS): 1.222 / 0.405 / 1.183.
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_agd20k.py']
model = dict(
    cam_head=dict(shared=True),
    pixel_head=None,
    pixel_on_cam_head=False,
    concentration_loss=None,
    test_cfg=dict(heatmap='cam'),
)
custom_hooks = []  # no pixel head: no pseudo-mask supervision to switch on
