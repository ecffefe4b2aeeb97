from .locate import LOCATE
from .looptrans import LoopTrans

__all__ = ['LOCATE', 'LoopTrans']
