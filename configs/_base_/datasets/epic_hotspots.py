# EPIC-Hotspots (EPIC-Kitchens 2018 + Interaction Hotspots annotations) in the Interaction Hotspots setting
# (hotspots_video.py): the egocentric view is an inactive image of the clip's object, cropped to its box with
# the published random expansion / shift (CropEgoBox); the exocentric views are frames of the clip at 6 fps
# (every 10th frame).
_base_ = ['./hotspots_video.py']

dataset_type = 'EPICHotspotsDataset'
data_root = 'data/epic'
# the Hotspots train pipeline with the egocentric view cropped to its object box right after loading
train_pipeline = [
    _base_.train_pipeline[0],
    dict(type='CropEgoBox', expand=(0.5, 1.5), shift=0.2),  # the egocentric view only
    *_base_.train_pipeline[1:],
]
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        frame_stride=10,  # 60 fps -> 6 fps, the published sample_rate
        pipeline=train_pipeline,
    )
)
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
