# EPIC-Hotspots (EPIC-Kitchens 2018 + Interaction Hotspots annotations), weakly supervised: a training sample
# is an inactive image of the clip's object, cropped to its box with the published random expansion / shift
# (CropEgoBox; the egocentric view), + a window of `num_frames` frames of the clip at 6 fps (every 10th frame;
# the exocentric views), labelled with the clip's verb. A test sample is an inactive object crop with its GT
# heatmap (computed once into <data_root>/gt_cache/). Scores: KLD / SIM / AUC-J at 28x28.
# Tree and download: docs/video_benchmarks.md.
dataset_type = 'EPICHotspotsDataset'
data_root = 'data/epic'
num_frames = 8  # the published --max_len

train_pipeline = [
    dict(type='LoadAffordanceViews'),
    dict(type='CropEgoBox', expand=(0.5, 1.5), shift=0.2),  # the egocentric view only
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
        frame_stride=10,  # 60 fps -> 6 fps, the published sample_rate
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
