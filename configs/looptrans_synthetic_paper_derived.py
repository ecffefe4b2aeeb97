# The quick start with the paper-derived recipe: the recipe assembled from the paper, LOCATE and Cross-View-AG
# before the published LoopTrans code was read, and the quick start's until 2026-12-07. Every figure of
# docs/generated_benchmark.md sections 1-9 and of docs/results.md marked "paper-derived" was measured with it.
# What differs from configs/looptrans_synthetic.py (the published code's recipe; docs/differences.md):
# the CAM binarised at its mean, one BatchNorm pass over both views, no concentration loss, a pixel head with its
# own decoder (256 channels, x2) and classifier trained by mmseg's soft dice + MSE on the sigmoid (weight 1 each),
# M = 3 noise heads of their own (a 1x1 conv, outside the cross-entropy) pooling by a softmax assignment per view
# (tau 0.5, weight 1), Cross-View-AG's L_corr (0.5) and the pixel head's sigmoid as the test map.
#   python tools/train.py configs/looptrans_synthetic_paper_derived.py
_base_ = ['./looptrans_synthetic.py']
model = dict(
    part_discovery=dict(cam_thr='mean'),
    cam_head=dict(joint_norm=True),
    concentration_loss=None,
    noise_head=dict(
        num_noise=3,
        pooling='assignment',
        loss_decode=dict(type='DenoisingDistillationLoss', tau=0.5, loss_weight=1.0, loss_name='loss_dill'),
    ),
    corr_loss=dict(_delete_=True, type='AffordanceCorrelationLoss', loss_weight=0.5),
    pixel_on_cam_head=False,
    noise_on_cam_head=False,
    pixel_head=dict(_delete_=True, type='PixelAffordanceHead', in_channels=384, num_classes=_base_.num_classes),
    test_cfg=dict(heatmap='pixel'),
)
