"""argparse ``type`` callables shared by the command-line tools (``tools/infer.py``, ``tools/deployment``)."""

import argparse


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def _float_in(text: str, low_open: bool, note: str = '') -> float:
    """``float(text)`` in ``[0, 1]`` (``(0, 1]`` with ``low_open``), or an ArgumentTypeError saying so."""
    interval = '(0, 1]' if low_open else '[0, 1]'
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number in {interval}, got {text!r}')
    if not (0.0 < value if low_open else 0.0 <= value) or value > 1.0:
        raise argparse.ArgumentTypeError(f'must be in {interval}{note}, got {value:g}')
    return value


def unit_float(text: str) -> float:
    """argparse type: a float in [0, 1] (a blending weight)."""
    return _float_in(text, low_open=False, note=' (0: image only, 1: heatmap only)')


def threshold_float(text: str) -> float:
    """argparse type: a float in (0, 1] (a threshold relative to a peak)."""
    return _float_in(text, low_open=True)
