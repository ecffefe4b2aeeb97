# Image -> video generalisation: train LoopTrans on AGD20K Seen images (exactly configs/looptrans_agd20k.py,
# validated on AGD20K Seen), test on EPIC-Hotspots' inactive object crops with the Interaction Hotspots
# protocol.
#   python tools/train.py configs/looptrans_agd20k_to_epic.py
#   python tools/test.py configs/looptrans_agd20k_to_epic.py \
#       work_dirs/looptrans_agd20k_to_epic/best_KLD_epoch_N.pth
# `verb_map` says which of the model's 36 AGD20K affordances each EPIC verb is scored as (gt_label = index of
# verb_map[verb] in the AGD20K classes); test images of unmapped verbs are skipped and counted in the log, so
# the scores cover the mapped verbs only. Keys that are not verbs of annotations.json are reported and
# ignored; names are matched case-insensitively, ' ' and '-' as '_'.
_base_ = ['./looptrans_agd20k.py']

# EPIC verbs -> AGD20K affordances; verbs with no AGD20K counterpart (put, close, turn-on, ...) are left out.
verb_map = {
    'take': 'pick_up',
    'hold': 'hold',
    'open': 'open',
    'cut': 'cut',
    'pour': 'pour',
    'wash': 'wash',
    'peel': 'peel',
    'mix': 'stir',
    'stir': 'stir',
    'push': 'push',
    'throw': 'throw',
}

# AGD20K's test loader (batch, workers, sampler) on EPIC-Hotspots' test set, with the one test pipeline
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='EPICHotspotsDataset',
        data_root='data/epic',
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
