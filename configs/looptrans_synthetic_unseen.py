# Quick start on the generated Unseen split: the test objects (bottle, chair, scissors) never appear in
# training, so the affordance must transfer to new objects through their parts.
#   python tools/train.py configs/looptrans_synthetic_unseen.py
#   python tools/test.py configs/looptrans_synthetic_unseen.py work_dirs/looptrans_synthetic_unseen/iter_200.pth
_base_ = ['./looptrans_synthetic.py']
classes = ('cut_with', 'drink_with', 'hold', 'pour', 'sit_on')  # looptrans.datasets.SYNTHETIC_UNSEEN_CLASSES
train_dataloader = dict(dataset=dict(split='Unseen', metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(split='Unseen', metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
model = dict(cam_head=dict(num_classes=len(classes)), pixel_head=dict(num_classes=len(classes)))
