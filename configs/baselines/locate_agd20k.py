# LOCATE (Li et al., CVPR 2023) as a baseline on AGD20K Seen: the published model and losses in this framework,
# with LoopTrans's data, runtime and metric (configs/looptrans_agd20k.py: LOCATE's pipeline and optimizer rules)
# and LOCATE's own 15-epoch schedule. Differences from the published code: docs/locate_baseline.md.
#   python tools/train.py configs/baselines/locate_agd20k.py
#   python tools/test.py configs/baselines/locate_agd20k.py work_dirs/locate_agd20k/best_KLD_epoch_N.pth
_base_ = ['../looptrans_agd20k.py']
model = dict(
    _delete_=True,  # none of LoopTrans's modules (pixel head, noise heads, correlation loss, part discovery)
    type='LOCATE',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,  # frozen DINO ViT-S/16: its last-block keys feed the CAM branch and K-means
    # LOCATE's aff_proj (token MLP) + separate aff_exo_proj / aff_ego_proj + shared aff_fc; CE on both views
    cam_head=dict(_base_.model.cam_head, shared=False),
    concentration_loss=dict(type='LOCATEConcentrationLoss', loss_weight=0.07),
    prototype_loss=dict(type='LOCATEPrototypeLoss', margin=0.5, loss_weight=1.0),  # margin = cel_margin
    aff_cam_thd=0.6,
    cluster_num=3,
    part_iou_thd=0.6,
    exclude_background='saliency',  # LOCATE's background removal and part gate on DINO's CLS attention
    # LOCATE's --warm_epoch 0: the prototype loss is on in the epochs > 0 (0-based), i.e. from the second one
    train_cfg=dict(warm_epoch=0),
    test_cfg=dict(heatmap='cam'),
)
custom_hooks = []  # no pixel head: the schedule's PseudoMaskHook has nothing to switch on
# LOCATE's schedule (_base_/schedules/schedule_15e.py), not LoopTrans's 5 epochs
train_cfg = dict(max_epochs=15)
param_scheduler = [dict(type='MultiStepLR', milestones=[5, 10], gamma=0.1, by_epoch=True, begin=0, end=15)]
