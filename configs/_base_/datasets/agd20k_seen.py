# AGD20K, Seen split (36 affordances), published LOCATE / Cross-View-AG protocol:
# train = 1 egocentric + 3 exocentric images per sample, shorter side resized to 256 (PIL bilinear,
# as torchvision Resize(256)), random crop 224, flip, each image on its own;
# test = egocentric image resized to 224x224 (PIL bilinear), GT heatmap at its own size (float64).
dataset_type = 'AGD20KDataset'
data_root = 'data/AGD20K'
split = 'Seen'
num_exo = 3

train_pipeline = [
    dict(type='LoadAffordanceViews'),
    # the true affordance part of the ego image where a dataset knows it (generated data): moved with the
    # image, logged as pm_true_iou; a no-op on real AGD20K items, which have none
    dict(type='LoadEgoPartMask'),
    dict(
        type='MultiViewTransform',
        transforms=[
            # torchvision Resize(256) on a PIL image: shorter side 256, PIL bilinear (antialiased)
            dict(type='ResizeShortEdge', size=256),
            dict(type='mmseg.RandomCrop', crop_size=(224, 224)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ],
    ),  # every image draws its own crop and flip, as LOCATE
    dict(type='PackAffordanceInputs'),
]
test_pipeline = [
    dict(type='LoadAffordanceViews'),
    dict(
        type='MultiViewTransform',
        # torchvision Resize((224, 224)) on a PIL image
        transforms=[dict(type='Resize', scale=(224, 224), keep_ratio=False, backend='pillow')],
    ),
    # GT / 255 in float64, resized to 224x224 here in the workers as the metric would (same scores)
    dict(type='LoadAffordanceGT', resize_to=224),
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
    dataset=dict(type=dataset_type, data_root=data_root, split=split, mode='test', pipeline=test_pipeline),
)
test_dataloader = val_dataloader

val_evaluator = dict(type='AffordanceMetric')
test_evaluator = val_evaluator
