# Short iteration-based schedule for the generated datasets (CPU, minutes).
# AdamW converges in a few hundred iterations on random frozen features; the published configs use SGD.
_base_ = ['./default_hooks.py']

max_iters = 200
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-4, by_epoch=False, begin=0, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters // 2, max_keep_ckpts=2),
)
custom_hooks = [dict(type='PseudoMaskHook', start_iter=max_iters // 4, dump_interval=100)]
