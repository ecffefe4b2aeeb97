# Ablation row of the paper's module table: shared CAM only: one CAM head for both views, no pixel
# alignment, no denoising distillation; the ego CAM is the test heatmap.
# Paper, AGD20K Seen (KLD / SIM / NSS): 1.259 / 0.409 / 1.179.
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_agd20k.py']
model = dict(
    cam_head=dict(shared=True),
    pixel_head=None,
    pixel_on_cam_head=False,
    concentration_loss=None,
    noise_head=None,
    noise_on_cam_head=False,
    test_cfg=dict(heatmap='cam'),
)
custom_hooks = []  # no pixel head: no pseudo-mask supervision to switch on
