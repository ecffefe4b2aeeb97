"""Tests of the LoopTrans heads: shapes, hand-computed losses, gradient flow."""

import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from looptrans.models.heads import (
    NoiseHead,
    PixelAffordanceHead,
    SharedCAMHead,
    ViewCAMs,
    masked_average_pool,
    select_class_maps,
)

IN_CH, CH, NUM_CLASSES, H, W = 24, 16, 5, 6, 6


def samples(labels, pseudo_masks=None, size=(H, W)):
    """Data samples with ``gt_label`` (and ``gt_pseudo_mask`` (1, h, w) where ``pseudo_masks[i]`` is not None)."""
    out = []
    for i, label in enumerate(labels):
        sample = SegDataSample(metainfo=dict(gt_label=int(label), img_shape=size))
        if pseudo_masks is not None and pseudo_masks[i] is not None:
            sample.gt_pseudo_mask = PixelData(data=pseudo_masks[i][None])
        out.append(sample)
    return out


def as_cams(logits):
    """CAMs (N, C, 1, 1) whose global average is exactly ``logits`` (N, C)."""
    return logits[..., None, None]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def test_masked_average_pool_hand_computed():
    feats = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]]])  # (1, 2, 2, 2)
    weights = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]])
    pooled = masked_average_pool(feats, weights, eps=0.0)
    # (1*1 + 3*4) / 4 and (1*10 + 3*40) / 4
    assert torch.allclose(pooled, torch.tensor([[13 / 4, 130 / 4]]))
    # eps keeps an empty mask finite.
    empty = masked_average_pool(feats, torch.zeros(1, 2, 2))
    assert torch.equal(empty, torch.zeros(1, 2))
    # K masks at once == K single calls.
    multi = torch.rand(1, 3, 2, 2)
    out = masked_average_pool(feats, multi)
    assert out.shape == (1, 3, 2)
    for k in range(3):
        assert torch.allclose(out[:, k], masked_average_pool(feats, multi[:, k]))
    with pytest.raises(ValueError, match='resize the mask'):
        masked_average_pool(feats, torch.ones(1, 3, 3))


def test_select_class_maps():
    maps = torch.randn(3, 4, 2, 5)
    labels = torch.tensor([2, 0, 3])
    out = select_class_maps(maps, labels)
    assert out.shape == (3, 2, 5)
    for i, c in enumerate(labels.tolist()):
        assert torch.equal(out[i], maps[i, c])
    with pytest.raises(ValueError, match='repeat the labels'):
        select_class_maps(maps, torch.tensor([0, 1]))


# --------------------------------------------------------------------------
# SharedCAMHead
# --------------------------------------------------------------------------
def _cam_head(**kwargs):
    cfg = dict(type='SharedCAMHead', in_channels=IN_CH, channels=CH, num_classes=NUM_CLASSES)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_cam_head_shapes_and_logits():
    head = _cam_head()
    assert isinstance(head, SharedCAMHead)
    feats = torch.randn(6, IN_CH, H, W)
    cams, embed = head.forward_embed(feats, view='exo')
    assert cams.shape == (6, NUM_CLASSES, H, W)
    assert embed.shape == (6, CH, H, W)
    logits = head.logits(cams)
    assert logits.shape == (6, NUM_CLASSES)
    assert torch.allclose(logits[2, 3], cams[2, 3].mean())
    with pytest.raises(ValueError, match="'exo' or 'ego'"):
        head(feats, view='side')
    with pytest.raises(ValueError, match='set in_channels'):
        head(torch.randn(2, IN_CH + 1, H, W))


def test_cam_head_shared_vs_unshared():
    feats = torch.randn(4, IN_CH, H, W)
    shared = _cam_head(shared=True).eval()
    assert list(shared.projs.keys()) == ['shared']
    with torch.no_grad():
        exo_cam, exo_emb = shared.forward_embed(feats, 'exo')
        ego_cam, ego_emb = shared.forward_embed(feats, 'ego')
    assert torch.equal(exo_cam, ego_cam) and torch.equal(exo_emb, ego_emb)

    unshared = _cam_head(shared=False).eval()
    assert sorted(unshared.projs.keys()) == ['ego', 'exo']
    with torch.no_grad():
        exo_cam = unshared(feats, 'exo')
        ego_cam = unshared(feats, 'ego')
    assert not torch.allclose(exo_cam, ego_cam)
    # Unshared has one more projection branch, same MLP and classifier.
    n_shared = sum(p.numel() for p in shared.parameters())
    n_unshared = sum(p.numel() for p in unshared.parameters())
    n_proj = sum(p.numel() for p in shared.projs['shared'].parameters())
    assert n_unshared - n_shared == n_proj


def test_reestimated_norm_stats_are_the_cumulative_statistics_of_one_view():
    """After a training step whose shared projection blends the exo and ego batches' statistics (run per view, as
    the published code), ``reestimate_norm_stats`` on two ego batches leaves the first BatchNorm with the mean of
    the two batches' means and unbiased variances of its input, recomputed by hand from the conv output; the layers
    end in eval mode with their momentum. No batches, no BatchNorm or an unknown view: a ValueError, the
    statistics untouched."""
    torch.manual_seed(0)
    head = _cam_head(shared=True, joint_norm=False).train()
    exo, egos = torch.randn(6, IN_CH, H, W) + 3.0, [torch.randn(4, IN_CH, H, W) - 3.0 for _ in range(2)]
    head.forward_views(exo, egos[0])
    first = head.projs['shared'][0]
    momentum, blended = first.bn.momentum, first.bn.running_mean.clone()

    with pytest.raises(ValueError, match='no feature batches'):
        head.reestimate_norm_stats(iter(()), 'ego')
    with pytest.raises(ValueError, match="view must be 'exo' or 'ego'"):
        head.reestimate_norm_stats(egos, 'side')
    assert torch.equal(first.bn.running_mean, blended)

    assert head.reestimate_norm_stats(iter(egos), 'ego') == 2
    with torch.no_grad():
        outs = [first.conv(head.token_mlp(ego)) for ego in egos]
    torch.testing.assert_close(first.bn.running_mean, sum(o.mean(dim=(0, 2, 3)) for o in outs) / 2)
    torch.testing.assert_close(first.bn.running_var, sum(o.var(dim=(0, 2, 3), unbiased=True) for o in outs) / 2)
    assert first.bn.num_batches_tracked.item() == 2 and first.bn.momentum == momentum and not first.bn.training
    assert not torch.allclose(first.bn.running_mean, blended, atol=1e-2)

    with pytest.raises(ValueError, match='no BatchNorm'):
        _cam_head(shared=True, norm_cfg=None).reestimate_norm_stats(egos, 'ego')


def test_cam_head_loss_matches_cross_entropy_with_view_ordering():
    head = _cam_head()
    labels = torch.tensor([0, 2])
    exo_logits = torch.randn(6, NUM_CLASSES)  # (B=2, V=3) flattened
    ego_logits = torch.randn(2, NUM_CLASSES)
    cams = ViewCAMs(as_cams(exo_logits), None, as_cams(ego_logits), None)
    losses = head.loss_by_feat(cams, samples(labels))
    assert set(losses) == {'loss_cls_exo', 'loss_cls_ego'}
    expected_exo = F.cross_entropy(exo_logits, torch.tensor([0, 0, 0, 2, 2, 2]))
    wrong_order = F.cross_entropy(exo_logits, torch.tensor([0, 2, 0, 2, 0, 2]))
    assert torch.allclose(losses['loss_cls_exo'], expected_exo)
    assert not torch.allclose(losses['loss_cls_exo'], wrong_order)
    assert torch.allclose(losses['loss_cls_ego'], F.cross_entropy(ego_logits, labels))

    exo_only = _cam_head(cls_views=('exo',))
    assert set(exo_only.loss_by_feat(ViewCAMs(cams.exo_cams, None, None, None), samples(labels))) == {'loss_cls_exo'}
    with pytest.raises(ValueError, match='ego CAMs'):
        head.loss_by_feat(ViewCAMs(cams.exo_cams, None, None, None), samples(labels))
    with pytest.raises(ValueError, match=r'\(B\*V, C, h, w\)'):
        head.loss_by_feat(ViewCAMs(cams.exo_cams[:5], None, cams.ego_cams, None), samples(labels))
    with pytest.raises(ValueError, match='forward_views'):
        exo_only.loss_by_feat(cams.ego_cams, samples(labels))  # the ego CAMs alone give no exo loss
    with pytest.raises(KeyError, match='PackAffordanceInputs'):
        head.loss_by_feat(cams, [SegDataSample(), SegDataSample()])
    with pytest.raises(ValueError, match='cls_views'):
        _cam_head(cls_views=('top',))


def test_view_cams_unpack_as_four_and_share_their_logits():
    head = _cam_head()
    views = head.forward_views(torch.randn(6, IN_CH, H, W), torch.randn(2, IN_CH, H, W))
    exo_cams, exo_embed, ego_cams, ego_embed = views
    assert exo_cams.shape == (6, NUM_CLASSES, H, W) and ego_embed.shape == (2, CH, H, W)
    assert views.exo_logits is views.exo_logits  # computed once: the CE and the correlation loss share it
    assert torch.equal(views.ego_logits, head.logits(ego_cams))


def test_cam_head_honours_the_mmseg_decode_head_contract():
    """forward / loss / predict / loss_by_feat as mmseg's BaseDecodeHead promises them (the ego view)."""
    head = _cam_head()
    feats = [torch.randn(2, IN_CH, H, W)]
    batch = samples([1, 3], size=(4 * H, 4 * W))
    cams = head.forward(feats)
    assert cams.shape == (2, NUM_CLASSES, H, W)
    losses = head.loss(feats, batch, dict())
    assert set(losses) == {'loss_cls_ego'}
    expected = F.cross_entropy(head.logits(head(feats)), torch.tensor([1, 3]))
    assert torch.allclose(losses['loss_cls_ego'], expected)
    assert torch.allclose(head.loss_by_feat(cams, batch)['loss_cls_ego'], expected)
    head.eval()
    with torch.no_grad():
        pred = head.predict(feats, [s.metainfo for s in batch], dict())
        expected = F.interpolate(head(feats), size=(4 * H, 4 * W), mode='bilinear', align_corners=False)
    assert pred.shape == (2, NUM_CLASSES, 4 * H, 4 * W) and torch.allclose(pred, expected)


# --------------------------------------------------------------------------
# PixelAffordanceHead
# --------------------------------------------------------------------------
def _pixel_head(**kwargs):
    cfg = dict(type='PixelAffordanceHead', in_channels=IN_CH, channels=CH, num_classes=NUM_CLASSES)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('upsample', [1, 2, 3])
def test_pixel_head_shapes(upsample):
    head = _pixel_head(upsample=upsample)
    assert isinstance(head, PixelAffordanceHead)
    out = head(torch.randn(2, IN_CH, H, W))
    assert out.shape == (2, NUM_CLASSES, H * upsample, W * upsample)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_pixel_head_loss_hand_computed():
    head = _pixel_head()
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 1] = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    logits[1, 0] = torch.tensor([[1.0, 1.0], [-2.0, 0.5]])
    labels = torch.tensor([1, 0])
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]]])

    def dice_mse(z, m):
        p = [_sig(v) for v in z]
        inter = sum(a * b for a, b in zip(p, m))
        dice = 1 - (2 * inter + 1) / (sum(p) + sum(m) + 1)
        mse = sum((a - b) ** 2 for a, b in zip(p, m)) / len(p)
        return dice, mse

    d0, m0 = dice_mse([2, -1, 0, 1], [1, 0, 0, 1])
    d1, m1 = dice_mse([1, 1, -2, 0.5], [0, 1, 1, 1])
    losses = head.loss_by_feat(logits, samples(labels, [mask[0], mask[1]]))
    assert losses['loss_pixel_dice'].item() == pytest.approx((d0 + d1) / 2, rel=1e-6)
    assert losses['loss_pixel_mse'].item() == pytest.approx((m0 + m1) / 2, rel=1e-6)
    # Only samples that carry a pseudo-mask count; the other gets no gradient.
    logits.requires_grad_(True)
    losses = head.loss_by_feat(logits, samples(labels, [mask[0], None]))
    assert losses['loss_pixel_dice'].item() == pytest.approx(d0, rel=1e-6)
    assert losses['loss_pixel_mse'].item() == pytest.approx(m0, rel=1e-6)
    sum(losses.values()).backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[1] == 0).all() and logits.grad[0, 1].abs().sum() > 0
    # Loss weights scale the terms.
    weighted = _pixel_head(
        loss_decode=[
            dict(
                type='mmseg.DiceLoss',
                naive_dice=True,
                eps=1.0,
                ignore_index=None,
                loss_weight=2.0,
                loss_name='loss_pixel_dice',
            ),
            dict(type='MapMSELoss', loss_weight=0.5, loss_name='loss_pixel_mse'),
        ]
    )
    losses = weighted.loss_by_feat(logits, samples(labels, [mask[0], mask[1]]))
    assert losses['loss_pixel_dice'].item() == pytest.approx(d0 + d1, rel=1e-6)
    assert losses['loss_pixel_mse'].item() == pytest.approx((m0 + m1) / 4, rel=1e-6)


def test_pixel_head_loss_resizes_pseudo_mask():
    head = _pixel_head()
    logits = torch.randn(1, NUM_CLASSES, 4, 4)
    # A constant 2x2 mask resizes (bilinearly) to the same constant at 4x4.
    small = head.loss_by_feat(logits, samples([3], [torch.full((2, 2), 0.25)]))
    full = head.loss_by_feat(logits, samples([3], [torch.full((4, 4), 0.25)]))
    for key in small:
        assert torch.allclose(small[key], full[key])
    # A non-constant mask is interpolated bilinearly, not nearest.
    mask = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    resized = F.interpolate(mask[:, None], size=(4, 4), mode='bilinear', align_corners=False)[:, 0]
    a = head.loss_by_feat(logits, samples([3], [mask[0]]))
    b = head.loss_by_feat(logits, samples([3], [resized[0]]))
    assert torch.allclose(a['loss_pixel_mse'], b['loss_pixel_mse'])
    with pytest.raises(ValueError, match='data samples for logits'):
        head.loss_by_feat(logits, samples([3, 1], [mask[0], mask[0]]))
    with pytest.raises(ValueError, match='one grid'):
        head.loss_by_feat(torch.randn(2, NUM_CLASSES, 4, 4), samples([3, 1], [mask[0], torch.zeros(3, 3)]))


def test_pixel_head_no_pseudo_mask_keeps_graph():
    head = _pixel_head()
    logits = head(torch.randn(2, IN_CH, H, W))
    losses = head.loss_by_feat(logits, samples([0, 1]))
    total = sum(losses.values())
    assert total.item() == 0.0 and total.requires_grad
    total.backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, name
        assert (param.grad == 0).all(), name


def test_pixel_head_honours_the_mmseg_decode_head_contract():
    """forward / loss / predict / loss_by_feat as mmseg's BaseDecodeHead promises them; the targets travel in the
    data samples (gt_label, gt_pseudo_mask) as mmseg's gt_sem_seg does."""
    head = _pixel_head()
    feats = [torch.randn(2, IN_CH, H, W)]
    masks = [(torch.rand(H, W) > 0.5).float(), None]
    batch = samples([1, 4], masks, size=(32, 32))
    logits = head.forward(feats)
    assert logits.shape == (2, NUM_CLASSES, 2 * H, 2 * W)
    losses = head.loss(feats, batch, dict())
    assert set(losses) == {'loss_pixel_dice', 'loss_pixel_mse'}
    for name, value in head.loss_by_feat(head(feats), batch).items():
        assert torch.allclose(value, losses[name]), name
    head.eval()
    with torch.no_grad():
        pred = head.predict(feats, [s.metainfo for s in batch], dict())
        expected = F.interpolate(head(feats), size=(32, 32), mode='bilinear', align_corners=False)
    assert torch.allclose(pred, expected)


# --------------------------------------------------------------------------
# NoiseHead
# --------------------------------------------------------------------------
def _reference_dill(embed, cam, noise, f_pixel, tau):
    """Straightforward per-sample, per-location computation of L_dill."""
    n, d, h, w = embed.shape
    m = noise.shape[1]
    views = n // f_pixel.shape[0]
    total = 0.0
    for i in range(n):
        sums = [[0.0] * d for _ in range(m + 1)]
        wsum = [0.0] * (m + 1)
        for y in range(h):
            for x in range(w):
                scores = [cam[i, y, x].item()] + [noise[i, k, y, x].item() for k in range(m)]
                exps = [math.exp(s) for s in scores]
                for k in range(m + 1):
                    a = exps[k] / sum(exps)
                    wsum[k] += a
                    for c in range(d):
                        sums[k][c] += a * embed[i, c, y, x].item()
        protos = [[v / (wsum[k] + 1e-6) for v in sums[k]] for k in range(m + 1)]

        def cos(u, v):
            dot = sum(a * b for a, b in zip(u, v))
            return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

        teacher = f_pixel[i // views].tolist()
        s_pixel = cos(teacher, protos[0])
        s_noise = [cos(protos[k], protos[0]) for k in range(1, m + 1)]
        total += math.log(1 + sum(math.exp((s - s_pixel) / tau) for s in s_noise))
    return total / n


def test_noise_head_forward_and_loss_against_reference():
    head = MODELS.build(
        dict(
            type='NoiseHead',
            channels=4,
            num_noise=2,
            loss_decode=dict(type='DenoisingDistillationLoss', tau=0.3, loss_name='loss_dill'),
        )
    )
    batch, views = 2, 3
    embed = torch.randn(batch * views, 4, 3, 3, dtype=torch.float64)
    noise = head.double()(embed)
    assert noise.shape == (batch * views, 2, 3, 3)
    cam = torch.randn(batch * views, 3, 3, dtype=torch.float64) * 2
    f_pixel = torch.randn(batch, 4, dtype=torch.float64)
    loss = head.loss_by_feat(noise, embed, cam, f_pixel)['loss_dill']
    expected = _reference_dill(embed, cam, noise.detach(), f_pixel, tau=0.3)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_noise_head_loss_is_forward_then_loss_by_feat_on_the_teacher_pooled_ego_feature():
    cam_head, noise_head = _cam_head(), NoiseHead(channels=CH, num_noise=3)
    views = cam_head.forward_views(torch.randn(6, IN_CH, H, W), torch.randn(2, IN_CH, H, W))
    teacher = torch.rand(2, 2 * H, 2 * W)  # e.g. the pixel head's probabilities, at twice the grid
    batch = samples([1, 4])
    losses = noise_head.loss(views, teacher, batch)
    small = F.interpolate(teacher[:, None], size=(H, W), mode='bilinear', align_corners=False)[:, 0]
    f_pixel = masked_average_pool(views.ego_embed, small)
    exo_cam = select_class_maps(views.exo_cams, torch.tensor([1, 1, 1, 4, 4, 4]))
    expected = noise_head.loss_by_feat(noise_head(views.exo_embed), views.exo_embed, exo_cam, f_pixel)
    assert set(losses) == {'loss_dill'} and torch.allclose(losses['loss_dill'], expected['loss_dill'])
    losses['loss_dill'].backward()
    assert all(p.grad is not None for p in noise_head.parameters())
    with pytest.raises(ValueError, match='B=3 data samples'):
        noise_head.loss(views, teacher, samples([1, 4, 2]))


def _published_denoise(exo_cam, noise, exo_desc, ego_map, ego_desc):
    """Transcription of the published LoopTrans code's denoising loss (SooLab/LoopTrans models/looptrans.py), on
    exo_cam (b, V, h, w) = ``aff_cam_re[:, :, label]``, noise (b, V, M, h, w) = ``aff_cam_re[:, :, C:]``,
    exo_desc (b, V, c, h, w), ego_map (b, h, w) = ``ego_pred[:, label]`` and ego_desc (b, c, h, w)."""
    loss_denoise = 0
    b = exo_cam.shape[0]
    for b_ in range(b):
        aff_query = (exo_cam[b_].unsqueeze(1) * exo_desc[b_]).mean(0).mean(-1).mean(-1)
        aff_query = F.normalize(aff_query, p=2, dim=-1)
        pos_key = (ego_map[b_].unsqueeze(0) * ego_desc[b_]).mean(-1).mean(-1)
        neg_keys = (noise[b_].unsqueeze(2) * exo_desc[b_].unsqueeze(1)).mean(0).mean(-1).mean(-1)
        keys = F.normalize(torch.cat((pos_key.unsqueeze(0), neg_keys), dim=0), p=2, dim=-1)
        aff_sim = torch.matmul(keys, aff_query.unsqueeze(-1)).squeeze(-1)
        loss_denoise += -torch.log(torch.exp(aff_sim[0]) / torch.exp(aff_sim).sum())
    return loss_denoise / b


def test_noise_head_published_pooling_transcribes_the_published_looptrans_code():
    torch.manual_seed(0)
    cam_head = _cam_head().double()
    noise_head = NoiseHead(
        channels=CH,
        num_noise=15,
        pooling='published',
        loss_decode=dict(type='DenoisingDistillationLoss', tau=1.0, loss_weight=0.05, loss_name='loss_dill'),
    ).double()
    exo_feats = torch.randn(6, IN_CH, H, W, dtype=torch.float64)
    ego_feats = torch.randn(2, IN_CH, H, W, dtype=torch.float64)
    views = cam_head.forward_views(exo_feats, ego_feats)
    ego_map = torch.randn(2, H, W, dtype=torch.float64, requires_grad=True)
    losses = noise_head.loss_published(views, exo_feats, ego_feats, ego_map, samples([1, 4]))
    exo_cam = select_class_maps(views.exo_cams, torch.tensor([1, 1, 1, 4, 4, 4])).unflatten(0, (2, 3))
    noise = noise_head(views.exo_embed).unflatten(0, (2, 3))
    expected = 0.05 * _published_denoise(exo_cam, noise, exo_feats.unflatten(0, (2, 3)), ego_map, ego_feats)
    torch.testing.assert_close(losses['loss_dill'], expected)
    losses['loss_dill'].backward()  # the published code keeps every map's gradient
    assert ego_map.grad is not None and ego_map.grad.abs().sum() > 0
    assert all(p.grad is not None for p in noise_head.parameters()) and cam_head.conv_seg.weight.grad is not None
    # a map on another grid is resized to the features'
    big = torch.randn(2, 2 * H, 2 * W, dtype=torch.float64)
    small = F.interpolate(big[:, None], size=(H, W), mode='bilinear', align_corners=False)[:, 0]
    torch.testing.assert_close(
        noise_head.loss_published(views, exo_feats, ego_feats, big, samples([1, 4]))['loss_dill'],
        noise_head.loss_published(views, exo_feats, ego_feats, small, samples([1, 4]))['loss_dill'],
    )
    with pytest.raises(ValueError, match='B=3 data samples'):
        noise_head.loss_published(views, exo_feats, ego_feats, ego_map, samples([1, 4, 2]))
    with pytest.raises(ValueError, match="pooling must be one of \\('assignment', 'published'\\)"):
        NoiseHead(pooling='mean')


def test_published_pooling_in_looptrans_reads_the_cam_inputs_and_the_pixel_map():
    from conftest import build_tiny_looptrans
    from mmseg.structures import SegDataSample

    noise = dict(type='NoiseHead', channels=32, num_noise=15, pooling='published')
    inputs = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for pixel in (True, False):
        torch.manual_seed(0)
        model = build_tiny_looptrans(noise_head=noise, **({} if pixel else dict(pixel_head=None))).eval()
        batch = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 2)]
        losses = model.loss(inputs, batch)
        feats_ego = model.extract_feat(inputs[:, 0])
        feats_exo = model.extract_feat(inputs[:, 1:].flatten(0, 1))
        views = model.cam_head.forward_views(feats_exo, feats_ego)
        maps = model.pixel_logits(feats_ego) if pixel else views.ego_cams
        ego_map = select_class_maps(maps, torch.tensor([1, 2]))
        expected = model.noise_head.loss_published(views, feats_exo[-1], feats_ego[-1], ego_map, batch)
        torch.testing.assert_close(losses['loss_dill'], expected['loss_dill'], rtol=1e-4, atol=1e-6)


def test_noise_head_bad_shapes():
    head = NoiseHead(channels=4, num_noise=2)
    embed = torch.randn(6, 4, 3, 3)
    noise = head(embed)
    with pytest.raises(ValueError, match=r'f_pixel \(B, D\)'):
        head.loss_by_feat(noise, embed, torch.randn(6, 3, 3), torch.randn(4, 4))
    with pytest.raises(ValueError, match='exo_cam'):
        head.loss_by_feat(noise, embed, torch.randn(6, 2, 2), torch.randn(2, 4))
    with pytest.raises(ValueError, match='set channels'):
        head(torch.randn(6, 5, 3, 3))
    with pytest.raises(ValueError, match='num_noise'):
        NoiseHead(num_noise=0)


@pytest.mark.parametrize('detach', [True, False])
def test_gradient_flow_through_the_loop(detach):
    """CAM + noise heads learn from L_dill; the pixel head only when not detached."""
    batch, views = 2, 3
    cam_head = _cam_head()
    pixel_head = _pixel_head(upsample=1)
    noise_head = NoiseHead(channels=CH, num_noise=3)
    labels = torch.tensor([1, 4])
    exo_feats = torch.randn(batch * views, IN_CH, H, W)
    ego_feats = torch.randn(batch, IN_CH, H, W)

    exo_cams, exo_embed = cam_head.forward_embed(exo_feats, 'exo')
    _, ego_embed = cam_head.forward_embed(ego_feats, 'ego')
    pixel = select_class_maps(pixel_head(ego_feats), labels).sigmoid()
    f_pixel = masked_average_pool(ego_embed, pixel)
    if detach:
        f_pixel = f_pixel.detach()
    exo_cam = select_class_maps(exo_cams, labels.repeat_interleave(views))
    loss = noise_head.loss_by_feat(noise_head(exo_embed), exo_embed, exo_cam, f_pixel)['loss_dill']
    loss.backward()

    for module in (cam_head.token_mlp, cam_head.projs, cam_head.conv_seg, noise_head):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    pixel_grads = [p.grad for p in pixel_head.parameters()]
    if detach:
        assert all(g is None for g in pixel_grads)
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in pixel_grads)


def test_heads_classification_and_pixel_grads():
    cam_head = _cam_head()
    pixel_head = _pixel_head()
    feats = torch.randn(6, IN_CH, H, W)
    labels = torch.tensor([0, 3])
    exo_cams = cam_head(feats, 'exo')
    ego_cams = cam_head(feats[:2], 'ego')
    losses = cam_head.loss_by_feat(ViewCAMs(exo_cams, None, ego_cams, None), samples(labels))
    logits = pixel_head(feats[:2])
    losses.update(pixel_head.loss_by_feat(logits, samples(labels, [torch.rand(H, W), None])))
    sum(losses.values()).backward()
    for head in (cam_head, pixel_head):
        for name, param in head.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------
# mmseg's decode-head contract: multi-level inputs, losses from config
# --------------------------------------------------------------------------
def test_heads_take_multi_level_features_by_config():
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    levels = (torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 32, 2, 2))
    kwargs = dict(in_channels=[8, 16], in_index=[0, 1], input_transform='resize_concat')
    cam_head = _cam_head(**kwargs)
    pixel_head = _pixel_head(upsample=1, **kwargs)
    assert isinstance(cam_head, BaseDecodeHead) and isinstance(pixel_head, BaseDecodeHead)
    assert cam_head.in_channels == pixel_head.in_channels == 24
    cams = cam_head(levels)
    assert cams.shape == (2, NUM_CLASSES, 8, 8)
    merged = torch.cat([levels[0], F.interpolate(levels[1], size=(8, 8), mode='bilinear', align_corners=False)], dim=1)
    assert torch.allclose(cams, cam_head(merged))
    assert pixel_head(levels).shape == (2, NUM_CLASSES, 8, 8)
    single = _cam_head(in_channels=32, in_index=2)
    assert single(levels).shape == (2, NUM_CLASSES, 2, 2)


def test_cam_head_losses_are_keyed_by_their_config_names():
    head = _cam_head(
        loss_decode=[
            dict(type='mmseg.CrossEntropyLoss', loss_weight=1.0, loss_name='loss_ce'),
            dict(type='mmseg.CrossEntropyLoss', loss_weight=2.0, loss_name='loss_ce'),
            dict(type='mmseg.CrossEntropyLoss', loss_weight=0.5, loss_name='loss_aux'),
        ]
    )
    labels = torch.tensor([1, 2])
    exo, ego = torch.randn(4, NUM_CLASSES), torch.randn(2, NUM_CLASSES)
    losses = head.loss_by_feat(ViewCAMs(as_cams(exo), None, as_cams(ego), None), samples(labels))
    assert set(losses) == {'loss_ce_exo', 'loss_ce_ego', 'loss_aux_exo', 'loss_aux_ego'}
    ce = F.cross_entropy(ego, labels)
    assert losses['loss_ce_ego'].item() == pytest.approx(3 * ce.item(), rel=1e-6)
    assert losses['loss_aux_ego'].item() == pytest.approx(0.5 * ce.item(), rel=1e-6)


# --------------------------------------------------------------------------
# initialisation: LOCATE's plain torch.nn layers
# --------------------------------------------------------------------------
def _default_weight_std(module: torch.nn.Module) -> float:
    """PyTorch's default for Conv2d / Linear: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) of std 1/sqrt(3 fan_in) (torch.nn.modules.conv._ConvNd.reset_parameters)."""
    fan_in = module.weight[0].numel()
    return 1.0 / math.sqrt(3 * fan_in)


def test_cam_head_default_init_is_locates_torch_default():
    """LOCATE's aff_proj / aff_*_proj / aff_fc are plain nn layers; ours after init_weights() match them in
    distribution (mmcv's ConvModule Kaiming fan-out would be 2.5x, mmseg's conv_seg N(0, 0.01) 1/3)."""
    head = MODELS.build(dict(type='SharedCAMHead', in_channels=384, channels=384, num_classes=36))
    head.init_weights()
    layers = [m for m in head.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 5  # fc1, fc2, two 3x3 convs, conv_seg
    for layer in layers:
        expected = _default_weight_std(layer)
        assert abs(layer.weight.std().item() / expected - 1) < 0.05, (layer, layer.weight.std().item(), expected)
        bound = 1.0 / math.sqrt(layer.weight[0].numel())
        assert layer.weight.abs().max() <= bound + 1e-7  # uniform, not normal
        if layer.bias is not None:
            assert layer.bias.abs().max() <= bound + 1e-7 and layer.bias.abs().sum() > 0
    conv = head.projs['shared'][0].conv
    assert abs(conv.weight.std().item() - 1 / math.sqrt(3 * 384 * 9)) < 5e-4  # 0.0098, not ConvModule's 0.024
    for norm in (head.projs['shared'][0].bn, head.token_mlp.norm):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))


def test_cam_head_init_cfg_still_chooses_the_init():
    """init_cfg stays the user's: mmseg's BaseDecodeHead default brings back N(0, 0.01) for conv_seg."""
    head = MODELS.build(
        dict(
            type='SharedCAMHead',
            in_channels=384,
            channels=384,
            num_classes=36,
            init_cfg=dict(type='Normal', std=0.01, override=dict(name='conv_seg')),
        )
    )
    head.init_weights()
    assert abs(head.conv_seg.weight.std().item() - 0.01) < 1e-3
    assert torch.equal(head.conv_seg.bias, torch.zeros_like(head.conv_seg.bias))


def test_torch_default_init_resets_only_the_named_layers():
    from mmengine.model import initialize

    model = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3), torch.nn.Linear(8, 8), torch.nn.BatchNorm2d(8))
    for p in model.parameters():
        torch.nn.init.constant_(p, 5.0)
    initialize(model, dict(type='mmseg.TorchDefault', layer='Linear'))
    assert torch.all(model[0].weight == 5.0)  # a Conv2d: untouched
    assert model[1].weight.abs().max() <= 1 / math.sqrt(8)
    assert torch.all(model[2].weight == 5.0)
    initialize(model, dict(type='mmseg.TorchDefault', layer='_BatchNorm'))  # a base-class name matches BN
    assert torch.equal(model[2].weight, torch.ones(8)) and torch.equal(model[2].bias, torch.zeros(8))
    with pytest.raises(TypeError, match='no .bias.'):
        initialize(model, dict(type='mmseg.TorchDefault', layer='Linear', bias=0))
