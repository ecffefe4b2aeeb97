"""DINO pretraining on generated images (looptrans.testing.dino_pretraining, tools/misc/pretrain_dino_synthetic.py):
the objective and schedules against transcriptions of DINO's formulas, determinism, and the official layout."""

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import load_tool

from looptrans.models.backbones import DINOVisionTransformer
from looptrans.models.backbones.dino_weights import convert_dino_to_mmpretrain, convert_mmpretrain_to_dino
from looptrans.testing.dino_pretraining import (
    DINOHead,
    PretrainSettings,
    augment,
    cosine,
    crop_and_resize,
    dino_loss,
    multi_crop,
    pretrain_dino,
    render_backgrounds,
    render_pool,
    sample_crop_boxes,
    swap_background,
)
from looptrans.testing.synthetic_agd20k import AFFORDANCE_PARTS

#: A run of seconds: the real objective on a tiny ViT.
TINY = PretrainSettings(
    embed_dims=24,
    num_layers=1,
    num_heads=6,
    num_images=6,
    steps=3,
    batch_size=2,
    num_local=2,
    head_hidden=16,
    head_bottleneck=8,
    out_dim=32,
    warmup_steps=1,
    freeze_last_layer_steps=1,
    global_size=32,
    local_size=16,
    num_backgrounds=4,
)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_dino_loss_equals_the_per_sample_cross_entropy_written_out():
    """DINO (main_dino.py, DINOLoss): for each sample, each teacher global view i and each student view v != i,
    H(softmax((t_i - c) / tau_t), softmax(s_v / tau_s)); averaged over samples, then over the pairs."""
    rng = np.random.default_rng(0)
    views, batch, k = 4, 3, 5
    student = rng.normal(size=(views * batch, k))
    teacher = rng.normal(size=(2 * batch, k))
    center = rng.normal(size=(1, k)) * 0.1
    ts, tt = 0.1, 0.04
    pairs = []
    for i in range(2):
        q = np.exp(_log_softmax((teacher[i * batch : (i + 1) * batch] - center) / tt))
        for v in range(views):
            if v == i:
                continue
            logp = _log_softmax(student[v * batch : (v + 1) * batch] / ts)
            pairs.append(np.mean([-(q[b] * logp[b]).sum() for b in range(batch)]))
    expected = np.mean(pairs)
    got = dino_loss(
        torch.tensor(student), torch.tensor(teacher), torch.tensor(center), views, student_temp=ts, teacher_temp=tt
    )
    assert got.item() == pytest.approx(expected, rel=1e-10)
    assert len(pairs) == 2 * views - 2
    # the teacher is a target: no gradient flows into it
    t = torch.tensor(teacher, requires_grad=True)
    s = torch.tensor(student, requires_grad=True)
    dino_loss(s, t, torch.tensor(center), views, ts, tt).backward()
    assert t.grad is None and s.grad.abs().sum() > 0


def test_cosine_equals_dinos_cosine_scheduler():
    """utils.cosine_scheduler of facebookresearch/dino, with one 'epoch' of ``total`` iterations."""

    def dino_cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0):
        warmup_iters = warmup_epochs * niter_per_ep
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters) if warmup_epochs > 0 else []
        iters = np.arange(epochs * niter_per_ep - warmup_iters)
        schedule = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / len(iters)))
        return np.concatenate((warmup_schedule, schedule))

    total, warmup = 40, 8
    expected = dino_cosine_scheduler(5e-4, 1e-5, 1, total, 0, 0)
    assert [cosine(i, total, 5e-4, 1e-5) for i in range(total)] == pytest.approx(expected.tolist(), rel=1e-12)
    # warm-up as one epoch of `warmup` iterations ahead of the rest
    sched = dino_cosine_scheduler(5e-4, 1e-5, total // warmup, warmup, 1, 0)
    assert [cosine(i, total, 5e-4, 1e-5, warmup) for i in range(total)] == pytest.approx(sched.tolist(), rel=1e-12)
    momentum = dino_cosine_scheduler(0.99, 1.0, 1, total)
    assert [cosine(i, total, 0.99, 1.0) for i in range(total)] == pytest.approx(momentum.tolist(), rel=1e-12)


def test_head_prototypes_have_unit_norm_and_it_stays_fixed():
    head = DINOHead(8, 16, hidden=12, bottleneck=4)
    weight = head.last_layer.weight
    assert torch.allclose(weight.norm(dim=1), torch.ones(16))
    g = head.last_layer.parametrizations.weight.original0
    assert not g.requires_grad
    head(torch.randn(5, 8)).sum().backward()
    assert g.grad is None and head.last_layer.parametrizations.weight.original1.grad is not None


def test_crops_and_pool():
    pool, masks = render_pool(3, seed=0, size=64)
    assert pool.shape == (3, 3, 64, 64) and pool.dtype == torch.uint8
    assert masks.shape == (3, 1, 64, 64) and masks.dtype == torch.bool
    assert torch.equal(pool, render_pool(3, seed=0, size=64)[0])
    assert not torch.equal(pool, render_pool(3, seed=1, size=64)[0])
    assert 0.02 < masks[0].float().mean() < 0.6  # image 0 is egocentric: its object
    gen = torch.Generator().manual_seed(0)
    views = multi_crop(pool[:2], dataclasses.replace(TINY, global_size=32, local_size=16), gen)
    assert [tuple(v.shape) for v in views] == [(2, 3, 32, 32)] * 2 + [(2, 3, 16, 16)] * 2
    assert all(abs(float(v.mean())) < 3 for v in views)  # normalised
    again = multi_crop(
        pool[:2], dataclasses.replace(TINY, global_size=32, local_size=16), torch.Generator().manual_seed(0)
    )
    assert all(torch.equal(a, b) for a, b in zip(views, again))  # every draw from the generator


def _torchvision_box(height, width, scale, ratio, gen):
    """torchvision's RandomResizedCrop.get_params, transcribed (its draws, one image at a time)."""
    area = height * width
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(*scale, generator=gen))
        aspect = math.exp(float(torch.empty(1).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return w, h
    return width, height


def test_crop_boxes_follow_random_resized_crop():
    """Box sizes have the area share and aspect ratio torchvision's RandomResizedCrop draws, lie inside the
    image, and fall back to the whole image where no try fits."""
    gen = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(4000, 224, 160, (0.05, 0.4), gen)
    x0, y0, x1, y1 = boxes.unbind(1)
    assert bool((x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 160).all() and (y1 <= 224).all())
    assert torch.equal(boxes, boxes.round())  # whole pixels
    w, h = x1 - x0, y1 - y0
    share, aspect = w * h / (224 * 160), w / h
    assert 0.04 < float(share.min()) and float(share.max()) < 0.42
    assert 0.7 < float(aspect.min()) and float(aspect.max()) < 1.4
    ref_gen = torch.Generator().manual_seed(1)
    ref = torch.tensor([_torchvision_box(224, 160, (0.05, 0.4), (3 / 4, 4 / 3), ref_gen) for _ in range(4000)])
    assert abs(float(w.float().mean()) - float(ref[:, 0].float().mean())) < 1.5  # same law: mean width in px
    assert abs(float(h.float().mean()) - float(ref[:, 1].float().mean())) < 1.5
    # corners are uniform over the free room: the mean of x0 is half of it
    free = 160 - w
    assert abs(float((x0 / free.clamp_min(1)).mean()) - 0.5) < 0.03
    whole = sample_crop_boxes(5, 50, 40, (2.0, 3.0), gen)  # never fits: the whole image
    assert torch.equal(whole, torch.tensor([[0.0, 0.0, 40.0, 50.0]] * 5))


def test_crop_and_resize_copies_and_antialiases():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 40, 48, generator=gen) * 255
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [8.0, 4.0, 24.0, 20.0], [32.0, 24.0, 48.0, 40.0]])
    same = crop_and_resize(images, boxes, 16)
    assert torch.allclose(same[1], images[1, :, 4:20, 8:24], atol=1e-4)  # a box of the output size: a copy
    assert torch.allclose(same[2], images[2, :, 24:40, 32:48], atol=1e-4)
    quarter = crop_and_resize(images, torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 3), 8)
    assert torch.allclose(quarter, F.avg_pool2d(images[:, :, :32, :32], 4), atol=1e-4)  # every pixel averaged
    # a non-integer shrink of a smooth image agrees with PyTorch's antialiased bilinear resize
    yy, xx = torch.meshgrid(torch.arange(40.0), torch.arange(48.0), indexing='ij')
    smooth = (128 + 100 * torch.sin(xx / 7) * torch.cos(yy / 9)).expand(1, 3, 40, 48).contiguous()
    ours = crop_and_resize(smooth, torch.tensor([[3.0, 2.0, 40.0, 39.0]]), 23)
    ref = F.interpolate(smooth[:, :, 2:39, 3:40], size=(23, 23), mode='bilinear', antialias=True)
    assert (ours - ref).abs().max() < 2.0, (ours - ref).abs().max()


def test_augment_equals_torchvisions_functions_image_by_image():
    """The batched flip / brightness / contrast / saturation / grayscale give, image by image, what torchvision's
    functional ops give with the same draws; the factors are 1 where an image is not jittered."""
    from torchvision.transforms.v2 import functional as TF

    s = dataclasses.replace(TINY, jitter=(0.4, 0.4, 0.4, 0.0), jitter_prob=0.7, grayscale_prob=0.3)
    crops = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 255
    ours = augment(crops, s, torch.Generator().manual_seed(5))
    draws = torch.rand(64, 6, generator=torch.Generator().manual_seed(5))
    for crop, d, got in zip(crops, draws, ours):
        img = (crop.flip(-1) if d[0] < 0.5 else crop) / 255
        if d[1] < s.jitter_prob:
            img = TF.adjust_brightness(img, float(1 - 0.4 + 0.8 * d[2]))
            img = TF.adjust_contrast(img, float(1 - 0.4 + 0.8 * d[3]))
            img = TF.adjust_saturation(img, float(1 - 0.4 + 0.8 * d[4]))
        if d[5] < s.grayscale_prob:
            img = TF.rgb_to_grayscale(img, num_output_channels=3)
        assert torch.allclose(got, img * 255, atol=1e-3)
    assert 10 < int((draws[:, 1] < 0.7).sum()) < 60 and 5 < int((draws[:, 5] < 0.3).sum()) < 40  # both paths ran
    with pytest.raises(ValueError, match='hue'):
        augment(crops, dataclasses.replace(TINY, jitter=(0.2, 0.2, 0.0, 0.1)), torch.Generator())


def test_pretraining_is_deterministic_and_saved_in_the_official_layout():
    first, again = pretrain_dino(TINY), pretrain_dino(TINY)
    other = pretrain_dino(dataclasses.replace(TINY, seed=1))
    assert list(first.state_dict) == list(again.state_dict)
    assert all(torch.equal(first.state_dict[k], again.state_dict[k]) for k in first.state_dict)
    assert not torch.equal(first.state_dict['blocks.0.attn.qkv.weight'], other.state_dict['blocks.0.attn.qkv.weight'])
    # DINO's release names (timm), as dino_deitsmall16_pretrain.pth
    assert {'cls_token', 'pos_embed', 'patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', 'norm.weight'} <= set(
        first.state_dict
    )
    assert first.state_dict['pos_embed'].shape == (1, 1 + 14 * 14, 24)
    assert [row['step'] for row in first.log] == [3]
    assert all(math.isfinite(row['loss']) for row in first.log)


def test_names_convert_both_ways():
    vit = DINOVisionTransformer(
        arch=dict(embed_dims=24, num_layers=2, num_heads=6, feedforward_channels=96), frozen=False
    )
    ours = vit.state_dict()
    theirs = convert_mmpretrain_to_dino(ours)
    assert 'blocks.1.mlp.fc2.weight' in theirs and 'norm.bias' in theirs and 'ln1.bias' not in theirs
    back = convert_dino_to_mmpretrain(theirs)
    assert list(back) == list(ours)
    with pytest.raises(ValueError, match='no parameter'):
        convert_mmpretrain_to_dino({'head.weight': torch.zeros(1)})


def test_tool_writes_weights_that_load_through_the_pretrained_path(tmp_path, monkeypatch):
    """The CLI's file loads into the config's backbone by init_cfg Pretrained (the real checkpoints' path) and
    gives the trained teacher's features; its JSON names the settings and the file's hash."""
    tool = load_tool('misc', 'pretrain_dino_synthetic.py')
    monkeypatch.setattr(tool, 'PretrainSettings', lambda: TINY)
    out = str(tmp_path / 'w.pth')
    threads = torch.get_num_threads()
    try:
        meta = tool.main(['--out', out, '--steps', '2', '--threads', '1'])
    finally:
        torch.set_num_threads(threads)  # the tool sets the process's threads; the other tests keep theirs
    with open(out, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == meta['sha256']
    with open(out + '.json') as f:
        saved = json.load(f)
    assert saved['sha256'] == meta['sha256'] and saved['settings']['steps'] == 2 and saved['threads'] == 1
    vit = DINOVisionTransformer(arch=TINY.arch(), init_cfg=dict(type='Pretrained', checkpoint=out), frozen=True)
    vit.init_weights()
    state = torch.load(out, weights_only=True)
    assert torch.equal(vit.state_dict()['layers.0.attn.qkv.weight'], state['blocks.0.attn.qkv.weight'])
    with pytest.raises(SystemExit):
        tool.main(['--out', out])  # exists: refused without --overwrite


def test_background_swap_keeps_the_object_and_replaces_the_rest():
    pool, masks = render_pool(2, seed=0, size=64)
    backgrounds = render_backgrounds(2, seed=0, size=64)
    assert backgrounds.shape == (2, 3, 64, 64) and not torch.equal(backgrounds[0], backgrounds[1])
    swapped = swap_background(pool[0], masks[0], backgrounds[1])
    inside, outside = masks[0].expand(3, -1, -1), ~masks[0].expand(3, -1, -1)
    assert torch.equal(swapped[inside], pool[0][inside]) and torch.equal(swapped[outside], backgrounds[1][outside])
    # in the views: with swap probability 1 and no photometric change, a global view of the whole image is the
    # object over one of the backgrounds
    s = dataclasses.replace(
        TINY, background_swap=1.0, jitter_prob=0.0, grayscale_prob=0.0, global_size=64, global_scale=(1.0, 1.0)
    )
    gen = torch.Generator().manual_seed(0)
    view = multi_crop(pool[:1], s, gen, masks[:1], backgrounds)[0][0]
    mean = torch.tensor((123.675, 116.28, 103.53)).view(3, 1, 1)
    std = torch.tensor((58.395, 57.12, 57.375)).view(3, 1, 1)
    pixels = view * std + mean
    candidates = [swap_background(pool[0], masks[0], bg).float() for bg in backgrounds]
    candidates += [c.flip(-1) for c in candidates]
    assert min((pixels - c).abs().max().item() for c in candidates) < 1e-2


def test_pool_draws_the_objects_as_the_generator_options_say():
    """``ego_scale`` / ``part_thickness`` reach the egocentric renders (the tree the features are used on can be
    drawn larger or with thicker parts); the defaults draw the pool every documented run was trained on."""
    default_pool, default_masks = render_pool(4, seed=0, size=96)
    same_pool, _ = render_pool(4, seed=0, size=96, ego_scale=(0.32, 0.42), part_thickness=1.0)
    assert torch.equal(default_pool, same_pool)
    _, big_masks = render_pool(4, seed=0, size=96, ego_scale=(0.55, 0.75))
    ratio = big_masks.float().mean() / default_masks.float().mean()
    assert 2.0 < ratio < 5.0, ratio  # area grows with the square of the size: (0.65 / 0.37)^2 ~ 3
    thick_pool, _ = render_pool(4, seed=0, size=96, part_thickness=2.0)
    assert not torch.equal(thick_pool, default_pool)
    # bold_parts changes the knife, scissors and bicycle renders only: the pool's first images are the
    # egocentric renders of every pair in AFFORDANCE_PARTS order
    pairs = [(a, o) for a, objs in sorted(AFFORDANCE_PARTS.items()) for o in sorted(objs)]
    bold_pool, _ = render_pool(len(pairs), seed=0, size=96, bold_parts=True)
    plain_pool, _ = render_pool(len(pairs), seed=0, size=96)
    for (aff, obj), a, b in zip(pairs, bold_pool, plain_pool):
        assert torch.equal(a, b) == (obj not in ('knife', 'scissors', 'bicycle')), (aff, obj)
    with pytest.raises(ValueError, match='ego_scale'):
        render_pool(1, seed=0, size=32, ego_scale=(0.8, 0.5))
    with pytest.raises(ValueError, match='part_thickness'):
        render_pool(1, seed=0, size=32, part_thickness=0.0)


def test_tool_passes_the_drawing_options_and_refuses_bad_ones_before_training(tmp_path, monkeypatch):
    tool = load_tool('misc', 'pretrain_dino_synthetic.py')
    monkeypatch.setattr(tool, 'PretrainSettings', lambda: TINY)
    seen = []

    def fake_pretrain(settings, log=None, device='cpu'):
        seen.append(settings)
        raise RuntimeError('stop after the settings')

    monkeypatch.setattr(tool, 'pretrain_dino', fake_pretrain)
    out = str(tmp_path / 'w.pth')
    threads = torch.get_num_threads()
    try:
        with pytest.raises(RuntimeError, match='stop after'):
            tool.main(
                [
                    '--out',
                    out,
                    '--ego-scale',
                    '0.55',
                    '0.75',
                    '--part-thickness',
                    '1.6',
                    '--bold-parts',
                    '--threads',
                    '1',
                ]
            )
        assert seen[0].ego_scale == (0.55, 0.75) and seen[0].part_thickness == 1.6 and seen[0].bold_parts
        for bad in (['--ego-scale', '0.9', '0.5'], ['--ego-scale', '0', '0.5'], ['--part-thickness', '-1']):
            with pytest.raises(SystemExit):
                tool.main(['--out', out, *bad])
    finally:
        torch.set_num_threads(threads)
    assert len(seen) == 1 and not (tmp_path / 'w.pth').exists()


def test_tool_passes_the_training_options_and_refuses_bad_ones_before_training(tmp_path, monkeypatch, capsys):
    """--patch-size / --lr / --warmup-steps reach the settings and --device the run; a device this torch cannot
    use, a warm-up as long as the run or a non-positive learning rate stop the tool before any image is drawn."""
    tool = load_tool('misc', 'pretrain_dino_synthetic.py')
    monkeypatch.setattr(tool, 'PretrainSettings', lambda: TINY)
    seen = []

    def fake_pretrain(settings, log=None, device='cpu'):
        seen.append((settings, device))
        raise RuntimeError('stop after the settings')

    monkeypatch.setattr(tool, 'pretrain_dino', fake_pretrain)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    out = str(tmp_path / 'w.pth')
    threads = torch.get_num_threads()
    try:
        with pytest.raises(RuntimeError, match='stop after'):
            tool.main(['--out', out, '--patch-size', '8', '--lr', '1e-4', '--warmup-steps', '2', '--steps', '10'])
        settings, device = seen[0]
        assert (settings.patch_size, settings.lr, settings.warmup_steps, settings.steps) == (8, 1e-4, 2, 10)
        assert device == 'cpu'
        for bad, message in (
            (['--device', 'cuda'], 'sees no CUDA GPU'),
            (['--device', 'gpu0'], "--device 'gpu0'"),
            (['--warmup-steps', '10', '--steps', '10'], '--warmup-steps'),
            (['--lr', '0'], '--lr must be > 0'),
            (['--patch-size', '0'], '--patch-size must be >= 1'),
        ):
            with pytest.raises(SystemExit):
                tool.main(['--out', out, *bad])
            assert message in capsys.readouterr().err, bad
    finally:
        torch.set_num_threads(threads)
    assert len(seen) == 1 and not (tmp_path / 'w.pth').exists()
