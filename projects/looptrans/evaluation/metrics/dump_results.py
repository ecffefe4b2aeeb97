"""AtomicDumpResults: ``tools/test.py --out``'s pickle, never torn, one sample's own data per record."""

from __future__ import annotations

import logging
import pickle
from typing import Any, Sequence

import torch
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmseg.registry import METRICS

from ...utils.atomic_backend import atomic_write_bytes


def own_storage(data: Any) -> Any:
    """``data`` with every CPU tensor that views a larger storage replaced by a compact copy.

    A model writes each sample's map as a slice of its batch tensor; pickling such a slice pickles the whole
    batch's storage, so each record of a dump weighed the batch (1.6 MB per 200 KB map at batch 8).
    """
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu()
        if data.untyped_storage().nbytes() > data.numel() * data.element_size():
            data = data.clone()
        return data
    if isinstance(data, dict):
        return {key: own_storage(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(own_storage(value) for value in data)
    return data


@METRICS.register_module()
class AtomicDumpResults(DumpResults):
    """MMEngine's ``DumpResults`` (predictions to a ``.pkl`` for offline evaluation), with two differences:

    * the file is written atomically (temporary file, then renamed over the name), so a run stopped by SIGTERM,
      SIGINT or a full disk while dumping leaves the previous file or none, never a truncated pickle at the
      final name;
    * each record holds its own tensors (:func:`own_storage`), not the batch they were sliced from.
    """

    def process(self, data_batch: Any, predictions: Sequence[dict]) -> None:
        self.results.extend(own_storage(list(predictions)))

    def compute_metrics(self, results: list) -> dict:
        atomic_write_bytes(pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL), self.out_file_path)
        print_log(f'Results have been saved to {self.out_file_path}.', logger='current', level=logging.INFO)
        return {}
