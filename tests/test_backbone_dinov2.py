"""DINOv2 ViT-S/14 in DINOVisionTransformer: the official weight layout, references, configs and a short training.

Random weights are saved in the layout of the official ``dinov2_vits14_pretrain.pth`` (timm's DINOv2 ViT-S/14 has
the same names; the official file adds ``mask_token``). The references are independent of our loader and backbone:

- mmpretrain's own ``VisionTransformer(arch='dinov2-small', patch_size=14, layer_scale_init_value=...)``, loaded
  through a key map written out here (not our converter), for features, keys and CLS attention;
- timm's ViT at 518 x 518, the official grid (no interpolation), for the layer-scale placement.
"""

import math
import os.path as osp
import re

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import REPO, load_tool, run_tool, tiny_options
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.models.backbones import VisionTransformer
from mmseg.registry import MODELS

from looptrans.apis import without_pretrained
from looptrans.models.backbones import DINOVisionTransformer, infer_vit_arch, load_dino_state_dict

TOL = dict(atol=1e-5, rtol=1e-5)
AGD20K_CONFIG = osp.join(REPO, 'configs', 'backbones', 'looptrans_agd20k_dinov2_vits14.py')
TWIN_CONFIG = osp.join(REPO, 'configs', 'backbones', 'looptrans_synthetic_dinov2_vits14.py')
LAYER_SCALE = 1e-5
#: The names of the official dinov2_vits14_pretrain.pth (facebookresearch/dinov2, hub backbone, block_chunks=0).
OFFICIAL_KEYS = re.compile(
    r'^(cls_token|pos_embed|mask_token|patch_embed\.proj\.(weight|bias)|norm\.(weight|bias)'
    r'|blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)'
    r'|blocks\.\d+\.ls[12]\.gamma)$'
)
#: Official DINOv2 name -> mmpretrain VisionTransformer name, applied in order (substring replacements).
TO_MMPRETRAIN = [
    ('patch_embed.proj.', 'patch_embed.projection.'),
    ('.norm1.', '.ln1.'),
    ('.norm2.', '.ln2.'),
    ('.mlp.fc1.', '.ffn.layers.0.0.'),
    ('.mlp.fc2.', '.ffn.layers.1.'),
    ('.ls1.gamma', '.attn.gamma1.weight'),
    ('.ls2.gamma', '.ffn.gamma2.weight'),
    ('blocks.', 'layers.'),
]


def _random_dinov2_vits14(seed: int = 0, depth: int = 12) -> torch.nn.Module:
    """timm's DINOv2 ViT-S/14 (518 grid) with every tensor random and non-trivial (LayerScale factors too)."""
    torch.manual_seed(seed)
    model = timm.create_model(
        'vit_small_patch14_dinov2', pretrained=False, num_classes=0, weight_init='skip', depth=depth
    ).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2 and name not in ('cls_token', 'pos_embed'):
                p.normal_(0, p[0].numel() ** -0.5)
            elif 'norm' in name and name.endswith('weight'):
                p.normal_(1, 0.1)
            elif name.endswith('gamma'):
                p.uniform_(0.05, 0.5)  # learned factors, far from the 1e-5 init
            else:
                p.normal_(0, 0.1)
    return model


def _official_state(model: torch.nn.Module) -> dict:
    """The state dict as the official file holds it: timm's names plus the training-only mask token."""
    state = dict(model.state_dict())
    state['mask_token'] = torch.randn(1, state['cls_token'].shape[-1])
    return state


def _mmpretrain_state(official: dict) -> dict:
    state = {}
    for key, value in official.items():
        if key == 'mask_token':
            continue
        new = 'ln1.' + key[len('norm.') :] if key.startswith('norm.') else key
        for old, repl in TO_MMPRETRAIN:
            new = new.replace(old, repl)
        state[new] = value
    return state


def _dinov2_pos_embed(pos: torch.Tensor, grid: tuple, offset: float = 0.1) -> torch.Tensor:
    """Position embeddings resized as DINOv2's ``interpolate_pos_encoding`` does (bicubic, scale factor
    ``(target + offset) / source``, no antialias)."""
    side = int(math.sqrt(pos.shape[1] - 1))
    patch = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = ((grid[0] + offset) / side, (grid[1] + offset) / side)
    patch = F.interpolate(patch, scale_factor=scale, mode='bicubic')
    assert tuple(patch.shape[-2:]) == tuple(grid)
    return torch.cat([pos[:, :1], patch.flatten(2).transpose(1, 2)], dim=1)


@torch.no_grad()
def _reference(model: VisionTransformer, x: torch.Tensor) -> dict:
    """Final patch tokens, last-block keys (LOCATE's layout) and CLS attention from mmpretrain's own modules."""
    captured = {}
    last = model.layers[-1]
    handle = last.register_forward_pre_hook(lambda m, args: captured.setdefault('x_in', args[0]))
    (feats,) = model(x)
    handle.remove()
    qkv = last.attn.qkv(last.ln1(captured['x_in']))
    B, N, C3 = qkv.shape
    heads = last.attn.num_heads
    q, k, _ = qkv.reshape(B, N, 3, heads, C3 // 3 // heads).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (C3 // 3 // heads) ** -0.5).softmax(dim=-1)
    return dict(feats=feats, keys=k.permute(0, 2, 3, 1).flatten(-2)[:, 1:], cls_attn=attn[:, :, 0, 1:])


def _mmpretrain_vit(state: dict, img_size: int = 518) -> VisionTransformer:
    model = VisionTransformer(
        arch='dinov2-small', patch_size=14, img_size=img_size, layer_scale_init_value=LAYER_SCALE, out_type='featmap'
    )
    model.load_state_dict(state, strict=True)
    model.eval()  # mmpretrain's train() returns None
    return model


def _assert_matches(out: dict, ref: dict) -> None:
    torch.testing.assert_close(out['feats'], ref['feats'], **TOL)
    torch.testing.assert_close(out['keys'], ref['keys'], **TOL)
    torch.testing.assert_close(out['cls_attn'].flatten(2), ref['cls_attn'], **TOL)


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    """(timm model, official state dict, path of the saved file)."""
    model = _random_dinov2_vits14()
    state = _official_state(model)
    path = tmp_path_factory.mktemp('ckpt') / 'dinov2_vits14_pretrain.pth'
    torch.save(state, path)
    return model, state, str(path)


def _config_backbone(checkpoint: str, **overrides) -> DINOVisionTransformer:
    """The backbone of configs/backbones/looptrans_agd20k_dinov2_vits14.py, reading ``checkpoint``."""
    cfg = Config.fromfile(AGD20K_CONFIG).model.backbone
    cfg.init_cfg.checkpoint = checkpoint
    cfg.update(overrides)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def ours(official):
    return _config_backbone(official[2])


# ---------------------------------------------------------------- layout and loading
def test_fixture_has_the_official_layout(official):
    _, state, _ = official
    assert all(OFFICIAL_KEYS.match(k) for k in state), [k for k in state if not OFFICIAL_KEYS.match(k)]
    assert len(state) == 4 + 1 + 2 + 12 * 14
    assert tuple(state['pos_embed'].shape) == (1, 1370, 384)
    assert tuple(state['patch_embed.proj.weight'].shape) == (384, 3, 14, 14)


def test_official_file_loads_as_is(official, ours):
    _, state, path = official
    loaded = load_dino_state_dict(path)
    assert 'mask_token' not in loaded and len(loaded) == len(state) - 1
    torch.testing.assert_close(ours.layers[3].attn.gamma1.weight, state['blocks.3.ls1.gamma'], atol=0, rtol=0)
    torch.testing.assert_close(ours.layers[11].ffn.gamma2.weight, state['blocks.11.ls2.gamma'], atol=0, rtol=0)
    torch.testing.assert_close(ours.pos_embed, state['pos_embed'], atol=0, rtol=0)  # 37 x 37 kept
    assert ours.patch_resolution == (37, 37)
    assert not any(p.requires_grad for p in ours.parameters())


# ---------------------------------------------------------------- references
def test_equals_mmpretrain_vit_at_224(official):
    """mmpretrain's convention (interpolate_offset=0): the 37 x 37 grid resized to 16 x 16 by size."""
    _, state, path = official
    ours = _config_backbone(path, interpolate_offset=0.0)
    reference = _mmpretrain_vit(_mmpretrain_state(state))
    x = torch.randn(2, 3, 224, 224)
    out = ours.forward_descriptors(x)
    assert out['keys'].shape == (2, 256, 384)
    assert out['cls_attn'].shape == (2, 6, 16, 16)
    assert out['feats'].shape == (2, 384, 16, 16)
    _assert_matches(out, _reference(reference, x))
    torch.testing.assert_close(ours(x)[0], out['feats'], **TOL)


def test_config_backbone_interpolates_as_dinov2_at_224(official, ours):
    """The config's interpolate_offset=0.1: mmpretrain's ViT laid out for 224 whose 16 x 16 position grid is the
    37 x 37 one resized as DINOv2's code does gives the same features, keys and CLS attention."""
    _, state, _ = official
    mm_state = _mmpretrain_state(state)
    mm_state['pos_embed'] = _dinov2_pos_embed(state['pos_embed'], (16, 16))
    reference = _mmpretrain_vit(mm_state, img_size=224)
    x = torch.randn(2, 3, 224, 224)
    out = ours.forward_descriptors(x)
    assert out['cls_attn'].shape == (2, 6, 16, 16)
    _assert_matches(out, _reference(reference, x))
    (feats,) = ours(x)
    torch.testing.assert_close(feats, out['feats'], **TOL)
    # The two conventions sample the grid at other positions: not the same numbers.
    by_size = _config_backbone(official[2], interpolate_offset=0.0)
    assert not torch.allclose(by_size._pos_embed((16, 16)), ours._pos_embed((16, 16)), atol=1e-4)


def test_non_square_input_interpolates_each_side(official, ours):
    _, state, _ = official
    mm_state = _mmpretrain_state(state)
    mm_state['pos_embed'] = _dinov2_pos_embed(state['pos_embed'], (16, 20))
    reference = VisionTransformer(
        arch='dinov2-small', patch_size=14, img_size=(224, 280), layer_scale_init_value=LAYER_SCALE, out_type='featmap'
    )
    reference.load_state_dict(mm_state, strict=True)
    reference.eval()
    x = torch.randn(1, 3, 224, 280)
    out = ours.forward_descriptors(x)
    assert out['keys'].shape == (1, 320, 384)
    assert out['cls_attn'].shape == (1, 6, 16, 20)
    _assert_matches(out, _reference(reference, x))


def test_equals_timm_at_the_official_grid(official, ours):
    """At 518 x 518 nothing is interpolated: the final normed tokens equal timm's DINOv2 ViT-S/14."""
    timm_model, _, _ = official
    x = torch.randn(1, 3, 518, 518)
    with torch.no_grad():
        expected = timm_model.forward_features(x)[:, 1:]
    (feats,) = ours(x)
    assert feats.shape == (1, 384, 37, 37)
    torch.testing.assert_close(feats.flatten(2).transpose(1, 2), expected, **TOL)


# ---------------------------------------------------------------- converter
def test_converter_writes_mmpretrain_names(official, tmp_path, capsys):
    _, state, path = official
    dst = tmp_path / 'dinov2_vits14_mmpretrain.pth'
    assert load_tool('model_converters', 'dino2looptrans.py').main([path, str(dst)]) == 0
    printed = capsys.readouterr().out
    assert f'Read {len(state) - 1} backbone tensors' in printed  # mask_token dropped
    assert 'arch=dinov2-small, patch_size=14' in printed
    assert 'img_size=518, layer_scale_init_value=1e-05, interpolate_offset=0.1' in printed
    saved = torch.load(dst, weights_only=True)
    assert saved.keys() == _mmpretrain_state(state).keys()
    info = infer_vit_arch(saved)
    assert (info['arch'], info['patch_size'], info['num_patches'], info['layer_scale']) == (
        'dinov2-small',
        14,
        1369,
        True,
    )
    # a plain mmpretrain ViT takes the converted file strictly
    reference = _mmpretrain_vit(saved)
    torch.testing.assert_close(reference.layers[5].ffn.gamma2.weight, state['blocks.5.ls2.gamma'], atol=0, rtol=0)


# ---------------------------------------------------------------- errors
def test_dinov2_file_without_layer_scale_names_the_fix(official):
    with pytest.raises(KeyError, match=r'unexpected keys 24 \(layers\.0\.attn\.gamma1\.weight') as err:
        _config_backbone(official[2], layer_scale_init_value=0.0)
    assert 'set layer_scale_init_value=1e-5' in str(err.value)


def test_dino_file_into_dinov2_model_names_the_fix(tmp_path):
    dino = timm.create_model('vit_small_patch16_224', pretrained=False, num_classes=0, weight_init='skip')
    torch.save(dino.state_dict(), tmp_path / 'dino_deitsmall16_pretrain.pth')
    with pytest.raises(KeyError, match=r'missing keys 24 \(layers\.0\.attn\.gamma1\.weight') as err:
        _config_backbone(str(tmp_path / 'dino_deitsmall16_pretrain.pth'), patch_size=16, img_size=224)
    assert 'DINO rather than DINOv2 weights?' in str(err.value)


@pytest.mark.parametrize('offset', [-0.1, 1.0])
def test_bad_interpolate_offset_fails_clearly(offset):
    with pytest.raises(ValueError, match=r'interpolate_offset must be in \[0, 1\)'):
        DINOVisionTransformer(arch='dinov2-small', patch_size=14, interpolate_offset=offset)


# ---------------------------------------------------------------- configs
def test_configs_share_one_backbone_dict():
    real = Config.fromfile(AGD20K_CONFIG)
    twin = Config.fromfile(TWIN_CONFIG)
    quick = Config.fromfile(osp.join(REPO, 'configs', 'looptrans_synthetic.py'))
    backbone = real.model.backbone
    assert (backbone.arch, backbone.patch_size, backbone.img_size) == ('dinov2-small', 14, 518)
    assert backbone.layer_scale_init_value > 0 and backbone.interpolate_offset == 0.1 and backbone.frozen
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth')
    assert 'descriptor' not in real.model  # the ViT gives the part-discovery descriptors itself
    assert real.model.cam_head.in_channels == 384
    # the twin: the same DINOv2 backbone, with the quick start's random 2-block size and no file to download
    differs = {'arch', 'init_cfg', 'layer_scale_init_value'}
    assert {k: v for k, v in twin.model.backbone.items() if k not in differs} == {
        k: v for k, v in backbone.items() if k not in differs
    }
    assert twin.model.backbone.arch == quick.model.backbone.arch and twin.model.backbone.get('init_cfg') is None
    assert 'Pretrained' not in twin.pretty_text and 'checkpoints/' not in twin.pretty_text
    for key in ('train_dataloader', 'test_dataloader', 'train_cfg', 'optim_wrapper', 'custom_imports'):
        assert twin[key] == quick[key], key
    assert {k: v for k, v in twin.model.items() if k != 'backbone'} == {
        k: v for k, v in quick.model.items() if k != 'backbone'
    }


def test_segmentor_descriptors_on_a_16x16_grid():
    """The AGD20K config's model (random weights): one ViT pass gives the heads' keys and part discovery's
    keys and CLS attention on the 16 x 16 grid of a 224 input."""
    init_default_scope('mmseg')
    model = MODELS.build(without_pretrained(Config.fromfile(AGD20K_CONFIG).model)).eval()
    assert model.shares_descriptor_pass and model.backbone.out_type == 'keys'  # the heads read the last keys
    with torch.no_grad():
        feats, desc = model._encode(torch.randn(3, 3, 224, 224), num_desc=2)
    assert [tuple(f.shape) for f in feats] == [(3, 384, 16, 16)]
    assert desc['keys'].shape == (2, 256, 384)
    assert desc['cls_attn'].shape == (2, 6, 16, 16)


@pytest.mark.slow
def test_twin_trains_two_iterations(synthetic_root, tmp_path):
    """tools/train.py on the generated data: 2 finite iterations with part discovery from the first one."""
    work = tmp_path / 'work'
    opts = tiny_options(synthetic_root, max_iters=2, ckpt_interval=2)
    proc = run_tool(
        ['tools/train.py', TWIN_CONFIG, '--work-dir', str(work), '--cfg-options', *opts, 'custom_hooks.0.start_iter=0']
    )
    log = proc.stdout + proc.stderr
    losses = re.findall(r'Iter\(train\) \[\s*(\d)/2\].*?\bloss: ([-\d.e]+)', log)
    assert [int(i) for i, _ in losses] == [1, 2], log[-3000:]
    assert all(math.isfinite(float(v)) for _, v in losses)
    assert 'pm_valid' in log and 'loss_pixel_dice' in log
    assert 'KLD' in log.split('Iter(val)')[-1]
    assert osp.isfile(work / 'iter_2.pth')
