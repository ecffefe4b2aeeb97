"""MMEngine log lines that say nothing about a LoopTrans run, and a filter that drops them.

A quick-start run printed the same MMEngine notices on every run and, for "Reach the end of the dataloader",
once per epoch (28 times in 200 iterations): the LoopTrans schedules count iterations over an epoch-sized
dataset on purpose (LOCATE's epochs), the deprecation notices come from MMEngine's own hooks, and the
metric's keys are unprefixed on purpose (``KLD``, ``SIM``, ``NSS`` as the papers report them). Warnings that
concern the user's run are untouched: only records whose message starts with one of :data:`KNOWN_NOISE` go.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from mmengine.logging import MMLogger

#: Starts of MMEngine messages that carry no information about a LoopTrans run.
KNOWN_NOISE = (
    'Reach the end of the dataloader, it will be restarted',
    '"FileClient" will be deprecated in future',
    '"HardDiskBackend" is the alias of "LocalBackend"',
    'The prefix is not set in metric class AffordanceMetric',
)


class KnownNoiseFilter(logging.Filter):
    """Drops the records whose message starts with one of :data:`KNOWN_NOISE`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(KNOWN_NOISE)


def quiet_logger(logger: logging.Logger) -> None:
    """Attach one :class:`KnownNoiseFilter` to ``logger`` (idempotent)."""
    if not any(isinstance(f, KnownNoiseFilter) for f in logger.filters):
        logger.addFilter(KnownNoiseFilter())


@contextlib.contextmanager
def quiet_current_logger() -> Iterator[None]:
    """Within the block, the current MMEngine logger drops :data:`KNOWN_NOISE` (for code that runs before a
    runner's hooks do, e.g. a metric's construction)."""
    logger = MMLogger.get_current_instance()  # the one print_log(logger='current') writes to
    noise = KnownNoiseFilter()
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)


def init_weights_quietly(module) -> None:
    """``module.init_weights()`` with the current MMEngine logger at WARNING for the call.

    Outside a runner (no log file) MMEngine prints one "initialised by ..." line per parameter to the console,
    hundreds for a ViT; the analysis tools that build a model with its configured weights call this instead.
    Warnings (e.g. a pretrained file's missing keys) still show.
    """
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)
