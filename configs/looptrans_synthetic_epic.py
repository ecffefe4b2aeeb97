# Quick start, video: LoopTrans with an LSTM over clip frames on the generated EPIC-Hotspots-format tree,
# on CPU in a few minutes, no downloads.
#   python tools/misc/generate_synthetic_video.py --out data
#   python tools/train.py configs/looptrans_synthetic_epic.py
#   python tools/test.py configs/looptrans_synthetic_epic.py work_dirs/looptrans_synthetic_epic/iter_200.pth
# Same model and schedule as configs/looptrans_synthetic.py (random, 2-block frozen ViT); real data:
# configs/looptrans_epic.py.
_base_ = [
    '_base_/models/looptrans_random_vit_synthetic.py',
    '_base_/datasets/synthetic_epic.py',
    '_base_/schedules/schedule_synthetic.py',
    '_base_/default_runtime.py',
]
num_classes = 7  # len(looptrans.testing.SYNTHETIC_EPIC_VERBS)
model = dict(
    temporal=dict(type='LSTMTemporalAggregator', channels=384),
    cam_head=dict(num_classes=num_classes),
    pixel_head=dict(num_classes=num_classes),
)
