from .looptrans import LoopTrans

__all__ = ['LoopTrans']
