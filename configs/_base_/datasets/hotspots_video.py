# The Interaction Hotspots setting (weakly supervised), shared by OPRA (opra.py) and EPIC-Hotspots
# (epic_hotspots.py), which add their dataset type and data root: a training sample is a static image of an
# object (the egocentric view) + a window of `num_frames` frames of a clip of someone using it (the exocentric
# views, in temporal order), labelled with the clip's verb; a test sample is a static image with its GT heatmap,
# computed once from the annotated points into <data_root>/gt_cache/. The classes are the verbs of
# annotations.json. Scores: KLD / SIM / AUC-J at 28x28, as interaction-hotspots/eval.py.
# Trees and downloads: docs/video_benchmarks.md.
_base_ = ['./view_pipelines.py']

num_frames = 8  # the published --max_len

train_pipeline = [
    dict(type='LoadAffordanceViews'),
    dict(
        type='MultiViewTransform',
        transforms=_base_.train_view_transforms,
        # one crop and one flip for all frames of a clip (Interaction Hotspots' group transforms);
        # the static image draws its own
        clip_views=('exo_imgs',),
    ),
    dict(type='PackAffordanceInputs'),
]

train_dataloader = dict(
    batch_size=8,  # 8 x (1 + 8) = 72 images per step
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
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
    dataset=dict(ann_file='annotations.json', mode='test', pipeline=_base_.test_pipeline),
)
test_dataloader = val_dataloader

# the test map (the pixel decoder's raw map) is min-max normalised before the Hotspots protocol's divide-by-max
val_evaluator = dict(type='AffordanceMetric', protocol='hotspots', pred_normalization='minmax')
test_evaluator = val_evaluator
