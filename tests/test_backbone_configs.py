"""Each backbone config has a generated-data twin that trains out of the box with random
weights (before: five attempts and 17 --cfg-options: classes, data root, pretrained files that cannot be
downloaded, ``train_cfg._delete_``).

Each twin is checked against its AGD20K config (same backbone and neck, only ``init_cfg`` dropped) and trained
for two iterations through tools/train.py on the generated tree (tiny crops so that it takes seconds).
"""

import copy
import glob
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
from conftest import REPO, tool_env
from mmengine.config import Config

from looptrans.datasets.classes import config_classes

BACKBONES = sorted(
    osp.basename(p)[len('looptrans_agd20k_') : -3]
    for p in glob.glob(osp.join(REPO, 'configs', 'backbones', 'looptrans_agd20k_*.py'))
)


def _twin(name):
    return osp.join(REPO, 'configs', 'backbones', f'looptrans_synthetic_{name}.py')


def _strip(cfg):
    cfg = copy.deepcopy(cfg)
    cfg.pop('init_cfg', None)
    if cfg.get('type') == 'DINOVisionTransformer':  # a ViT twin is the quick start's random 2-block ViT
        cfg.pop('arch', None)
        cfg.pop('layer_scale_init_value', None)
    return cfg


def test_every_backbone_config_has_a_twin():
    assert {'convnext_t', 'r50', 'swin_t'} <= set(BACKBONES)
    for name in BACKBONES:
        assert osp.isfile(_twin(name)), f'configs/backbones/looptrans_synthetic_{name}.py is missing'


@pytest.mark.parametrize('name', BACKBONES)
def test_twin_has_the_same_backbone_and_nothing_to_download(name):
    real = Config.fromfile(osp.join(REPO, 'configs', 'backbones', f'looptrans_agd20k_{name}.py'))
    twin = Config.fromfile(_twin(name))
    assert _strip(twin.model.backbone) == _strip(real.model.backbone)
    assert twin.model.get('neck') == real.model.get('neck')
    for head in ('cam_head', 'pixel_head'):  # how the heads read the backbone (multi-scale configs)
        for key in ('in_channels', 'in_index', 'input_transform'):
            assert twin.model[head].get(key) == real.model[head].get(key), (head, key)
    assert twin.model.get('descriptor', {}).get('type') == real.model.get('descriptor', {}).get('type')
    text = twin.pretty_text
    assert 'Pretrained' not in text and 'http' not in text and 'checkpoints/' not in text
    quick = Config.fromfile(osp.join(REPO, 'configs', 'looptrans_synthetic.py'))
    assert twin.model.cam_head.num_classes == len(config_classes(quick.train_dataloader.dataset))


@pytest.mark.parametrize('name', BACKBONES)
def test_part_discovery_uses_the_base_configs_dino_vit(name):
    """A backbone config that is no DINO ViT takes its part-discovery descriptor from the config it derives from
    (the official DINO ViT-S/16 of looptrans_agd20k.py, the random 2-block ViT of looptrans_synthetic.py)."""
    for data in ('agd20k', 'synthetic'):
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'backbones', f'looptrans_{data}_{name}.py'))
        if cfg.model.backbone.type == 'DINOVisionTransformer':
            assert cfg.model.get('descriptor') is None  # the ViT gives the descriptors itself
            continue
        base = Config.fromfile(osp.join(REPO, 'configs', f'looptrans_{data}.py'))
        assert cfg.model.descriptor == base.model.backbone


TINY = """
_base_ = [{twin!r}]
# 64 x 64 views instead of 224: the same model, seconds per step on a CPU
tiny_train_pipeline = [dict(type='LoadAffordanceViews'),
          dict(type='MultiViewTransform', transforms=[dict(type='Resize', scale=(64, 64), keep_ratio=False)]),
          dict(type='PackAffordanceInputs')]
tiny_test_pipeline = [dict(type='LoadAffordanceViews'),
         dict(type='MultiViewTransform', transforms=[dict(type='Resize', scale=(64, 64), keep_ratio=False)]),
         dict(type='LoadAffordanceGT'), dict(type='PackAffordanceInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={root!r}, pipeline=tiny_train_pipeline))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={root!r}, pipeline=tiny_test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1))
"""


@pytest.mark.slow
@pytest.mark.parametrize('name', BACKBONES)
def test_twin_trains_two_iterations_out_of_the_box(name, synthetic_root, tmp_path):
    config = tmp_path / f'tiny_{name}.py'
    config.write_text(TINY.format(twin=_twin(name), root=synthetic_root))
    env = tool_env()
    # pixel supervision from the first iteration, so that part discovery on the descriptor runs too
    proc = subprocess.run(
        [
            sys.executable,
            'tools/train.py',
            str(config),
            '--work-dir',
            str(tmp_path / 'work'),
            '--cfg-options',
            'custom_hooks.0.start_iter=0',
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    losses = re.findall(r'Iter\(train\) \[([12])/2\].*?\bloss: ([-\d.e]+)', log)
    assert [i for i, _ in losses] == ['1', '2'], log[-3000:]
    assert all(math.isfinite(float(v)) for _, v in losses), log[-3000:]  # two finite iterations
    assert 'KLD' in log.split('Iter(val)')[-1]
    assert osp.isfile(osp.join(str(tmp_path), 'work', 'iter_2.pth'))
