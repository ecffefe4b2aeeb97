# The published schedule (LOCATE / LoopTrans): SGD, lr 1e-3, momentum 0.9, weight decay 5e-4, 15 epochs.
optimizer = dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=15, eta_min=1e-5, by_epoch=True, begin=0, end=15)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=15, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=3,
                    backend_args=dict(backend='atomic_local'),  # no torn checkpoints on a kill
                    save_best='KLD', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='AffordanceVisualizationHook', draw=False))
# Pixel supervision starts after the CAM has trained for a third of the schedule (LOCATE's epoch[1]).
custom_hooks = [dict(type='PseudoMaskHook', start_epoch=5)]
