# The published LoopTrans schedule (SooLab/LoopTrans train.py, utils/util.py): LOCATE's optimiser and parameter
# groups (schedule_15e.py), batch 16, 5 epochs, StepLR(5, 0.1) per epoch (so the rate stays at 1e-3 for the whole
# run), and the pixel loss from the first step (its forward computes the dice and MSE terms in every step).
_base_ = ['./schedule_15e.py']

param_scheduler = [dict(type='StepLR', step_size=5, gamma=0.1, by_epoch=True, begin=0, end=5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5, val_interval=1)
custom_hooks = [dict(type='PseudoMaskHook', start_epoch=0)]
