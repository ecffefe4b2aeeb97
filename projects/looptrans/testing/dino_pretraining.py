"""DINO self-supervised pretraining of a small ViT on generated images.

LoopTrans and LOCATE rest on a *frozen self-supervised* ViT: its last-block keys separate an object's parts
and its CLS attention finds the object (the saliency that removes the background). A randomly initialised ViT
has neither, so on the generated data the mechanism the paper rests on cannot work, and nothing can be
downloaded here. This module gives the generated benchmark such features the way the real ones were made:
DINO's own objective (Caron et al., ICCV 2021; facebookresearch/dino ``main_dino.py``), no labels, on images
drawn by the same generator (with their own random streams, so no training or test image of a generated tree
is among them), at a size a 2-core CPU trains in minutes.

What is DINO's, as published: a student and an EMA teacher of the same ViT + projection head (3-layer MLP,
L2-normalised bottleneck, weight-normalised prototype layer with its norm fixed to 1); multi-crop (2 global
views seen by both networks, local views by the student only); the cross-entropy between the teacher's
centred, sharpened softmax and the student's softmax over every pair of different views; the centre's EMA;
AdamW with a linear warm-up then cosine learning rate; a cosine teacher momentum to 1; gradient clipping.

What is scaled down or changed for CPU minutes and for this data (each a field of :class:`PretrainSettings`;
the measurements behind each choice are in ``docs/generated_benchmark.md``): a 4-block ViT of width 192 with 6
heads (ViT-S has 12 blocks of width 384; 6 heads keep LOCATE's saliency heads (0, 1, 3) meaningful), 128-pixel
global and 48-pixel local crops of 224-pixel images at DINO's crop scales (patch 16 keeps the 14 x 14 grid at
test time), 256 prototypes, 2,000 steps of batch 32, brightness / contrast jitter only (hue jitter and grayscale
kept the loss from falling within the budget), and a *background swap* (Ryali et al., "Characterizing and
Improving the Robustness of Self-Supervised Learning through Background Augmentations", 2021): each view of an
egocentric image gets, with probability 0.8, a random generated backdrop behind its object. Without it the
only thing two views of a generated image reliably share is the plain backdrop, and every head's CLS attention
learnt to look at the backdrop, away from the object.

The result is saved in the official DINO release layout (timm names, a plain state dict, as
``dino_deitsmall16_pretrain.pth``) and loads through the same ``init_cfg=dict(type='Pretrained', ...)`` path.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.backbones import DINOVisionTransformer
from ..models.backbones.dino_weights import convert_mmpretrain_to_dino
from .synthetic_agd20k import (
    AFFORDANCE_PARTS,
    EGO_REL_SCALE,
    check_drawing_options,
    clutter_background,
    make_rng,
    plain_background,
    render_egocentric,
    render_exocentric,
)

#: ImageNet mean / std (RGB, 0..255), as the configs' data preprocessor.
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that decides the pretrained weights (with the number of CPU threads)."""

    seed: int = 0
    embed_dims: int = 192
    num_layers: int = 4
    num_heads: int = 6
    patch_size: int = 16
    image_size: int = 224
    num_images: int = 1024
    steps: int = 2000
    batch_size: int = 32
    global_size: int = 128
    global_scale: Tuple[float, float] = (0.4, 1.0)
    local_size: int = 48
    local_scale: Tuple[float, float] = (0.05, 0.4)
    num_local: int = 4
    jitter: Tuple[float, float, float, float] = (0.2, 0.2, 0.0, 0.0)
    jitter_prob: float = 1.0
    grayscale_prob: float = 0.0
    head_hidden: int = 512
    head_bottleneck: int = 128
    out_dim: int = 256
    lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_steps: int = 50
    weight_decay: float = 0.04
    clip_grad: float = 3.0
    momentum: Tuple[float, float] = (0.99, 1.0)
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    center_momentum: float = 0.9
    freeze_last_layer_steps: int = 30
    background_swap: float = 0.8
    num_backgrounds: int = 256
    ego_scale: Tuple[float, float] = EGO_REL_SCALE
    part_thickness: float = 1.0
    bold_parts: bool = False

    def arch(self) -> dict:
        """The ViT arch dict of the backbone configs."""
        return dict(
            embed_dims=self.embed_dims,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            feedforward_channels=4 * self.embed_dims,
        )


# --------------------------------------------------------------------------- #
# Data: generated images and DINO's multi-crop
# --------------------------------------------------------------------------- #
def _bgr_to_rgb_chw(img: np.ndarray) -> Tensor:
    """A generator's BGR uint8 (H, W, 3) image as an RGB uint8 tensor (3, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))


def render_pool(
    num_images: int,
    seed: int,
    size: int = 224,
    ego_scale: Tuple[float, float] = EGO_REL_SCALE,
    part_thickness: float = 1.0,
    bold_parts: bool = False,
) -> Tuple[Tensor, Tensor]:
    """``num_images`` generated images (uint8 RGB, (N, 3, size, size)), alternating egocentric and exocentric
    renders of every (affordance, object) pair, each from its own ``make_rng(seed, 'dino', ...)`` stream, and
    the object mask of each egocentric one ((N, 1, size, size) bool; all False for an exocentric one).

    ``ego_scale``, ``part_thickness`` and ``bold_parts`` are the generator's options of the same name
    (:func:`~looptrans.testing.synthetic_agd20k.render_egocentric`): pretrain on images drawn like the tree the
    features will be used on."""
    check_drawing_options(ego_scale, part_thickness)
    pairs = [(aff, obj) for aff, objs in sorted(AFFORDANCE_PARTS.items()) for obj in sorted(objs)]
    pool = torch.empty(num_images, 3, size, size, dtype=torch.uint8)
    masks = torch.zeros(num_images, 1, size, size, dtype=torch.bool)
    for i in range(num_images):
        aff, obj = pairs[i % len(pairs)]
        kind = 'ego' if (i // len(pairs)) % 2 == 0 else 'exo'
        rng = make_rng(seed, 'dino', kind, aff, obj, index=i)
        if kind == 'ego':
            img, _, _, whole = render_egocentric(
                aff,
                obj,
                rng,
                return_part_mask=True,
                return_object_mask=True,
                ego_scale=ego_scale,
                part_thickness=part_thickness,
                bold_parts=bold_parts,
            )
            whole = cv2.resize(whole, (size, size), interpolation=cv2.INTER_NEAREST)
            masks[i, 0] = torch.from_numpy(whole > 127)
        else:
            img = render_exocentric(aff, obj, rng, part_thickness=part_thickness, bold_parts=bold_parts)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        pool[i] = _bgr_to_rgb_chw(img)
    return pool, masks


def render_backgrounds(num: int, seed: int, size: int = 224) -> Tensor:
    """``num`` backgrounds (uint8 RGB, (num, 3, size, size)) as the generator draws them: plain (even index) or
    cluttered (odd), each from its own ``make_rng(seed, 'dino', 'background', ...)`` stream."""
    out = torch.empty(num, 3, size, size, dtype=torch.uint8)
    for i in range(num):
        rng = make_rng(seed, 'dino', 'background', index=i)
        img = plain_background(size, size, rng) if i % 2 == 0 else clutter_background(size, size, rng)
        out[i] = _bgr_to_rgb_chw(img)
    return out


def swap_background(image: Tensor, mask: Tensor, background: Tensor) -> Tensor:
    """``image`` with every pixel outside its object ``mask`` taken from ``background`` (any matching leading
    dimensions: (3, H, W) with (1, H, W), or a batch (B, 3, H, W) with (B, 1, H, W))."""
    return torch.where(mask, image, background)


def sample_crop_boxes(
    n: int, height: int, width: int, scale: Tuple[float, float], gen: torch.Generator, ratio=(3 / 4, 4 / 3)
) -> Tensor:
    """``n`` crop boxes (x0, y0, x1, y1 in pixels, float) drawn as torchvision's ``RandomResizedCrop`` draws one:
    up to 10 tries of an area share in ``scale`` and a log-uniform aspect ratio in ``ratio``, the first that fits
    the image kept, else the whole image; then a uniformly placed top-left corner. Vectorised over ``n``."""
    tries = 10
    area = height * width * torch.empty(n, tries).uniform_(*scale, generator=gen)
    aspect = torch.exp(torch.empty(n, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen))
    cw = torch.round(torch.sqrt(area * aspect))
    ch = torch.round(torch.sqrt(area / aspect))
    fits = (cw > 0) & (cw <= width) & (ch > 0) & (ch <= height)
    first = fits.float().argmax(1)  # the first try that fits (0 when none does)
    any_fits = fits.any(1)
    rows = torch.arange(n)
    cw = torch.where(any_fits, cw[rows, first], torch.tensor(float(width)))
    ch = torch.where(any_fits, ch[rows, first], torch.tensor(float(height)))
    u = torch.rand(n, 2, generator=gen)
    y0 = torch.floor(u[:, 0] * (height - ch + 1)).clamp_max(height - ch)
    x0 = torch.floor(u[:, 1] * (width - cw + 1)).clamp_max(width - cw)
    return torch.stack([x0, y0, x0 + cw, y0 + ch], dim=1)


def crop_and_resize(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """The ``boxes`` (B, 4: x0, y0, x1, y1, pixel edges) of ``images`` (B, C, H, W, float), each resized to
    (size, size), in one batched call: ``roi_align`` with pixel-aligned boxes and an adaptive number of samples
    per output pixel (ceil(box side / size)), i.e. bilinear resizing that averages every input pixel it
    shrinks over (antialiased), as DINO's PIL resize does. A box of exactly ``size`` pixels is copied as is."""
    from torchvision.ops import roi_align

    rois = torch.cat([torch.arange(len(boxes), dtype=boxes.dtype)[:, None], boxes], dim=1)
    return roi_align(images, rois.to(images), output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def _grayscale(img: Tensor) -> Tensor:
    """ITU-R 601-2 luma of RGB ``img`` (B, 3, H, W), (B, 1, H, W): torchvision's ``rgb_to_grayscale``."""
    r, g, b = img.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _blend(img: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """torchvision's ``_blend`` with one factor per image: ``factor * img + (1 - factor) * other`` in 0..1."""
    f = factor.view(-1, 1, 1, 1)
    return (f * img + (1 - f) * other).clamp(0, 1)


def augment(crops: Tensor, s: 'PretrainSettings', gen: torch.Generator) -> Tensor:
    """DINO's photometric augmentations of a batch of crops (B, 3, h, w), RGB floats in 0..255, each image with
    its own draws: horizontal flip (p = 0.5); colour jitter (p = ``jitter_prob``: brightness, contrast,
    saturation by up to ``jitter``, in this order, as torchvision's functions compute them; torchvision's
    ``ColorJitter`` picks a random order); grayscale (p = ``grayscale_prob``). Hue jitter (``jitter[3]``) is
    refused: it measured no better here (see the module docstring) and has no batched form."""
    b, c, sat, hue = s.jitter
    if hue:
        raise ValueError(f'PretrainSettings.jitter: hue jitter ({hue}) is not supported; set it to 0.')
    n = len(crops)
    draws = torch.rand(n, 6, generator=gen)
    flip = (draws[:, 0] < 0.5).view(-1, 1, 1, 1).to(crops.device)
    img = torch.where(flip, crops.flip(-1), crops) / 255.0
    jitter = draws[:, 1] < s.jitter_prob

    def factor(column: int, amount: float) -> Tensor:  # 1 (no change) where the image is not jittered
        f = 1 - amount + 2 * amount * draws[:, column]
        return torch.where(jitter, f, torch.ones(())).to(crops.device)

    img = (img * factor(2, b).view(-1, 1, 1, 1)).clamp(0, 1)  # adjust_brightness
    img = _blend(img, _grayscale(img).mean((1, 2, 3), keepdim=True), factor(3, c))  # adjust_contrast
    img = _blend(img, _grayscale(img), factor(4, sat))  # adjust_saturation
    gray = (draws[:, 5] < s.grayscale_prob).view(-1, 1, 1, 1).to(crops.device)
    img = torch.where(gray, _grayscale(img).expand_as(img), img)
    return img * 255.0


def multi_crop(
    images: Tensor,
    s: PretrainSettings,
    gen: torch.Generator,
    masks: Optional[Tensor] = None,
    backgrounds: Optional[Tensor] = None,
) -> List[Tensor]:
    """DINO's views of a batch (B, 3, H, W) uint8: 2 global then ``num_local`` local view batches, normalised,
    on the images' device. Every random draw comes from ``gen`` (a CPU generator), so the views are the same on
    any device up to floating-point rounding.

    With object ``masks`` (B, 1, H, W) and ``backgrounds`` (M, 3, H, W), each view of an image that has an
    object mask first gets, with probability ``background_swap``, a random background behind its object
    (a background augmentation, Ryali et al. 2021): what two views of an image share is then the object,
    not the backdrop, which is what makes the CLS attention find the object.
    """
    device = images.device
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    n, _, height, width = images.shape
    has_object = masks.flatten(1).any(1).cpu() if masks is not None and backgrounds is not None else None
    views = []
    for size, scale, count in ((s.global_size, s.global_scale, 2), (s.local_size, s.local_scale, s.num_local)):
        for _ in range(count):
            source = images
            if has_object is not None:
                swap = has_object & (torch.rand(n, generator=gen) < s.background_swap)
                pick = torch.randint(0, len(backgrounds), (n,), generator=gen)
                keep = masks | ~swap.to(device).view(-1, 1, 1, 1)
                source = swap_background(images, keep, backgrounds[pick.to(backgrounds.device)])
            boxes = sample_crop_boxes(n, height, width, scale, gen)
            crops = crop_and_resize(source.float(), boxes, size)
            views.append((augment(crops, s, gen) - mean) / std)
    return views


# --------------------------------------------------------------------------- #
# Networks and loss
# --------------------------------------------------------------------------- #
class DINOHead(nn.Module):
    """DINO's projection head: 3-layer MLP (GELU), L2-normalised bottleneck, weight-normalised prototype layer
    whose norm (``weight_g``) is fixed to 1."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, bottleneck: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, bottleneck)
        )
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.parametrizations.weight.original0.data.fill_(1.0)
        self.last_layer.parametrizations.weight.original0.requires_grad = False

    def forward(self, x: Tensor) -> Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class ViTWithHead(nn.Module):
    """The ViT's final CLS token through the head, one view batch at a time (views differ in size)."""

    def __init__(self, backbone: DINOVisionTransformer, head: DINOHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, views: Sequence[Tensor]) -> Tensor:
        return torch.cat([self.head(self.backbone(v)[-1]) for v in views])


def build_student(s: PretrainSettings) -> ViTWithHead:
    """The ViT (trainable, CLS-token output, DINO's init: truncated normal 0.02) and its head."""
    vit = DINOVisionTransformer(
        arch=s.arch(), img_size=s.image_size, patch_size=s.patch_size, out_type='cls_token', frozen=False
    )
    for name, p in vit.named_parameters():
        if name in ('pos_embed', 'cls_token'):
            nn.init.trunc_normal_(p, std=0.02)
    for m in vit.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return ViTWithHead(vit, DINOHead(s.embed_dims, s.out_dim, s.head_hidden, s.head_bottleneck))


def dino_loss(
    student_out: Tensor, teacher_out: Tensor, center: Tensor, num_views: int, student_temp: float, teacher_temp: float
) -> Tensor:
    """DINO's cross-entropy: the teacher's centred, sharpened softmax of each global view against the student's
    log-softmax of every *other* view, averaged over the pairs and the batch.

    Args:
        student_out: (num_views * B, K), the 2 global views first.
        teacher_out: (2 * B, K), the global views.
        center: (1, K).
    """
    student = (student_out / student_temp).chunk(num_views)
    teacher = F.softmax((teacher_out - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, pairs = student_out.new_zeros(()), 0
    for iq, q in enumerate(teacher):
        for v, logits in enumerate(student):
            if v == iq:
                continue
            total = total + torch.sum(-q * F.log_softmax(logits, dim=-1), dim=-1).mean()
            pairs += 1
    return total / pairs


def cosine(step: int, total: int, start: float, end: float, warmup: int = 0, warmup_from: float = 0.0) -> float:
    """Value at ``step`` of DINO's ``cosine_scheduler`` over ``total`` steps: ``np.linspace(warmup_from, start,
    warmup)`` for the first ``warmup`` steps, then ``end + (start - end) (1 + cos(pi i / n)) / 2`` for the
    i-th of the n remaining steps."""
    if step < warmup:
        return warmup_from + (start - warmup_from) * (step / (warmup - 1) if warmup > 1 else 1.0)
    t = (step - warmup) / max(1, total - warmup)
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * t))


@dataclass
class PretrainResult:
    """The teacher ViT's state dict in the official DINO layout, the settings and the training log."""

    state_dict: Dict[str, Tensor]
    settings: PretrainSettings
    log: List[Dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def meta(self) -> dict:
        return dict(settings=asdict(self.settings), seconds=round(self.seconds, 1), log=self.log)


def pretrain_dino(
    s: PretrainSettings = PretrainSettings(),
    log: Optional[Callable[[str], None]] = None,
    log_every: int = 25,
    device: str = 'cpu',
) -> PretrainResult:
    """Run DINO on generated images on ``device``; deterministic for ``s``, the device kind and (on the CPU) the
    number of torch threads. The images, initial weights and every random draw are made on the CPU, so a GPU
    run differs from a CPU run by floating-point rounding only."""
    start = time.perf_counter()
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    pool, masks = render_pool(s.num_images, s.seed, s.image_size, s.ego_scale, s.part_thickness, s.bold_parts)
    pool, masks = pool.to(device), masks.to(device)
    backgrounds = render_backgrounds(s.num_backgrounds, s.seed, s.image_size) if s.background_swap else None
    if backgrounds is not None:
        backgrounds = backgrounds.to(device)
    student = build_student(s).to(device)
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad = False
    teacher.eval()
    student.train()
    decay = [p for n, p in student.named_parameters() if p.requires_grad and p.ndim > 1 and 'pos_embed' not in n]
    no_decay = [p for n, p in student.named_parameters() if p.requires_grad and (p.ndim <= 1 or 'pos_embed' in n)]
    optim = torch.optim.AdamW([dict(params=decay), dict(params=no_decay, weight_decay=0.0)], lr=s.lr)
    optim.param_groups[0]['weight_decay'] = s.weight_decay
    center = torch.zeros(1, s.out_dim, device=device)
    num_views = 2 + s.num_local
    last_layer = [p for n, p in student.head.named_parameters() if n.startswith('last_layer') and p.requires_grad]
    history: List[Dict[str, float]] = []
    for step in range(s.steps):
        lr = cosine(step, s.steps, s.lr, s.min_lr, s.warmup_steps)
        for group in optim.param_groups:
            group['lr'] = lr
        idx = torch.randint(0, len(pool), (s.batch_size,), generator=gen).to(device)
        views = multi_crop(pool[idx], s, gen, masks[idx], backgrounds)
        with torch.no_grad():
            teacher_out = teacher(views[:2])
        student_out = torch.cat([student(views[:2]), student(views[2:])]) if s.num_local else student(views[:2])
        loss = dino_loss(student_out, teacher_out, center, num_views, s.student_temp, s.teacher_temp)
        if not torch.isfinite(loss):
            raise FloatingPointError(f'DINO loss is {loss.item()} at step {step}; lower PretrainSettings.lr.')
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if s.clip_grad:
            nn.utils.clip_grad_norm_(student.parameters(), s.clip_grad)
        if step < s.freeze_last_layer_steps:
            for p in last_layer:
                p.grad = None
        optim.step()
        m = cosine(step, s.steps, s.momentum[0], s.momentum[1])
        with torch.no_grad():
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(m).add_(ps.detach(), alpha=1 - m)
            center.mul_(s.center_momentum).add_(teacher_out.mean(0, keepdim=True), alpha=1 - s.center_momentum)
        if (step + 1) % log_every == 0 or step + 1 == s.steps:
            probs = F.softmax((teacher_out - center) / s.teacher_temp, dim=-1)
            entropy = float(-(probs * probs.clamp_min(1e-12).log()).sum(-1).mean())
            used = int(probs.argmax(-1).unique().numel())
            row = dict(step=step + 1, loss=loss.item(), lr=lr, momentum=m, teacher_entropy=entropy, prototypes=used)
            history.append(row)
            if log is not None:
                log(
                    f'step {step + 1}/{s.steps}  loss {row["loss"]:.4f}  teacher entropy {entropy:.3f}  '
                    f'prototypes used {used}  lr {lr:.2e}  momentum {m:.4f}  ({time.perf_counter() - start:.1f} s)'
                )
    state = convert_mmpretrain_to_dino({k: v.detach().cpu().clone() for k, v in teacher.backbone.state_dict().items()})
    return PretrainResult(state, s, history, time.perf_counter() - start)
