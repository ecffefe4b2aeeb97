# LoopTrans on OPRA, weakly supervised (Interaction Hotspots setting): each sample is a static product image
# (egocentric) + 8 frames of a demonstration clip (exocentric); an LSTM aggregates the frames' features
# over time before the shared CAM head. Frozen DINO ViT-S/16, LOCATE's 15-epoch schedule (the published
# LoopTrans code trains images only).
#   python tools/train.py configs/looptrans_opra.py
#   python tools/test.py configs/looptrans_opra.py work_dirs/looptrans_opra/best_KLD_epoch_N.pth
_base_ = [
    '_base_/models/looptrans_dino_vits16.py',
    '_base_/datasets/opra.py',
    '_base_/schedules/schedule_15e.py',
    '_base_/default_runtime.py',
]
num_classes = 7  # OPRA's verbs: len(annotations.json['verbs']); the classes are the verbs, in that order
model = dict(
    # exo features (B*T, 384, 14, 14) -> (B, T, 384, 14, 14) -> LSTM over T at each location -> back
    temporal=dict(type='LSTMTemporalAggregator', channels=384),
    cam_head=dict(num_classes=num_classes),
    pixel_head=dict(num_classes=num_classes),
)
