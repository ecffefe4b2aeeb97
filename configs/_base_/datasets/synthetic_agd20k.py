# Synthetic AGD20K (Seen split), written by
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
# Small enough to train and test on a CPU. The class tuple equals
# looptrans.datasets.SYNTHETIC_SEEN_CLASSES (checked by tests/test_synthetic_data.py).
_base_ = ['./agd20k_seen.py']

data_root = 'data/synthetic_agd20k'
classes = ('cut_with', 'drink_with', 'hold', 'pour', 'push', 'ride', 'sit_on')
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
