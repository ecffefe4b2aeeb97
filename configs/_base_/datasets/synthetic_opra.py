# Synthetic OPRA (7 verbs, clips of a person reaching an object's part), written by
#   python tools/misc/generate_synthetic_video.py --out data --datasets opra
# Small enough to train and test on a CPU. The verb tuple of its annotations.json is
# looptrans.testing.SYNTHETIC_OPRA_VERBS (the classes of the weakly supervised setting).
_base_ = ['./opra.py']

data_root = 'data/synthetic_opra'
train_dataloader = dict(batch_size=4, num_workers=2, dataset=dict(data_root=data_root, num_frames=4))
val_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
