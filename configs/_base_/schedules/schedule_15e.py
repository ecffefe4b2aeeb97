# The published schedule (LOCATE's train.py / utils/util.py get_optimizer, inherited by LoopTrans):
# SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 1e-3, batch 16, StepLR(5, 0.1) per epoch, 15 epochs.
_base_ = ['./default_hooks.py']

# LOCATE's four parameter groups: weights at lr, biases at 2x lr, and every parameter whose name contains
# 'fc' (its token MLP fc1/fc2 and its classifier aff_fc) at 10x (weights) / 20x (biases). Our layers in
# LOCATE's 'fc' role: the CAM head's token MLP (cam_head.token_mlp.fc1/fc2) and classifier
# (cam_head.conv_seg), and the last layers of the pixel head (pixel_head.conv_seg) and of the noise heads
# (noise_head.conv_noise), which LOCATE does not have. '.bias' is a custom key rather than bias_lr_mult
# because MMEngine's bias_lr_mult skips normalisation biases, which LOCATE's rule includes.
# MMEngine matches the longest key first, so the 'fc' keys win over '.bias'.
optimizer = dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4, nesterov=True)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(
        custom_keys={
            '.bias': dict(lr_mult=2.0),
            'token_mlp.fc1.weight': dict(lr_mult=10.0),
            'token_mlp.fc1.bias': dict(lr_mult=20.0),
            'token_mlp.fc2.weight': dict(lr_mult=10.0),
            'token_mlp.fc2.bias': dict(lr_mult=20.0),
            'conv_seg.weight': dict(lr_mult=10.0),
            'conv_seg.bias': dict(lr_mult=20.0),
            'conv_noise.weight': dict(lr_mult=10.0),
            'conv_noise.bias': dict(lr_mult=20.0),
        }
    ),
)
param_scheduler = [dict(type='MultiStepLR', milestones=[5, 10], gamma=0.1, by_epoch=True, begin=0, end=15)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=15, val_interval=1)
default_hooks = dict(
    logger=dict(interval=50),
    # a checkpoint every epoch, the best one by KLD kept
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=3, save_best='KLD', rule='less'),
)
# Pixel supervision starts at the second epoch (0-based epoch 1), as LOCATE's part loss
# (`if epoch[0] > epoch[1]` with epoch[1] = warm_epoch = 0): the CAM has trained for one epoch first.
custom_hooks = [dict(type='PseudoMaskHook', start_epoch=1)]
