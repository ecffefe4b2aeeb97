# Synthetic EPIC-Hotspots (7 verbs, clips every 10th frame, inactive objects in boxes), written by
#   python tools/misc/generate_synthetic_video.py --out data --datasets epic
# Small enough to train and test on a CPU. The verb tuple of its annotations.json is
# looptrans.testing.SYNTHETIC_EPIC_VERBS.
_base_ = ['./epic_hotspots.py']

data_root = 'data/synthetic_epic'
train_dataloader = dict(batch_size=4, num_workers=2, dataset=dict(data_root=data_root, num_frames=4))
val_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
