"""The shape of configs/: every config's heads fit its dataset's class list, configs/metafile.yml names each model
after its config file, and the facts the configs share are stated once (one test pipeline, one DINO ViT per
model).

The checks are functions returning their problems as sentences that name the file, the key and the fix, so that a
failing run says what to change; each is also run on a deliberately broken config or metafile.
"""

import glob
import os.path as osp
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np
import pytest
import yaml
from conftest import QUICK_CONFIG, REPO
from mmengine.config import Config

import looptrans  # noqa: F401  (registers the dataset types that config_classes looks up)
import looptrans.testing  # noqa: F401  (registers SyntheticAGD20KDataset)
from looptrans.datasets.classes import config_classes
from looptrans.datasets.transforms import LoadAffordanceGT
from looptrans.evaluation import hotspots_scores
from looptrans.testing import SYNTHETIC_EPIC_VERBS, SYNTHETIC_OPRA_VERBS

CONFIG_DIR = osp.join(REPO, 'configs')
METAFILE = osp.join(CONFIG_DIR, 'metafile.yml')
#: every runnable config (the _base_ files are fragments)
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep)
)
TOP_LEVEL = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
HEADS = ('cam_head', 'pixel_head')
#: The classes of a video benchmark are the verbs of its annotations.json, so no config holds them: the generated
#: trees write the verb tuples of looptrans.testing, the published annotation files have these many verbs
#: (OPRA: hold, touch, rotate, push, pull, pick up, put down; EPIC-Hotspots: 20).
VIDEO_VERBS: Dict[str, int] = {
    'data/synthetic_opra': len(SYNTHETIC_OPRA_VERBS),
    'data/synthetic_epic': len(SYNTHETIC_EPIC_VERBS),
    'data/opra': 7,
    'data/epic': 20,
}
#: mmseg's {method}_{backbone}_{schedule}_{dataset}[_{test dataset or variant}...]: lower-case words joined by
#: '-' inside a part, parts joined by '_', the schedule in epochs ('15e') or iterations ('200iter').
ALIAS = re.compile(r'^[a-z]+_[a-z0-9.-]+_\d+(e|iter)_[a-z0-9-]+(_[a-z0-9-]+)*$')


# ---------------------------------------------------------------- class counts
def expected_class_count(dataset: Mapping) -> Optional[int]:
    """How many classes a dataset config yields: its class list where the config determines it, else the verb
    count of the video benchmark at its ``data_root``; None when neither is known."""
    classes = config_classes(dataset)
    if classes is not None:
        return len(classes)
    return VIDEO_VERBS.get(dataset.get('data_root'))


def class_count_problems(cfg: Config, name: str) -> List[str]:
    """Every way the class count of config ``name`` disagrees with itself or with its datasets."""
    heads = {head: cfg.model[head].num_classes for head in HEADS if cfg.model.get(head)}
    problems = []
    if len(set(heads.values())) > 1:
        problems.append(
            f'{name}: the heads disagree on the class count ({heads}); set every head from one '
            '`num_classes = N` variable: model = dict(cam_head=dict(num_classes=num_classes), '
            'pixel_head=dict(num_classes=num_classes))'
        )
    if 'num_classes' in cfg and any(count != cfg.num_classes for count in heads.values()):
        problems.append(
            f'{name}: top-level `num_classes = {cfg.num_classes}` but the heads have {heads}; the variable must be '
            'the count the heads use (set it where the heads are set)'
        )
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        expected = expected_class_count(dataset)
        if expected is None:
            problems.append(
                f'{name}: {loader}.dataset ({dataset.get("type")} at {dataset.get("data_root")!r}) has no known class '
                'count; give it metainfo=dict(classes=...) or add its verb count to VIDEO_VERBS in this test'
            )
            continue
        for head, count in heads.items():
            if count != expected:
                problems.append(
                    f'{name}: model.{head}.num_classes = {count}, but {loader}.dataset ({dataset.get("type")}) has '
                    f'{expected} classes; set `num_classes = {expected}` in the config and the heads from it'
                )
    return problems


@pytest.mark.parametrize('name', CONFIGS)
def test_heads_fit_the_class_list_of_every_dataset(name):
    assert class_count_problems(Config.fromfile(osp.join(REPO, name)), name) == []


def _quick_variant(tmp_path, body: str) -> Config:
    path = tmp_path / 'variant.py'
    path.write_text(f'_base_ = [{QUICK_CONFIG!r}]\n{body}\n')
    return Config.fromfile(str(path))


def test_a_head_with_another_class_count_is_reported(tmp_path):
    cfg = _quick_variant(tmp_path, 'model = dict(pixel_head=dict(num_classes=8))')
    problems = class_count_problems(cfg, 'variant.py')
    assert any('heads disagree' in p and "'pixel_head': 8" in p for p in problems), problems
    assert any('model.pixel_head.num_classes = 8' in p and 'has 7 classes' in p for p in problems), problems


def test_a_stale_num_classes_variable_is_reported(tmp_path):
    cfg = _quick_variant(tmp_path, 'num_classes = 5')  # the heads keep the quick start's 7
    (problem,) = class_count_problems(cfg, 'variant.py')
    assert 'top-level `num_classes = 5`' in problem and 'variant.py' in problem


def test_a_dataset_of_unknown_class_count_is_reported(tmp_path):
    cfg = _quick_variant(
        tmp_path, "test_dataloader = dict(dataset=dict(_delete_=True, type='OPRADataset', data_root='data/mine'))"
    )
    (problem,) = class_count_problems(cfg, 'variant.py')
    assert 'test_dataloader.dataset (OPRADataset' in problem and 'VIDEO_VERBS' in problem


# ---------------------------------------------------------------- metafile
def metafile_problems(meta: Mapping[str, Any], top_level: Sequence[str], repo: str = REPO) -> List[str]:
    """Every way ``meta`` (a parsed metafile) fails to be an index of configs named after their files."""
    problems = []
    models = meta.get('Models') or []
    if not models:
        problems.append('metafile: no `Models` entries')
    names = [model['Name'] for model in models if model.get('Name')]
    aliases = [model['Alias'] for model in models if model.get('Alias')]
    for label, values in (('Name', names), ('Alias', aliases)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            problems.append(f'metafile: {label} {repeated} appears more than once; every model has its own')
    for model in models:
        name, config = model.get('Name'), model.get('Config') or ''
        if not osp.isfile(osp.join(repo, config)):
            problems.append(f'metafile: model {name!r} points at {config!r}, which does not exist')
        stem = osp.splitext(osp.basename(config))[0]
        if name != stem:
            problems.append(
                f'metafile: model {name!r} has config {config!r}; the Name must be the file name: `Name: {stem}`'
            )
        if model.get('In Collection') != 'LoopTrans':
            problems.append(f"metafile: model {name!r} needs `In Collection: LoopTrans`")
        if not ALIAS.match(model.get('Alias') or ''):
            problems.append(
                f'metafile: model {name!r} has Alias {model.get("Alias")!r}, not of the form '
                '{method}_{backbone}_{schedule}_{dataset} (docs/configs.md, "Config naming")'
            )
    listed = {model.get('Config') for model in models}
    for config in top_level:
        if config not in listed:
            stem = osp.splitext(osp.basename(config))[0]
            problems.append(f'metafile: {config} has no entry; add one with `Name: {stem}` and `Config: {config}`')
    return problems


def _metafile() -> Dict[str, Any]:
    with open(METAFILE) as f:
        return yaml.safe_load(f)


def test_metafile_names_every_top_level_config_after_its_file():
    assert TOP_LEVEL  # the glob found the configs
    assert metafile_problems(_metafile(), TOP_LEVEL) == []


def test_metafile_problems_name_the_entry_and_the_fix():
    meta = _metafile()
    first = dict(meta['Models'][0])
    renamed = dict(first, Name='looptrans_dino-vits16_agd20k-seen')
    missing = dict(first, Name='gone', Alias='looptrans_x_15e_gone', Config='configs/gone.py')
    bad_alias = dict(meta['Models'][1], Alias='AGD20K unseen')
    rest = [m for m in meta['Models'][2:] if m['Config'] != 'configs/looptrans_opra.py']
    broken = dict(meta, Models=[renamed, missing, bad_alias, first, *rest])
    text = '\n'.join(metafile_problems(broken, TOP_LEVEL))
    assert "'looptrans_dino-vits16_agd20k-seen' has config 'configs/looptrans_agd20k.py'" in text
    assert '`Name: looptrans_agd20k`' in text
    assert "'gone' points at 'configs/gone.py', which does not exist" in text
    assert "Alias 'AGD20K unseen'" in text
    assert "Alias ['looptrans_dino-vits16_5e_agd20k-seen'] appears more than once" in text
    assert 'configs/looptrans_opra.py has no entry' in text


# ---------------------------------------------------------------- shared facts
TRANSFER = {
    'configs/looptrans_agd20k_to_opra.py': 'configs/_base_/datasets/opra.py',
    'configs/looptrans_agd20k_to_epic.py': 'configs/_base_/datasets/epic_hotspots.py',
    'configs/looptrans_synthetic_to_opra.py': 'configs/_base_/datasets/synthetic_opra.py',
}


@pytest.mark.parametrize('transfer', sorted(TRANSFER))
def test_transfer_configs_test_on_the_video_benchmarks_own_test_set(transfer):
    """Image -> video configs test on the benchmark's test set as its own config loads it (type, root,
    annotation file, pipeline), with the model's classes as targets."""
    cfg = Config.fromfile(osp.join(REPO, transfer))
    video = Config.fromfile(osp.join(REPO, TRANSFER[transfer])).test_dataloader.dataset
    dataset = cfg.test_dataloader.dataset
    for key in ('type', 'data_root', 'ann_file', 'mode', 'pipeline'):
        assert dataset[key] == video[key], key
    assert dataset.verb_map and dataset.classes_from
    assert cfg.test_evaluator.protocol == 'hotspots'


def test_gt_resized_in_the_pipeline_scores_the_same_with_the_hotspots_protocol(tmp_path):
    """The one test pipeline resizes GT maps to 224x224 in the workers (LoadAffordanceGT(resize_to=224)); the
    Hotspots metric would resize them to 224x224 first: the scores are the same, bit for bit."""
    rng = np.random.default_rng(0)
    full, resized, preds = [], [], []
    for i, (h, w) in enumerate([(300, 400), (480, 640), (97, 131)]):
        gt = np.zeros((h, w), np.uint8)
        cv2.circle(gt, (w // 3, h // 2), min(h, w) // 4, 255, -1)
        gt = cv2.GaussianBlur(gt, (0, 0), 9)
        path = str(tmp_path / f'gt{i}.png')
        cv2.imwrite(path, gt)
        full.append(LoadAffordanceGT()(dict(gt_path=path))['gt_heatmap'])
        resized.append(LoadAffordanceGT(resize_to=224)(dict(gt_path=path))['gt_heatmap'])
        preds.append(rng.random((224, 224)))
    assert resized[0].shape == (224, 224) and full[0].shape == (300, 400)
    ours, reference = hotspots_scores(preds, resized), hotspots_scores(preds, full)
    for metric in reference:
        np.testing.assert_array_equal(ours[metric], reference[metric])
