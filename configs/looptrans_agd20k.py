# LoopTrans on AGD20K Seen (36 affordances), frozen DINO ViT-S/16, the published schedule.
#   python tools/train.py configs/looptrans_agd20k.py
#   python tools/test.py configs/looptrans_agd20k.py work_dirs/looptrans_agd20k/best_KLD_epoch_N.pth
_base_ = [
    '_base_/models/looptrans_dino_vits16.py',
    '_base_/datasets/agd20k_seen.py',
    '_base_/schedules/schedule_5e.py',
    '_base_/default_runtime.py',
]
# The published LoopTrans code's parts: its trained cluster module for AGD20K Seen (after ACSeg; download
# cluster_seen.pth from the authors, docs/data_preparation.md), frozen, in place of K-means. Without the file:
#   --cfg-options model.part_discovery.clusterer=None   (cosine K-means, K = 4)
model = dict(
    part_discovery=dict(clusterer=dict(type='LearnedPartClusterer', checkpoint='checkpoints/cluster_seen.pth'))
)
