"""Choosing the saliency heads: the border-ring share of each head's CLS attention, and
tools/analysis_tools/rank_saliency_heads.py, which ranks a frozen ViT's heads by it."""

import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, REPO, load_tool

from looptrans.models.part_discovery import border_attention_share


def _tool():
    return load_tool('analysis_tools', 'rank_saliency_heads.py')


def _ring_share_by_loops(attn: np.ndarray) -> np.ndarray:
    """Independent transcription: for every image and head, attention on tokens in the first or last row or
    column, over all attention."""
    b, heads, h, w = attn.shape
    out = np.zeros((b, heads))
    for i in range(b):
        for k in range(heads):
            on_ring = sum(attn[i, k, y, x] for y in range(h) for x in range(w) if y in (0, h - 1) or x in (0, w - 1))
            out[i, k] = on_ring / attn[i, k].sum()
    return out


def test_border_attention_share_matches_a_loop_over_the_ring_and_is_the_ring_share_for_a_uniform_head():
    rng = np.random.default_rng(0)
    attn = rng.random((3, 4, 6, 5)).astype(np.float32)
    got = border_attention_share(torch.from_numpy(attn))
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got.numpy(), _ring_share_by_loops(attn), rtol=1e-5)
    uniform = torch.full((1, 2, 14, 14), 1 / 196)
    np.testing.assert_allclose(border_attention_share(uniform).numpy(), 52 / 196, rtol=1e-6)  # 14*14 - 12*12
    centre = torch.zeros(1, 1, 14, 14)
    centre[..., 5:9, 5:9] = 1
    assert border_attention_share(centre).item() == 0
    with pytest.raises(ValueError, match=r'\(B, heads, h, w\)'):
        border_attention_share(torch.ones(2, 14, 14))


def _object_centred_heads(monkeypatch, tool, centred=(4, 1)):
    """Make the tool's frozen ViT report CLS attention in which the ``centred`` heads attend to the grid's
    centre (head 4 most) and the others twice as much to the border ring as to the rest; the rest of the tool
    (images, preprocessing, ranking) is real."""
    real_build = tool.build_encoder

    def build(cfg, device):
        encoder, preprocessor = real_build(cfg, device)
        real_forward = encoder.forward_descriptors

        def forward_descriptors(x):
            out = real_forward(x)
            attn = torch.full_like(out['cls_attn'], 1.0)
            attn[..., [0, -1], :] = 2.0
            attn[..., :, [0, -1]] = 2.0
            for rank, head in enumerate(centred):
                attn[:, head, 3:-3, 3:-3] = 20.0 + 10 * (len(centred) - rank)
            out['cls_attn'] = attn / attn.flatten(2).sum(-1)[..., None, None]
            return out

        encoder.forward_descriptors = forward_descriptors
        return encoder, preprocessor

    monkeypatch.setattr(tool, 'build_encoder', build)


def test_tool_suggests_the_object_centred_heads_and_prints_their_cfg_option(seen_tree, tmp_path, monkeypatch, capsys):
    tool = _tool()
    _object_centred_heads(monkeypatch, tool)
    out = tmp_path / 'heads.json'
    report = tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--batch-size', '5', '--out', str(out)])
    assert report['suggested_heads'] == [4, 1]  # most object-centred first
    assert report['images'] == 14 and report['grid'] == [14, 14]
    assert report['ring_share'] == pytest.approx(52 / 196)
    shares = report['border_share']
    assert shares[4] < shares[1] < 0.5 * report['ring_share']
    assert all(s == pytest.approx(104 / 248) for k, s in enumerate(shares) if k not in (1, 4))  # 2*52 / (2*52 + 144)
    # the configured (LOCATE) heads 0, 1, 3 include backdrop heads: their saliency marks the ring
    sal = report['saliency']
    assert sal['configured']['heads'] == [0, 1, 3] and sal['suggested']['heads'] == [1, 4]
    assert sal['suggested']['border'] == 0 < sal['configured']['border']
    assert json.loads(out.read_text()) == report
    printed = capsys.readouterr().out
    assert '--cfg-options model.part_discovery.saliency_heads=[1,4]' in printed
    assert '| 4 | ' in printed.splitlines()[3]  # the table's first row is the most object-centred head


def test_tool_on_a_random_vit_suggests_no_head_and_points_to_the_border_rule(seen_tree, mmengine_log, capsys):
    report = _tool().main([QUICK_CONFIG, '--data-root', seen_tree, '--max-images', '6'])
    assert report['images'] == 6 and report['suggested_heads'] == []
    assert 'suggested' not in report['saliency'] and report['saliency']['configured']['heads'] == [0, 1, 3]
    assert all(0.7 < s / report['ring_share'] < 1.3 for s in report['border_share'])
    assert any(
        "exclude_background='border'" in m and 'model.part_discovery.exclude_background=border' in m
        for m in mmengine_log
    )
    assert 'saliency_heads=' not in capsys.readouterr().out
    # no line per parameter from MMEngine's weight init
    assert not [m for m in mmengine_log if 'init_weights' in m]


def test_tool_skips_an_unreadable_image_by_name_and_refuses_a_tree_without_egocentric_images(
    seen_tree, tmp_path, mmengine_log
):
    tree = tmp_path / 'tree'
    ego = osp.join(seen_tree, 'Seen', 'trainset', 'egocentric')
    shutil.copytree(ego, tree / 'Seen' / 'trainset' / 'egocentric')
    broken = tree / 'Seen' / 'trainset' / 'egocentric' / 'hold' / 'cup' / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    report = _tool().main([QUICK_CONFIG, '--data-root', str(tree)])
    assert report['images'] == 14  # the 14 real images; the broken one skipped
    assert any('broken.jpg' in m and 'skipped' in m for m in mmengine_log)
    with pytest.raises(FileNotFoundError, match='egocentric'):
        _tool().main([QUICK_CONFIG, '--data-root', str(tmp_path / 'empty')])
    for name in os.listdir(broken.parent):
        (broken.parent / name).write_bytes(b'')
    for folder in (tree / 'Seen' / 'trainset' / 'egocentric').glob('*/*'):
        if folder != broken.parent:
            shutil.rmtree(folder)
    with pytest.raises(SystemExit, match='none of the egocentric images could be read'):
        _tool().main([QUICK_CONFIG, '--data-root', str(tree)])


def test_find_egocentric_images_spreads_a_capped_choice_over_the_sorted_folders(tmp_path):
    for aff, obj in (('a', 'x'), ('b', 'y')):
        folder = tmp_path / 'trainset' / 'egocentric' / aff / obj
        folder.mkdir(parents=True)
        for i in range(5):
            (folder / f'{i}.jpg').write_bytes(b'')
        (folder / 'notes.txt').write_text('not an image')
    tool = _tool()
    everything = tool.find_egocentric_images(str(tmp_path), 100)
    assert len(everything) == 10 and all(p.endswith('.jpg') for p in everything)
    capped = tool.find_egocentric_images(str(tmp_path), 3)
    assert capped == [everything[0], everything[4], everything[9]]  # evenly spaced: both folders represented


def test_tool_names_the_locate_key_and_refuses_an_encoder_without_cls_attention_and_bad_arguments():
    from mmengine.config import Config

    tool = _tool()
    locate = Config.fromfile(osp.join(REPO, 'configs', 'baselines', 'locate_synthetic.py'))
    assert tool.saliency_heads_key(locate) == ('model.saliency_heads', (0, 1, 3))
    assert tool.saliency_heads_key(Config.fromfile(QUICK_CONFIG))[0] == 'model.part_discovery.saliency_heads'
    cfg = Config.fromfile(QUICK_CONFIG)
    cfg.model.backbone = dict(type='mmseg.ResNetV1c', depth=18)
    with pytest.raises(SystemExit, match='has no CLS attention'):
        tool.build_encoder(cfg, 'cpu')
    for bad in (['--ratio', '0'], ['--ratio', '1.5'], ['--max-images', '0'], ['--batch-size', '0']):
        with pytest.raises(SystemExit):
            tool.parse_args([QUICK_CONFIG, *bad])
