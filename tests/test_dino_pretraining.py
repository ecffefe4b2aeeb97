"""DINO pretraining on generated images (looptrans.testing.dino_pretraining, tools/misc/pretrain_dino_synthetic.py):
the objective and schedules against transcriptions of DINO's formulas, determinism, and the official layout."""

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
import torch
from conftest import load_tool

from looptrans.models.backbones import DINOVisionTransformer
from looptrans.models.backbones.dino_weights import convert_dino_to_mmpretrain, convert_mmpretrain_to_dino
from looptrans.testing.dino_pretraining import (
    DINOHead,
    PretrainSettings,
    cosine,
    dino_loss,
    multi_crop,
    pretrain_dino,
    random_resized_crop,
    render_backgrounds,
    render_pool,
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
    whole = random_resized_crop(pool[0], 64, (1.0, 1.0), gen, ratio=(1.0, 1.0))
    assert torch.allclose(whole, pool[0].float(), atol=1e-3)  # the whole image at its own size
    small = random_resized_crop(pool[0], 16, (0.1, 0.2), gen)
    assert small.shape == (3, 16, 16)
    views = multi_crop(pool[:2], dataclasses.replace(TINY, global_size=32, local_size=16), gen)
    assert [tuple(v.shape) for v in views] == [(2, 3, 32, 32)] * 2 + [(2, 3, 16, 16)] * 2
    assert all(abs(float(v.mean())) < 3 for v in views)  # normalised


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

    def fake_pretrain(settings, log=None):
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
