# Synthetic AGD20K (Seen split), written by
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
# Small enough to train and test on a CPU. SyntheticAGD20KDataset is AGD20KDataset with the generated class
# lists (looptrans.testing.SYNTHETIC_SEEN_CLASSES / SYNTHETIC_UNSEEN_CLASSES, chosen by `split`); it is
# registered by `looptrans.testing`, which a config using this file lists in custom_imports.
_base_ = ['./agd20k_seen.py']

dataset_type = 'SyntheticAGD20KDataset'
data_root = 'data/synthetic_agd20k'
# the generated tree has the true ego part masks that LoadEgoPartMask (in AGD20K's train pipeline) loads
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True, dataset=dict(type=dataset_type, data_root=data_root)
)
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True, dataset=dict(type=dataset_type, data_root=data_root)
)
test_dataloader = val_dataloader
