# Synthetic AGD20K (Seen split), written by
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
# Small enough to train and test on a CPU. SyntheticAGD20KDataset is AGD20KDataset with the generated class
# lists (looptrans.testing.SYNTHETIC_SEEN_CLASSES / SYNTHETIC_UNSEEN_CLASSES, chosen by `split`); it is
# registered by `looptrans.testing`, which a config using this file lists in custom_imports.
_base_ = ['./agd20k_seen.py']

dataset_type = 'SyntheticAGD20KDataset'
data_root = 'data/synthetic_agd20k'
# AGD20K's training pipeline plus the true affordance part of each egocentric image (the generator writes
# it): it moves with the image and the training log gets pm_true_iou, the pseudo-masks' IoU with it.
train_pipeline = [
    dict(type='LoadAffordanceViews'),
    dict(type='LoadEgoPartMask'),
    dict(
        type='MultiViewTransform',
        transforms=[
            dict(type='ResizeShortEdge', size=256),
            dict(type='mmseg.RandomCrop', crop_size=(224, 224)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ],
    ),
    dict(type='PackAffordanceInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True, dataset=dict(type=dataset_type, data_root=data_root)
)
test_dataloader = val_dataloader
