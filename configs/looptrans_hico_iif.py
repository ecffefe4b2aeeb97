# LoopTrans on HICO-IIF (10 affordances).
_base_ = [
    '_base_/models/looptrans_dino_vits16.py',
    '_base_/datasets/hico_iif.py',
    '_base_/schedules/schedule_5e.py',
    '_base_/default_runtime.py',
]
num_classes = 10  # len(HICOIIFDataset.METAINFO['classes'])
model = dict(cam_head=dict(num_classes=num_classes), pixel_head=dict(num_classes=num_classes))
