# LOCATE baseline on the generated AGD20K-layout data, on CPU in minutes, no downloads: configs/looptrans_synthetic.py
# (its random 2-block ViT, 'border' background rule, data, iteration schedule and custom_imports) with the model of
# configs/baselines/locate_agd20k.py. See docs/locate_baseline.md.
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k
#   python tools/train.py configs/baselines/locate_synthetic.py
#   python tools/test.py configs/baselines/locate_synthetic.py work_dirs/locate_synthetic/iter_200.pth
_base_ = ['../looptrans_synthetic.py']
# The model block of locate_agd20k.py (tests check both configs build the same LOCATE settings), on this file's
# backbone and classes. The losses are spelled out so that --cfg-options can change one key of them, e.g.
# model.concentration_loss.loss_weight=0 to train LOCATE without its concentration loss.
model = dict(
    _delete_=True,
    type='LOCATE',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,
    cam_head=dict(_base_.model.cam_head, shared=False),
    concentration_loss=dict(type='LOCATEConcentrationLoss', loss_weight=0.07),
    prototype_loss=dict(type='LOCATEPrototypeLoss', margin=0.5, loss_weight=1.0),
    # a random ViT's CLS attention is no saliency: the grid's interior stands in for it in the part score
    exclude_background=_base_.model.part_discovery.exclude_background,  # 'border'
    # an iteration loop: the prototype loss is on from iteration 50 (0-based), when looptrans_synthetic.py
    # switches its pixel supervision on (PseudoMaskHook start_iter = max_iters // 4)
    train_cfg=dict(warm_iter=_base_.max_iters // 4 - 1),
    test_cfg=dict(heatmap='cam'),
)
custom_hooks = []  # no pixel head: the schedule's PseudoMaskHook has nothing to switch on
