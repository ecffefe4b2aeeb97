"""DINOVisionTransformer against timm's ViT as an independent reference (random weights).

The timm model is saved in the official DINO layout (timm parameter names); our backbone loads it
through ``init_cfg=dict(type='Pretrained')`` and must reproduce, to 1e-5, the last block's attention
keys (recomputed from timm's ``blocks[-1].attn.qkv(blocks[-1].norm1(x_in))``), the CLS attention and
timm's final normed patch tokens.
"""

import argparse

import pytest
import timm
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from looptrans.models.backbones import DINOVisionTransformer

TOL = dict(atol=1e-5, rtol=1e-5)
# A tiny ViT for behaviour that does not depend on the size (freezing, gradients, arguments).
TINY = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


def _random_timm_vit(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    """A timm ViT whose every parameter (biases and LayerNorms too) is random and non-trivial.

    timm's own init is skipped (slow on CPU) and every tensor is drawn here instead: matrices with
    std 1/sqrt(fan_in) so attention is far from uniform, norm scales around 1, the rest std 0.1.
    """
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=0, weight_init='skip', **kwargs).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.ndim >= 2 and pname not in ('cls_token', 'pos_embed'):
                p.normal_(0, p[0].numel() ** -0.5)
            elif 'norm' in pname and pname.endswith('weight'):
                p.normal_(1, 0.1)
            else:
                p.normal_(0, 0.1)
    return model


@torch.no_grad()
def _timm_reference(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """Keys / CLS attention / normed patch tokens computed directly from timm's modules."""
    captured = {}
    last = model.blocks[-1]
    handle = last.register_forward_pre_hook(lambda m, args: captured.setdefault('x_in', args[0]))
    tokens = model.forward_features(x)
    handle.remove()
    # (B, N, 3C): q, k, v thirds, each with its heads concatenated.
    qkv = last.attn.qkv(last.norm1(captured['x_in']))
    B, N, C3 = qkv.shape
    C, heads = C3 // 3, last.attn.num_heads
    q, k, _ = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (C // heads) ** -0.5).softmax(dim=-1)
    return dict(
        keys_heads=qkv[:, 1:, C : 2 * C],
        keys_locate=k.permute(0, 2, 3, 1).flatten(-2)[:, 1:],
        cls_attn=attn[:, :, 0, 1:],
        feats=tokens[:, 1:],
    )


@pytest.fixture(scope='module')
def vits16(tmp_path_factory):
    model = _random_timm_vit('vit_small_patch16_224')
    path = tmp_path_factory.mktemp('ckpt') / 'dino_deitsmall16_pretrain.pth'
    torch.save(model.state_dict(), path)
    return model, str(path)


@pytest.fixture(scope='module')
def ours16(vits16):
    """Our ViT-S/16 (defaults) with the timm weights, loaded through init_cfg; not modified."""
    return _ours(vits16[1])


def _ours(checkpoint: str, **kwargs) -> DINOVisionTransformer:
    model = MODELS.build(
        dict(type='DINOVisionTransformer', init_cfg=dict(type='Pretrained', checkpoint=checkpoint), **kwargs)
    )
    model.init_weights()
    return model


def test_descriptors_match_timm_at_224(vits16, ours16):
    timm_model, _ = vits16
    x = torch.randn(2, 3, 224, 224)
    ref = _timm_reference(timm_model, x)
    out = ours16.forward_descriptors(x)
    assert out['keys'].shape == (2, 196, 384)
    assert out['cls_attn'].shape == (2, 6, 14, 14)
    assert out['feats'].shape == (2, 384, 14, 14)
    torch.testing.assert_close(out['keys'], ref['keys_locate'], **TOL)
    torch.testing.assert_close(out['cls_attn'].flatten(2), ref['cls_attn'], **TOL)
    torch.testing.assert_close(out['feats'].flatten(2).transpose(1, 2), ref['feats'], **TOL)
    # forward() is the drop-in mmseg output: a 1-tuple holding the same final features.
    (feats,) = ours16(x)
    torch.testing.assert_close(feats, out['feats'], **TOL)


def test_descriptors_match_timm_at_224x288(vits16, ours16):
    """Other input sizes: position embeddings resized bicubically (align_corners=False)."""
    timm_model, _ = vits16
    # Reference: a timm ViT laid out for 224x288 whose position embeddings are the 14x14 grid
    # resized to 14x18 by a plain bicubic interpolation.
    wide = timm.create_model(
        'vit_small_patch16_224', pretrained=False, num_classes=0, img_size=(224, 288), weight_init='skip'
    ).eval()
    state = timm_model.state_dict()
    pos = state['pos_embed']
    grid = pos[:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(14, 18), mode='bicubic', align_corners=False)
    state['pos_embed'] = torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)
    wide.load_state_dict(state)

    x = torch.randn(1, 3, 224, 288)
    ref = _timm_reference(wide, x)
    out = ours16.forward_descriptors(x)
    assert out['cls_attn'].shape == (1, 6, 14, 18)
    assert out['feats'].shape == (1, 384, 14, 18)
    torch.testing.assert_close(out['keys'], ref['keys_locate'], **TOL)
    torch.testing.assert_close(out['cls_attn'].flatten(2), ref['cls_attn'], **TOL)
    torch.testing.assert_close(out['feats'].flatten(2).transpose(1, 2), ref['feats'], **TOL)


def test_checkpoint_pos_embed_resized_on_load(vits16, ours16):
    """img_size=96 with 224 weights: the loaded grid equals the one resized at forward time."""
    _, ckpt = vits16
    at_96 = _ours(ckpt, img_size=96)
    assert at_96.pos_embed.shape == (1, 6 * 6 + 1, 384)
    x = torch.randn(1, 3, 96, 96)
    torch.testing.assert_close(at_96(x)[0], ours16(x)[0], **TOL)


@pytest.mark.parametrize('key_layout', ['locate', 'heads'])
def test_vit_s8_matches_timm_and_shapes(tmp_path, key_layout):
    timm_model = _random_timm_vit('vit_small_patch8_224', seed=1, img_size=64)
    torch.save(timm_model.state_dict(), tmp_path / 'dino_deitsmall8_pretrain.pth')
    ours = _ours(str(tmp_path / 'dino_deitsmall8_pretrain.pth'), patch_size=8, img_size=64, key_layout=key_layout)
    x = torch.randn(2, 3, 64, 64)
    ref = _timm_reference(timm_model, x)
    # The two key layouts are different orders of the same numbers.
    assert not torch.allclose(ref['keys_heads'], ref['keys_locate'])
    out = ours.forward_descriptors(x)
    assert out['keys'].shape == (2, 64, 384)
    torch.testing.assert_close(out['keys'], ref[f'keys_{key_layout}'], **TOL)
    torch.testing.assert_close(out['cls_attn'].flatten(2), ref['cls_attn'], **TOL)
    torch.testing.assert_close(out['feats'].flatten(2).transpose(1, 2), ref['feats'], **TOL)
    # Non-square input: shapes follow the patch grid.
    out = ours.forward_descriptors(torch.randn(1, 3, 64, 96))
    assert out['keys'].shape == (1, 8 * 12, 384)
    assert out['cls_attn'].shape == (1, 6, 8, 12)
    assert out['feats'].shape == (1, 384, 8, 12)


def test_vit_b16_shapes():
    model = DINOVisionTransformer(arch='deit-base', img_size=64)
    out = model.forward_descriptors(torch.randn(1, 3, 64, 64))
    assert out['keys'].shape == (1, 16, 768)
    assert out['cls_attn'].shape == (1, 12, 4, 4)
    assert out['feats'].shape == (1, 768, 4, 4)


def test_cls_attention_is_a_distribution_over_tokens(ours16):
    out = ours16.forward_descriptors(torch.randn(1, 3, 64, 64))
    # The CLS column is dropped, so each head's patch attention sums to slightly less than 1.
    sums = out['cls_attn'].flatten(2).sum(-1)
    assert torch.all(sums > 0) and torch.all(sums < 1)
    assert torch.all(out['cls_attn'] >= 0)


def test_out_type_keys_gives_key_map(vits16):
    _, ckpt = vits16
    ours = _ours(ckpt, out_type='keys')
    x = torch.randn(1, 3, 64, 96)
    (keys_map,) = ours(x)
    assert keys_map.shape == (1, 384, 4, 6)
    expected = ours.forward_descriptors(x)['keys'].transpose(1, 2).reshape(1, 384, 4, 6)
    torch.testing.assert_close(keys_map, expected, **TOL)


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match='key_layout'):
        DINOVisionTransformer(arch=TINY, key_layout='interleaved')
    with pytest.raises(ValueError, match='out_indices'):
        DINOVisionTransformer(arch=TINY, out_type='keys', out_indices=[1, 2])
    with pytest.raises(ValueError, match='with_cls_token'):
        DINOVisionTransformer(arch=TINY, with_cls_token=False)


# ---------------------------------------------------------------- freezing
def test_frozen_backbone_has_no_grads_and_stays_in_eval():
    model = DINOVisionTransformer(arch=TINY, img_size=32)
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(m.training for m in model.modules())
    torch.nn.Sequential(model).train()  # as a segmentor's .train() reaches its backbone
    assert not any(m.training for m in model.modules())
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    out = model.forward_descriptors(x)
    assert not any(v.requires_grad for v in out.values())
    assert not model(x)[0].requires_grad


def test_trainable_backbone_gets_gradients():
    model = DINOVisionTransformer(arch=TINY, img_size=32, frozen=False)
    model.train()
    assert all(m.training for m in model.modules())
    out = model.forward_descriptors(torch.randn(2, 3, 32, 32))
    (out['keys'].sum() + out['feats'].sum() + out['cls_attn'].sum()).backward()
    assert model.layers[-1].attn.qkv.weight.grad is not None
    assert model.layers[0].attn.qkv.weight.grad is not None
    assert model.ln1.weight.grad is not None  # the final norm feeds `feats`


def test_random_init_without_checkpoint():
    model = DINOVisionTransformer(arch=TINY, img_size=32)
    assert torch.count_nonzero(model.pos_embed) == 0
    model.init_weights()  # mmpretrain's scheme: truncated normal position embeddings
    assert 0 < model.pos_embed.std() < 0.05
    assert not any(p.requires_grad for p in model.parameters())


def test_frozen_stages_reapplied_after_train():
    model = DINOVisionTransformer(arch=TINY, img_size=32, frozen=False, frozen_stages=2)
    model.train()
    assert not model.layers[1].training and model.layers[2].training
    assert not any(p.requires_grad for p in model.layers[1].parameters())
    assert all(p.requires_grad for p in model.layers[2].parameters())


# ---------------------------------------------------------------- loading
def test_full_dino_checkpoint_layout_loads_teacher(vits16, ours16, tmp_path):
    """DINO full checkpoints: teacher/student with module.backbone.* and module.head.*, args."""
    timm_model, ckpt = vits16
    teacher = {f'module.backbone.{k}': v for k, v in timm_model.state_dict().items()}
    teacher['module.head.last_layer.weight_g'] = torch.ones(10, 1)
    student = {k: torch.zeros_like(v) for k, v in teacher.items()}
    full = dict(teacher=teacher, student=student, epoch=100, args=argparse.Namespace(arch='vit_small'))
    torch.save(full, tmp_path / 'full.pth')
    x = torch.randn(1, 3, 64, 64)
    plain = ours16.forward_descriptors(x)
    wrapped = _ours(str(tmp_path / 'full.pth')).forward_descriptors(x)
    for key in plain:
        torch.testing.assert_close(wrapped[key], plain[key], atol=0, rtol=0)


def test_wrong_checkpoint_names_unexpected_keys(tmp_path):
    from torchvision.models import resnet18

    path = tmp_path / 'resnet18.pth'
    torch.save({'state_dict': resnet18().state_dict()}, path)
    with pytest.raises(KeyError, match=r'unexpected keys \d+ \(conv1\.weight') as err:
        _ours(str(path))
    assert 'resnet18.pth' in str(err.value)
    assert 'missing keys 150 (cls_token, pos_embed, patch_embed.projection.weight' in str(err.value)


def test_missing_block_is_named(vits16, tmp_path):
    timm_model, _ = vits16
    state = timm_model.state_dict()
    del state['blocks.11.mlp.fc2.weight']
    torch.save(state, tmp_path / 'truncated.pth')
    with pytest.raises(KeyError, match=r'missing keys 1 \(layers\.11\.ffn\.layers\.1\.weight\)'):
        _ours(str(tmp_path / 'truncated.pth'))


def test_other_architecture_fails_naming_shapes(tmp_path):
    s8 = _random_timm_vit('vit_small_patch8_224', img_size=32)
    torch.save(s8.state_dict(), tmp_path / 'dino_deitsmall8_pretrain.pth')
    with pytest.raises(ValueError, match=r'patch_embed\.projection\.weight.*patch_size'):
        _ours(str(tmp_path / 'dino_deitsmall8_pretrain.pth'))  # a ViT-S/16 model


class _Unsafe:
    """A pickled Python object that torch.load(weights_only=True) must refuse."""


def test_checkpoint_with_python_objects_is_refused(vits16, tmp_path):
    timm_model, _ = vits16
    path = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': timm_model.state_dict(), 'extra': _Unsafe()}, path)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        _ours(str(path))


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        _ours(str(tmp_path / 'nowhere.pth'))


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(out_type='keys'),
        dict(out_type='featmap'),
        dict(out_type='featmap', out_indices=(0, 2), final_norm=True),
        dict(out_type='keys', key_layout='heads'),
    ],
)
def test_forward_with_descriptors_is_forward_and_the_descriptors_in_one_pass(kwargs):
    """What LoopTrans runs on a training batch: exactly forward(x), and forward_descriptors' keys / CLS attention."""
    torch.manual_seed(0)
    model = DINOVisionTransformer(arch=TINY, patch_size=16, frozen=True, **kwargs)
    x = torch.randn(2, 3, 48, 64)
    outs, desc = model.forward_with_descriptors(x)
    expected = model(x)
    assert len(outs) == len(expected) and all(torch.equal(a, b) for a, b in zip(outs, expected))
    reference = model.forward_descriptors(x)
    assert set(desc) == {'keys', 'cls_attn'}
    assert torch.equal(desc['keys'], reference['keys']) and torch.equal(desc['cls_attn'], reference['cls_attn'])
