"""The timm/DINO -> mmpretrain key mapping and tools/model_converters/dino2looptrans.py."""

import argparse

import pytest
import timm
import torch
from conftest import load_tool
from mmengine.runner import load_checkpoint
from mmpretrain.models.backbones import VisionTransformer

from looptrans.models.backbones import (
    DINOVisionTransformer,
    convert_dino_to_mmpretrain,
    infer_vit_arch,
    unwrap_dino_checkpoint,
)


def _load_tool():
    return load_tool('model_converters', 'dino2looptrans.py')


def _timm_state(name: str, meta: bool = False, **kwargs) -> dict:
    """State dict of a random timm ViT (official DINO layout); timm's slow init is skipped.

    ``meta=True`` allocates nothing (names and shapes only), for tests that never read values.
    """
    torch.manual_seed(0)
    with torch.device('meta' if meta else 'cpu'):
        model = timm.create_model(name, pretrained=False, num_classes=0, weight_init='skip', **kwargs)
    if not meta:
        with torch.no_grad():  # skipped init leaves some tensors uninitialised: draw them all
            for p in model.parameters():
                p.normal_(0, 0.05)
    return model.state_dict()


def _our_keys_and_shapes(**kwargs) -> dict:
    with torch.device('meta'):
        return {k: v.shape for k, v in DINOVisionTransformer(**kwargs).state_dict().items()}


# (timm model, our constructor args)
CASES = {
    'ViT-S/16': ('vit_small_patch16_224', dict(arch='deit-small', patch_size=16)),
    'ViT-S/8': ('vit_small_patch8_224', dict(arch='deit-small', patch_size=8)),
    'ViT-B/16': ('vit_base_patch16_224', dict(arch='deit-base', patch_size=16)),
}


@pytest.mark.parametrize('case', list(CASES))
def test_conversion_has_no_missing_or_unexpected_keys(case):
    timm_name, our_args = CASES[case]
    state = _timm_state(timm_name, meta=True)
    converted = convert_dino_to_mmpretrain(state)
    ours = _our_keys_and_shapes(**our_args)
    assert set(converted) == set(ours)
    for key, value in converted.items():
        assert value.shape == ours[key], key
    assert len(converted) == len(state)
    # Values are carried over, not copied or altered.
    assert converted['layers.3.ffn.layers.0.0.weight'] is state['blocks.3.mlp.fc1.weight']
    assert converted['ln1.bias'] is state['norm.bias']
    info = infer_vit_arch(converted)
    assert (info['arch'], info['patch_size']) == (our_args['arch'], our_args['patch_size'])


def test_mapping_of_every_parameter_kind():
    state = {
        k: torch.zeros(1)
        for k in [
            'cls_token',
            'pos_embed',
            'patch_embed.proj.weight',
            'patch_embed.proj.bias',
            'blocks.10.norm1.weight',
            'blocks.10.attn.qkv.bias',
            'blocks.10.attn.proj.weight',
            'blocks.10.norm2.bias',
            'blocks.10.mlp.fc1.bias',
            'blocks.10.mlp.fc2.weight',
            'norm.weight',
        ]
    }
    assert list(convert_dino_to_mmpretrain(state)) == [
        'cls_token',
        'pos_embed',
        'patch_embed.projection.weight',
        'patch_embed.projection.bias',
        'layers.10.ln1.weight',
        'layers.10.attn.qkv.bias',
        'layers.10.attn.proj.weight',
        'layers.10.ln2.bias',
        'layers.10.ffn.layers.0.0.bias',
        'layers.10.ffn.layers.1.weight',
        'ln1.weight',
    ]


def test_mmpretrain_names_pass_through_and_foreign_keys_are_kept():
    converted = convert_dino_to_mmpretrain(_timm_state('vit_small_patch16_224', meta=True))
    assert list(convert_dino_to_mmpretrain(converted)) == list(converted)
    foreign = convert_dino_to_mmpretrain({'conv1.weight': torch.zeros(1)})
    assert list(foreign) == ['conv1.weight']  # left for the strict load to report


def test_mixed_layouts_are_rejected():
    with pytest.raises(ValueError, match=r"'ln1.weight' and 'norm.weight' both map to"):
        convert_dino_to_mmpretrain({'ln1.weight': torch.zeros(1), 'norm.weight': torch.zeros(1)})


def test_unwrap_full_dino_checkpoint():
    state = _timm_state('vit_small_patch16_224', meta=True)
    teacher = {f'module.backbone.{k}': v for k, v in state.items()}
    teacher['module.head.mlp.0.weight'] = torch.zeros(3)
    student = {k: v.clone() for k, v in teacher.items()}
    full = dict(teacher=teacher, student=student, args=argparse.Namespace(), epoch=1)
    got = unwrap_dino_checkpoint(full)
    assert list(got) == list(state)
    assert all(got[k] is state[k] for k in state)
    got_student = unwrap_dino_checkpoint(full, source='student')
    assert got_student['cls_token'] is student['module.backbone.cls_token']
    # mmseg / mmengine wrappers around mmpretrain names.
    seg = {'meta': {}, 'state_dict': {'backbone.ln1.weight': torch.ones(2), 'decode_head.conv.weight': torch.ones(1)}}
    assert list(unwrap_dino_checkpoint(seg)) == ['ln1.weight']
    with pytest.raises(ValueError, match='source'):
        unwrap_dino_checkpoint(full, source='ema')


def test_cli_converts_and_result_loads_into_plain_mmpretrain(tmp_path, capsys):
    state = _timm_state('vit_small_patch16_224')
    src, dst = tmp_path / 'dino_deitsmall16_pretrain.pth', tmp_path / 'out' / 'vits16.pth'
    torch.save(state, src)
    assert _load_tool().main([str(src), str(dst)]) == 0
    printed = capsys.readouterr().out
    assert f'Read {len(state)} backbone tensors' in printed
    assert f'wrote {len(state)} tensors (arch=deit-small, patch_size=16' in printed

    saved = torch.load(dst, weights_only=True)
    assert set(saved) == set(_our_keys_and_shapes())
    torch.testing.assert_close(saved['layers.4.attn.qkv.bias'], state['blocks.4.attn.qkv.bias'])
    # The converted file is an ordinary mmpretrain checkpoint: MMEngine's loader puts it, strictly,
    # into mmpretrain's own VisionTransformer, which then computes what ours does.
    plain = VisionTransformer(arch='deit-small', out_type='featmap')
    load_checkpoint(plain, str(dst), strict=True)
    plain.eval()
    ours = DINOVisionTransformer(init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    ours.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], plain(x)[0], atol=1e-5, rtol=1e-5)


def test_cli_reads_dino_full_checkpoint(tmp_path, capsys):
    state = _timm_state('vit_small_patch16_224', img_size=32)
    full = dict(
        teacher={f'module.backbone.{k}': v for k, v in state.items()},
        student={f'module.backbone.{k}': v + 1 for k, v in state.items()},
        args=argparse.Namespace(arch='vit_small'),
    )
    src = tmp_path / 'dino_deitsmall16_full_checkpoint.pth'
    torch.save(full, src)
    for source, offset in (('teacher', 0), ('student', 1)):
        dst = tmp_path / f'{source}.pth'
        assert _load_tool().main([str(src), str(dst), '--source', source]) == 0
        saved = torch.load(dst, weights_only=True)
        assert len(saved) == len(state)
        torch.testing.assert_close(saved['ln1.weight'], state['norm.weight'] + offset)
    assert 'no missing or unexpected keys' in capsys.readouterr().out


def test_cli_rejects_non_vit(tmp_path):
    from torchvision.models import resnet18

    src = tmp_path / 'resnet.pth'
    torch.save(resnet18().state_dict(), src)
    with pytest.raises(KeyError, match='not a ViT'):
        _load_tool().main([str(src), str(tmp_path / 'out.pth')])
    assert not (tmp_path / 'out.pth').exists()
