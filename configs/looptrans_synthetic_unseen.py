# Quick start on the generated Unseen split: the test objects (bottle, chair, scissors) never appear in
# training, so the affordance must transfer to new objects through their parts.
#   python tools/train.py configs/looptrans_synthetic_unseen.py
#   python tools/test.py configs/looptrans_synthetic_unseen.py work_dirs/looptrans_synthetic_unseen/iter_200.pth
_base_ = ['./looptrans_synthetic.py']
# SyntheticAGD20KDataset takes its Unseen classes (looptrans.testing.SYNTHETIC_UNSEEN_CLASSES) from split
train_dataloader = dict(dataset=dict(split='Unseen'))
val_dataloader = dict(dataset=dict(split='Unseen'))
test_dataloader = val_dataloader
num_classes = 5  # len(looptrans.testing.SYNTHETIC_UNSEEN_CLASSES)
model = dict(cam_head=dict(num_classes=num_classes), pixel_head=dict(num_classes=num_classes))
