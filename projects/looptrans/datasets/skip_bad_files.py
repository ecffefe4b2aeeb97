"""Skip-and-resample of training items whose files cannot be loaded, shared by every looptrans dataset."""

import logging
from collections import Counter
from typing import Set

from mmengine.logging import print_log

from ..utils.messages import preview
from .file_io import BadFileError


class SkipBadFilesMixin:
    """Mixin for :class:`~mmengine.dataset.BaseDataset` subclasses (put it first in the bases).

    MMEngine's ``BaseDataset.__getitem__`` already replaces a training item whose ``prepare_data`` returns
    ``None`` by a random other one (at most ``max_refetch`` times); this mixin only overrides
    :meth:`prepare_data`. In training, a :class:`~.file_io.BadFileError` raised by the pipeline (a missing,
    empty, truncated or non-image file) is logged once per file with the running counts, the file is
    remembered in ``_bad_paths`` (subclasses stop drawing it) and ``None`` is returned. After
    ``max_refetch + 1`` failed items in a row a ``RuntimeError`` names the files that failed (where MMEngine
    would raise a bare ``Exception`` saying neither what nor where). At test time the error is raised
    (:meth:`_test_time_error`), because leaving an image out would change the scores.

    Subclasses call :meth:`_init_bad_file_state` in ``__init__`` before ``super().__init__``.
    """

    def _init_bad_file_state(self) -> None:
        #: files that failed to load in this process, and how many items each made skip.
        self._bad_paths: Set[str] = set()
        self.skipped: Counter = Counter()
        self._failed_in_a_row = 0

    @property
    def num_skipped(self) -> int:
        """Items skipped in this process because a file failed to load."""
        return sum(self.skipped.values())

    def _test_time_error(self, err: BadFileError, idx: int) -> BadFileError:
        """The error raised when a test item fails to load (default: ``err`` itself)."""
        return err

    def _broken_tree_hint(self) -> str:
        """Where the data lives, for the message when many items in a row fail."""
        return f'the tree under {getattr(self, "data_root", None)!r}'

    def prepare_data(self, idx: int):
        """Run the pipeline on item ``idx``; a training item whose file fails returns ``None``."""
        try:
            data = super().prepare_data(idx)
        except BadFileError as err:
            if self.test_mode:
                new = self._test_time_error(err, idx)
                if new is err:
                    raise
                raise new from err
            first = err.path not in self._bad_paths
            self._bad_paths.add(err.path)
            self.skipped[err.path] += 1
            if first:
                print_log(
                    f'{type(self).__name__}: skipped training item {idx} and drew another one: {err} '
                    f'({len(self._bad_paths)} bad file(s), {self.num_skipped} item(s) skipped so far in '
                    'this process; the file is not drawn again).',
                    logger='current',
                    level=logging.WARNING,
                )
            data = None
        if not self.test_mode:
            self._count_failure(data is None)
        return data

    def _count_failure(self, failed: bool) -> None:
        """Count training items that failed in a row; past ``max_refetch + 1`` (the last try of
        ``BaseDataset.__getitem__``) raise with the bad files."""
        self._failed_in_a_row = self._failed_in_a_row + 1 if failed else 0
        if self._failed_in_a_row <= self.max_refetch:
            return
        self._failed_in_a_row = 0
        raise RuntimeError(
            f'{type(self).__name__}: {self.max_refetch + 1} items in a row could not be loaded (a file '
            f'failed, or the pipeline returned None); {self._broken_tree_hint()} looks broken (unmounted, or '
            f'most files corrupt). Bad files so far: {preview(sorted(self._bad_paths), 5)}. '
            'Run tools/misc/check_dataset.py for a full report.'
        )
