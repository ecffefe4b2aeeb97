# LoopTrans on a frozen DINO ViT-S/16 (the published setting).
# Official weights (timm layout, loaded as is; or convert with tools/model_converters/dino2looptrans.py):
#   https://dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth
# Loss weights (lambda_cls, lambda_pixel, lambda_dill, lambda_corr) are the loss_weight of each head's
# loss_decode below (mmseg's contract: every loss is built from config and logged under its loss_name);
# K = part_discovery.num_parts, M = noise_head.num_noise, tau = noise_head.loss_decode.tau.
num_classes = 36
data_preprocessor = dict(
    type='AffordanceDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True
)
model = dict(
    type='LoopTrans',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DINOVisionTransformer',
        arch='deit-small',
        patch_size=16,
        frozen=True,
        # The heads read the last block's attention keys, as LOCATE does ('featmap' = final normed tokens).
        out_type='keys',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dino_deitsmall16_pretrain.pth'),
    ),
    cam_head=dict(
        type='SharedCAMHead',
        in_channels=384,
        channels=384,
        num_classes=num_classes,
        shared=True,
        # the published LoopTrans code calls its shared projection once per view (BatchNorm statistics per view)
        joint_norm=False,
        # lambda_cls; logged as loss_cls_exo / loss_cls_ego.
        loss_decode=dict(type='mmseg.CrossEntropyLoss', avg_non_ignore=True, loss_weight=1.0, loss_name='loss_cls'),
    ),
    # The published LoopTrans code's pixel decoder (pixel_dec): two conv3x3-BN-ReLU at 384 channels on the CAM
    # head's token-MLP features, no upsampling, ending in the CAM head's classifier (pixel_on_cam_head below);
    # PyTorch's default initialisation, as its nn.Conv2d / nn.BatchNorm2d layers get.
    pixel_head=dict(
        type='PixelAffordanceHead',
        in_channels=384,
        channels=384,
        num_classes=num_classes,
        upsample=1,
        init_cfg=dict(type='mmseg.TorchDefault', layer=['Conv2d', '_BatchNorm']),
        # lambda_pixel, the published LoopTrans code's: its soft dice x 2 and MSE x 10, both on the pixel map of the
        # labelled affordance min-max normalised per image (normalize_minmax), against the pseudo-mask.
        loss_decode=[
            dict(type='MapDiceLoss', activation='minmax', smooth=1.0, loss_weight=2.0, loss_name='loss_pixel_dice'),
            dict(type='MapMSELoss', activation='minmax', loss_weight=10.0, loss_name='loss_pixel_mse'),
        ],
    ),
    # The published LoopTrans code's denoising distillation: M = 15 noise maps; the raw labelled exo CAM and the
    # noise maps pool the frozen DINO keys over the 3 views, the pixel decoder's raw map the ego keys; InfoNCE
    # with tau = 1, lambda_dill = 0.05. The noise maps are the last 15 outputs of the CAM head's classifier
    # (noise_on_cam_head below), as the published aff_fc of C + 15 outputs.
    noise_head=dict(
        type='NoiseHead',
        channels=384,
        num_noise=15,
        pooling='published',
        loss_decode=dict(type='DenoisingDistillationLoss', tau=1.0, loss_weight=0.05, loss_name='loss_dill'),
    ),
    # lambda_corr and L_corr of the published LoopTrans code: 1 - cosine of the class-by-class Gram matrices of the
    # pixel decoder's ego maps and the exo CAMs, x 1.5.
    corr_loss=dict(type='AffordanceMapCorrelationLoss', loss_weight=1.5),
    pixel_on_cam_head=True,
    # the published aff_fc: C + M outputs, the noise maps inside the cross-entropy, the correlation loss and the
    # concentration loss; inference gives the C class maps
    noise_on_cam_head=True,
    # the published LoopTrans code's loss_con: LOCATE's concentration loss on the pixel decoder's maps, x 0.07
    concentration_loss=dict(type='LOCATEConcentrationLoss', loss_weight=0.07),
    # The published LoopTrans code's pseudo-mask rule (SooLab/LoopTrans models/looptrans.py): K = 4 parts; the
    # part of lowest mean CLS attention (heads 0, 1, 3) is the background and no candidate; the min-max ego CAM
    # binarised at 0.92 (its fg_threshold) chooses the part of highest IoU.
    part_discovery=dict(
        type='PartDiscovery',
        num_parts=4,
        num_iters=10,
        cam_thr=0.92,
        exclude_background='least_salient',
        saliency_heads=(0, 1, 3),
    ),
    train_cfg=dict(),
    # the published code's test map: the pixel decoder's raw map of the asked affordance (test_forward)
    test_cfg=dict(heatmap='pixel_logits', return_all=False),
)
