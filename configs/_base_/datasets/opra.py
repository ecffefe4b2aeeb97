# OPRA in the Interaction Hotspots setting (weakly supervised): a training sample is one static product image
# (the egocentric view) + a window of `num_frames` frames of a demonstration clip of that product (the
# exocentric views, in temporal order), labelled with the clip's verb; a test sample is a static image with
# its GT heatmap, computed once from the annotated points into <data_root>/gt_cache/. Scores: KLD / SIM /
# AUC-J at 28x28, as interaction-hotspots/eval.py. Tree and download: docs/video_benchmarks.md.
dataset_type = 'OPRADataset'
data_root = 'data/opra'
num_frames = 8  # the published --max_len

train_pipeline = [
    dict(type='LoadAffordanceViews'),
    dict(
        type='MultiViewTransform',
        transforms=[
            # torchvision Resize(256) on a PIL image: shorter side 256, PIL bilinear (antialiased)
            dict(type='ResizeShortEdge', size=256),
            dict(type='mmseg.RandomCrop', crop_size=(224, 224)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ],
        # one crop and one flip for all frames of a clip (Interaction Hotspots' group transforms);
        # the static image draws its own
        clip_views=('exo_imgs',),
    ),
    dict(type='PackAffordanceInputs'),
]
test_pipeline = [
    dict(type='LoadAffordanceViews'),
    dict(
        type='MultiViewTransform',
        # torchvision Resize((224, 224)) on a PIL image
        transforms=[dict(type='Resize', scale=(224, 224), keep_ratio=False, backend='pillow')],
    ),
    # GT in float64, resized to 224x224 here in the workers: the metric's first step (same scores)
    dict(type='LoadAffordanceGT', resize_to=224),
    dict(type='PackAffordanceInputs'),
]

train_dataloader = dict(
    batch_size=8,  # 8 x (1 + 8) = 72 images per step
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations.json',
        mode='train',
        num_frames=num_frames,
        clip_sampling='window',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root, ann_file='annotations.json', mode='test', pipeline=test_pipeline
    ),
)
test_dataloader = val_dataloader

val_evaluator = dict(type='AffordanceMetric', protocol='hotspots')
test_evaluator = val_evaluator
