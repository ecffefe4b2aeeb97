# Image -> video generalisation: train LoopTrans on AGD20K Seen images (exactly configs/looptrans_agd20k.py,
# validated on AGD20K Seen), test on OPRA's static images with the Interaction Hotspots protocol.
#   python tools/train.py configs/looptrans_agd20k_to_opra.py
#   python tools/test.py configs/looptrans_agd20k_to_opra.py \
#       work_dirs/looptrans_agd20k_to_opra/best_KLD_epoch_N.pth
# The model predicts the 36 AGD20K affordances. `verb_map` says which affordance each OPRA verb is scored as:
# a test image annotated with verb v gets gt_label = index of verb_map[v] in the AGD20K classes, and the
# heatmap of that affordance is compared with the image's GT. Test images of verbs absent from the map are
# skipped and counted in the log, so the scores cover the mapped verbs only (not comparable with numbers
# over all 1042 OPRA test images). Verb names are matched case-insensitively, ' ' and '-' as '_'.
_base_ = ['./looptrans_agd20k.py']

# OPRA verbs -> AGD20K affordances ('touch', 'rotate' and 'put down' have no AGD20K counterpart).
verb_map = {'hold': 'hold', 'push': 'push', 'pull': 'drag', 'pick up': 'pick_up'}

# AGD20K's test loader (batch, workers, sampler) on OPRA's test set, with the one test pipeline
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='OPRADataset',
        data_root='data/opra',
        ann_file='annotations.json',
        mode='test',
        verb_map=verb_map,
        # the model's classes (the 36 AGD20K Seen affordances, in its label order) are the targets
        classes_from=dict(type='AGD20KDataset', split='Seen'),
        pipeline=_base_.test_pipeline,
    )
)
# the raw pixel-decoder map, min-max normalised before the Hotspots protocol's divide-by-max
test_evaluator = dict(protocol='hotspots', pred_normalization='minmax')
