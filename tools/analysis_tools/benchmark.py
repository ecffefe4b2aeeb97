"""Speed and memory of a LoopTrans config: training step, frozen backbone alone, inference.

Prints, for a batch of B samples (B ego + B*V exo images at the config's crop size): the training step time
(forward + backward + SGD step), training images/s, the peak memory, the same for the frozen backbone's
forward alone on the same B*(1+V) images, their ratio, and inference images/s at two batch sizes.
Random weights and random images: no dataset or checkpoint needed. Runs on CPU and CUDA.

    python tools/analysis_tools/benchmark.py configs/looptrans_agd20k.py --batch-size 16 --device cuda
    python tools/analysis_tools/benchmark.py configs/looptrans_agd20k.py --batch-size 16 --device cpu \
        --iters 5 --warmup 2
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Callable, Dict

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


def peak_memory_gib(device: str) -> float:
    """Peak CUDA memory allocated since the last reset, or the process's peak RSS on CPU."""
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux


def reset_peak(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()


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
            model.backbone.forward_descriptors(flat)
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
