# Ablation row of the paper's module table: denoising distillation only: separate exo / ego CAM
# branches, no pixel alignment; the ego CAM is the distillation teacher and the test heatmap.
# Paper, AGD20K Seen (KLD / SIM / NSS): 1.251 / 0.392 / 1.196.
# L_corr (correlation alignment) stays on in every row: it is not one of the three modules.
_base_ = ['../looptrans_agd20k.py']
model = dict(
    cam_head=dict(shared=False),
    pixel_head=None,
    pixel_on_cam_head=False,
    concentration_loss=None,
    test_cfg=dict(heatmap='cam'),
)
custom_hooks = []  # no pixel head: no pseudo-mask supervision to switch on
