# Quick start: LoopTrans on the generated AGD20K-layout dataset, on CPU in a few minutes, no downloads.
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k
#   python tools/train.py configs/looptrans_synthetic.py
#   python tools/test.py configs/looptrans_synthetic.py work_dirs/looptrans_synthetic/iter_200.pth
# No DINO weights can be downloaded here, so the frozen ViT is randomly initialised and shallower
# (2 blocks); with the official weights use configs/looptrans_agd20k.py on real data.
_base_ = [
    '_base_/models/looptrans_dino_vits16.py', '_base_/datasets/synthetic_agd20k.py',
    '_base_/default_runtime.py'
]
num_classes = 7  # looptrans.datasets.synthetic.SYNTHETIC_SEEN_CLASSES
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536),
        init_cfg=None),
    cam_head=dict(num_classes=num_classes),
    pixel_head=dict(num_classes=num_classes))

max_iters = 200
# AdamW converges in a few hundred iterations on random frozen features; the published configs use SGD.
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
