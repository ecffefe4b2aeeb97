"""tools/train.py -> checkpoint -> --resume -> tools/test.py (--show-dir) -> tools/infer.py, on generated data."""

import glob
import json
import os.path as osp
import re
import subprocess
import sys

import cv2
import mmcv
import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, REPO, run_tool, tiny_options, tool_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(synthetic_root, tmp_path_factory):
    """Train 4 iterations (checkpoints at 2 and 4), then resume to 6."""
    work_dir = str(tmp_path_factory.mktemp('work_dir'))
    opts = tiny_options(osp.join(synthetic_root), max_iters=4)
    first = run_tool(['tools/train.py', QUICK_CONFIG, '--work-dir', work_dir, '--cfg-options', *opts])
    resumed = run_tool(
        [
            'tools/train.py',
            QUICK_CONFIG,
            '--work-dir',
            work_dir,
            '--resume',
            '--cfg-options',
            *tiny_options(synthetic_root, max_iters=6),
        ]
    )
    return dict(work_dir=work_dir, first=first, resumed=resumed, root=synthetic_root)


def _log(proc) -> str:
    return proc.stdout + proc.stderr


def test_train_writes_checkpoints_and_finite_losses(trained):
    for n in (2, 4):
        assert osp.isfile(osp.join(trained['work_dir'], f'iter_{n}.pth'))
    losses = re.findall(r'Iter\(train\) \[\s*\d+/4\].*?loss: ([\d.naninf]+)', _log(trained['first']))
    assert len(losses) == 4 and all(np.isfinite(float(x)) for x in losses)


def test_resume_continues_from_last_checkpoint(trained):
    log = _log(trained['resumed'])
    assert 'resumed epoch: 0, iter: 4' in log  # MMEngine's message after loading iter_4.pth
    iters = [int(i) for i in re.findall(r'Iter\(train\) \[\s*(\d+)/6\]', log)]
    assert iters == [5, 6], iters
    ckpt = torch.load(osp.join(trained['work_dir'], 'iter_6.pth'), map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 6
    assert 'message_hub' in ckpt and 'optimizer' in ckpt and 'param_schedulers' in ckpt


def test_test_tool_reports_metrics_and_writes_one_picture_per_image(trained, tmp_path):
    show_dir = str(tmp_path / 'vis')
    proc = run_tool(
        [
            'tools/test.py',
            QUICK_CONFIG,
            osp.join(trained['work_dir'], 'iter_6.pth'),
            '--work-dir',
            str(tmp_path),
            '--show-dir',
            show_dir,
            '--cfg-options',
            *tiny_options(trained['root']),
        ]
    )
    log = _log(proc)
    figures = {k: float(v) for k, v in re.findall(r'(KLD|SIM|NSS): ([-\d.]+)', log.split('Iter(test)')[-1])}
    assert set(figures) == {'KLD', 'SIM', 'NSS'} and all(np.isfinite(v) for v in figures.values())
    test_images = sorted(glob.glob(osp.join(trained['root'], 'Seen', 'testset', 'egocentric', '*', '*', '*')))
    pictures = sorted(glob.glob(osp.join(show_dir, '*.png')))
    assert len(pictures) == len(test_images) > 0
    image = cv2.imread(test_images[0])
    picture = cv2.imread(
        osp.join(
            show_dir,
            '_'.join(test_images[0].split(osp.sep)[-3:-1])
            + '_'
            + osp.splitext(osp.basename(test_images[0]))[0]
            + '.png',
        )
    )
    # image | prediction overlay | GT overlay, at the image's height
    assert picture.shape == (image.shape[0], 3 * image.shape[1], 3)
    scalars = glob.glob(osp.join(str(tmp_path), '*', 'vis_data', 'scalars.json'))
    if scalars:
        json.loads(open(scalars[0]).read().splitlines()[-1])


def test_infer_tool_matches_direct_predict(trained, tmp_path):
    from mmseg.structures import SegDataSample

    from looptrans.apis import init_model

    checkpoint = osp.join(trained['work_dir'], 'iter_6.pth')
    folder = osp.join(trained['root'], 'Seen', 'testset', 'egocentric', 'hold')
    out_dir = str(tmp_path / 'heatmaps')
    run_tool(
        [
            'tools/infer.py',
            QUICK_CONFIG,
            checkpoint,
            folder,
            '--affordance',
            'hold',
            '--out-dir',
            out_dir,
            '--cfg-options',
            *tiny_options(trained['root']),
        ]
    )
    images = sorted(glob.glob(osp.join(folder, '*', '*.jpg')))
    assert images
    options = dict(opt.split('=', 1) for opt in tiny_options(trained['root']) if opt.startswith('model.'))
    model = init_model(QUICK_CONFIG, checkpoint, cfg_options={k: int(v) for k, v in options.items()})
    label = list(model.dataset_meta['classes']).index('hold')
    for path in images:
        base = osp.join(out_dir, osp.splitext(osp.relpath(path, folder))[0])  # <object>/<stem>: kept relative
        image = cv2.imread(path)
        heat = np.load(f'{base}_hold.npy')
        png = cv2.imread(f'{base}_hold.png', cv2.IMREAD_GRAYSCALE)
        overlay = cv2.imread(f'{base}_hold_overlay.jpg')
        assert heat.shape == png.shape == image.shape[:2] == overlay.shape[:2]
        # the same image through the model's own predict(), resized as the test pipeline does (PIL bilinear)
        resized = mmcv.imresize(image, (224, 224), backend='pillow')
        inputs = torch.from_numpy(resized).permute(2, 0, 1)[None]
        data = model.data_preprocessor(dict(inputs=[inputs], data_samples=None), False)
        with torch.no_grad():
            out = model.predict(data['inputs'], [SegDataSample(metainfo=dict(gt_label=label))])
        expected = cv2.resize(
            out[0].pred_heatmap.data[0].numpy(), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR
        )
        np.testing.assert_allclose(heat, expected, rtol=1e-5, atol=1e-6)


def test_amp_without_gpu_is_a_clear_error(synthetic_root, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: --amp is valid here')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', QUICK_CONFIG, '--amp', '--work-dir', str(tmp_path)],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert '--amp needs a GPU' in proc.stderr and 'Traceback' not in proc.stderr


def test_infer_tool_top_k_writes_json_per_image(trained, tmp_path):
    """tools/infer.py --top-k on the briefly trained model: one JSON per image with the K most probable
    affordances (probabilities descending, peaks inside the image, a polygon and a heatmap picture each); the
    top-1 accuracy on the generated test images is printed (not asserted: 6 iterations of training only)."""
    test_dir = osp.join(trained['root'], 'Seen', 'testset', 'egocentric')
    out = str(tmp_path / 'out')
    proc = run_tool(
        [
            'tools/infer.py',
            QUICK_CONFIG,
            osp.join(trained['work_dir'], 'iter_6.pth'),
            test_dir,
            '--top-k',
            '2',
            '--out-dir',
            out,
            '--cfg-options',
            *[o for o in tiny_options(trained['root']) if o.startswith('model.')],
        ]
    )
    assert 'affordance' in proc.stdout and 'prob' in proc.stdout
    jsons = sorted(glob.glob(osp.join(out, '*', '*', '*.json')))
    test_images = glob.glob(osp.join(test_dir, '*', '*', '*.jpg'))
    assert len(jsons) == len(test_images) > 0
    correct = 0
    for path in jsons:
        summary = json.load(open(path))
        names = [a['name'] for a in summary['affordances']]
        probs = [a['prob'] for a in summary['affordances']]
        assert len(names) == 2 and probs == sorted(probs, reverse=True)
        for a in summary['affordances']:
            x, y = a['peak']
            assert 0 <= x < summary['width'] and 0 <= y < summary['height'] and a['polygon']
            assert osp.isfile(osp.join(osp.dirname(path), f'{osp.basename(path)[:-5]}_{a["name"]}.png'))
        correct += names[0] == path.split(osp.sep)[-3]
    print(f'top-1 accuracy after 6 iterations: {correct}/{len(jsons)}')


def test_runs_record_their_world_size_and_print_no_known_noise(trained):
    """Checkpoints carry what a resume with another number of processes is compared with; MMEngine's
    notices that say nothing about the run (deprecations printed on every run) are not in the logs."""
    from looptrans.utils.log_noise import KNOWN_NOISE

    meta = torch.load(osp.join(trained['work_dir'], 'iter_6.pth'), map_location='cpu', weights_only=True)['meta']
    assert meta['world_size'] == 1 and meta['train_batch_size'] == 2
    for run in ('first', 'resumed'):
        log = _log(trained[run])
        assert 'Iter(train)' in log  # the log itself is there
        assert [noise for noise in KNOWN_NOISE if noise in log] == []
