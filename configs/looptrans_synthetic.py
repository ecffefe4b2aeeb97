# Quick start: LoopTrans on the generated AGD20K-layout dataset, on CPU in minutes, no downloads.
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k
#   python tools/train.py configs/looptrans_synthetic.py
#   python tools/test.py configs/looptrans_synthetic.py work_dirs/looptrans_synthetic/iter_200.pth
# The frozen ViT is randomly initialised and has 2 blocks (see _base_/models/looptrans_random_vit_synthetic.py);
# with the official DINO weights use configs/looptrans_agd20k.py on real data.
_base_ = [
    '_base_/models/looptrans_random_vit_synthetic.py',
    '_base_/datasets/synthetic_agd20k.py',
    '_base_/schedules/schedule_synthetic.py',
    '_base_/default_runtime.py',
]
# the generated data's dataset type (SyntheticAGD20KDataset) lives beside the runtime package
custom_imports = dict(imports=['looptrans', 'looptrans.testing'], allow_failed_imports=False)
num_classes = 7  # len(looptrans.testing.SYNTHETIC_SEEN_CLASSES)
model = dict(cam_head=dict(num_classes=num_classes), pixel_head=dict(num_classes=num_classes))
