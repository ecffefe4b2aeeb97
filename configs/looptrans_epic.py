# LoopTrans on EPIC-Hotspots, weakly supervised (Interaction Hotspots setting): each sample is an inactive
# object crop (egocentric) + 8 frames (6 fps) of an EPIC-Kitchens clip (exocentric); an LSTM aggregates the
# frames' features over time before the shared CAM head. Frozen DINO ViT-S/16, LOCATE's 15-epoch
# schedule (the published LoopTrans code trains images only).
#   python tools/train.py configs/looptrans_epic.py
#   python tools/test.py configs/looptrans_epic.py work_dirs/looptrans_epic/best_KLD_epoch_N.pth
_base_ = [
    '_base_/models/looptrans_dino_vits16.py',
    '_base_/datasets/epic_hotspots.py',
    '_base_/schedules/schedule_15e.py',
    '_base_/default_runtime.py',
]
# Must equal len(annotations.json['verbs']) of the Interaction Hotspots EPIC annotations (the dataset logs
# "N items, K classes" when it is built); check with
#   python -c "import json; print(len(json.load(open('data/epic/annotations.json'))['verbs']))"
num_classes = 20
model = dict(
    temporal=dict(type='LSTMTemporalAggregator', channels=384),
    cam_head=dict(num_classes=num_classes),
    pixel_head=dict(num_classes=num_classes),
)
