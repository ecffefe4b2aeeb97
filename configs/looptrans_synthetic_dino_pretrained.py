# The quick start's model and data on a small ViT pretrained with DINO's objective on generated images, instead of
# the random 2-block ViT: first write the weights (no download; about 33 minutes on 2 CPU cores), then train:
#   python tools/misc/pretrain_dino_synthetic.py --out checkpoints/dino_synthetic_vit4x192.pth
#   python tools/train.py configs/looptrans_synthetic_dino_pretrained.py
# The background rule is the random-ViT configs' 'border': within a CPU budget the CLS attention of these weights
# is no usable saliency (docs/generated_benchmark.md, where 'saliency' is measured too).
_base_ = [
    '_base_/models/looptrans_dino_synthetic.py',
    '_base_/datasets/synthetic_agd20k.py',
    '_base_/schedules/schedule_synthetic.py',
    '_base_/default_runtime.py',
]
custom_imports = dict(imports=['looptrans', 'looptrans.testing'], allow_failed_imports=False)
num_classes = 7  # len(looptrans.testing.SYNTHETIC_SEEN_CLASSES)
model = dict(
    cam_head=dict(num_classes=num_classes),
    pixel_head=dict(num_classes=num_classes),
    part_discovery=dict(exclude_background='border'),
)
