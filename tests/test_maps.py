"""The one min-max normaliser (looptrans.utils.maps): the same numbers as each copy it replaced."""

import numpy as np
import pytest
import torch

from looptrans.evaluation import functional
from looptrans.utils.maps import minmax_normalize, normalize_heatmap


def test_torch_maps_as_the_segmentor_normalised_them():
    x = torch.randn(5, 7, 9)
    flat = x.flatten(1)  # the segmentor's former _minmax
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    expected = ((flat - lo) / (hi - lo + 1e-10)).view_as(x)
    assert torch.equal(minmax_normalize(x), expected)
    assert minmax_normalize(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_numpy_maps_keep_the_metric_eps_and_float64():
    maps = np.random.default_rng(0).random((4, 28, 28))
    lo, hi = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    out = functional.minmax_normalize(maps, functional.EPS)
    assert out.dtype == np.float64 and np.array_equal(out, (maps - lo) / (hi - lo + 1e-12))
    assert not minmax_normalize(np.ones((2, 3, 3))).any()  # a constant map becomes zeros


def test_picture_normalisation_ignores_non_finite_values():
    heat = np.array([[np.nan, 1.0], [3.0, np.inf]], np.float32)
    out = normalize_heatmap(heat)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0], [1, 0]], atol=1e-6)
    assert not normalize_heatmap(np.full((2, 2), np.nan)).any()
    with pytest.raises(ValueError, match='batch of maps'):
        minmax_normalize(np.zeros(3))
