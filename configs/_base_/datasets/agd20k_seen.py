# AGD20K, Seen split (36 affordances), published LOCATE / Cross-View-AG protocol:
# train = 1 egocentric + 3 exocentric images per sample, each image resized, cropped and flipped on its own;
# test = egocentric image resized to 224x224, GT heatmap in float64 (both pipelines: view_pipelines.py).
_base_ = ['./view_pipelines.py']

dataset_type = 'AGD20KDataset'
data_root = 'data/AGD20K'
split = 'Seen'
num_exo = 3

train_pipeline = [
    dict(type='LoadAffordanceViews'),
    # the true affordance part of the ego image where a dataset knows it (generated data): moved with the
    # image, logged as pm_true_iou; a no-op on real AGD20K items, which have none
    dict(type='LoadEgoPartMask'),
    # every image draws its own crop and flip, as LOCATE
    dict(type='MultiViewTransform', transforms=_base_.train_view_transforms),
    dict(type='PackAffordanceInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type, data_root=data_root, split=split, mode='train', num_exo=num_exo, pipeline=train_pipeline
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split=split, mode='test', pipeline=_base_.test_pipeline),
)
test_dataloader = val_dataloader

val_evaluator = dict(type='AffordanceMetric')
test_evaluator = val_evaluator
