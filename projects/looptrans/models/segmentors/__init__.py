from .base import AffordanceSegmentor
from .locate import LOCATE
from .looptrans import LoopTrans

__all__ = ['AffordanceSegmentor', 'LOCATE', 'LoopTrans']
