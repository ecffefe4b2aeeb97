# Quick start, video: LoopTrans with an LSTM over clip frames on the generated EPIC-Hotspots-format tree,
# on CPU in a few minutes, no downloads.
#   python tools/misc/generate_synthetic_video.py --out data
#   python tools/train.py configs/looptrans_synthetic_epic.py
#   python tools/test.py configs/looptrans_synthetic_epic.py work_dirs/looptrans_synthetic_epic/iter_300.pth
# Same model and schedule as configs/looptrans_synthetic.py (random, 4-block frozen ViT); real data:
# configs/looptrans_epic.py.
_base_ = [
    '_base_/models/looptrans_dino_vits16.py', '_base_/datasets/synthetic_epic.py',
    '_base_/default_runtime.py'
]
num_classes = 7  # looptrans.datasets.synthetic_video.SYNTHETIC_EPIC_VERBS
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=384, num_layers=4, num_heads=6, feedforward_channels=1536),
        init_cfg=None),
    temporal=dict(type='LSTMTemporalAggregator', channels=384),
    cam_head=dict(num_classes=num_classes),
    pixel_head=dict(num_classes=num_classes))

max_iters = 300
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-4, by_epoch=False, begin=0, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters // 2, max_keep_ckpts=2,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='AffordanceVisualizationHook', draw=False))
custom_hooks = [dict(type='PseudoMaskHook', start_iter=max_iters // 4, dump_interval=100)]
