"""The LoopTrans segmentor: losses, gradient flow, ablation switches, prediction, other backbones."""

import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import looptrans  # noqa: F401

NUM_CLASSES = 5
TINY_VIT = dict(embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=384)


def model_cfg(**overrides) -> dict:
    cfg = dict(
        type='LoopTrans',
        data_preprocessor=dict(type='AffordanceDataPreprocessor'),
        backbone=dict(type='DINOVisionTransformer', arch=TINY_VIT, patch_size=16, frozen=True),
        cam_head=dict(type='SharedCAMHead', in_channels=384, channels=64, num_classes=NUM_CLASSES),
        pixel_head=dict(type='PixelAffordanceHead', in_channels=384, channels=32, num_classes=NUM_CLASSES),
        noise_head=dict(type='NoiseHead', channels=64, num_noise=3),
        corr_loss=dict(type='AffordanceCorrelationLoss'),
        part_discovery=dict(type='PartDiscovery', num_parts=4),
    )
    cfg.update(overrides)
    return cfg


def build(**overrides):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(model_cfg(**overrides))


def batch(b=2, v=3, size=64, labels=(1, 3)):
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(b, 1 + v, 3, size, size, generator=gen)
    samples = [SegDataSample(metainfo=dict(gt_label=labels[i % len(labels)], img_shape=(size, size))) for i in range(b)]
    return inputs, samples


def test_loss_names_and_finiteness():
    model = build()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    expected = {'loss_cls_exo', 'loss_cls_ego', 'loss_pixel_dice', 'loss_pixel_mse', 'loss_dill', 'loss_corr'}
    assert expected <= set(losses)
    assert {'pm_valid', 'pm_area', 'pm_iou'} <= set(losses)
    assert 'pm_true_iou' not in losses  # no true part masks in these samples
    for name, value in losses.items():
        assert torch.isfinite(value).all(), name


def test_true_part_masks_in_the_samples_are_scored_in_training():
    from mmengine.structures import PixelData

    model = build()
    inputs, samples = batch()
    for s in samples:
        s.gt_sem_seg = PixelData(data=torch.ones(1, 64, 64, dtype=torch.uint8))  # the part = the whole image
    losses = model.loss(inputs, samples)
    assert losses['pm_valid'].item() > 0
    # IoU with the whole image = the pseudo-mask's area share (pm_area, averaged over the same valid samples)
    assert losses['pm_true_iou'].item() == pytest.approx(losses['pm_area'].item(), abs=1e-6)


def test_gradients_reach_heads_only_backbone_frozen():
    model = build()
    model.train()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    for name, p in model.backbone.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    for head in ('cam_head', 'pixel_head', 'noise_head'):
        grads = [p.grad for p in getattr(model, head).parameters()]
        assert grads and all(g is not None for g in grads), head
        assert any(g.abs().sum() > 0 for g in grads), head


def test_pixel_supervision_off_gives_zero_pixel_loss_but_keeps_graph():
    model = build()
    model.pixel_supervision = False
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    assert losses['loss_pixel_dice'].item() == 0 and losses['loss_pixel_mse'].item() == 0
    assert losses['loss_pixel_dice'].requires_grad
    assert 'pm_valid' not in losses


def _dill_and_cam_grads(model, inputs, samples):
    """loss_dill and the gradient it alone sends into the shared CAM head's parameters."""
    model.train()
    losses = model.loss(inputs, samples)
    model.zero_grad()
    losses['loss_dill'].backward()
    grads = [p.grad for p in model.cam_head.parameters() if p.grad is not None]
    return losses['loss_dill'], grads


def test_denoising_distillation_waits_for_the_pixel_heads_localisation():
    """With a pixel head, the teacher is the pixel head's localisation only: before its supervision starts,
    loss_dill is a zero that keeps the graph and sends nothing into the shared CAM."""
    model = build()
    model.pixel_supervision = False
    dill, grads = _dill_and_cam_grads(model, *batch())
    assert dill.item() == 0 and dill.requires_grad
    assert all(p.grad is not None for p in model.noise_head.parameters())  # DDP: every parameter takes part
    assert all(g.abs().sum() == 0 for g in grads)


def _dill_by_hand(model, inputs, samples, teacher_of):
    """The noise head's loss on the model's own views, with the teacher ``teacher_of(cams, feats_ego)`` of each
    sample's affordance (the labels of :func:`batch`)."""
    with torch.no_grad():
        feats_ego, feats_exo, _ = model._encode_views(inputs[:, 0], inputs[:, 1:])
        cams = model.cam_head.forward_views(feats_exo, feats_ego)
        return model.noise_head.loss(cams, teacher_of(cams, feats_ego), samples)['loss_dill']


def test_denoising_distillation_teacher_is_the_pixel_heads_sigmoid_once_supervised():
    from looptrans.models.heads.utils import select_class_maps

    model = build()
    model.pixel_supervision = True
    inputs, samples = batch()
    dill, grads = _dill_and_cam_grads(model, inputs, samples)
    assert dill.item() > 0 and any(g.abs().sum() > 0 for g in grads)

    def pixel_sigmoid(cams, feats_ego):
        return select_class_maps(model.pixel_head(feats_ego), torch.tensor([1, 3])).sigmoid()

    assert dill.item() == pytest.approx(_dill_by_hand(model, inputs, samples, pixel_sigmoid).item(), rel=1e-5)


def test_without_a_pixel_head_the_min_max_ego_cam_is_the_teacher_from_the_start():
    from looptrans.models.heads.utils import select_class_maps

    model = build(pixel_head=None, test_cfg=dict(heatmap='cam'))
    model.pixel_supervision = False
    inputs, samples = batch()
    dill, grads = _dill_and_cam_grads(model, inputs, samples)
    assert dill.item() > 0 and any(g.abs().sum() > 0 for g in grads)

    def min_max_ego_cam(cams, feats_ego):
        cam = select_class_maps(cams.ego_cams, torch.tensor([1, 3]))
        low, high = cam.amin(dim=(1, 2), keepdim=True), cam.amax(dim=(1, 2), keepdim=True)
        return (cam - low) / (high - low)

    assert dill.item() == pytest.approx(_dill_by_hand(model, inputs, samples, min_max_ego_cam).item(), rel=1e-5)


@pytest.mark.parametrize(
    'overrides, absent',
    [
        (dict(pixel_head=None, test_cfg=dict(heatmap='cam')), {'loss_pixel_dice', 'loss_pixel_mse'}),
        (dict(noise_head=None), {'loss_dill'}),
        (dict(corr_loss=None), {'loss_corr'}),
    ],
)
def test_ablation_switches_remove_their_losses(overrides, absent):
    model = build(**overrides)
    losses = model.loss(*batch())
    assert not (absent & set(losses))


def test_unshared_cam_head_has_two_branches():
    shared = build()
    unshared = build(
        cam_head=dict(type='SharedCAMHead', in_channels=384, channels=64, num_classes=NUM_CLASSES, shared=False)
    )
    n_shared = sum(p.numel() for p in shared.cam_head.parameters())
    n_unshared = sum(p.numel() for p in unshared.cam_head.parameters())
    assert n_unshared > n_shared


def test_predict_writes_heatmap_of_the_asked_affordance():
    model = build(test_cfg=dict(return_all=True))
    model.eval()
    inputs, samples = batch(v=0)
    with torch.no_grad():
        out = model.predict(inputs, copy.deepcopy(samples))
        all_maps = model.inference(inputs)
    for i, sample in enumerate(out):
        assert sample.pred_heatmap.data.shape == (1, 64, 64)
        assert sample.pred_heatmaps.data.shape == (NUM_CLASSES, 64, 64)
        label = samples[i].metainfo['gt_label']
        torch.testing.assert_close(sample.pred_heatmap.data[0], all_maps[i, label])
        assert 0 <= sample.pred_heatmap.data.min() and sample.pred_heatmap.data.max() <= 1  # sigmoid


def test_cam_heatmap_source_and_forward_shape():
    model = build(test_cfg=dict(heatmap='cam'))
    model.eval()
    inputs, _ = batch(v=0)
    with torch.no_grad():
        raw = model._forward(inputs)
        cams = model.cam_head(model.extract_feat(inputs[:, 0]), view='ego')
    assert raw.shape == (2, NUM_CLASSES, 64, 64)
    expected = torch.nn.functional.interpolate(cams, size=(64, 64), mode='bilinear', align_corners=False)
    torch.testing.assert_close(raw, expected)


def test_training_needs_exo_views_and_5d_inputs():
    model = build()
    inputs, samples = batch(v=0)
    with pytest.raises(ValueError, match='exocentric'):
        model.loss(inputs, samples)
    with pytest.raises(ValueError, match=r'\(B, V, 3, H, W\)'):
        model.loss(inputs[:, 0], samples)


def test_non_dino_backbone_needs_descriptor():
    resnet = dict(type='ResNetV1c', depth=18, out_indices=(3,), strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    with pytest.raises(ValueError, match='descriptor'):
        build(backbone=resnet)


def test_mmseg_resnet_backbone_with_dino_descriptor():
    resnet = dict(type='ResNetV1c', depth=18, out_indices=(3,), strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    model = build(
        backbone=resnet,
        neck=dict(type='MultiLevelNeck', in_channels=[512], out_channels=384, scales=[1]),
        descriptor=dict(type='DINOVisionTransformer', arch=TINY_VIT, patch_size=16, frozen=True),
    )
    losses = model.loss(*batch())
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    assert all(p.grad is None for p in model.descriptor.parameters())


def test_mmpretrain_backbone_by_config():
    convnext = dict(type='mmpretrain.ConvNeXt', arch='tiny', out_indices=(2,), gap_before_final_norm=False)
    model = build(
        backbone=convnext, descriptor=dict(type='DINOVisionTransformer', arch=TINY_VIT, patch_size=16, frozen=True)
    )
    losses = model.loss(*batch())
    assert torch.isfinite(sum(v for k, v in losses.items() if k.startswith('loss')))


def test_non_square_inputs_with_backbone_and_descriptor_grids_that_differ():
    """ResNet at stride 8 (8x12 CAM) vs DINO at stride 16 (4x6 descriptors) on 64x96 images."""
    resnet = dict(type='ResNetV1c', depth=18, out_indices=(3,), strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
    model = build(
        backbone=resnet,
        neck=dict(type='MultiLevelNeck', in_channels=[512], out_channels=384, scales=[1]),
        descriptor=dict(type='DINOVisionTransformer', arch=TINY_VIT, patch_size=16, frozen=True),
    )
    gen = torch.Generator().manual_seed(2)
    inputs = torch.randn(2, 4, 3, 64, 96, generator=gen)
    samples = [SegDataSample(metainfo=dict(gt_label=i, img_shape=(64, 96))) for i in range(2)]
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert model.last_part_discovery.pseudo_mask.shape == (2, 4, 6)
    assert model.last_part_discovery.cam.shape == (2, 4, 6)  # the CAM on the descriptor grid, for the pictures


# --------------------------------------------------------------------------- one feature path
def test_a_neck_is_applied_after_a_dino_backbone():
    """Backbone, then neck, whatever the backbone: a neck configured beside a DINO ViT feeds the heads."""
    neck = dict(type='MultiLevelNeck', in_channels=[384], out_channels=384, scales=[1])
    model = build(neck=neck)
    assert model.with_neck and model.shares_descriptor_pass
    images = batch(v=0)[0][:, 0]
    model.eval()
    with torch.no_grad():
        expected = model.neck(model.backbone(images))
        feats = model.extract_feat(images)
    assert len(feats) == len(expected) and all(torch.equal(a, b) for a, b in zip(feats, expected))
    with torch.no_grad():
        raw = model.backbone(images)[0]
    assert not torch.allclose(feats[0], raw)  # the neck changed what the heads read
    model.train()
    losses = model.loss(*batch())
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.neck.parameters())


def test_dino_backbone_gives_the_heads_its_keys_and_the_descriptors_in_one_pass():
    model = build().eval()
    assert model.backbone.out_type == 'keys'  # set by LoopTrans when the backbone config names none
    images = batch(v=0)[0][:, 0]
    with torch.no_grad():
        desc = model.backbone.forward_descriptors(images)
        feats, one_pass = model._encode(images, num_desc=1)
    keys_map = desc['keys'].transpose(1, 2).reshape(2, 384, 4, 4)
    assert torch.equal(feats[0], keys_map) and torch.equal(model.extract_feat(images)[0], keys_map)
    assert torch.equal(one_pass['keys'], desc['keys'][:1]) and torch.equal(one_pass['cls_attn'], desc['cls_attn'][:1])
    parts = model.part_descriptors(images)
    assert torch.equal(parts['keys'], desc['keys']) and torch.equal(parts['cls_attn'], desc['cls_attn'])


def test_backbone_out_type_decides_what_the_heads_read():
    backbone = dict(type='DINOVisionTransformer', arch=TINY_VIT, patch_size=16, frozen=True, out_type='featmap')
    model = build(backbone=backbone).eval()
    images = batch(v=0)[0][:, 0]
    with torch.no_grad():
        feats = model.extract_feat(images)
        assert torch.equal(feats[0], model.backbone(images)[0])
        outs, desc = model.backbone.forward_with_descriptors(images)
    assert torch.equal(outs[0], feats[0]) and set(desc) == {'keys', 'cls_attn'}
    assert torch.isfinite(sum(v for k, v in model.loss(*batch()).items() if k.startswith('loss')))


def test_feature_key_is_deprecated_but_still_chooses_the_dino_output():
    with pytest.warns(FutureWarning, match="feature_key is deprecated: set model.backbone.out_type='keys'"):
        keys = build(feature_key='keys')
    assert keys.backbone.out_type == 'keys'
    with pytest.warns(FutureWarning, match="out_type='featmap'"):
        assert build(feature_key='feats').backbone.out_type == 'featmap'
    with pytest.raises(ValueError, match="feature_key must be 'keys' or 'feats'"):
        build(feature_key='tokens')
    featmap = dict(type='DINOVisionTransformer', arch=TINY_VIT, patch_size=16, frozen=True, out_type='featmap')
    with pytest.raises(ValueError, match='delete model.feature_key'):
        build(backbone=featmap, feature_key='keys')
    resnet = dict(type='ResNetV1c', depth=18, out_indices=(3,), strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    with pytest.warns(FutureWarning, match='no effect on a non-DINO backbone'):
        build(
            backbone=resnet,
            feature_key='keys',
            neck=dict(type='MultiLevelNeck', in_channels=[512], out_channels=384, scales=[1]),
            descriptor=dict(type='DINOVisionTransformer', arch=TINY_VIT, patch_size=16, frozen=True),
        )


# --------------------------------------------------------------------------- pseudo-masks travel in the samples
def test_pseudo_masks_travel_to_the_pixel_head_in_the_data_samples():
    from looptrans.models.part_discovery import PartDiscoveryResult

    model = build()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    parts = model.last_part_discovery
    assert isinstance(parts, PartDiscoveryResult)
    for sample, mask, valid in zip(samples, parts.pseudo_mask, parts.valid):
        assert ('gt_pseudo_mask' in sample) == bool(valid)
        if valid:
            assert torch.equal(sample.gt_pseudo_mask.data[0], mask)
    stats = parts.statistics()
    for name in ('pm_valid', 'pm_area', 'pm_iou'):
        assert torch.equal(losses[name], stats[name]), name
    # the pixel head's loss is its own loss_by_feat on those samples
    expected = model.pixel_head.loss_by_feat(model.pixel_head(model.extract_feat(inputs[:, 0])), samples)
    assert losses['loss_pixel_dice'].item() == pytest.approx(expected['loss_pixel_dice'].item(), rel=1e-5)
    # pixel supervision off: the segmentor removes them, the pixel losses are zero
    model.pixel_supervision = False
    losses = model.loss(inputs, samples)
    assert not any('gt_pseudo_mask' in s for s in samples) and losses['loss_pixel_dice'].item() == 0


def test_heatmap_source_is_public_and_checked():
    model = build()
    assert model.heatmap_source == 'pixel'
    assert build(pixel_head=None, test_cfg=dict(heatmap='cam')).heatmap_source == 'cam'
    model.test_cfg['heatmap'] = 'fusion'
    assert model.heatmap_source == 'fusion'
    with pytest.raises(ValueError, match='must be one of'):
        model.check_heatmap_source('pixels')
    with pytest.raises(ValueError, match='needs a pixel_head'):
        build(pixel_head=None, test_cfg=dict(heatmap='pixel'))
