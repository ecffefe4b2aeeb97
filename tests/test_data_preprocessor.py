"""Tests of AffordanceDataPreprocessor."""

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from looptrans.datasets import PackAffordanceInputs
from looptrans.models.data_preprocessors import AffordanceDataPreprocessor

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def _batch(b=2, v=4, h=5, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (v, 3, h, w), generator=g, dtype=torch.uint8) for _ in range(b)]
    return dict(inputs=inputs, data_samples=[SegDataSample() for _ in range(b)])


def test_normalisation_matches_hand_computation():
    pre = MODELS.build(dict(type='AffordanceDataPreprocessor'))
    assert isinstance(pre, AffordanceDataPreprocessor)
    data = _batch()
    raw = np.stack([x.numpy() for x in data['inputs']]).astype(np.float64)
    out = pre(data, training=True)
    x = out['inputs']
    assert x.shape == (2, 4, 3, 5, 6) and x.dtype == torch.float32
    # element by element: output channel c (RGB) reads input channel 2 - c
    for b, v, c, i, j in [(0, 0, 0, 0, 0), (1, 3, 2, 4, 5), (0, 2, 1, 3, 1)]:
        expected = (raw[b, v, 2 - c, i, j] - MEAN[c]) / STD[c]
        assert abs(x[b, v, c, i, j].item() - expected) < 1e-5
    expected = (raw[:, :, ::-1] - np.reshape(MEAN, (1, 1, 3, 1, 1))) / np.reshape(STD, (1, 1, 3, 1, 1))
    np.testing.assert_allclose(x.numpy(), expected, rtol=0, atol=1e-5)


def test_single_pixel_by_hand():
    pre = AffordanceDataPreprocessor()
    pixel = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    x = pre(dict(inputs=[pixel]))['inputs'][0, 0, :, 0, 0]
    # BGR (10, 20, 30) is RGB (30, 20, 10)
    assert x[0].item() == pytest.approx((30 - 123.675) / 58.395, abs=1e-6)
    assert x[1].item() == pytest.approx((20 - 116.28) / 57.12, abs=1e-6)
    assert x[2].item() == pytest.approx((10 - 103.53) / 57.375, abs=1e-6)


def test_without_channel_swap_and_custom_stats():
    pre = AffordanceDataPreprocessor(mean=(1.0, 2.0, 3.0), std=(2.0, 4.0, 8.0), bgr_to_rgb=False)
    data = _batch(b=1, v=1)
    raw = data['inputs'][0].double()
    x = pre(data)['inputs'][0]
    expected = (raw - torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)) / torch.tensor([2.0, 4.0, 8.0]).view(1, 3, 1, 1)
    assert torch.allclose(x.double(), expected, atol=1e-6)


def test_data_samples_pass_through_with_batch_shape():
    pre = AffordanceDataPreprocessor()
    data = _batch(h=7, w=9)
    for i, sample in enumerate(data['data_samples']):
        sample.set_metainfo(dict(sample_idx=i))
    out = pre(data)
    assert [s.sample_idx for s in out['data_samples']] == [0, 1]
    assert all(s.batch_input_shape == (7, 9) for s in out['data_samples'])


def test_already_stacked_tensor_is_accepted():
    pre = AffordanceDataPreprocessor()
    data = _batch()
    stacked = torch.stack(data['inputs'])
    a = pre(dict(inputs=data['inputs']))['inputs']
    b = pre(dict(inputs=stacked))['inputs']
    assert torch.equal(a, b)


def test_mismatched_batches_raise():
    pre = AffordanceDataPreprocessor()
    views = [torch.zeros(4, 3, 5, 5, dtype=torch.uint8), torch.zeros(2, 3, 5, 5, dtype=torch.uint8)]
    with pytest.raises(ValueError, match='num_exo'):
        pre(dict(inputs=views))
    sizes = [torch.zeros(4, 3, 5, 5, dtype=torch.uint8), torch.zeros(4, 3, 6, 5, dtype=torch.uint8)]
    with pytest.raises(ValueError, match='RandomCrop'):
        pre(dict(inputs=sizes))
    with pytest.raises(ValueError, match=r'\(V, 3, H, W\)'):
        pre(dict(inputs=[torch.zeros(4, 1, 5, 5, dtype=torch.uint8)]))
    with pytest.raises(ValueError, match='empty'):
        pre(dict(inputs=[]))
    with pytest.raises(ValueError, match='mean and std'):
        AffordanceDataPreprocessor(mean=(1.0, 2.0))


def test_statistics_are_buffers_not_checkpoint_entries():
    pre = AffordanceDataPreprocessor()
    assert dict(pre.named_buffers())['mean'].shape == (1, 1, 3, 1, 1)
    assert 'mean' not in pre.state_dict()


def test_collated_packed_samples():
    pack = PackAffordanceInputs()
    rng = np.random.RandomState(0)
    samples = [
        pack(
            dict(
                img=rng.randint(0, 256, (8, 8, 3)).astype(np.uint8),
                exo_imgs=[rng.randint(0, 256, (8, 8, 3)).astype(np.uint8) for _ in range(3)],
                gt_label=i,
                img_path=f'{i}.jpg',
            )
        )
        for i in range(3)
    ]
    out = AffordanceDataPreprocessor()(pseudo_collate(samples), training=True)
    assert out['inputs'].shape == (3, 4, 3, 8, 8)
    assert [s.gt_label for s in out['data_samples']] == [0, 1, 2]
    expected = (samples[2]['inputs'][1, 0].float() - MEAN[2]) / STD[2]
    assert torch.allclose(out['inputs'][2, 1, 2], expected, atol=1e-5)
