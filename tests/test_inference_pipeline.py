"""Inference runs the config's own test pipeline (looptrans.apis.pipeline), as mmseg's ``inference_model``:
what the config says (resize scale, aspect ratio, loader options) decides the network input, inference and
``tools/test.py`` give the model the same pixels, and a pipeline that cannot serve a user's image is refused
with the key and the fix."""

import copy

import cv2
import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, TINY_MODEL, load_tool, save_tiny_checkpoint
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmseg.registry import TRANSFORMS
from PIL import Image

from looptrans.apis import InferencePipeline, InferencePipelineError, inference_affordance, init_model
from looptrans.apis.inference import test_input_size as network_input_size

RESIZE = 'test_dataloader.dataset.pipeline.1.transforms.0'


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    checkpoint = save_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))
    return init_model(QUICK_CONFIG, checkpoint, cfg_options=dict(TINY_MODEL))


def _cfg(**options) -> Config:
    """The quick config with ``options`` (dotted keys) merged in."""
    cfg = Config.fromfile(QUICK_CONFIG)
    cfg.merge_from_dict(options)
    return cfg


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _with_cfg(model, monkeypatch, cfg: Config):
    """Run ``model`` with another config (its weights unchanged)."""
    monkeypatch.setattr(model, 'cfg', cfg)
    return model


# ------------------------------------------------------------------ the config decides
def test_the_configs_resize_scale_sets_the_network_input(model, monkeypatch):
    image = _image(50, 70)
    default = inference_affordance(model, image, 'hold')
    assert default.net_heatmaps['hold'].shape == (224, 224)
    assert network_input_size(model.cfg) == (224, 224)
    cfg = _cfg(**{f'{RESIZE}.scale': (48, 32)})  # (w, h)
    small = inference_affordance(_with_cfg(model, monkeypatch, cfg), image, 'hold')
    assert small.net_heatmaps['hold'].shape == (32, 48)
    assert small.heatmaps['hold'].shape == (50, 70)  # still at the image's size
    assert network_input_size(cfg) == (32, 48)
    assert not np.allclose(cv2.resize(small.heatmaps['hold'], (7, 5)), cv2.resize(default.heatmaps['hold'], (7, 5)))


def test_a_pipeline_that_keeps_the_aspect_ratio_runs_each_size(model, monkeypatch):
    cfg = _cfg(**{f'{RESIZE}.scale': (64, 64), f'{RESIZE}.keep_ratio': True})
    model = _with_cfg(model, monkeypatch, cfg)
    wide, tall = _image(30, 60, 1), _image(60, 30, 2)
    together = inference_affordance(model, [wide, tall, wide], 'hold', batch_size=3)
    assert [r.net_heatmaps['hold'].shape for r in together] == [(32, 64), (64, 32), (32, 64)]
    alone = inference_affordance(model, tall, 'hold')
    np.testing.assert_allclose(together[1].net_heatmaps['hold'], alone.net_heatmaps['hold'], rtol=1e-5, atol=1e-6)
    with pytest.raises(InferencePipelineError, match=r'--input-size H W') as err:
        network_input_size(cfg)
    assert 'test_dataloader.dataset.pipeline' in str(err.value)


def test_inference_gives_the_model_the_pixels_of_tools_test(model, synthetic_root):
    """A test-set item through the test data path (dataset + test_step) and its file through inference."""
    from mmseg.registry import DATASETS

    import looptrans.testing  # noqa: F401  (registers the generated dataset)

    dataset_cfg = copy.deepcopy(model.cfg.test_dataloader.dataset)
    dataset_cfg.data_root = synthetic_root
    dataset = DATASETS.build(dataset_cfg)
    classes = model.dataset_meta['classes']
    for index in range(2):
        item = dataset[index]
        sample = item['data_samples']
        with torch.no_grad():
            (tested,) = model.test_step(dict(inputs=[item['inputs']], data_samples=[sample]))
        name = classes[int(sample.gt_label)]
        inferred = inference_affordance(model, sample.img_path, name)
        np.testing.assert_array_equal(inferred.net_heatmaps[name], tested.pred_heatmap.data[0].numpy())


def test_paths_go_through_the_configs_loader(model, monkeypatch, tmp_path):
    """A JPEG tagged 'rotate 90': the configs keep the stored layout; a config that applies the tag turns it."""
    path = str(tmp_path / 'rotated.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_image(40, 90)).save(path, quality=95, exif=exif)
    assert inference_affordance(model, path, 'hold').ori_shape == (40, 90)
    cfg = _cfg(**{'test_dataloader.dataset.pipeline.0.ignore_orientation': False})
    assert inference_affordance(_with_cfg(model, monkeypatch, cfg), path, 'hold').ori_shape == (90, 40)


def test_annotation_steps_are_left_out():
    cfg = _cfg()
    cfg.test_dataloader.dataset.pipeline.insert(1, dict(type='mmseg.LoadAnnotations'))
    pipeline = InferencePipeline(cfg)
    names = [type(t).__name__ for t in pipeline.from_path.transforms]
    assert names == ['LoadAffordanceViews', 'MultiViewTransform', 'PackAffordanceInputs']
    assert [type(t).__name__ for t in pipeline.from_array.transforms][0] == 'LoadImageFromNDArray'
    sample = pipeline(_image(20, 30))
    assert 'gt_heatmap' not in sample['data_samples'] and sample['data_samples'].ori_shape == (20, 30)
    assert tuple(sample['inputs'].shape) == (1, 3, 224, 224) and sample['inputs'].dtype == torch.uint8


def test_test_pipeline_is_the_fallback_key():
    cfg = _cfg()
    cfg.test_pipeline = cfg.test_dataloader.dataset.pop('pipeline')
    pipeline = InferencePipeline(cfg)
    assert pipeline.key == 'test_pipeline' and pipeline.input_size() == (224, 224)


# ------------------------------------------------------------------ pipelines that cannot serve
@TRANSFORMS.register_module(name='NeedsEgoBoxForTest', force=True)
class NeedsEgoBox(BaseTransform):
    """A step that needs what only a dataset item has."""

    def transform(self, results):
        results['box'] = results['ego_box']
        return results


@TRANSFORMS.register_module(name='DropsEverythingForTest', force=True)
class DropsEverything(BaseTransform):
    def transform(self, results):
        return None


def _pipeline(*steps):
    cfg = _cfg()
    cfg.test_dataloader.dataset.pipeline = list(steps)
    return cfg


LOAD = dict(type='LoadAffordanceViews')
PACK = dict(type='PackAffordanceInputs')


@pytest.mark.parametrize(
    'cfg, match',
    [
        (_pipeline(LOAD, dict(type='NoSuchResize'), PACK), r'cannot be built.*NoSuchResize.*custom_imports'),
        (_pipeline(LOAD, 'Resize', PACK), r'pipeline\[1\] must be a dict with a `type`'),
        (_pipeline(), 'must be a non-empty list'),
        (_pipeline(dict(type='Resize', scale=(8, 8)), LOAD, PACK), r'begins with Resize.*LoadAffordanceViews'),
    ],
)
def test_ill_formed_pipelines_are_refused_at_build(cfg, match):
    with pytest.raises(InferencePipelineError, match='(?s)' + match) as err:
        InferencePipeline(cfg)
    assert 'test_dataloader.dataset.pipeline' in str(err.value) and 'looptrans_synthetic.py' in str(err.value)


@pytest.mark.parametrize(
    'steps, match',
    [
        ((LOAD, dict(type='NeedsEgoBoxForTest'), PACK), r"step NeedsEgoBox.*needs 'ego_box'.*remove the step"),
        ((LOAD, dict(type='DropsEverythingForTest'), PACK), r'step DropsEverything.*dropped the image'),
        ((LOAD,), r'ends with LoadAffordanceViews.*end it with PackAffordanceInputs'),
        ((LOAD, dict(type='PackAffordanceInputs', meta_keys=('img_path',))), r"no 'ori_shape'.*meta_keys"),
    ],
)
def test_pipelines_that_cannot_serve_a_users_image_say_why(model, monkeypatch, steps, match):
    model = _with_cfg(model, monkeypatch, _pipeline(*steps))
    with pytest.raises(InferencePipelineError, match='(?s)' + match) as err:
        inference_affordance(model, _image(20, 30), 'hold')
    assert 'test_dataloader.dataset.pipeline' in str(err.value)


def test_a_config_without_a_test_pipeline_names_both_keys():
    cfg = _cfg()
    cfg.test_dataloader.dataset.pop('pipeline')
    cfg.pop('test_pipeline', None)
    with pytest.raises(InferencePipelineError, match=r'neither test_dataloader.dataset.pipeline nor test_pipeline'):
        InferencePipeline(cfg)


def test_a_model_without_a_config_is_refused(model, monkeypatch):
    monkeypatch.delattr(model, 'cfg')
    with pytest.raises(InferencePipelineError, match=r'model.cfg.*init_model'):
        inference_affordance(model, _image(20, 30), 'hold')


def test_an_unreadable_path_is_a_value_error_naming_it(model, tmp_path):
    path = tmp_path / 'broken.jpg'
    path.write_bytes(b'<html>not an image</html>')
    with pytest.raises(ValueError, match=r'cannot read image .*broken\.jpg'):
        inference_affordance(model, path, 'hold')
    with pytest.raises(ValueError, match=r'cannot read image .*missing\.jpg'):
        inference_affordance(model, str(tmp_path / 'missing.jpg'), 'hold')


# ------------------------------------------------------------------ the tools refuse such a pipeline at start-up
BROKEN_PIPELINE = [f'{RESIZE}.type=NoSuchResize']


def _tool_options():
    return ['--cfg-options', *[f'{k}={v}' for k, v in TINY_MODEL.items()], *BROKEN_PIPELINE]


def test_infer_tool_refuses_a_pipeline_that_cannot_serve_before_any_image(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / 'a.png'), _image(20, 30))
    checkpoint = save_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    out = tmp_path / 'out'
    argv = [QUICK_CONFIG, checkpoint, str(tmp_path / 'a.png'), '--all', '--out-dir', str(out), *_tool_options()]
    assert load_tool('infer.py').main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'test_dataloader.dataset.pipeline cannot be built' in err, err
    assert 'NoSuchResize' in err and not list(out.iterdir())


def test_web_demo_refuses_a_pipeline_that_cannot_serve_before_serving(tmp_path, monkeypatch, capsys):
    web_demo = load_tool('web_demo.py')
    monkeypatch.setattr(web_demo, 'import_gradio', lambda: object())  # gradio itself is not needed to get here
    checkpoint = save_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    assert web_demo.main([QUICK_CONFIG, checkpoint, *_tool_options()]) == 2
    err = capsys.readouterr().err
    assert 'test_dataloader.dataset.pipeline cannot be built' in err and 'NoSuchResize' in err
