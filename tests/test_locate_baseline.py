"""The LOCATE (CVPR 2023) baseline: its losses and part prototypes against a transcription of the published code
(https://github.com/Reagan1311/LOCATE, ``models/locate.py``, ``models/model_util.py``, ``train.py``,
``utils/util.py``), the part-prototype choice on constructed cases, the segmentor's outputs, the configs, and a
2-iteration train + test through the tools on generated data."""

import glob
import math
import os.path as osp
import re
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import REPO, TINY_MODEL, run_tool, tiny_options
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import looptrans  # noqa: F401
from looptrans.apis.inference import without_pretrained
from looptrans.models.heads import ViewCAMs
from looptrans.models.losses import LOCATEConcentrationLoss, LOCATEPrototypeLoss
from looptrans.models.part_discovery import cls_attention_saliency
from looptrans.models.segmentors import LOCATE, LoopTrans
from looptrans.models.segmentors.locate import (
    euclidean_kmeans,
    exo_affordance_mask,
    select_part_prototypes,
)
from looptrans.utils.maps import minmax_normalize

AGD20K_CONFIG = osp.join(REPO, 'configs', 'baselines', 'locate_agd20k.py')
SYNTHETIC_CONFIG = osp.join(REPO, 'configs', 'baselines', 'locate_synthetic.py')


# ====================================================================================================
# Transcription of the published code (CPU: ``.cuda()`` dropped; otherwise as written).
# ---------------------------------------------------------------- models/model_util.py
def locate_normalize_minmax(cams, eps=1e-15):
    B, _, _ = cams.shape
    min_value, _ = cams.view(B, -1).min(1)
    cams_minmax = cams - min_value.view(B, 1, 1)
    max_value, _ = cams_minmax.view(B, -1).max(1)
    cams_minmax /= max_value.view(B, 1, 1) + eps
    return cams_minmax


def locate_get_variance(part_map, x_c, y_c):
    h, w = part_map.shape
    x_map, y_map = locate_get_coordinate_tensors(h, w)
    v_x_map = (x_map - x_c) * (x_map - x_c)
    v_y_map = (y_map - y_c) * (y_map - y_c)
    v_x = (part_map * v_x_map).sum()
    v_y = (part_map * v_y_map).sum()
    return v_x, v_y


def locate_get_coordinate_tensors(x_max, y_max):
    x_map = np.tile(np.arange(x_max), (y_max, 1)) / x_max * 2 - 1.0
    y_map = np.tile(np.arange(y_max), (x_max, 1)).T / y_max * 2 - 1.0
    x_map_tensor = torch.from_numpy(x_map.astype(np.float32))
    y_map_tensor = torch.from_numpy(y_map.astype(np.float32))
    return x_map_tensor, y_map_tensor


def locate_get_center(part_map, self_referenced=False):
    h, w = part_map.shape
    x_map, y_map = locate_get_coordinate_tensors(h, w)
    x_center = (part_map * x_map).sum()
    y_center = (part_map * y_map).sum()
    return x_center, y_center


def locate_get_centers(part_maps, detach_k=True, epsilon=1e-3, self_ref_coord=False):
    H, W = part_maps.shape
    part_map = part_maps + epsilon
    k = part_map.sum()
    part_map_pdf = part_map / k
    x_c, y_c = locate_get_center(part_map_pdf, self_ref_coord)
    centers = torch.stack((x_c, y_c), dim=0)
    return centers


def locate_batch_get_centers(pred_norm):
    B, H, W = pred_norm.shape
    centers_list = []
    for b in range(B):
        centers_list.append(locate_get_centers(pred_norm[b]).unsqueeze(0))
    return torch.cat(centers_list, dim=0)


def locate_concentration_loss(pred):
    B, H, W = pred.shape
    tmp_max, tmp_min = pred.max(-1)[0].max(-1)[0].view(B, 1, 1), pred.min(-1)[0].min(-1)[0].view(B, 1, 1)
    pred_norm = (pred - tmp_min) / (tmp_max - tmp_min + 1e-10)
    loss = 0
    epsilon = 1e-3
    centers_all = locate_batch_get_centers(pred_norm)
    for b in range(B):
        centers = centers_all[b]
        part_map = pred_norm[b, :, :] + epsilon
        k = part_map.sum()
        part_map_pdf = part_map / k
        x_c, y_c = centers
        v_x, v_y = locate_get_variance(part_map_pdf, x_c, y_c)
        loss_per_part = v_x + v_y
        loss = loss_per_part + loss
    loss = loss / B
    return loss


# ---------------------------------------------------------------- models/locate.py, Net.forward (blocks)
def locate_loss_con(ego_pred):
    """``--- concentration loss ---`` (before ``* 0.07`` in train.py)."""
    b = ego_pred.shape[0]
    loss_con = torch.zeros(1)
    for b_ in range(b):
        loss_con += locate_concentration_loss(ego_pred[b_])
    loss_con /= b
    return loss_con


def locate_loss_proto(ego_pred, aff_label, ego_desc, part_proto, cel_margin=0.5):
    """``gt_ego_cam`` and ``--- prototype guidance loss ---`` (after the warm-up)."""
    b, _, h, w = ego_pred.shape
    c = ego_desc.shape[1]
    gt_ego_cam = torch.zeros(b, h, w)
    for b_ in range(b):
        gt_ego_cam[b_] = ego_pred[b_, aff_label[b_]]
    gt_ego_cam = locate_normalize_minmax(gt_ego_cam)
    loss_proto = torch.zeros(1)
    valid_batch = 0
    for b_ in range(b):
        if not part_proto[b_].equal(torch.zeros(c)):
            mask = gt_ego_cam[b_]
            tmp_feat = ego_desc[b_] * mask
            embedding = tmp_feat.reshape(tmp_feat.shape[0], -1).sum(1) / mask.sum()
            loss_proto += torch.max(
                1 - F.cosine_similarity(embedding, part_proto[b_], dim=0) - cel_margin, torch.zeros(1)
            )
            valid_batch += 1
    loss_proto = loss_proto / (valid_batch + 1e-15)
    return loss_proto


def locate_ego_sam_flat(ego_attn, h, w):
    """``ego_sam`` from the last block's attention (b x 6 x (1+hw) x (1+hw)), flattened."""
    b = ego_attn.shape[0]
    ego_cls_attn = ego_attn[:, :, 0, 1:].reshape(b, 6, h, w)
    ego_cls_attn = (ego_cls_attn > ego_cls_attn.flatten(-2, -1).mean(-1, keepdim=True).unsqueeze(-1)).float()
    head_idxs = [0, 1, 3]
    ego_sam = ego_cls_attn[:, head_idxs].mean(1)
    ego_sam = locate_normalize_minmax(ego_sam)
    return ego_sam.flatten(-2, -1)


def locate_exo_aff_desc(gt_aff_cam, exo_desc_re_flat, aff_cam_thd=0.6):
    """The exo descriptors LOCATE clusters, per sample (the first loop of ``--- Clustering ... ---``)."""
    b, num_exo = gt_aff_cam.shape[:2]
    out = []
    for b_ in range(b):
        exo_aff_desc = []
        for n in range(num_exo):
            tmp_cam = gt_aff_cam[b_, n].reshape(-1)
            tmp_max, tmp_min = tmp_cam.max(), tmp_cam.min()
            tmp_cam = (tmp_cam - tmp_min) / (tmp_max - tmp_min + 1e-10)
            tmp_desc = exo_desc_re_flat[b_, n]
            tmp_top_desc = tmp_desc[:, torch.where(tmp_cam > aff_cam_thd)[0]].T  # n x c
            exo_aff_desc.append(tmp_top_desc)
        out.append(torch.cat(exo_aff_desc, dim=0))
    return out


def locate_part_block(centroids, ego_desc_flat, ego_sam_flat, part_iou_thd=0.6):
    """From ``clu_cens = F.normalize(kmeans.centroids, dim=1)`` to ``part_proto`` (the K-means given)."""
    b, cluster_num, c = centroids.shape
    hw = ego_desc_flat.shape[-1]
    sim_maps = torch.zeros(b, cluster_num, hw)
    part_score = torch.zeros(b, cluster_num)
    part_proto = torch.zeros(b, c)
    for b_ in range(b):
        clu_cens = F.normalize(centroids[b_], dim=1)
        sim_map = torch.mm(clu_cens, F.normalize(ego_desc_flat[b_], dim=0))  # self.cluster_num x hw
        tmp_sim_max, tmp_sim_min = (
            torch.max(sim_map, dim=-1, keepdim=True)[0],
            torch.min(sim_map, dim=-1, keepdim=True)[0],
        )
        sim_map_norm = (sim_map - tmp_sim_min) / (tmp_sim_max - tmp_sim_min + 1e-12)
        sim_map_hard = (sim_map_norm > torch.mean(sim_map_norm, 1, keepdim=True)).float()
        sam_hard = (ego_sam_flat > torch.mean(ego_sam_flat, 1, keepdim=True)).float()
        inter = (sim_map_hard * sam_hard[b_]).sum(1)
        union = sim_map_hard.sum(1) + sam_hard[b_].sum() - inter
        p_score = (inter / sim_map_hard.sum(1) + sam_hard[b_].sum() / union) / 2
        sim_maps[b_] = sim_map
        part_score[b_] = p_score
        if p_score.max() < part_iou_thd:
            continue
        part_proto[b_] = clu_cens[torch.argmax(p_score)]
    return sim_maps, part_score, part_proto


# ====================================================================================================
def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- losses vs the transcription
def test_minmax_normalize_is_locates_normalize_minmax():
    cams = torch.randn(5, 14, 14, generator=_gen(1)) * 3
    ours = minmax_normalize(cams, eps=1e-15)
    assert torch.allclose(ours, locate_normalize_minmax(cams.clone()), atol=1e-7, rtol=0)


def test_concentration_loss_matches_published_code_values_and_gradients():
    # b x 36 x 14 x 14 ego CAMs (LOCATE's grid), loss before the 0.07 of train.py
    base = torch.randn(3, 36, 14, 14, generator=_gen(2)) * 2
    theirs_in = base.clone().requires_grad_(True)
    ours_in = base.clone().requires_grad_(True)
    theirs = locate_loss_con(theirs_in)
    ours = LOCATEConcentrationLoss(loss_weight=1.0)(ours_in)
    assert ours.shape == () and theirs.shape == (1,)
    assert abs(ours.item() - theirs.item()) < 1e-6
    theirs.sum().backward()
    ours.backward()
    assert torch.allclose(ours_in.grad, theirs_in.grad, atol=1e-6, rtol=0)
    # the weight scales it (train.py: loss_cen = loss_con * 0.07)
    weighted = LOCATEConcentrationLoss()(base)
    assert abs(weighted.item() - 0.07 * theirs.item()) < 1e-6
    # a concentrated map has a lower loss than a spread one: the loss is the spatial variance
    peak = torch.zeros(1, 1, 14, 14)
    peak[..., 6:8, 6:8] = 1
    assert LOCATEConcentrationLoss()(peak) < LOCATEConcentrationLoss()(torch.rand(1, 1, 14, 14, generator=_gen(3)))


def test_prototype_loss_matches_published_code_values_and_gradients():
    b, classes, c, h, w = 4, 36, 384, 14, 14
    ego_pred = torch.randn(b, classes, h, w, generator=_gen(4))
    labels = torch.tensor([3, 0, 35, 7])
    ego_desc = torch.randn(b, c, h, w, generator=_gen(5))
    part_proto = F.normalize(torch.randn(b, c, generator=_gen(6)), dim=1)
    part_proto[2] = 0  # a sample without a prototype (LOCATE: an all-zero part_proto)
    # the margin decides whether the hinge is active: check the both-sides values, on and off
    for margin in (0.5, -0.5):
        theirs_in = ego_pred.clone().requires_grad_(True)
        ours_in = ego_pred.clone().requires_grad_(True)
        theirs = locate_loss_proto(theirs_in, labels, ego_desc, part_proto, cel_margin=margin)
        cam = ours_in[torch.arange(b), labels]
        valid = part_proto.abs().sum(1) > 0
        ours = LOCATEPrototypeLoss(margin=margin)(cam, ego_desc, part_proto, valid)
        assert abs(ours.item() - theirs.item()) < 1e-6, (margin, ours.item(), theirs.item())
        theirs.sum().backward()
        ours.backward()
        assert torch.allclose(ours_in.grad, theirs_in.grad, atol=1e-6, rtol=0)
    assert ours.item() > 0
    # the margin and the weight change it; no prototype at all gives 0 (LOCATE: 0 / 1e-15)
    cam = ego_pred[torch.arange(b), labels]
    valid = part_proto.abs().sum(1) > 0
    one = LOCATEPrototypeLoss(margin=-0.5)(cam, ego_desc, part_proto, valid)
    assert LOCATEPrototypeLoss(margin=-0.5, loss_weight=2.0)(cam, ego_desc, part_proto, valid) == pytest.approx(
        2 * one.item(), abs=1e-6
    )
    assert LOCATEPrototypeLoss(margin=-0.4)(cam, ego_desc, part_proto, valid) != pytest.approx(one.item())
    none = torch.zeros(b, dtype=torch.bool)
    assert LOCATEPrototypeLoss(margin=-0.5)(cam, ego_desc, part_proto, none).item() == 0


def test_prototype_loss_of_a_constant_cam_is_finite():
    # LOCATE divides 0 by 0 here (NaN); ours gives the constant 1 - margin for that sample
    loss = LOCATEPrototypeLoss(margin=0.5)(torch.zeros(1, 4, 4), torch.randn(1, 8, 4, 4), torch.randn(1, 8))
    assert loss.item() == pytest.approx(0.5)


def test_exo_ce_is_locates_mean_over_views():
    """train.py: ``exo_aff_loss = sum_n CE(logits[:, n], label) / num_exo``; our head's loss_cls_exo."""
    init_default_scope('mmseg')
    head = MODELS.build(dict(type='SharedCAMHead', in_channels=8, channels=8, num_classes=5, shared=False))
    logits = torch.randn(3, 4, 5, generator=_gen(7))
    labels = torch.tensor([0, 4, 2])
    theirs = sum(nn.CrossEntropyLoss()(logits[:, n], labels) for n in range(4)) / 4
    cams = ViewCAMs(logits.flatten(0, 1)[..., None, None], None, torch.randn(3, 5, 1, 1), None)
    ours = head.loss_by_feat(cams, [SegDataSample(metainfo=dict(gt_label=int(c))) for c in labels])
    assert abs(ours['loss_cls_exo'].item() - theirs.item()) < 1e-6


# ---------------------------------------------------------------- part prototypes vs the transcription
def test_exo_descriptor_selection_matches_published_code():
    b, v, c, h, w = 3, 3, 16, 7, 7
    gt_aff_cam = torch.randn(b, v, h, w, generator=_gen(8))
    exo_desc = torch.randn(b, v, c, h * w, generator=_gen(9))  # LOCATE's exo_desc_re_flat
    theirs = locate_exo_aff_desc(gt_aff_cam, exo_desc, 0.6)
    mask = exo_affordance_mask(gt_aff_cam, 0.6)
    points = exo_desc.transpose(2, 3).flatten(1, 2)  # (b, v*hw, c)
    for b_ in range(b):
        assert torch.equal(points[b_][mask[b_]], theirs[b_])


def test_saliency_and_part_scores_match_published_code():
    b, c, h, w, k = 4, 32, 14, 14, 3
    attn = torch.randn(b, 6, 1 + h * w, 1 + h * w, generator=_gen(10)).softmax(-1)
    sam_flat = locate_ego_sam_flat(attn, h, w)
    ours_sal = cls_attention_saliency(attn[:, :, 0, 1:].reshape(b, 6, h, w), (0, 1, 3))
    assert torch.equal(ours_sal, sam_flat > sam_flat.mean(1, keepdim=True))

    ego_desc = torch.randn(b, c, h * w, generator=_gen(11))  # LOCATE's ego_desc_flat (b x c x hw)
    centroids = torch.randn(b, k, c, generator=_gen(12))
    centroids[:, 0] += 3 * ego_desc[:, :, :20].mean(-1)  # some structure: one centroid near some tokens
    for thd in (0.0, 0.6, 1.0):
        sim_maps, part_score, part_proto = locate_part_block(centroids, ego_desc, sam_flat, thd)
        ours = select_part_prototypes(centroids, ego_desc.transpose(1, 2), ours_sal, thd)
        assert torch.allclose(ours['sim_maps'], sim_maps, atol=1e-6, rtol=0)
        assert torch.allclose(ours['part_score'], part_score, atol=1e-6, rtol=0)
        assert torch.allclose(ours['prototype'], part_proto, atol=1e-6, rtol=0)
        assert torch.equal(ours['valid'], part_proto.abs().sum(1) > 0)
    # the gate bites in between: thd 0 keeps every sample, thd 1 (nearly) none
    assert select_part_prototypes(centroids, ego_desc.transpose(1, 2), ours_sal, 0.0)['valid'].all()


# ---------------------------------------------------------------- constructed cases: known answers
def _unit(i, dim=4):
    return F.one_hot(torch.tensor(i), dim).float()


def _constructed_ego():
    """A 4 x 4 grid: salient rows 0-1; part A (row 0) = e0, part B = e1 on row 1 and tokens 8-9 (partly
    outside the salient region), background = e2 on tokens 10-15."""
    desc = torch.zeros(16, 4)
    desc[0:4] = _unit(0)
    desc[4:10] = _unit(1)
    desc[10:16] = _unit(2)
    saliency = torch.zeros(16, dtype=torch.bool)
    saliency[:8] = True
    return desc, saliency


def test_part_prototype_choice_and_gate_on_a_constructed_case():
    desc, saliency = _constructed_ego()
    # centroids: background, part B, part A; A's similarity map is the salient row 0 only:
    # score(A) = (4/4 + 8/8)/2 = 1, score(B) = (4/6 + 8/10)/2 = 11/15, score(bg) = (0 + 8/14)/2 = 2/7
    centroids = torch.stack([_unit(2), _unit(1), _unit(0)])[None] * 5  # scale is irrelevant (normalised)
    out = select_part_prototypes(centroids, desc[None], saliency[None], 0.6)
    assert out['part_score'][0].tolist() == pytest.approx([2 / 7, 11 / 15, 1.0])
    assert out['part'].item() == 2 and out['valid'].item()
    assert torch.equal(out['prototype'][0], _unit(0))
    # without part A the best part is B (11/15): kept at 0.6, gated at 0.8 (no prototype: zeros)
    no_a = torch.stack([_unit(2), _unit(1), _unit(2) + 0.01 * _unit(3)])[None]
    kept = select_part_prototypes(no_a, desc[None], saliency[None], 0.6)
    assert kept['part'].item() == 1 and kept['valid'].item()
    gated = select_part_prototypes(no_a, desc[None], saliency[None], 0.8)
    assert not gated['valid'].item() and gated['prototype'].abs().sum() == 0
    # too few exo descriptors to cluster: no prototype whatever the score
    skipped = select_part_prototypes(centroids, desc[None], saliency[None], 0.6, torch.tensor([False]))
    assert not skipped['valid'].item()


def test_euclidean_kmeans_recovers_blobs_ignores_masked_points_and_batches():
    gen = _gen(13)
    means = torch.tensor([[0.0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]])
    samples, masks = [], []
    for n in (30, 45):
        pts = torch.cat([m + 0.1 * torch.randn(n, 4, generator=gen) for m in means])
        outliers = torch.full((5, 4), 1000.0)  # not selected: must not become a centre
        samples.append(torch.cat([pts, outliers]))
        masks.append(torch.cat([torch.ones(3 * n, dtype=torch.bool), torch.zeros(5, dtype=torch.bool)]))
    m = max(len(s) for s in samples)
    x = torch.zeros(2, m, 4)
    valid = torch.zeros(2, m, dtype=torch.bool)
    for i, (s, mk) in enumerate(zip(samples, masks)):
        x[i, : len(s)] = s
        valid[i, : len(s)] = mk
    centres = euclidean_kmeans(x, valid, 3)
    for i, (s, mk) in enumerate(zip(samples, masks)):
        got = sorted(centres[i].tolist())
        want = sorted(s[mk].view(3, -1, 4).mean(1).tolist())  # the blobs' own means
        assert np.allclose(got, want, atol=1e-4)
        # batched = one sample at a time
        alone = euclidean_kmeans(s[None], mk[None], 3)
        assert torch.allclose(alone[0], centres[i], atol=1e-5)
    # deterministic
    assert torch.equal(euclidean_kmeans(x, valid, 3), centres)


def _tiny_locate(**kw):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    cfg = dict(
        type='LOCATE',
        backbone=dict(
            type='DINOVisionTransformer',
            arch=dict(embed_dims=48, num_layers=1, num_heads=6, feedforward_channels=96),
            patch_size=16,
            img_size=64,
            frozen=True,
        ),
        cam_head=dict(type='SharedCAMHead', in_channels=48, channels=16, num_classes=4, shared=False),
    )
    cfg.update(kw)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_segmentor_part_prototypes_on_a_constructed_case():
    """The whole chain (exo selection, K-means, similarity, score, gate) finds part A's descriptor."""
    model = _tiny_locate(part_iou_thd=0.6)
    desc, saliency = _constructed_ego()
    # exo: 2 views of 16 tokens; the three descriptors (with a little noise) where the exo CAM is high, and a
    # far-away descriptor where it is low (not selected, else it would take a cluster of its own)
    exo = torch.cat([desc, desc]) + 0.01 * torch.randn(32, 4, generator=_gen(14))
    exo[15] = exo[31] = 100 * _unit(3)
    cam = torch.ones(2, 16)
    cam[:, 15] = 0
    # CLS attention whose heads 0, 1, 3 are high on the salient tokens
    attn = torch.rand(1, 6, 16, generator=_gen(15))
    attn[:, [0, 1, 3]] = saliency.float() + 0.1
    out = model.part_prototypes(exo.view(1, 2, 16, 4), cam.view(1, 2, 4, 4), desc[None], attn.view(1, 6, 4, 4))
    assert out['num_selected'].item() == 30
    assert out['valid'].item()
    assert torch.allclose(out['prototype'][0], _unit(0), atol=1e-2)  # the mean of 8 noisy copies
    assert out['part_score'][0].max().item() == pytest.approx(1.0)


# ---------------------------------------------------------------- the segmentor
def _samples(labels):
    return [SegDataSample(metainfo=dict(gt_label=int(i), img_shape=(64, 64))) for i in labels]


@pytest.fixture
def message_hub():
    """A fresh current MessageHub for the test, and a clean one (no epoch / iter info) after it."""
    hub = MessageHub.get_instance(f'test_locate_{uuid.uuid4().hex}')
    yield hub
    MessageHub.get_instance(f'test_locate_clean_{uuid.uuid4().hex}')


def test_loss_keys_values_and_gradients(message_hub):
    model = _tiny_locate(part_iou_thd=0.0, prototype_loss=dict(type='LOCATEPrototypeLoss', margin=-1.0))
    x = torch.randn(2, 4, 3, 64, 64, generator=_gen(16))
    losses = model.loss(x, _samples([1, 3]))
    assert set(losses) == {'loss_cls_exo', 'loss_cls_ego', 'loss_concentration', 'loss_proto', 'proto_valid'}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['proto_valid'].item() == 1.0 and losses['loss_proto'].item() > 0
    # the prototype loss trains the ego CAM branch (through the CAM mask) and nothing on the exo side
    model.zero_grad()
    losses['loss_proto'].backward()
    head = model.cam_head
    assert head.projs['ego'][0].conv.weight.grad.abs().sum() > 0
    assert head.conv_seg.weight.grad.abs().sum() > 0
    assert head.projs['exo'][0].conv.weight.grad is None or head.projs['exo'][0].conv.weight.grad.abs().sum() == 0
    # loss weights act
    heavier = _tiny_locate(
        part_iou_thd=0.0,
        prototype_loss=dict(type='LOCATEPrototypeLoss', margin=-1.0, loss_weight=3.0),
        concentration_loss=dict(type='LOCATEConcentrationLoss', loss_weight=0.14),
    ).loss(x, _samples([1, 3]))
    assert heavier['loss_proto'].item() == pytest.approx(3 * losses['loss_proto'].item(), rel=1e-5)
    assert heavier['loss_concentration'].item() == pytest.approx(2 * losses['loss_concentration'].item(), rel=1e-5)
    assert heavier['loss_cls_ego'].item() == pytest.approx(losses['loss_cls_ego'].item(), rel=1e-5)


def test_warm_up_in_epochs_and_iterations(message_hub, mmengine_log):
    x = torch.randn(2, 4, 3, 64, 64, generator=_gen(17))
    model = _tiny_locate(part_iou_thd=0.0, prototype_loss=dict(type='LOCATEPrototypeLoss', margin=-1.0))
    assert model.train_cfg == dict(warm_epoch=0)  # LOCATE's default
    message_hub.update_info('epoch', 0)  # LOCATE: epoch[0] > epoch[1] is False in the first epoch
    warm = model.loss(x, _samples([0, 2]))
    assert warm['loss_proto'].item() == 0 and 'proto_valid' not in warm
    message_hub.update_info('epoch', 1)
    assert model.loss(x, _samples([0, 2]))['loss_proto'].item() > 0
    by_iter = _tiny_locate(
        part_iou_thd=0.0, prototype_loss=dict(type='LOCATEPrototypeLoss', margin=-1.0), train_cfg=dict(warm_iter=5)
    )
    message_hub.update_info('iter', 5)
    assert by_iter.loss(x, _samples([0, 2]))['loss_proto'].item() == 0
    message_hub.update_info('iter', 6)
    assert by_iter.loss(x, _samples([0, 2]))['loss_proto'].item() > 0
    # warm_epoch in an iteration loop (one epoch: its epoch stays 0) never ends: said once
    message_hub.update_info('max_epochs', 1)
    message_hub.update_info('epoch', 0)
    model.loss(x, _samples([0, 2]))
    model.loss(x, _samples([0, 2]))
    assert sum('prototype loss never starts' in m for m in mmengine_log) == 1, mmengine_log
    with pytest.raises(ValueError, match='not both'):
        _tiny_locate(train_cfg=dict(warm_iter=5, warm_epoch=0))
    with pytest.raises(ValueError, match='warm_iter'):
        _tiny_locate(train_cfg=dict(warm_iters=5))


def test_predict_is_the_ego_cam_of_the_asked_class_in_looptrans_format():
    model = _tiny_locate(test_cfg=dict(return_all=True)).eval()
    x = torch.randn(2, 1, 3, 64, 64, generator=_gen(18))
    labels = [2, 0]
    out = model.predict(x, _samples(labels))
    with torch.no_grad():
        cams = model.cam_head(model.extract_feat(x[:, 0]), view='ego')
    want = F.interpolate(cams, size=(64, 64), mode='bilinear', align_corners=False)
    for i, sample in enumerate(out):
        assert sample.pred_heatmap.data.shape == (1, 64, 64)
        assert sample.pred_heatmaps.data.shape == (4, 64, 64)
        assert torch.allclose(sample.pred_heatmap.data[0], want[i, labels[i]], atol=1e-6)
    bare = model.predict(x[:, 0])
    assert len(bare) == 2 and bare[0].pred_heatmaps.data.shape == (4, 64, 64)
    maps, logits = model.inference_with_logits(x)
    assert maps.shape == (2, 4, 64, 64) and logits.shape == (2, 4)
    assert model._forward(x).shape == (2, 4, 64, 64)
    with pytest.raises(ValueError, match="'cam'"):
        _tiny_locate(test_cfg=dict(heatmap='pixel'))


def test_needs_a_frozen_dino_backbone():
    with pytest.raises(ValueError, match='frozen DINO'):
        _tiny_locate(
            backbone=dict(
                type='DINOVisionTransformer',
                arch=dict(embed_dims=48, num_layers=1, num_heads=6, feedforward_channels=96),
                img_size=64,
                frozen=False,
            )
        )


# ---------------------------------------------------------------- configs
def _build(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmseg')
    return cfg, MODELS.build(without_pretrained(cfg.model))


LOCATE_SETTINGS = ('aff_cam_thd', 'cluster_num', 'part_iou_thd', 'kmeans_iters', 'kmeans_tol', 'saliency_heads')


def test_configs_build_locate_with_the_published_settings():
    agd, agd_model = _build(AGD20K_CONFIG)
    syn, syn_model = _build(SYNTHETIC_CONFIG)
    for model in (agd_model, syn_model):
        assert isinstance(model, LOCATE) and not model.cam_head.shared
        assert (model.aff_cam_thd, model.cluster_num, model.part_iou_thd) == (0.6, 3, 0.6)
        assert model.concentration_loss.loss_weight == 0.07
        assert (model.prototype_loss.margin, model.prototype_loss.loss_weight) == (0.5, 1.0)
        assert model.test_cfg == dict(heatmap='cam')
    assert {k: getattr(agd_model, k) for k in LOCATE_SETTINGS} == {k: getattr(syn_model, k) for k in LOCATE_SETTINGS}
    assert agd_model.num_classes == 36 and agd_model.exclude_background == 'saliency'
    assert agd_model.train_cfg == dict(warm_epoch=0)
    assert syn_model.num_classes == 7 and syn_model.exclude_background == 'border'
    assert syn_model.train_cfg == dict(warm_iter=syn.train_cfg.max_iters // 4 - 1)
    assert syn.model.backbone.arch.num_layers == 2 and 'looptrans.testing' in syn.custom_imports['imports']
    # data, optimiser and runtime are LoopTrans's (only its pseudo-mask hook goes); the schedule is LOCATE's 15
    # epochs on AGD20K (LoopTrans's own is 5) and the same 200 iterations on generated data
    for path, cfg, schedule in (
        ('looptrans_agd20k.py', agd, '_base_/schedules/schedule_15e.py'),
        ('looptrans_synthetic.py', syn, 'looptrans_synthetic.py'),
    ):
        ref = Config.fromfile(osp.join(REPO, 'configs', path))
        for key in ('train_dataloader', 'test_dataloader', 'optim_wrapper'):
            assert cfg[key] == ref[key], key
        sched = Config.fromfile(osp.join(REPO, 'configs', schedule))
        for key in ('param_scheduler', 'train_cfg'):
            assert cfg[key] == sched[key], key
        assert cfg.custom_hooks == [] and cfg.model.backbone == ref.model.backbone


@pytest.mark.parametrize('config', [AGD20K_CONFIG, SYNTHETIC_CONFIG])
def test_one_loss_key_can_be_overridden_from_the_command_line(config):
    """`--cfg-options model.concentration_loss.loss_weight=0` (an ablation of LOCATE) keeps the loss's type."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.concentration_loss.loss_weight': 0, 'model.prototype_loss.margin': 0.3})
    init_default_scope('mmseg')
    model = MODELS.build(without_pretrained(cfg.model))
    assert model.concentration_loss.loss_weight == 0 and model.prototype_loss.margin == 0.3
    assert model.prototype_loss.loss_weight == 1.0


def test_agd20k_optimizer_groups_are_locates():
    """utils/util.py get_optimizer: lr for weights, 2x biases, 10x / 20x for the 'fc' layers (aff_proj.fc1/fc2
    and aff_fc: our token_mlp.fc1/fc2 and conv_seg)."""
    cfg, model = _build(AGD20K_CONFIG)
    opt = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    assert isinstance(opt, torch.optim.SGD)
    lr_of = {id(p): g['lr'] for g in opt.param_groups for p in g['params']}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and not any(n.startswith('backbone.') for n in names)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        fc = 'fc' in name or 'conv_seg' in name
        want = 1e-3 * ((20 if 'bias' in name else 10) if fc else (2 if 'bias' in name else 1))
        assert math.isclose(lr_of[id(param)], want), (name, lr_of[id(param)], want)


def test_looptrans_inference_functions_are_shared():
    """One inference for both (their common base), and LOCATE borrows nothing private of LoopTrans."""
    from looptrans.models.segmentors import AffordanceSegmentor, locate

    assert issubclass(LOCATE, AffordanceSegmentor) and issubclass(LoopTrans, AffordanceSegmentor)
    assert LOCATE.predict is LoopTrans.predict is AffordanceSegmentor.predict
    assert LOCATE.decode_heatmaps is LoopTrans.decode_heatmaps
    assert not hasattr(locate, 'LoopTrans')


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
def test_train_two_iterations_and_test_through_the_tools(synthetic_root, tmp_path):
    locate_model = ('model.backbone.', 'model.cam_head.')
    options = [
        o
        for o in tiny_options(synthetic_root, max_iters=2, ckpt_interval=2)
        if not o.startswith('model.') or o.startswith(locate_model)
    ]
    assert {o.split('=')[0] for o in options if o.startswith('model.')} == {
        k for k in TINY_MODEL if k.startswith(locate_model)
    }
    options.append('model.train_cfg.warm_iter=0')  # the prototype loss on in the second iteration
    work_dir = str(tmp_path / 'work')
    train = run_tool(['tools/train.py', SYNTHETIC_CONFIG, '--work-dir', work_dir, '--cfg-options', *options])
    log = train.stdout + train.stderr
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    for name in ('loss_cls_exo', 'loss_cls_ego', 'loss_concentration', 'loss_proto'):
        values = [float(v) for v in re.findall(rf'{name}: ([-\d.e+naninf]+)', log)]
        assert len(values) == 2 and all(np.isfinite(values)), (name, values)
    assert float(re.findall(r'loss_proto: ([-\d.e+]+)', log)[0]) == 0  # warm-up iteration
    assert 'proto_valid' in log
    test = run_tool(
        ['tools/test.py', SYNTHETIC_CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'), '--cfg-options', *options]
    )
    figures = {
        k: float(v)
        for k, v in re.findall(r'(KLD|SIM|NSS): ([-\d.]+)', (test.stdout + test.stderr).split('Iter(test)')[-1])
    }
    assert set(figures) == {'KLD', 'SIM', 'NSS'} and all(np.isfinite(v) for v in figures.values())
    # tools/infer.py (LoopTrans's inference_with_logits) writes a heatmap per image
    folder = osp.join(synthetic_root, 'Seen', 'testset', 'egocentric', 'hold')
    out_dir = str(tmp_path / 'heatmaps')
    model_options = [o for o in options if o.startswith('model.')]
    run_tool(
        [
            'tools/infer.py',
            SYNTHETIC_CONFIG,
            ckpt,
            folder,
            '--affordance',
            'hold',
            '--out-dir',
            out_dir,
            '--cfg-options',
            *model_options,
        ]
    )
    images = glob.glob(osp.join(folder, '*', '*.jpg'))
    heatmaps = glob.glob(osp.join(out_dir, '*', '*_hold.npy'))
    assert images and len(heatmaps) == len(images)
