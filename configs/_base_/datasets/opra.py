# OPRA in the Interaction Hotspots setting (hotspots_video.py): the egocentric view is a static product image,
# the exocentric views are frames of a demonstration video of that product.
_base_ = ['./hotspots_video.py']

dataset_type = 'OPRADataset'
data_root = 'data/opra'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
