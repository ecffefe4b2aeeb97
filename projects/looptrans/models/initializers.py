"""Weight initialisers beyond MMEngine's own (registered in mmseg's ``WEIGHT_INITIALIZERS``)."""

from typing import List

import torch.nn as nn
from mmengine.model.weight_init import BaseInit, update_init_info
from mmseg.registry import WEIGHT_INITIALIZERS


def _class_names(module: nn.Module) -> List[str]:
    """The module's class name and those of all its bases (so ``'_BatchNorm'`` matches BN and SyncBN)."""
    return [cls.__name__ for cls in type(module).__mro__]


@WEIGHT_INITIALIZERS.register_module(name='TorchDefault')
class TorchDefaultInit(BaseInit):
    """Re-initialise layers with PyTorch's own default initialisation (each layer's ``reset_parameters``).

    MMEngine's initialisers all draw from a named distribution; none restores what a plain ``nn.Conv2d`` /
    ``nn.Linear`` gets at construction (Kaiming-uniform with ``a=sqrt(5)``, i.e. weights uniform in
    ``±1/sqrt(fan_in)``, std ``1/sqrt(3 fan_in)``; biases uniform in ``±1/sqrt(fan_in)``). Published research
    code that builds its layers from ``torch.nn`` (LOCATE) trains from exactly that; mmcv's ``ConvModule``
    instead re-initialises its conv Kaiming-normal fan-out at construction, which for a 3x3 conv of 384
    channels is 2.5x the default weight scale. ``dict(type='TorchDefault', layer=['Conv2d', 'Linear'])``
    undoes that.

    Args:
        layer (str | list[str]): Class names of the layers to reset; a module matches when its class or any
            of its bases has one of these names. Ignored in ``override`` mode (the whole named module is reset).
    """

    def __init__(self, **kwargs) -> None:
        if 'bias' in kwargs or 'bias_prob' in kwargs:
            raise TypeError("TorchDefault takes no 'bias' / 'bias_prob': biases get PyTorch's default too.")
        super().__init__(**kwargs)

    def __call__(self, module: nn.Module) -> None:
        def init(m: nn.Module) -> None:
            if not (self.wholemodule or set(self.layer) & set(_class_names(m))):
                return
            reset = getattr(m, 'reset_parameters', None)
            if callable(reset):
                reset()

        module.apply(init)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: reset_parameters() of {self.layer or "every layer"}'
