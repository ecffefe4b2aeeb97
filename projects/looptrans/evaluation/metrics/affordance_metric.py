"""``AffordanceMetric``: KLD / SIM / NSS (AGD20K, HICO-IIF) or KLD / SIM / AUC-J (OPRA, EPIC).

Per-image scores are computed in :meth:`AffordanceMetric.process` (so only a few numbers per image
travel between processes, never the maps), gathered by MMEngine's ``collect_results``, de-duplicated
by ``sample_idx`` and averaged in :meth:`AffordanceMetric.compute_metrics`.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS

from ...utils.log_noise import quiet_current_logger
from ...utils.maps import minmax_normalize, replace_nonfinite
from ..functional import EPS, HOTSPOTS_GT_SIZE, agd20k_scores, agd20k_scores_batched, hotspots_scores

#: metrics each protocol can report, in table order, and its published evaluation resolution.
PROTOCOLS: Dict[str, Dict[str, Any]] = {
    # LOCATE / Cross-View-AG test code: crop_size = 224.
    'agd20k': dict(metrics=('KLD', 'SIM', 'NSS'), eval_size=224),
    # interaction-hotspots eval.py: --res 28 (the numbers in its README and in later papers).
    'hotspots': dict(metrics=('KLD', 'SIM', 'AUC-J'), eval_size=28),
}


def _field(sample: Any, key: str) -> Any:
    """Read ``key`` from a data sample given as a dict (what MMEngine passes) or a data element."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None)


#: where the AGD20K scores are computed, see ``AffordanceMetric(compute_backend=...)``.
COMPUTE_BACKENDS = ('auto', 'numpy', 'torch')


def _pixel_data(sample: Any, key: str, where: str) -> Union[np.ndarray, torch.Tensor]:
    """Return the ``data`` of a ``PixelData`` field (dict form or object), a tensor left where it is.

    A half / bfloat16 tensor (AMP inference) becomes float32. Raises if the field is missing or is
    not one ``(H, W)`` / ``(1, H, W)`` map.
    """
    value = _field(sample, key)
    if value is None:
        if key == 'gt_heatmap':
            hint = 'the test pipeline must load the GT (LoadAffordanceGT) and PackAffordanceInputs must pack it'
        else:
            hint = "the model's predict() must set it for the asked affordance"
        raise KeyError(f'AffordanceMetric: data sample of {where} has no {key!r}; {hint}')
    data = value.get('data') if isinstance(value, dict) else getattr(value, 'data', value)
    if isinstance(data, torch.Tensor):  # half / bfloat16 (AMP inference) has no numpy dtype
        data = data.detach()
        if data.element_size() < 4 and data.is_floating_point():
            data = data.float()
    else:
        data = np.asarray(data)
    if not (data.ndim == 2 or (data.ndim == 3 and data.shape[0] == 1)):
        raise ValueError(
            f'AffordanceMetric: {key} of {where} has shape {tuple(data.shape)}; '
            f"expected (1, H, W) - one heatmap, for the image's own affordance "
            f'(gt_label)'
        )
    return data


def _minmax_finite(pred: np.ndarray) -> np.ndarray:
    """One map min-max normalised over its finite values (the project's :func:`minmax_normalize`, the metric's
    eps); NaN / inf stay where they are, for the scorer to replace and count."""
    fixed, changed = replace_nonfinite(pred)
    normed = minmax_normalize(fixed[None], EPS)[0]
    return np.where(np.isfinite(pred), normed, pred) if changed else normed


@METRICS.register_module()
class AffordanceMetric(BaseMetric):
    """Affordance-grounding metric with the exact published protocols.

    * ``protocol='agd20k'`` (AGD20K Seen / Unseen, HICO-IIF): KLD, SIM, NSS at 224x224, as the
      LOCATE and Cross-View-AG evaluation code. Images whose GT is all zero are left out of the
      means (the published code would give them KLD = 0) and counted as ``num_empty_gt``.
    * ``protocol='hotspots'`` (OPRA, EPIC-Hotspots): KLD, SIM, AUC-J at 28x28 by default, as
      ``interaction-hotspots/eval.py``. A GT that sums to 0 is uniform for KLD / SIM; images without
      fixations are left out of AUC-J and counted.

    See :mod:`looptrans.evaluation.functional` for the formulas and every edge case.

    Args:
        protocol: ``'agd20k'`` or ``'hotspots'``.
        metrics: names to report, a subset of the protocol's (``'KLD'``, ``'SIM'``, ``'NSS'`` or
            ``'KLD'``, ``'SIM'``, ``'AUC-J'``); ``None`` reports all of them.
        eval_size: evaluation resolution (int or ``(h, w)``); ``None`` uses the published one
            (224 for ``agd20k``, 28 for ``hotspots``).
        jitter_seed: seed of the AUC-J tie-breaking jitter; image ``i`` uses
            ``np.random.default_rng([jitter_seed, sample_idx_i])``, so the score does not depend on
            batch size, order or number of processes. ``None`` disables the jitter.
        collect_device: ``'cpu'`` or ``'gpu'``, where results are gathered under DDP.
        prefix: prefix of the returned keys (none by default: keys are ``'KLD'``, ``'SIM'``, ...).
        collect_dir: shared directory used by ``collect_device='cpu'`` (a temporary one by default).
        compute_backend: where the AGD20K scores of a batch are computed. ``'auto'`` (default):
            batched with torch on the predictions' device when that is an accelerator
            (:func:`~looptrans.evaluation.agd20k_scores_batched`; the maps never leave it), else on
            the CPU with OpenCV / NumPy (:func:`~looptrans.evaluation.agd20k_scores`, the faster of
            the two there). ``'torch'`` / ``'numpy'`` force one of them. The scores agree to ~1e-15.
            The Hotspots protocol always runs on the CPU.
        num_threads: CPU threads scoring the images of a batch (NumPy backend); ``None`` (default)
            uses torch's intra-op thread count (``torch.get_num_threads()``, which follows
            ``OMP_NUM_THREADS``), the CPU share the model itself uses.
        pred_normalization: ``None`` or ``'minmax'``; Hotspots protocol only. The published Hotspots
            evaluator divides each prediction by its maximum, which assumes a non-negative map (its model's
            heatmaps are). A raw score map (the pixel decoder's logits, ``test_cfg.heatmap='pixel_logits'``,
            or a raw CAM) has negative values: ``'minmax'`` min-max normalises every prediction first, as
            LoopTrans's and LOCATE's test code normalise theirs. With ``None`` (default, the maps as the
            published evaluator takes them) a prediction with a negative value is an error naming the image
            and this option, never a silently meaningless score. The AGD20K protocol min-max normalises every
            prediction itself (LOCATE's ``normalize_map``), so it takes no option.

    Each data sample given to :meth:`process` (a dict, as MMEngine passes them, or a
    ``SegDataSample``) needs ``pred_heatmap`` and ``gt_heatmap`` (``{'data': (1, H, W)}``; any
    sizes; the GT in float64 for the published NSS, as ``LoadAffordanceGT`` loads it),
    ``sample_idx`` (the dataset index, used to count every image once) and, for the
    per-affordance table and messages, ``affordance`` and ``img_path``. A ``gt_resized_to``
    field (set by ``LoadAffordanceGT(resize_to=...)``) must be the size the protocol resizes GT
    maps to first (``eval_size`` for AGD20K, 224 for Hotspots).
    """

    default_prefix: Optional[str] = None

    def __init__(
        self,
        protocol: str = 'agd20k',
        metrics: Optional[Union[str, Sequence[str]]] = None,
        eval_size: Optional[Union[int, Tuple[int, int]]] = None,
        jitter_seed: Optional[int] = 0,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
        collect_dir: Optional[str] = None,
        compute_backend: str = 'auto',
        num_threads: Optional[int] = None,
        pred_normalization: Optional[str] = None,
    ) -> None:
        with quiet_current_logger():  # the keys are unprefixed on purpose (KLD, SIM, NSS as published)
            super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if compute_backend not in COMPUTE_BACKENDS:
            raise ValueError(
                f'AffordanceMetric: compute_backend={compute_backend!r} is not one of {list(COMPUTE_BACKENDS)}'
            )
        if num_threads is not None and (not isinstance(num_threads, (int, np.integer)) or num_threads < 1):
            raise ValueError(f'AffordanceMetric: num_threads must be a positive int or None, got {num_threads!r}')
        if protocol not in PROTOCOLS:
            raise ValueError(
                f'AffordanceMetric: protocol={protocol!r} is not one of '
                f"{sorted(PROTOCOLS)} (use 'agd20k' for AGD20K / HICO-IIF, "
                f"'hotspots' for OPRA / EPIC)"
            )
        allowed = PROTOCOLS[protocol]['metrics']
        if metrics is None:
            metrics = allowed
        elif isinstance(metrics, str):
            metrics = (metrics,)
        unknown = [m for m in metrics if m not in allowed]
        if unknown or not metrics:
            raise ValueError(
                f'AffordanceMetric: metrics={list(metrics)!r} - protocol {protocol!r} '
                f'reports a non-empty subset of {list(allowed)}'
            )
        bad_seed = not isinstance(jitter_seed, (int, np.integer)) or jitter_seed < 0
        if jitter_seed is not None and bad_seed:
            raise ValueError(f'AffordanceMetric: jitter_seed must be a non-negative int or None, got {jitter_seed!r}')
        if pred_normalization not in (None, 'minmax'):
            raise ValueError(
                f"AffordanceMetric: pred_normalization must be None or 'minmax', got {pred_normalization!r}"
            )
        if pred_normalization is not None and protocol != 'hotspots':
            raise ValueError(
                f'AffordanceMetric: pred_normalization={pred_normalization!r} is for the hotspots protocol; the '
                f'{protocol!r} protocol min-max normalises every prediction itself: remove the option'
            )
        self.pred_normalization = pred_normalization
        self.protocol = protocol
        self.metrics = tuple(m for m in allowed if m in metrics)  # protocol order
        self.eval_size = PROTOCOLS[protocol]['eval_size'] if eval_size is None else eval_size
        # the size the protocol resizes GT maps to first: a GT resized to it by LoadAffordanceGT
        # (``resize_to``) scores the same, bit for bit
        first = self.eval_size if protocol == 'agd20k' else HOTSPOTS_GT_SIZE
        self._gt_first_size = tuple(int(v) for v in ((first, first) if isinstance(first, (int, np.integer)) else first))
        self.jitter_seed = jitter_seed
        self.compute_backend = compute_backend
        self.num_threads = num_threads
        self._warned_nonfinite = False

    # --------------------------------------------------------------------------------
    # per batch
    # --------------------------------------------------------------------------------
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Score every sample of a batch and append one small record per image to ``self.results``.

        A record is ``dict(sample_idx, img_path, affordance, KLD, SIM, NSS | AUC-J, empty_gt,
        nonfinite_pred)``; scores are floats (NaN where undefined, see ``compute_metrics``).
        """
        if not data_samples:
            return
        preds, gts, infos = [], [], []
        for sample in data_samples:
            img_path = _field(sample, 'img_path')
            sample_idx = _field(sample, 'sample_idx')
            where = repr(img_path) if img_path is not None else f'sample_idx={sample_idx}'
            if sample_idx is None:
                raise KeyError(
                    f'AffordanceMetric: data sample of {where} has no "sample_idx"; it '
                    f'is set by mmengine BaseDataset and must be kept in the packed '
                    f'metainfo (it is used to count each image once under DDP)'
                )
            resized_to = _field(sample, 'gt_resized_to')
            if resized_to is not None and tuple(resized_to) != self._gt_first_size:
                raise ValueError(
                    f'AffordanceMetric: the GT of {where} was resized to {tuple(resized_to)} by '
                    f'LoadAffordanceGT(resize_to=...), but protocol {self.protocol!r} resizes GT '
                    f'maps to {self._gt_first_size} first; set resize_to={self._gt_first_size} or '
                    f'remove it (scores would differ from the published protocol)'
                )
            preds.append(_pixel_data(sample, 'pred_heatmap', where))
            gts.append(_pixel_data(sample, 'gt_heatmap', where))
            infos.append(
                dict(sample_idx=int(sample_idx), img_path=img_path, affordance=str(_field(sample, 'affordance')))
            )
        names = [str(info['img_path'] or f"sample_idx={info['sample_idx']}") for info in infos]

        if self.protocol == 'agd20k':
            scores = self._agd20k(preds, gts, names)
        else:
            preds = [p.cpu().numpy() if isinstance(p, torch.Tensor) else p for p in preds]
            preds = self._nonnegative(preds, names)
            gts = [g.cpu().numpy() if isinstance(g, torch.Tensor) else g for g in gts]
            jitter = None
            if self.jitter_seed is not None:
                seed = int(self.jitter_seed)
                jitter = [np.random.default_rng([seed, info['sample_idx']]) for info in infos]
            scores = hotspots_scores(preds, gts, size=self.eval_size, jitter=jitter, names=names)

        if scores['nonfinite_pred'].any() and not self._warned_nonfinite:
            bad = [n for n, flag in zip(names, scores['nonfinite_pred']) if flag]
            print_log(
                f'AffordanceMetric: prediction of {bad[0]} has NaN/inf values; they are '
                f"replaced by the map's finite minimum (warned once; the total is reported "
                f'as num_nonfinite_pred)',
                logger='current',
                level=logging.WARNING,
            )
            self._warned_nonfinite = True

        for i, info in enumerate(infos):
            record = dict(info)
            record.update({m: float(scores[m][i]) for m in self.metrics})
            record['empty_gt'] = bool(scores['empty_gt'][i])
            record['nonfinite_pred'] = bool(scores['nonfinite_pred'][i])
            self.results.append(record)

    def _nonnegative(self, preds: List[np.ndarray], names: Sequence[str]) -> List[np.ndarray]:
        """The Hotspots protocol's predictions: min-max normalised (``pred_normalization='minmax'``; NaN / inf are
        left for the scorer to replace), or checked to be non-negative."""
        if self.pred_normalization == 'minmax':
            return [_minmax_finite(np.asarray(p, dtype=np.float64)) for p in preds]
        for pred, name in zip(preds, names):
            finite = np.asarray(pred)[np.isfinite(pred)]
            if finite.size and finite.min() < 0:
                raise ValueError(
                    f'AffordanceMetric: the prediction of {name} has negative values (min {finite.min():.4g}), but the '
                    "hotspots protocol divides each map by its maximum and needs non-negative maps. A raw score map "
                    "(test_cfg.heatmap='pixel_logits' or 'cam') needs val_evaluator / test_evaluator "
                    "pred_normalization='minmax'; or test with a probability map (test_cfg.heatmap='pixel')."
                )
        return preds

    def _agd20k(self, preds: List[Any], gts: List[Any], names: List[str]) -> Dict[str, np.ndarray]:
        """Score one batch with the AGD20K protocol on the chosen backend (see ``compute_backend``)."""
        backend = self.compute_backend
        if backend == 'auto':
            on_accelerator = isinstance(preds[0], torch.Tensor) and preds[0].device.type != 'cpu'
            backend = 'torch' if on_accelerator else 'numpy'
        if backend == 'torch':
            return agd20k_scores_batched(preds, gts, size=self.eval_size, names=names)
        preds = [p.cpu().numpy() if isinstance(p, torch.Tensor) else p for p in preds]
        gts = [g.cpu().numpy() if isinstance(g, torch.Tensor) else g for g in gts]
        threads = torch.get_num_threads() if self.num_threads is None else self.num_threads
        return agd20k_scores(preds, gts, size=self.eval_size, names=names, num_threads=threads)

    # --------------------------------------------------------------------------------
    # after all batches (rank 0)
    # --------------------------------------------------------------------------------
    @staticmethod
    def _deduplicate(results: List[dict]) -> Tuple[List[dict], int]:
        """Keep the first record of each ``sample_idx``; return them (sorted), number dropped.

        Under DDP, MMEngine's ``DefaultSampler`` pads the last round with repeated samples; they
        must count once. Two records with the same ``sample_idx`` but different images mean the
        index is not unique, which would silently drop images, so that is an error.
        """
        unique: Dict[int, dict] = {}
        for record in results:
            idx = record['sample_idx']
            first = unique.setdefault(idx, record)
            seen = (first['img_path'], first['affordance'])
            if first is not record and seen != (record['img_path'], record['affordance']):
                raise ValueError(
                    f'AffordanceMetric: sample_idx {idx} is used by two images {seen} and '
                    f'{(record["img_path"], record["affordance"])}; sample_idx must be the dataset '
                    f'index (as set by mmengine BaseDataset)'
                )
        return [unique[i] for i in sorted(unique)], len(results) - len(unique)

    def _valid(self, record: dict, metric: str) -> bool:
        """Whether ``record`` counts in ``metric``'s mean."""
        if self.protocol == 'agd20k' and record['empty_gt']:
            return False
        return math.isfinite(record[metric])

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """De-duplicate by ``sample_idx``, average, log a per-affordance table and the counts.

        Returns:
            ``{'KLD': ..., 'SIM': ..., 'NSS' | 'AUC-J': ...}`` (the requested metrics), means over
            the images where each score is defined.

        Raises:
            ValueError: no image has a defined value for a requested metric (e.g. every GT is
                empty): any number reported then would be meaningless.
        """
        records, num_duplicates = self._deduplicate(results)
        num_empty = sum(r['empty_gt'] for r in records)
        num_nonfinite = sum(r['nonfinite_pred'] for r in records)

        summary: Dict[str, float] = OrderedDict()
        left_out: Dict[str, int] = {}
        for metric in self.metrics:
            values = [r[metric] for r in records if self._valid(r, metric)]
            left_out[metric] = len(records) - len(values)
            if not values:
                raise ValueError(
                    f'AffordanceMetric: no image has a defined {metric} ({len(records)} images, '
                    f'{num_empty} with an all-zero GT); check that gt_heatmap holds the GT maps '
                    f'(grayscale/255) and that predictions are produced'
                )
            summary[metric] = float(np.mean(values))

        self._log_table(records)
        counts = [
            f'num_images={len(records)}',
            f'duplicates_dropped={num_duplicates}',
            f'num_empty_gt={num_empty}',
            f'num_nonfinite_pred={num_nonfinite}',
        ]
        counts += [f'{m}_left_out={n}' for m, n in left_out.items() if n or m == 'AUC-J']
        print_log(f'AffordanceMetric ({self.protocol}, {self.eval_size}): ' + ', '.join(counts), logger='current')
        return summary

    def _log_table(self, records: List[dict]) -> None:
        """Log the mean of every metric per affordance (and overall) with the number of images."""
        groups: Dict[str, List[dict]] = defaultdict(list)
        for record in records:
            groups[record['affordance']].append(record)
        rows = [(name, groups[name]) for name in sorted(groups)] + [('all', records)]
        header = ['affordance', 'images'] + list(self.metrics)
        lines = []
        for name, group in rows:
            cells = [name, str(len(group))]
            for metric in self.metrics:
                values = [r[metric] for r in group if self._valid(r, metric)]
                cells.append(f'{np.mean(values):.4f}' if values else '-')
            lines.append(cells)
        try:
            from prettytable import PrettyTable
        except ImportError:  # plain text; prettytable comes with mmsegmentation but is not required
            widths = [max(len(row[c]) for row in [header] + lines) for c in range(len(header))]
            text = '\n'.join(' | '.join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [header] + lines)
        else:
            table = PrettyTable(header)
            for cells in lines:
                table.add_row(cells)
            text = table.get_string()
        print_log('per-affordance results:\n' + text, logger='current')
