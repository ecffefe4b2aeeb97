"""Tests of the batched part discovery (cosine K-means + CAM IoU selection)."""

import pytest
import torch
import torch.nn.functional as F
from conftest import build_tiny_looptrans
from mmseg.registry import MODELS

from looptrans.models.part_discovery import PartDiscovery, cosine_kmeans, farthest_point_init, random_init

GRID = 8  # 8x8 grid, four 4x4 quadrants


def _quadrant_ids():
    ys, xs = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing='ij')
    return ((ys >= GRID // 2).long() * 2 + (xs >= GRID // 2).long()).flatten()


def _planted(batch=3, dim=16, noise=0.05, seed=0):
    """Descriptors with one direction per quadrant and a CAM blob per sample."""
    gen = torch.Generator().manual_seed(seed)
    quad = _quadrant_ids()  # (N,)
    desc, cams, targets = [], [], []
    for b in range(batch):
        basis = torch.linalg.qr(torch.randn(dim, dim, generator=gen))[0][:4]
        desc.append(
            basis[quad] * (1 + torch.rand(quad.shape[0], 1, generator=gen))
            + noise * torch.randn(quad.shape[0], dim, generator=gen)
        )
        target = b % 4
        cy = 1.5 + 4 * (target // 2)
        cx = 1.5 + 4 * (target % 2)
        ys, xs = torch.meshgrid(torch.arange(GRID).float(), torch.arange(GRID).float(), indexing='ij')
        cams.append(torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 2.0))
        targets.append(target)
    return torch.stack(desc), torch.stack(cams), quad, targets


def _assert_same_partition(assign, quad):
    """assign equals quad up to a permutation of the labels."""
    mapping = {}
    for a, q in zip(assign.tolist(), quad.tolist()):
        assert mapping.setdefault(q, a) == a
    assert len(set(mapping.values())) == len(mapping)


def test_recovers_planted_parts_and_pseudo_mask():
    desc, cams, quad, targets = _planted(batch=4)
    out = PartDiscovery(num_parts=4, num_iters=10)(desc, cams)
    assert out['pseudo_mask'].shape == (4, GRID, GRID)
    assert out['pseudo_mask'].dtype == torch.float32
    assert out['valid'].dtype == torch.bool and out['valid'].all()
    assert out['ious'].shape == (4, 4)
    assert out['assign'].shape == (4, GRID * GRID)
    assert out['assign'].dtype == torch.long
    for b, target in enumerate(targets):
        _assert_same_partition(out['assign'][b], quad)
        expected = (quad == target).float().view(GRID, GRID)
        assert torch.equal(out['pseudo_mask'][b], expected)
        # the selected IoU equals |cam mask| / 16: the blob lies in its quadrant
        norm = (cams[b] - cams[b].min()) / (cams[b].max() - cams[b].min())
        cam_mask = norm > norm.mean()
        assert cam_mask.sum() > 0
        assert (cam_mask.flatten() <= (quad == target)).all()
        assert out['ious'][b].max().item() == pytest.approx(cam_mask.sum().item() / 16)


def test_deterministic():
    desc = torch.randn(3, 49, 8)
    cam = torch.rand(3, 7, 7)
    module = PartDiscovery()
    a, b = module(desc, cam), module(desc, cam)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rnd = PartDiscovery(init='random')
    a = rnd(desc, cam, torch.Generator().manual_seed(7))
    b = rnd(desc, cam, torch.Generator().manual_seed(7))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_empty_clusters_and_few_descriptors_stay_finite():
    # Only two distinct descriptors, K = 4: two clusters must stay empty.
    desc = torch.zeros(2, 36, 3)
    desc[:, :18, 0] = 1.0
    desc[:, 18:, 1] = 1.0
    cam = torch.zeros(2, 6, 6)
    cam[:, :3] = 1.0  # the first 18 positions
    out = PartDiscovery(num_parts=4, num_iters=5)(desc, cam)
    assert torch.isfinite(out['ious']).all()
    assert torch.isfinite(out['pseudo_mask']).all()
    assert ((out['assign'] >= 0) & (out['assign'] < 4)).all()
    for b in range(2):
        assert len(out['assign'][b].unique()) == 2
        assert out['valid'][b]
        assert torch.equal(out['pseudo_mask'][b], cam[b])
    assert ((out['ious'] == 0).sum(1) == 3).all()  # 1 hit, 1 miss, 2 empty

    # Fewer descriptors than parts (N = 2 < K = 4).
    desc = torch.randn(3, 2, 5)
    cam = torch.tensor([[[0.0, 1.0]]]).repeat(3, 1, 1)
    out = PartDiscovery(num_parts=4)(desc, cam)
    assert out['ious'].shape == (3, 4) and torch.isfinite(out['ious']).all()
    assert out['valid'].all()
    assert torch.equal(out['pseudo_mask'], cam)
    # Zero descriptors (normalise to zero vectors) do not give NaN either.
    out = PartDiscovery()(torch.zeros(1, 16, 4), torch.rand(1, 4, 4))
    assert torch.isfinite(out['ious']).all()


def test_constant_or_zero_cam_is_invalid():
    desc, cams, _, _ = _planted(batch=3)
    cams[0] = 0.0
    cams[1] = 0.7
    out = PartDiscovery()(desc, cams)
    assert out['valid'].tolist() == [False, False, True]
    assert (out['ious'][:2] == 0).all()
    assert (out['pseudo_mask'][:2] == 0).all()
    assert out['pseudo_mask'][2].sum() == 16


def test_min_iou_and_float_threshold():
    desc, cams, quad, targets = _planted(batch=2)
    # 'mean' keeps the whole 4x4 quadrant of the blob: IoU 1.
    out = PartDiscovery(cam_thr='mean')(desc, cams)
    assert torch.allclose(out['ious'].max(1).values, torch.ones(2))
    # > 0.5 keeps the 2x2 blob centre only: IoU 4/16 with its quadrant.
    out = PartDiscovery(cam_thr=0.5, min_iou=0.25)(desc, cams)
    assert torch.allclose(out['ious'].max(1).values, torch.full((2,), 0.25))
    assert out['valid'].all()
    for b, target in enumerate(targets):
        assert torch.equal(out['pseudo_mask'][b].flatten(), (quad == target).float())
    # ... which min_iou = 0.3 rejects: invalid, all-zero pseudo-masks.
    out = PartDiscovery(cam_thr=0.5, min_iou=0.3)(desc, cams)
    assert not out['valid'].any() and (out['pseudo_mask'] == 0).all()
    # A low threshold spills over into the neighbouring quadrants.
    out = PartDiscovery(cam_thr=0.01)(desc, cams)
    assert (out['ious'].max(1).values < 1).all()
    assert ((out['ious'] > 0).sum(1) == 3).all()
    with pytest.raises(ValueError, match='cam_thr'):
        PartDiscovery(cam_thr='median')
    with pytest.raises(ValueError, match='cam_thr'):
        PartDiscovery(cam_thr=1.5)
    with pytest.raises(ValueError, match='init'):
        PartDiscovery(init='kmeans++')


def test_bad_shapes_and_no_grad():
    module = MODELS.build(dict(type='PartDiscovery', num_parts=3))
    with pytest.raises(ValueError, match='resize the CAM'):
        module(torch.randn(2, 49, 8), torch.rand(2, 6, 6))
    desc = torch.randn(2, 36, 8, requires_grad=True)
    out = module(desc, torch.rand(2, 6, 6))
    assert not out['pseudo_mask'].requires_grad
    assert not out['ious'].requires_grad


# --------------------------------------------------------------------------
# Straightforward per-sample reference
# --------------------------------------------------------------------------
def _reference(desc, cam, num_parts, num_iters, init_index=None):
    """One sample at a time, plain loops over clusters."""
    results = []
    for b in range(desc.shape[0]):
        x = desc[b].float()
        x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
        if init_index is None:
            mean = x.mean(0)
            mean = mean / mean.norm().clamp(min=1e-12)
            idx = [int(torch.argmax(x @ mean))]
            while len(idx) < num_parts:
                dist = torch.stack([1 - x @ x[i] for i in idx]).min(0).values
                idx.append(int(torch.argmax(dist)))
        else:
            idx = init_index[b].tolist()
        centres = x[idx].clone()
        for _ in range(num_iters):
            assign = torch.argmax(x @ centres.T, dim=1)
            for k in range(num_parts):
                members = x[assign == k]
                if len(members):
                    mean = members.sum(0)
                    centres[k] = mean / mean.norm().clamp(min=1e-12)
        assign = torch.argmax(x @ centres.T, dim=1)

        c = cam[b].flatten().float()
        c = (c - c.min()) / (c.max() - c.min()) if c.max() > c.min() else torch.zeros_like(c)
        cam_mask = c > c.mean()
        ious = []
        for k in range(num_parts):
            part = assign == k
            union = (part | cam_mask).sum().item()
            ious.append((part & cam_mask).sum().item() / union if union else 0.0)
        best = max(range(num_parts), key=lambda k: (ious[k], -k))
        valid = ious[best] > 0
        mask = (assign == best) & valid
        results.append((assign, torch.tensor(ious), mask.view(cam.shape[1:]), valid))
    return results


@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('init', ['farthest', 'random'])
def test_matches_per_sample_reference(seed, init):
    gen = torch.Generator().manual_seed(seed)
    desc = torch.randn(5, 7 * 7, 12, generator=gen)
    cam = torch.rand(5, 7, 7, generator=gen)
    module = PartDiscovery(num_parts=4, num_iters=6, init=init)
    init_index = None
    if init == 'random':
        x = F.normalize(desc, dim=-1)
        init_index = random_init(x, 4, torch.Generator().manual_seed(11))
        assert init_index.shape == (5, 4)
        assert all(len(set(row)) == 4 for row in init_index.tolist())
    out = module(desc, cam, generator=torch.Generator().manual_seed(11))
    for b, (assign, ious, mask, valid) in enumerate(_reference(desc, cam, 4, 6, init_index)):
        assert torch.equal(out['assign'][b], assign)
        assert torch.allclose(out['ious'][b], ious.float())
        assert torch.equal(out['pseudo_mask'][b].bool(), mask)
        assert out['valid'][b].item() == valid


def test_farthest_point_init_picks_spread_centres():
    # Descriptors on 3 orthogonal axes (plus duplicates): init finds all three.
    x = torch.eye(3)[[0, 0, 1, 2, 2, 2]][None]
    idx = farthest_point_init(x, 3)[0].tolist()
    assert sorted({int(torch.argmax(x[0, i])) for i in idx}) == [0, 1, 2]
    # The first centre is the one nearest the mean direction (axis 2, 3 copies).
    assert int(torch.argmax(x[0, idx[0]])) == 2


def test_empty_cluster_keeps_its_centre():
    x = F.normalize(torch.randn(2, 10, 4), dim=-1)
    # Centre 1 duplicates centre 0: ties go to centre 0, so in the first
    # update cluster 1 is empty and must keep its centre.
    init = torch.tensor([[0, 0, 3], [5, 5, 7]])
    centres, _ = cosine_kmeans(x, init, num_iters=1)
    assert torch.isfinite(centres).all()
    assert torch.equal(centres[0, 1], x[0, 0])
    assert torch.equal(centres[1, 1], x[1, 5])
    # Non-empty centres are unit vectors (normalised member means).
    assert torch.allclose(centres[:, [0, 2]].norm(dim=-1), torch.ones(2, 2))


def test_exclude_background_skips_the_border_part():
    """A diffuse CAM overlapping the background most: 'border' picks the best non-background part."""
    h = w = 8
    grid = torch.zeros(h, w, dtype=torch.long)  # part 0: background everywhere
    grid[2:6, 2:4] = 1  # part 1: left half of the object
    grid[2:6, 4:6] = 2  # part 2: right half of the object
    directions = torch.eye(3, 16)
    desc = directions[grid.flatten()][None]  # (1, 64, 16)
    cam = torch.zeros(1, h, w)
    cam[0, :, :4] = 1.0  # covers the left background and part 1
    plain = PartDiscovery(num_parts=3)(desc, cam)
    assert plain['part'].item() == 0  # the background has the highest IoU
    border = PartDiscovery(num_parts=3, exclude_background='border')(desc, cam)
    assert border['part'].item() == 1
    assert torch.equal(border['pseudo_mask'][0].bool(), grid == 1)
    torch.testing.assert_close(border['ious'], plain['ious'])  # reported IoUs unchanged
    with pytest.raises(ValueError, match='exclude_background'):
        PartDiscovery(exclude_background='background')


def _published_looptrans_choice(labels, cam, cls_attn, num_clu, fg_threshold=0.92, head_idxs=(0, 1, 3)):
    """Transcription of the published LoopTrans code's pseudo-label loop (SooLab/LoopTrans, ``models/looptrans.py``,
    ``Net.forward``, "pixel loss"), with LOCATE's ``normalize_minmax``; ``labels`` (B, h*w) is the clustering.
    Returns the pseudo-labels (B, h, w) and the part excluded as background (B,)."""

    def normalize_minmax(cams, eps=1e-15):
        num = cams.shape[0]
        cams = cams - cams.view(num, -1).min(1)[0].view(num, 1, 1)
        return cams / (cams.view(num, -1).max(1)[0].view(num, 1, 1) + eps)

    b, h, w = cam.shape
    ego_sam_flat = normalize_minmax(cls_attn[:, list(head_idxs)].mean(1)).flatten(-2, -1)
    cam_mask = normalize_minmax(cam).flatten(-2, -1) > fg_threshold
    pseudo_labels = torch.zeros(b, h, w)
    background = torch.zeros(b, dtype=torch.long)
    for b_ in range(b):
        part_scores = torch.zeros(num_clu)
        part_sam = torch.zeros(num_clu)
        for part in range(num_clu):
            part_mask = labels[b_] == part
            inter_mask = cam_mask[b_] & part_mask
            union_mask = cam_mask[b_] | part_mask
            part_scores[part] = inter_mask.sum() / (union_mask.sum() + 1e-6)
            part_sam[part] = ego_sam_flat[b_][part_mask].mean()
        background[b_] = torch.argmin(part_sam)
        part_scores[background[b_]] = -1
        pseudo_labels[b_] = (labels[b_] == torch.argmax(part_scores)).float().reshape(h, w)
    return pseudo_labels, background


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_least_salient_matches_the_published_looptrans_code(seed):
    """'least_salient' with cam_thr=0.92 chooses the pseudo-masks of the published code, on the same parts."""
    gen = torch.Generator().manual_seed(seed)
    desc, _, quad, _ = _planted(batch=16, seed=seed)
    cam = torch.rand(16, GRID, GRID, generator=gen)
    cls_attn = torch.rand(16, 6, GRID, GRID, generator=gen)
    ours = PartDiscovery(num_parts=4, cam_thr=0.92, exclude_background='least_salient')(desc, cam, cls_attn=cls_attn)
    for assign in ours['assign']:
        _assert_same_partition(assign, quad)  # four non-empty parts, as the published loop needs
    expected, background = _published_looptrans_choice(ours['assign'], cam, cls_attn, num_clu=4)
    valid = ours['valid']
    torch.testing.assert_close(ours['pseudo_mask'][valid], expected[valid])
    # Where the binarised CAM lies wholly in the excluded part, every candidate has IoU 0: the published loop
    # then takes the first candidate anyway, ours marks the sample invalid (no pixel loss on an arbitrary part).
    candidate_ious = ours['ious'].scatter(1, background[:, None], 0.0)
    assert torch.equal(~valid, candidate_ious.amax(dim=1) == 0)
    assert int(valid.sum()) >= 12
    plain = PartDiscovery(num_parts=4, cam_thr=0.92)(desc, cam)
    assert bool((plain['part'] != ours['part']).any())  # the rule changed some choice: the test can fail


def test_least_salient_part_passes_over_empty_parts_and_needs_the_attention():
    from looptrans.models.part_discovery import cls_attention_map, least_salient_part

    parts = F.one_hot(torch.tensor([[0, 0, 1, 1, 3, 3]]), 4).float()  # part 2 is empty
    saliency = torch.tensor([[0.9, 0.8, 0.1, 0.3, 0.5, 0.5]])
    assert least_salient_part(parts, saliency).tolist() == [1]  # mean 0.2; the empty part is not "least salient"
    attn = torch.zeros(1, 6, 2, 3)
    attn[0, 1] = torch.arange(6.0).view(2, 3)
    attn[0, 3] = 6.0
    torch.testing.assert_close(cls_attention_map(attn, (1, 3)), (torch.arange(6.0) / 5)[None])
    assert cls_attention_map(torch.ones(1, 6, 2, 3), (0,)).eq(0).all()  # a constant map: zeros, no NaN
    with pytest.raises(ValueError, match='saliency_heads'):
        cls_attention_map(attn, (6,))
    with pytest.raises(ValueError, match="exclude_background='least_salient' needs cls_attn"):
        PartDiscovery(num_parts=2, exclude_background='least_salient')(torch.randn(1, 6, 4), torch.rand(1, 2, 3))


def test_least_salient_trains_in_looptrans():
    from mmseg.structures import SegDataSample

    model = build_tiny_looptrans(part_discovery=dict(type='PartDiscovery', exclude_background='least_salient'))
    inputs = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 2)]
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_pixel_dice']) and 'pm_valid' in losses
    assert model.last_part_discovery.part_score is None


# --------------------------------------------------------------------------
# num_parts='auto': K per image by the cosine silhouette
# --------------------------------------------------------------------------
def _silhouette_reference(x, labels):
    """Rousseeuw's silhouette with the cosine distance, one point at a time (x: (N, D) unit rows)."""
    n = x.shape[0]
    dist = [[max(0.0, 1 - float(x[i] @ x[j])) for j in range(n)] for i in range(n)]
    clusters = sorted(set(labels))
    total = 0.0
    for i in range(n):
        own = [j for j in range(n) if labels[j] == labels[i] and j != i]
        if not own or len(clusters) < 2:
            continue  # s(i) = 0
        a = sum(dist[i][j] for j in own) / len(own)
        b = min(
            sum(dist[i][j] for j in range(n) if labels[j] == c) / labels.count(c) for c in clusters if c != labels[i]
        )
        total += (b - a) / max(a, b)
    return total / n


def test_cosine_silhouette_matches_a_per_point_reference():
    from looptrans.models.part_discovery import cosine_silhouette

    gen = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(2, 40, 8, generator=gen), dim=-1)
    assign = torch.randint(0, 4, (2, 3, 40), generator=gen)
    assign[0, 1] = torch.randint(0, 2, (40,), generator=gen)  # slots 2..5 empty
    assign[1, 2, 0] = 5  # a singleton cluster
    ours = cosine_silhouette(x, assign, num_parts=6)
    for b in range(2):
        for c in range(3):
            ref = _silhouette_reference(x[b], assign[b, c].tolist())
            assert ours[b, c].item() == pytest.approx(ref, abs=1e-5)


def _clusters(num_clusters, n=120, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(num_clusters, dim, generator=gen), dim=-1)
    labels = torch.arange(n) % num_clusters
    return centres[labels] + 0.05 * torch.randn(n, dim, generator=gen), labels


def test_auto_k_is_chosen_per_image():
    from looptrans.models.part_discovery import PartDiscovery

    images = [_clusters(k, seed=k) for k in (2, 3, 5)]
    desc = torch.stack([d for d, _ in images])
    cam = torch.rand(3, 10, 12, generator=torch.Generator().manual_seed(1))
    out = PartDiscovery(num_parts='auto', k_range=(2, 6))(desc, cam)
    assert out['num_parts'].tolist() == [2, 3, 5]
    assert out['ious'].shape == (3, 6)
    for b, (_, labels) in enumerate(images):
        # the chosen partition recovers the true clusters (up to renaming)
        assign = out['assign'][b]
        assert len(set(zip(assign.tolist(), labels.tolist()))) == out['num_parts'][b].item()
        assert out['ious'][b, out['num_parts'][b] :].eq(0).all()  # unused slots are empty


def test_auto_with_a_single_candidate_equals_fixed_k():
    from looptrans.models.part_discovery import PartDiscovery

    gen = torch.Generator().manual_seed(2)
    desc, cam = torch.randn(4, 64, 8, generator=gen), torch.rand(4, 8, 8, generator=gen)
    fixed = PartDiscovery(num_parts=4)(desc, cam)
    auto = PartDiscovery(num_parts='auto', k_range=(4, 4))(desc, cam)
    for key in ('pseudo_mask', 'valid', 'ious', 'assign', 'part'):
        assert torch.equal(fixed[key], auto[key]), key
    assert auto['num_parts'].tolist() == [4] * 4
    for bad in ((1, 4), (5, 3)):
        with pytest.raises(ValueError, match='k_range'):
            PartDiscovery(num_parts='auto', k_range=bad)
    with pytest.raises(ValueError, match="'auto'"):
        PartDiscovery(num_parts='many')


# --------------------------------------------------------------------------- the interface
def test_the_package_keeps_the_old_import_path_and_splits_the_algorithm():
    from looptrans.models import part_discovery
    from looptrans.models.part_discovery import base, cam_iou, kmeans, saliency, silhouette

    assert (
        part_discovery.PartDiscovery is cam_iou.PartDiscovery and part_discovery.cosine_kmeans is kmeans.cosine_kmeans
    )
    assert part_discovery.cls_attention_saliency is saliency.cls_attention_saliency
    assert part_discovery.cosine_silhouette is silhouette.cosine_silhouette
    assert issubclass(PartDiscovery, base.BasePartDiscovery)
    assert MODELS.get('PartDiscovery') is PartDiscovery


def test_result_is_typed_and_carries_its_statistics():
    from looptrans.models.part_discovery import PartDiscoveryResult

    desc, cams, _, _ = _planted(batch=4)
    out = PartDiscovery(num_parts=4)(desc, cams)
    assert isinstance(out, PartDiscoveryResult)
    assert torch.equal(out.cam, cams)  # recorded by BasePartDiscovery.forward, for the pictures
    assert out.part_score is None and out.num_parts is None and 'num_parts' not in out
    with pytest.raises(KeyError, match='num_parts'):
        out['num_parts']
    assert out['pseudo_mask'] is out.pseudo_mask and set(out) == {
        'pseudo_mask',
        'valid',
        'ious',
        'assign',
        'part',
        'cam',
    }

    mask = torch.zeros(2, 2, 2)
    mask[0, 0] = 1  # half of image 0
    result = PartDiscoveryResult(
        pseudo_mask=mask,
        valid=torch.tensor([True, False]),
        ious=torch.tensor([[0.2, 0.6], [0.0, 0.1]]),
        num_parts=torch.tensor([2, 3]),
    )
    stats = result.statistics()
    assert stats['pm_valid'].item() == 0.5 and stats['pm_area'].item() == 0.5  # the area of valid images only
    assert stats['pm_iou'].item() == pytest.approx(0.35) and stats['pm_num_parts'].item() == 2.5
    assert set(PartDiscoveryResult(pseudo_mask=mask, valid=torch.tensor([True, False])).statistics()) == {
        'pm_valid',
        'pm_area',
    }


def test_result_refuses_inconsistent_fields():
    from looptrans.models.part_discovery import PartDiscoveryResult

    with pytest.raises(ValueError, match=r'valid \(B,\) bool'):
        PartDiscoveryResult(pseudo_mask=torch.zeros(2, 3, 3), valid=torch.ones(2))
    with pytest.raises(ValueError, match=r'pseudo_mask must be \(B, h, w\)'):
        PartDiscoveryResult(pseudo_mask=torch.zeros(2, 9), valid=torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match='ious has 3 rows for 2 images'):
        PartDiscoveryResult(
            pseudo_mask=torch.zeros(2, 3, 3), valid=torch.ones(2, dtype=torch.bool), ious=torch.zeros(3, 4)
        )


def test_result_hands_valid_pseudo_masks_to_the_data_samples():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from looptrans.models.part_discovery import PSEUDO_MASK_FIELD, PartDiscoveryResult

    masks = torch.rand(2, 3, 3).round()
    samples = [SegDataSample(), SegDataSample()]
    samples[1].set_data({PSEUDO_MASK_FIELD: PixelData(data=torch.ones(1, 3, 3))})  # stale: must go
    PartDiscoveryResult(pseudo_mask=masks, valid=torch.tensor([True, False])).to_data_samples(samples)
    assert torch.equal(samples[0].gt_pseudo_mask.data, masks[:1]) and PSEUDO_MASK_FIELD not in samples[1]
    with pytest.raises(ValueError, match='3 data samples for 2 pseudo-masks'):
        PartDiscoveryResult(pseudo_mask=masks, valid=torch.tensor([True, False])).to_data_samples(samples + samples[:1])


def _square_discovery():
    """A whole new algorithm, one registered class: the CAM thresholded at its mean, valid where not empty."""
    from looptrans.models.part_discovery import BasePartDiscovery, PartDiscoveryResult

    @MODELS.register_module(force=True)
    class CAMThresholdDiscovery(BasePartDiscovery):
        def discover(self, desc, cam, generator=None, cls_attn=None):
            mask = (cam > cam.flatten(1).mean(1)[:, None, None]).float()
            return PartDiscoveryResult(pseudo_mask=mask, valid=mask.flatten(1).sum(1) > 0)

    return CAMThresholdDiscovery


def test_a_new_algorithm_is_one_registered_class_that_trains_in_looptrans():
    _square_discovery()
    model = build_tiny_looptrans(part_discovery=dict(type='CAMThresholdDiscovery'))
    from mmseg.structures import SegDataSample

    inputs = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 2)]
    losses = model.loss(inputs, samples)
    assert {'loss_pixel_dice', 'pm_valid', 'pm_area'} <= set(losses) and 'pm_iou' not in losses  # no part IoUs
    result = model.last_part_discovery
    assert torch.equal(result.pseudo_mask, (result.cam > result.cam.flatten(1).mean(1)[:, None, None]).float())
    assert all(torch.equal(s.gt_pseudo_mask.data[0], m) for s, m in zip(samples, result.pseudo_mask))


def test_the_base_class_checks_what_an_algorithm_gets_and_returns():
    from looptrans.models.part_discovery import BasePartDiscovery, PartDiscoveryResult

    with pytest.raises(TypeError, match='abstract'):
        BasePartDiscovery()

    class ReturnsDict(BasePartDiscovery):
        def discover(self, desc, cam, generator=None, cls_attn=None):
            return dict(pseudo_mask=cam, valid=torch.ones(len(cam), dtype=torch.bool))

    class WrongGrid(BasePartDiscovery):
        def discover(self, desc, cam, generator=None, cls_attn=None):
            return PartDiscoveryResult(pseudo_mask=cam[:, :2], valid=torch.ones(len(cam), dtype=torch.bool))

    desc, cam = torch.randn(2, 16, 8), torch.rand(2, 4, 4)
    with pytest.raises(TypeError, match='must return a PartDiscoveryResult'):
        ReturnsDict()(desc, cam)
    with pytest.raises(ValueError, match=r'grid of the CAM'):
        WrongGrid()(desc, cam)
    with pytest.raises(ValueError, match='resize the CAM'):
        _square_discovery()()(desc, torch.rand(2, 5, 5))
    cam.requires_grad_(True)
    assert not _square_discovery()()(desc, cam * 2).pseudo_mask.requires_grad  # no gradient: targets
