# LoopTrans for the generated datasets: the published model, but the frozen ViT is randomly initialised
# (no DINO weights can be downloaded on the development machines) and shallower (2 blocks), so it trains on
# a CPU in minutes. With the official weights use _base_/models/looptrans_dino_vits16.py.
_base_ = ['./looptrans_dino_vits16.py']
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536), init_cfg=None
    ),
    # A random ViT's CLS attention is no saliency: drop the border-dominated part instead (object-centric
    # ego images; see PartDiscovery). The CAM is binarised at its mean, one BatchNorm pass covers both views,
    # no concentration loss acts on the pixel head, which has its own decoder and classifier, L_corr is
    # Cross-View-AG's and the test map is
    # the pixel head's sigmoid: the settings every figure of docs/generated_benchmark.md and docs/results.md was
    # measured with (the published LoopTrans code's values: docs/differences.md).
    part_discovery=dict(exclude_background='border', cam_thr='mean'),
    cam_head=dict(joint_norm=True),
    concentration_loss=None,
    # M = 3 noise heads, the paper-derived pooling (a softmax assignment over the CAM embedding, per view), tau 0.5
    noise_head=dict(
        num_noise=3,
        pooling='assignment',
        loss_decode=dict(type='DenoisingDistillationLoss', tau=0.5, loss_weight=1.0, loss_name='loss_dill'),
    ),
    # Cross-View-AG's per-sample alignment of the image-level scores, align_w = 0.5
    corr_loss=dict(type='AffordanceCorrelationLoss', loss_weight=0.5),
    # the pixel head of every documented figure: PixelAffordanceHead's defaults (its own input, decoder with 256
    # channels and x2, own classifier; mmseg's soft dice + MSE on the sigmoid, weight 1 each)
    pixel_on_cam_head=False,
    pixel_head=dict(_delete_=True, type='PixelAffordanceHead', in_channels=384, num_classes=_base_.num_classes),
    test_cfg=dict(heatmap='pixel'),
)
