# LoopTrans on the generated AGD20K-layout data with the published LoopTrans code's model recipe (SooLab/LoopTrans,
# as configs/looptrans_agd20k.py follows it): the pixel decoder on the CAM branch's token-MLP features ending in the
# CAM head's classifier, its pixel loss (dice x 2 and MSE x 10 on the min-max map), the concentration loss on the
# pixel maps, the Gram-matrix correlation loss, the denoising distillation (15 noise maps pooling the frozen keys,
# tau 1, weight 0.05), the shared projection once per view, the CAM binarised at 0.92 and the pixel decoder's raw
# map at test. What stays of configs/looptrans_synthetic.py: the random 2-block ViT, the
# 'border' background rule (a random ViT's attention is no saliency), the data and the 200-iteration schedule.
# tests/test_recipe.py checks that these settings are the real-data config's.
#   python tools/train.py configs/looptrans_synthetic_published_recipe.py
_base_ = ['./looptrans_synthetic.py']
model = dict(
    cam_head=dict(joint_norm=False),
    pixel_on_cam_head=True,
    pixel_head=dict(
        channels=384,
        upsample=1,
        init_cfg=dict(type='mmseg.TorchDefault', layer=['Conv2d', '_BatchNorm']),
        loss_decode=[
            dict(type='MapDiceLoss', activation='minmax', smooth=1.0, loss_weight=2.0, loss_name='loss_pixel_dice'),
            dict(type='MapMSELoss', activation='minmax', loss_weight=10.0, loss_name='loss_pixel_mse'),
        ],
    ),
    concentration_loss=dict(_delete_=True, type='LOCATEConcentrationLoss', loss_weight=0.07),
    corr_loss=dict(_delete_=True, type='AffordanceMapCorrelationLoss', loss_weight=1.5),
    noise_head=dict(
        num_noise=15,
        pooling='published',
        loss_decode=dict(type='DenoisingDistillationLoss', tau=1.0, loss_weight=0.05, loss_name='loss_dill'),
    ),
    part_discovery=dict(cam_thr=0.92),
    test_cfg=dict(heatmap='pixel_logits'),
)
