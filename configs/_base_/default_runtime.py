# Runtime shared by every LoopTrans config.
default_scope = 'mmseg'
custom_imports = dict(imports=['looptrans'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='AffordanceVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
# The checks every run gets (class lists, config keys, resume fallbacks, world size: the hooks named in
# looptrans.engine.hooks.RUN_CHECK_HOOKS) are default_hooks entries of the schedules' shared base file, not of
# this file: MMEngine refuses a top-level key set by two sibling _base_ files, and every config lists a
# schedule (which sets default_hooks) beside this file. default_hooks, not custom_hooks: a child config's
# custom_hooks list replaces its base's, its default_hooks dict is merged into its base's.
