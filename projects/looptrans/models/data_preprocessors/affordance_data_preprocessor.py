"""Batching and normalisation of multi-view affordance samples."""

from typing import List, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from mmseg.registry import MODELS


@MODELS.register_module()
class AffordanceDataPreprocessor(BaseDataPreprocessor):
    """Stack (V, 3, H, W) samples into a normalised (B, V, 3, H, W) batch.

    ``forward`` moves the collated batch to the model's device, stacks the
    per-sample view tensors, converts BGR to RGB (optional) and normalises
    with ``(x - mean) / std``. ``mean`` and ``std`` are per channel in the
    order *after* the conversion (RGB by default, ImageNet statistics), as
    in mmseg's ``SegDataPreProcessor``. Each data sample gets
    ``batch_input_shape = (H, W)`` in its metainfo.

    Args:
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel standard deviation, 0-255 scale.
        bgr_to_rgb (bool): Reverse the channel order first. Defaults to True
            (the loaders produce BGR).
        non_blocking (bool): Non-blocking host-to-device copies.
    """

    def __init__(
        self,
        mean: Sequence[float] = (123.675, 116.28, 103.53),
        std: Sequence[float] = (58.395, 57.12, 57.375),
        bgr_to_rgb: bool = True,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(
                f'AffordanceDataPreprocessor: mean and std need 3 values each, got mean={mean}, std={std}.'
            )
        if any(s <= 0 for s in std):
            raise ValueError(f'AffordanceDataPreprocessor: std must be > 0, got {std}.')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)
        self.bgr_to_rgb = bgr_to_rgb

    @staticmethod
    def stack_views(inputs: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """Stack per-sample (V, 3, H, W) tensors into (B, V, 3, H, W)."""
        if isinstance(inputs, torch.Tensor):
            if inputs.dim() != 5 or inputs.shape[2] != 3:
                raise ValueError(
                    'AffordanceDataPreprocessor: a batched `inputs` tensor '
                    f'must be (B, V, 3, H, W), got {tuple(inputs.shape)}.'
                )
            return inputs
        if not inputs:
            raise ValueError('AffordanceDataPreprocessor: empty batch.')
        shapes = [tuple(x.shape) for x in inputs]
        for i, shape in enumerate(shapes):
            if len(shape) != 4 or shape[1] != 3:
                raise ValueError(
                    f'AffordanceDataPreprocessor: sample {i} has inputs of '
                    f'shape {shape}; expected (V, 3, H, W) from '
                    'PackAffordanceInputs.'
                )
        if len(set(shapes)) > 1:
            raise ValueError(
                'AffordanceDataPreprocessor: samples in a batch differ in '
                f'views or size: {shapes}. Give every sample the same number '
                'of views (dataset num_exo) and the same H x W (Resize / '
                'RandomCrop in MultiViewTransform).'
            )
        return torch.stack(inputs)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Return ``dict(inputs=float (B, V, 3, H, W), data_samples=...)``."""
        data = self.cast_data(data)
        batch = self.stack_views(data['inputs']).float()
        if self.bgr_to_rgb:
            batch = batch.flip(2)
        batch = (batch - self.mean) / self.std
        data_samples = data.get('data_samples')
        if data_samples is not None:
            hw = tuple(batch.shape[-2:])
            for sample in data_samples:
                sample.set_metainfo(dict(batch_input_shape=hw))
        return dict(inputs=batch, data_samples=data_samples)
