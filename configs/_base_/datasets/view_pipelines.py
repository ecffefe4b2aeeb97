# The published image pipelines (LOCATE / Cross-View-AG for AGD20K, Interaction Hotspots for OPRA / EPIC), shared
# by every dataset config: one place for the resize / crop protocol.
# train: each view's shorter side resized to 256 (PIL bilinear, as torchvision Resize(256)), random crop 224,
#   flip; a dataset config wraps `train_view_transforms` in its MultiViewTransform (each image on its own, or
#   one draw per clip for video frames);
# test: the egocentric image resized to 224x224 (PIL bilinear), the GT heatmap in float64.
train_view_transforms = [
    # torchvision Resize(256) on a PIL image: shorter side 256, PIL bilinear (antialiased)
    dict(type='ResizeShortEdge', size=256),
    dict(type='mmseg.RandomCrop', crop_size=(224, 224)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
test_pipeline = [
    dict(type='LoadAffordanceViews'),
    dict(
        type='MultiViewTransform',
        # torchvision Resize((224, 224)) on a PIL image
        transforms=[dict(type='Resize', scale=(224, 224), keep_ratio=False, backend='pillow')],
    ),
    # GT in float64 (a PNG / 255), resized to 224x224 here in the workers: the first step of both protocols'
    # metric, so the scores are the same bit for bit
    dict(type='LoadAffordanceGT', resize_to=224),
    dict(type='PackAffordanceInputs'),
]
