# HICO-IIF (10 affordances), AGD20K folder layout with trainset/ and testset/ directly under
# data_root (no Seen/Unseen level). Same pipelines and protocol as AGD20K.
_base_ = ['./agd20k_seen.py']

dataset_type = 'HICOIIFDataset'
data_root = 'data/HICO-IIF'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split=None))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, split=None))
test_dataloader = val_dataloader
