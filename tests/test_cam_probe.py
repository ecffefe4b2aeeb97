"""tools/analysis_tools/cam_probe.py: the CAM head trained alone on cached frozen features, then pointed."""

import glob
import os.path as osp

import pytest
import torch
from conftest import QUICK_CONFIG, TINY_MODEL, load_tool

from looptrans.testing.synthetic_agd20k import SYNTHETIC_SEEN_CLASSES

TINY = ['--cfg-options', *[f'{k}={v}' for k, v in TINY_MODEL.items()]]


def _tool():
    return load_tool('analysis_tools', 'cam_probe.py')


def test_training_images_are_labelled_by_their_affordance_folder(seen_tree):
    tool = _tool()
    classes = SYNTHETIC_SEEN_CLASSES
    root = osp.join(seen_tree, 'Seen')
    ego = tool.training_images(root, classes, ['ego'])
    both = tool.training_images(root, classes, ['exo', 'ego'])
    assert len(ego) == len(glob.glob(osp.join(root, 'trainset', 'egocentric', '*', '*', '*')))
    assert len(both) > len(ego)
    for path, label in both:
        assert path.split(osp.sep)[-3] == classes[label]
    assert all(osp.sep + 'egocentric' + osp.sep in p for p, _ in ego)
    with pytest.raises(FileNotFoundError, match='no ego training images'):
        tool.training_images(root, ('no_such_affordance',), ['ego'])


def test_the_trained_cam_points_where_the_class_evidence_is():
    """Features that are zero except one channel per class at one cell: the trained CAM of the labelled
    class must peak on that cell, and the loss must fall."""
    tool = _tool()
    gen = torch.Generator().manual_seed(0)
    n, classes = 64, 3
    labels = torch.arange(n) % classes
    feats = torch.zeros(n, 8, 14, 14)
    cells = torch.randint(0, 14, (n, 2), generator=gen)
    for i in range(n):
        feats[i, labels[i], cells[i, 0], cells[i, 1]] = 196.0  # pooled: 1.0
    head = torch.nn.Conv2d(8, classes, 1)
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(head(feats).mean((2, 3)), labels).item()
    after = tool.train_cam_head(head, feats, labels, iters=300, lr=0.05, batch_size=16, seed=0)
    assert after < before / 4
    with torch.no_grad():
        cams = head(feats)[torch.arange(n), labels]
    peaks = cams.flatten(1).argmax(1)
    assert torch.equal(peaks, cells[:, 0] * 14 + cells[:, 1])


def test_the_tool_runs_the_config_and_is_deterministic_for_a_seed(seen_tree):
    tool = _tool()
    args = [QUICK_CONFIG, '--data-root', seen_tree, '--views', 'ego', '--iters', '3', '--seed', '1', *TINY]
    first, second = tool.main(args), tool.main(args)
    assert first == second
    assert first['train_images'] == len(glob.glob(osp.join(seen_tree, 'Seen', 'trainset', 'egocentric', '*', '*', '*')))
    for key in ('object', 'object_near', 'part', 'part_near', 'mass', 'train_acc', 'test_acc'):
        assert 0.0 <= first[key] <= 1.0, key
    assert first['object'] <= first['object_near'] and first['part'] <= first['part_near']


@pytest.mark.parametrize('bad', [['--iters', '0'], ['--batch-size', '0'], ['--lr', '0'], ['--tolerance', '-1']])
def test_bad_arguments_are_refused(bad, capsys):
    with pytest.raises(SystemExit):
        _tool().parse_args([QUICK_CONFIG, *bad])
    assert 'must be' in capsys.readouterr().err
