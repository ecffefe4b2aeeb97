# What every schedule shares: the validation / test loops and the runtime hooks (iteration timer, per-iteration
# logs, LR scheduling, per-epoch sampler seeds, the affordance visualisation hook, checkpoints written
# atomically so that a kill leaves no torn file, and the run checks: config keys, resume, class lists, world
# size). A schedule file adds its optimiser, LR policy, training loop, log and checkpoint intervals.
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='AffordanceVisualizationHook', draw=False),
    # the checks every run gets, Runner.from_cfg(cfg) in a notebook included (looptrans.engine.hooks.RUN_CHECK_HOOKS);
    # default_hooks, not custom_hooks: a child config's dict merges into this one, where a list would replace it
    quiet_log=dict(type='QuietLogHook'),
    config_keys=dict(type='ConfigKeyCheckHook'),
    resume_check=dict(type='ResumeCheckHook'),
    class_lists=dict(type='ClassListCheckHook'),
    world_size=dict(type='WorldSizeCheckHook'),
)
