"""ONNX export (tools/deployment/pytorch2onnx.py, looptrans.apis.export) and the onnxruntime backend
(looptrans.apis.onnx_backend) on the quick config shrunk to seconds: 1 ViT block, small heads, 64x64 input.

Skipped when the optional dependencies (requirements/optional.txt) are not installed.
"""

import contextlib
import io
import json
import os.path as osp
import pathlib
import re
import sys

import cv2
import numpy as np
import pytest
import torch

onnx = pytest.importorskip(
    'onnx',
    reason='onnx is not installed; the ONNX export tests need requirements/optional.txt '
    '(pip install -r requirements/optional.txt)',
)
ort = pytest.importorskip(
    'onnxruntime',
    reason='onnxruntime is not installed; the ONNX export tests need requirements/optional.txt '
    '(pip install -r requirements/optional.txt)',
)

from conftest import QUICK_CONFIG, TINY_MODEL, load_tool, save_tiny_checkpoint  # noqa: E402

from looptrans.testing import SYNTHETIC_SEEN_CLASSES  # noqa: E402

SIZE = (64, 64)
ATOL = 1e-4
TINY = TINY_MODEL
TINY_ARGS = [f'{k}={v}' for k, v in TINY.items()]


def _load_tool():
    return load_tool('deployment', 'pytorch2onnx.py')


def _randomise(model: torch.nn.Module) -> None:
    """Give BN layers non-trivial statistics and the classifiers non-tiny weights, so that a wrong
    normalisation, BN or classifier in the graph shows in the outputs (a fresh model's BN is the identity and
    its std-0.01 classifiers make every heatmap ~0.5)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
        for conv in {model.cam_head.conv_seg, model.pixel_head.classifier}:  # one conv when the pixel head borrows
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * 0.3)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A complete checkpoint of the tiny quick-config model (every weight + its class list)."""
    return save_tiny_checkpoint(str(tmp_path_factory.mktemp('onnx_ckpt') / 'tiny.pth'), prepare=_randomise)


@pytest.fixture(scope='module')
def model(checkpoint):
    """The tiny model, its test pipeline resizing to 64x64 (what inference_affordance resizes to)."""
    from looptrans.apis import init_model
    from looptrans.apis.inference import test_input_size

    model = init_model(
        QUICK_CONFIG,
        checkpoint,
        cfg_options={**TINY, 'test_dataloader.dataset.pipeline.1.transforms.0.scale': SIZE[::-1]},
    )
    assert test_input_size(model.cfg) == SIZE
    return model


@pytest.fixture(scope='module')
def test_images(synthetic_root):
    folder = osp.join(synthetic_root, 'Seen', 'testset', 'egocentric')
    paths = sorted(str(p) for p in pathlib.Path(folder).rglob('*.jpg'))
    assert len(paths) >= 5
    return paths


@pytest.fixture(scope='module')
def exported(checkpoint, test_images, tmp_path_factory):
    """tools/deployment/pytorch2onnx.py --verify, run in-process; its exit status, output and file."""
    out = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    tool = _load_tool()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = tool.main(
            [
                QUICK_CONFIG,
                checkpoint,
                '--out',
                out,
                '--input-size',
                *map(str, SIZE),
                '--verify',
                '--images',
                *test_images[:6],
                '--bench-seconds',
                '0.05',
                '--cfg-options',
                *TINY_ARGS,
            ]
        )
    return dict(rc=rc, log=stdout.getvalue(), path=out)


@pytest.fixture(scope='module')
def backend(exported):
    from looptrans.apis.onnx_backend import OnnxAffordanceModel

    return OnnxAffordanceModel(exported['path'])


def _max_diff(model, backend, batch):
    from looptrans.apis.export import max_abs_difference

    return max_abs_difference(model, backend, batch)


def test_tool_exports_and_verifies_within_tolerance(exported):
    log = exported['log']
    assert exported['rc'] == 0, log
    assert osp.getsize(exported['path']) > 0
    assert 'verification passed' in log
    rows = re.findall(r'^\s+(random uint8, batch \d+|\d+ test image\(s\))\s+(\S+)\s+(\S+)\s+ok$', log, re.M)
    assert [r[0] for r in rows] == ['random uint8, batch 1', 'random uint8, batch 8', '6 test image(s)'], log
    assert all(float(h) <= ATOL and float(lg) <= ATOL for _, h, lg in rows), rows
    # throughput side by side at batch 1 and 8: batch, PyTorch, onnxruntime, speed-up
    speeds = re.findall(r'^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+x$', log, re.M)
    assert [int(s[0]) for s in speeds] == [1, 8], log
    assert all(float(s[1]) > 0 and float(s[2]) > 0 for s in speeds)


def test_graph_interface_and_metadata(exported):
    proto = onnx.load(exported['path'])
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta['classes']) == list(SYNTHETIC_SEEN_CLASSES)
    assert meta['heatmap_source'] == 'pixel_logits'  # the quick config's model.test_cfg.heatmap
    assert json.loads(meta['input_size']) == list(SIZE)
    assert meta['input_format'] == 'uint8 BGR NCHW 0-255'
    assert meta['config'] == 'looptrans_synthetic.py' and meta['checkpoint'] == 'tiny.pth'
    norm = json.loads(meta['normalization'])
    assert norm['bgr_to_rgb'] is True and np.allclose(norm['mean'], [123.675, 116.28, 103.53])
    (inp,) = proto.graph.input
    assert inp.name == 'images' and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, *SIZE]
    assert [o.name for o in proto.graph.output] == ['heatmaps', 'logits']
    # only the keys of the last block are needed: its attention (softmax) and MLP are not in the graph
    assert 'Softmax' not in {n.op_type for n in proto.graph.node}


def test_backend_reads_metadata(backend, model):
    assert backend.classes == tuple(model.dataset_meta['classes']) == tuple(SYNTHETIC_SEEN_CLASSES)
    assert backend.dataset_meta == dict(classes=backend.classes)
    assert backend.heatmap_source == 'pixel_logits' and backend.input_size == SIZE and backend.num_classes == 7


def test_config_class_check(backend):
    """tools/infer.py --backend onnxruntime checks the file's classes against the config, as for checkpoints."""
    from looptrans.apis.onnx_backend import check_config_classes
    from looptrans.utils.class_lists import ClassListMismatchError

    check_config_classes(backend, QUICK_CONFIG)
    reordered = list(SYNTHETIC_SEEN_CLASSES)[::-1]
    with pytest.raises(ClassListMismatchError, match='another order'):
        check_config_classes(backend, QUICK_CONFIG, {'test_dataloader.dataset.metainfo.classes': reordered})


@pytest.mark.parametrize('batch_size', [1, 3])
def test_dynamic_batch_matches_pytorch(backend, model, batch_size):
    batch = np.random.default_rng(batch_size).integers(0, 256, (batch_size, 3, *SIZE), dtype=np.uint8)
    heatmaps, logits = backend.forward(batch)
    assert heatmaps.shape == (batch_size, 7, *SIZE) and logits.shape == (batch_size, 7)
    assert heatmaps.dtype == logits.dtype == np.float32
    diff = _max_diff(model, backend, batch)
    assert diff['heatmaps'] <= ATOL and diff['logits'] <= ATOL, diff
    # the outputs are not trivially constant (a broken graph could match a degenerate model)
    assert heatmaps.std() > 1e-2 and logits.std() > 1e-2


def test_backend_inference_equals_pytorch_api(backend, model, test_images):
    """Same images, same call as looptrans.apis.inference_affordance: same heatmaps; plus the logits."""
    from looptrans.apis import inference_affordance
    from looptrans.apis.export import reference_outputs

    images = test_images[:5]
    ours = backend.inference_affordance(images, affordances=['hold', 'cut_with'], batch_size=2)
    theirs = inference_affordance(model, images, affordances=['hold', 'cut_with'], batch_size=2)
    assert len(ours) == len(theirs) == 5
    batch = backend.preprocess([cv2.imread(p) for p in images])
    _, ref_logits = reference_outputs(model, torch.from_numpy(batch))
    for a, b, ref in zip(ours, theirs, ref_logits.numpy()):
        assert a.image_path == b.image_path and a.ori_shape == b.ori_shape
        assert list(a.heatmaps) == list(b.heatmaps) == ['hold', 'cut_with']
        for name in a.heatmaps:
            assert a.heatmaps[name].shape == b.heatmaps[name].shape == a.ori_shape
            assert np.abs(a.net_heatmaps[name] - b.net_heatmaps[name]).max() <= ATOL
            assert np.abs(a.heatmaps[name] - b.heatmaps[name]).max() <= ATOL
        assert list(a.logits) == list(SYNTHETIC_SEEN_CLASSES)
        assert np.abs(np.array(list(a.logits.values())) - ref).max() <= ATOL
    single = backend.inference_affordance(images[0])  # one input -> one result, all affordances
    assert list(single.heatmaps) == list(SYNTHETIC_SEEN_CLASSES)
    with pytest.raises(ValueError, match='unknown affordance'):
        backend.inference_affordance(images[0], affordances=['fly'])


def test_wrong_inputs_are_refused_clearly(backend):
    good = np.zeros((2, 3, *SIZE), np.uint8)
    with pytest.raises(ValueError, match=r'uint8 BGR \(B, 3, 64, 64\).*4 channels: give BGR images'):
        backend.forward(np.zeros((2, 4, *SIZE), np.uint8))
    with pytest.raises(ValueError, match='channels last'):
        backend.forward(np.zeros((2, *SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match='resize the images to 64x64'):
        backend.forward(np.zeros((2, 3, 32, 64), np.uint8))
    with pytest.raises(ValueError, match='got dtype float32'):
        backend.forward(good.astype(np.float32))
    with pytest.raises(ValueError, match='empty batch'):
        backend.forward(good[:0])
    with pytest.raises(TypeError, match='numpy array'):
        backend.forward(torch.zeros(2, 3, *SIZE, dtype=torch.uint8))


def test_other_heatmap_source_and_model_untouched(model, tmp_path):
    """'fusion' needs both heads (pixel x min-max CAM); exporting at 64x64 leaves the model's 224 grid as is."""
    from looptrans.apis.export import export_onnx
    from looptrans.apis.onnx_backend import OnnxAffordanceModel

    pos_embed = model.backbone.pos_embed.detach().clone()
    path = str(tmp_path / 'fusion.onnx')
    meta = export_onnx(model, path, SIZE, heatmap='fusion')
    assert meta['heatmap_source'] == 'fusion'
    assert torch.equal(model.backbone.pos_embed, pos_embed) and tuple(model.backbone.patch_resolution) == (14, 14)
    assert model.test_cfg.get('heatmap') == 'pixel_logits'
    fused = OnnxAffordanceModel(path)
    assert fused.heatmap_source == 'fusion'
    # the CAM head runs once (for the heatmaps and the logits): no weight feeds two Conv / MatMul nodes, but for
    # the CAM head's classifier, which also ends the pixel decoder (the published pixel branch): it feeds two
    proto = onnx.load(path)
    weights = {init.name for init in proto.graph.initializer}
    uses = [
        name
        for node in proto.graph.node
        if node.op_type in ('Conv', 'MatMul', 'Gemm')
        for name in node.input
        if name in weights
    ]
    classifier = [name for name in uses if name.startswith('model.cam_head.conv_seg.')]
    others = [name for name in uses if not name.startswith('model.cam_head.conv_seg.')]
    assert len(others) == len(set(others)) and sorted(classifier) == sorted(2 * sorted(set(classifier)))
    assert set(classifier) == {'model.cam_head.conv_seg.weight', 'model.cam_head.conv_seg.bias'}
    assert sum(n.op_type == 'Conv' for n in proto.graph.node) == 7
    batch = np.random.default_rng(5).integers(0, 256, (2, 3, *SIZE), dtype=np.uint8)
    diff = _max_diff(model, fused, batch)
    assert diff['heatmaps'] <= ATOL and diff['logits'] <= ATOL, diff
    with pytest.raises(ValueError, match='test_cfg.heatmap must be one of'):
        export_onnx(model, str(tmp_path / 'bad.onnx'), SIZE, heatmap='softmax')
    assert not osp.exists(str(tmp_path / 'bad.onnx'))


def test_backend_refuses_files_that_are_not_looptrans_exports(exported, tmp_path):
    from looptrans.apis.onnx_backend import OnnxAffordanceModel

    proto = onnx.load(exported['path'])
    del proto.metadata_props[:]
    bare = str(tmp_path / 'bare.onnx')
    onnx.save(proto, bare)
    with pytest.raises(ValueError, match='not a LoopTrans ONNX export'):
        OnnxAffordanceModel(bare)
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a model')
    with pytest.raises(ValueError, match='onnxruntime cannot load'):
        OnnxAffordanceModel(str(garbage))
    with pytest.raises(FileNotFoundError):
        OnnxAffordanceModel(str(tmp_path / 'missing.onnx'))


def test_clear_error_without_onnxruntime(exported, monkeypatch):
    from looptrans.apis.onnx_backend import OnnxAffordanceModel

    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # `import onnxruntime` raises ImportError
    with pytest.raises(ImportError, match='requirements/optional.txt'):
        OnnxAffordanceModel(exported['path'])


def test_wrapper_is_the_models_own_inference_on_a_normalised_batch(model):
    """The export graph is ``model.inference_with_logits`` after the data preprocessor's steps: no export-only
    feature path (the DINO backbone's out_type='keys' forward already stops after the keys)."""
    from looptrans.apis.export import LoopTransExportWrapper

    wrapper = LoopTransExportWrapper(model, SIZE, heatmap='cam').eval()
    assert wrapper.model.heatmap_source == 'cam' and model.heatmap_source == 'pixel_logits'  # the copy only
    assert wrapper.model.backbone.out_type == 'keys'
    images = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (2, 3, *SIZE), dtype=np.uint8))
    with torch.no_grad():
        heatmaps, logits = wrapper(images)
        ref_maps, ref_logits = wrapper.model.inference_with_logits(wrapper.normalize(images))
    assert torch.equal(heatmaps, ref_maps) and torch.equal(logits, ref_logits)
