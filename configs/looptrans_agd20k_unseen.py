# LoopTrans on AGD20K Unseen (25 affordances; test objects are absent from training).
_base_ = [
    '_base_/models/looptrans_dino_vits16.py',
    '_base_/datasets/agd20k_unseen.py',
    '_base_/schedules/schedule_5e.py',
    '_base_/default_runtime.py',
]
num_classes = 25  # len(AGD20KDataset.default_classes('Unseen'))
# the published LoopTrans code's trained cluster module for AGD20K Unseen (cluster_unseen.pth; see looptrans_agd20k.py)
model = dict(
    cam_head=dict(num_classes=num_classes),
    pixel_head=dict(num_classes=num_classes),
    part_discovery=dict(clusterer=dict(type='LearnedPartClusterer', checkpoint='checkpoints/cluster_unseen.pth')),
)
