"""Speed and memory of a LoopTrans config: training step, frozen backbone alone, inference.

Prints, for a batch of B samples (B ego + B*V exo images at the config's crop size): the training step time
(forward + backward + SGD step), training images/s, the peak memory, the same for the frozen backbone's
forward alone on the same B*(1+V) images, their ratio, and inference images/s at two batch sizes.
Random weights and random images: no dataset or checkpoint needed. Runs on CPU and CUDA.

It then checks the backbone speed claim: the same B*(1+V) images through our frozen DINO ViT-S/16
(``DINOVisionTransformer.forward_descriptors``, the pass the model runs: keys, CLS attention and final features)
and through timm's ``VisionTransformer`` (``vit_small_patch16_224`` layout, ``forward_features``), both holding the
same random weights (timm's, saved in the official DINO layout and loaded by our backbone's own loader). It prints
both times, their ratio and the largest difference between the two models' final patch features (timm is needed:
``requirements/tests.txt``; without it the check is skipped with a message).

    python tools/analysis_tools/benchmark.py configs/looptrans_agd20k.py --batch-size 16 --device cuda
    python tools/analysis_tools/benchmark.py configs/looptrans_agd20k.py --batch-size 16 --device cpu \
        --iters 5 --warmup 2
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from typing import Callable, Dict, Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark a LoopTrans config')
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=16, help='samples per training step')
    parser.add_argument('--num-exo', type=int, default=3, help='exocentric views per sample')
    parser.add_argument('--size', type=int, default=224, help='input side length')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations first')
    parser.add_argument('--infer-batch-sizes', type=int, nargs='+', default=[1, 64])
    parser.add_argument('--amp', action='store_true', help='bf16/fp16 autocast for the training step')
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = default)')
    parser.add_argument('--no-timm-check', action='store_true', help='skip the comparison with timm')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def build_model(cfg: Config, device: str) -> torch.nn.Module:
    """The config's model with random weights (pretrained files are not needed for timing)."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from looptrans.apis import without_pretrained

    return MODELS.build(without_pretrained(cfg.model)).to(device)


def synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_it(fn: Callable[[], None], device: str, iters: int, warmup: int) -> float:
    """Mean seconds per call of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / iters


def time_alternating(
    first: Callable[[], None], second: Callable[[], None], device: str, iters: int, warmup: int
) -> Tuple[float, float]:
    """Mean seconds per call of ``first`` and of ``second``, timed in turns (``first``, ``second``, ``first``, ...)
    after ``warmup`` untimed calls of each, so that a change of load on a shared machine hits both alike."""
    for _ in range(warmup):
        first()
        second()
    totals = [0.0, 0.0]
    for _ in range(iters):
        for k, fn in enumerate((first, second)):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            totals[k] += time.perf_counter() - start
    return totals[0] / max(1, iters), totals[1] / max(1, iters)


def peak_memory_gib(device: str) -> float:
    """Peak CUDA memory allocated since the last reset, or the process's peak RSS on CPU."""
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux


def reset_peak(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()


def random_timm_vit(size: int, seed: int = 0) -> torch.nn.Module:
    """timm ``vit_small_patch16_224`` laid out for ``size`` with random, non-trivial weights (no download).

    timm's own initialisation is skipped (slow on a CPU) and every tensor is drawn here: matrices with std
    1/sqrt(fan_in), so attention is far from uniform; norm scales around 1; the rest std 0.1.
    """
    import timm

    gen = torch.Generator().manual_seed(seed)
    model = timm.create_model(
        'vit_small_patch16_224', pretrained=False, num_classes=0, img_size=size, weight_init='skip'
    ).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim >= 2 and name not in ('cls_token', 'pos_embed'):
                param.copy_(torch.randn(param.shape, generator=gen) * param[0].numel() ** -0.5)
            elif 'norm' in name and name.endswith('weight'):
                param.copy_(1 + 0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
    return model


def compare_backbones(
    images: torch.Tensor, device: str, iters: int, warmup: int, seed: int = 0
) -> Optional[Dict[str, float]]:
    """Time our frozen DINO ViT-S/16 and timm's ViT on ``images`` (N, 3, S, S) with the same weights; print a table.

    Returns ``dict(ours_s, timm_s, ratio=ours_s / timm_s, max_abs_diff, num_images)``, or None (with a message)
    when timm is not installed. ``max_abs_diff`` is the largest difference between the final normed patch
    features of the two models (they must agree: the same weights and the same function).
    """
    try:
        import timm  # noqa: F401
    except ImportError:
        print('backbone vs timm: skipped (timm is not installed: pip install -r requirements/tests.txt)')
        return None
    from looptrans.models.backbones import DINOVisionTransformer

    size = images.shape[-1]
    reference = random_timm_vit(size, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'dino_deitsmall16_pretrain.pth')  # the official DINO layout (timm names)
        torch.save(reference.state_dict(), path)
        ours = DINOVisionTransformer(img_size=size)
        ours.load_dino_weights(path)
    ours, reference = ours.to(device).eval(), reference.to(device).eval()
    images = images.to(device)

    @torch.no_grad()
    def run_ours() -> None:
        ours.forward_descriptors(images)

    @torch.no_grad()
    def run_timm() -> None:
        reference.forward_features(images)

    ours_s, timm_s = time_alternating(run_ours, run_timm, device, iters, warmup)
    with torch.no_grad():
        feats = ours.forward_descriptors(images)['feats'].flatten(2).transpose(1, 2)
        expected = reference.forward_features(images)[:, reference.num_prefix_tokens :]
    figures = dict(
        ours_s=ours_s,
        timm_s=timm_s,
        ratio=ours_s / timm_s,
        max_abs_diff=float((feats - expected).abs().max()),
        num_images=images.shape[0],
    )
    print_backbone_table(figures, size)
    return figures


def print_backbone_table(figures: Dict[str, float], size: int) -> None:
    """The backbone comparison as printed by :func:`compare_backbones` (one row per model, then the ratio)."""
    n = figures['num_images']
    print(f'backbone vs timm: {n} images at {size}x{size}, ViT-S/16, the same random weights in both')
    print(f'{"what":<52}{"s/iter":>10}{"images/s":>12}')
    rows = [
        ('looptrans DINOVisionTransformer.forward_descriptors', figures['ours_s']),
        ('timm VisionTransformer.forward_features', figures['timm_s']),
    ]
    for name, seconds in rows:
        print(f'{name:<52}{seconds:>10.4f}{n / seconds:>12.1f}')
    verdict = 'faster' if figures['ratio'] < 1 else 'slower'
    print(
        f'ours / timm time: {figures["ratio"]:.3f}x (ours {verdict}); '
        f'max |feature difference|: {figures["max_abs_diff"]:.2e}'
    )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    device = args.device
    model = build_model(cfg, device)
    num_classes = model.num_classes
    B, V, S = args.batch_size, args.num_exo, args.size
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(B, 1 + V, 3, S, S, generator=gen).to(device)
    samples = [
        SegDataSample(
            metainfo=dict(
                gt_label=int(torch.randint(num_classes, (1,), generator=gen)), img_shape=(S, S), ori_shape=(S, S)
            )
        )
        for _ in range(B)
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    amp_dtype = torch.bfloat16 if device == 'cpu' or torch.cuda.is_bf16_supported() else torch.float16

    def train_step() -> None:
        model.train()
        with torch.autocast(device_type=device.split(':')[0], dtype=amp_dtype, enabled=args.amp):
            losses = model.loss(images, samples)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    flat = images.flatten(0, 1)

    @torch.no_grad()
    def backbone_forward() -> None:
        model.eval()
        if model.shares_descriptor_pass:
            model.backbone.forward_with_descriptors(flat)
        else:
            model.backbone(flat)
            model.descriptor.forward_descriptors(images[:, 0])

    figures: Dict[str, float] = {}
    reset_peak(device)
    figures['train_step_s'] = time_it(train_step, device, args.iters, args.warmup)
    figures['train_peak_gib'] = peak_memory_gib(device)
    reset_peak(device)
    figures['backbone_s'] = time_it(backbone_forward, device, args.iters, args.warmup)
    figures['backbone_peak_gib'] = peak_memory_gib(device)

    n_images = B * (1 + V)
    print(
        f'config: {args.config}\ndevice: {device} '
        f'({torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"}, '
        f'{torch.get_num_threads()} threads), torch {torch.__version__}, amp={args.amp}'
    )
    print(f'batch: {B} samples = {B} ego + {B * V} exo images at {S}x{S} ({n_images} images)')
    print(f'{"what":<34}{"s/iter":>10}{"images/s":>12}{"peak GiB":>10}')
    print(
        f'{"training step":<34}{figures["train_step_s"]:>10.4f}{n_images / figures["train_step_s"]:>12.1f}'
        f'{figures["train_peak_gib"]:>10.2f}'
    )
    print(
        f'{"frozen backbone forward alone":<34}{figures["backbone_s"]:>10.4f}'
        f'{n_images / figures["backbone_s"]:>12.1f}{figures["backbone_peak_gib"]:>10.2f}'
    )
    print(f'training step / backbone forward: {figures["train_step_s"] / figures["backbone_s"]:.2f}x')
    if not args.no_timm_check:
        compare_backbones(flat, device, args.iters, args.warmup)

    model.eval()
    for bs in args.infer_batch_sizes:
        ego = torch.randn(bs, 1, 3, S, S, generator=gen).to(device)

        @torch.no_grad()
        def infer() -> None:
            model.inference(ego)

        seconds = time_it(infer, device, max(1, args.iters), max(1, args.warmup))
        print(f'inference (heatmaps of all classes), batch {bs}: {bs / seconds:.1f} images/s')
    if device == 'cpu':
        print('(CPU peak memory is the process peak RSS so far, not per phase)')


if __name__ == '__main__':
    main()
