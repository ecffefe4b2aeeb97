# Image -> video on generated data: train on the synthetic AGD20K tree (exactly
# configs/looptrans_synthetic.py), validate and test on the synthetic OPRA tree's static images with the
# Interaction Hotspots protocol.
#   python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k
#   python tools/misc/generate_synthetic_video.py --out data --datasets opra
#   python tools/train.py configs/looptrans_synthetic_to_opra.py
#   python tools/test.py configs/looptrans_synthetic_to_opra.py \
#       work_dirs/looptrans_synthetic_to_opra/iter_200.pth
# The model predicts the synthetic AGD20K affordances; each OPRA verb is scored as the affordance verb_map
# gives (gt_label = index of verb_map[verb] in the model's classes). Real data: configs/looptrans_agd20k_to_opra.py.
_base_ = ['./looptrans_synthetic.py']

# the generator's mapping, looptrans.testing.SYNTHETIC_OPRA_VERB_MAP (tests/test_video_datasets.py checks)
verb_map = {
    'cut': 'cut_with',
    'drink': 'drink_with',
    'hold': 'hold',
    'pour': 'pour',
    'push': 'push',
    'ride': 'ride',
    'sit': 'sit_on',
}
# the quick start's test loader (batch, workers, sampler) on the synthetic OPRA test set, with the one test
# pipeline; it validates too
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='OPRADataset',
        data_root='data/synthetic_opra',
        ann_file='annotations.json',
        mode='test',
        verb_map=verb_map,
        # the model's classes (the generated Seen affordances, in its label order) are the targets
        classes_from=dict(type='SyntheticAGD20KDataset', split='Seen'),
        pipeline=_base_.test_pipeline,
    )
)
test_dataloader = val_dataloader
# the raw pixel-decoder map, min-max normalised before the Hotspots protocol's divide-by-max
val_evaluator = dict(protocol='hotspots', pred_normalization='minmax')
test_evaluator = val_evaluator
