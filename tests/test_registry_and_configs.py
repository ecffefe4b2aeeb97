"""`import looptrans` registers everything in the mmseg registries; every shipped config loads and builds."""

import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS, VISUALIZERS, WEIGHT_INITIALIZERS

import looptrans  # noqa: F401
from looptrans.apis import without_pretrained
from looptrans.datasets.classes import config_classes

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
EXPECTED = {
    DATASETS: ['AGD20KDataset', 'HICOIIFDataset', 'OPRADataset', 'EPICHotspotsDataset'],
    TRANSFORMS: ['LoadAffordanceViews', 'MultiViewTransform', 'LoadAffordanceGT', 'PackAffordanceInputs'],
    METRICS: ['AffordanceMetric'],
    MODELS: [
        'LoopTrans',
        'SharedCAMHead',
        'PixelAffordanceHead',
        'NoiseHead',
        'PartDiscovery',
        'DINOVisionTransformer',
        'AffordanceDataPreprocessor',
        'DenoisingDistillationLoss',
        'MapDiceLoss',
        'MapMSELoss',
        'AffordanceCorrelationLoss',
        'LSTMTemporalAggregator',
        'TemporalAttentionAggregator',
        'LOCATE',
        'LOCATEConcentrationLoss',
        'LOCATEPrototypeLoss',
    ],
    HOOKS: ['PseudoMaskHook', 'AffordanceVisualizationHook'],
    WEIGHT_INITIALIZERS: ['TorchDefault'],
    VISUALIZERS: ['AffordanceVisualizer'],
}


@pytest.mark.parametrize('registry', list(EXPECTED), ids=lambda r: r.name)
def test_import_registers_modules_under_mmseg_scope(registry):
    assert registry.scope == 'mmseg'
    missing = [name for name in EXPECTED[registry] if registry.get(name) is None]
    assert not missing, f'{registry.name}: {missing} not registered'


CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True) if '_base_' not in p)


def test_every_expected_config_exists():
    names = {osp.relpath(p, osp.join(REPO, 'configs')) for p in CONFIGS}
    for required in (
        'looptrans_agd20k.py',
        'looptrans_agd20k_unseen.py',
        'looptrans_hico_iif.py',
        'looptrans_synthetic.py',
        *[
            f'ablations/looptrans_{data}_{row}.py'
            for data in ('agd20k', 'synthetic')
            for row in ('none', 'shared_cam', 'denoising', 'shared_cam_pixel', 'shared_cam_denoising', 'all')
        ],
        'backbones/looptrans_agd20k_r50.py',
        'backbones/looptrans_agd20k_convnext_t.py',
    ):
        assert required in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_loads_and_model_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert 'looptrans' in cfg.custom_imports['imports']
    init_default_scope('mmseg')
    model = MODELS.build(without_pretrained(cfg.model))  # no pretrained files on test machines
    # the class list comes from the dataset class (configs do not restate it): the heads must fit it
    classes = config_classes(cfg.test_dataloader.dataset)
    if classes is not None:  # None: a video benchmark's verbs, read from its annotation file
        assert model.num_classes == len(classes)
        assert config_classes(cfg.train_dataloader.dataset) in (None, classes)
    else:
        assert 'OPRA' in cfg.test_dataloader.dataset.type or 'EPIC' in cfg.test_dataloader.dataset.type
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert DATASETS.get(cfg[loader].dataset.type) is not None
