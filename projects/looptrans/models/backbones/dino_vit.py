"""DINO / DINOv2 ViT backbone that also exposes the last block's self-attention keys and CLS attention.

LOCATE and LoopTrans use a frozen self-supervised DINO ViT-S/16 in two ways: the **keys** of the
last block's self-attention are the per-patch descriptors (for the CAM heads and for part
clustering), and the CLS token's attention over the patches in that block is a saliency prior.
This backbone is mmpretrain's ``VisionTransformer`` (same parameters, same forward) plus
:meth:`DINOVisionTransformer.forward_descriptors`, which returns keys, CLS attention and the final
features from one pass, and a loader that accepts the official DINO and DINOv2 weight files.
DINOv2 (ViT-S/14 etc.) is the same network with LayerScale in every block (mmpretrain's
``layer_scale_init_value``), patch 14 and position embeddings laid out for 518 x 518 inputs, so one
class and one descriptor path serve both.
"""

import contextlib
import re
from typing import ContextManager, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmseg.registry import MODELS
from torch import Tensor

from .dino_weights import CheckpointKeyError, load_dino_state_dict

_DINO_URLS = {
    ('deit-small', 16): 'https://dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth',
    ('deit-small', 8): 'https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth',
    ('deit-base', 16): 'https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth',
    ('dinov2-small', 14): 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth',
}
# LayerScale parameters (DINOv2) in mmpretrain names: present iff layer_scale_init_value > 0.
_LAYER_SCALE_KEY = re.compile(r'^layers\.\d+\.(attn\.gamma1|ffn\.gamma2)\.weight$')


@MODELS.register_module()
class DINOVisionTransformer(VisionTransformer):
    """Vision Transformer for DINO weights, with last-block attention keys as an output.

    Defaults build DINO ViT-S/16 (``arch='deit-small'``: 384 dims, 12 blocks, 6 heads, FFN 1536;
    patch 16; qkv bias; LayerNorm eps 1e-6). ViT-S/8 is ``patch_size=8``; ViT-B/16 is
    ``arch='deit-base'``. DINOv2 ViT-S/14 is ``arch='dinov2-small', patch_size=14, img_size=518,
    layer_scale_init_value=1e-5, interpolate_offset=0.1`` (``configs/_base_/models/dinov2_vits14.py``).
    Position embeddings are resized (bicubic) for inputs whose size differs from ``img_size``.

    Note:
        At ``img_size`` (224 in LOCATE and LoopTrans) the outputs equal the official DINO model's.
        At other sizes two mmpretrain conventions apply by default that differ slightly from DINO's
        own code: the position grid is resized to the target size (DINO and DINOv2 pass a scale
        factor with a 0.1 offset: set ``interpolate_offset=0.1`` for theirs), and an input not
        divisible by the patch size is zero-padded at the bottom/right (DINO drops the remainder).

    Outputs:

    - ``forward(x)`` returns a tuple with one tensor per ``out_indices`` entry, as any mmseg
      backbone. With ``out_type='featmap'`` (default) that is the final normed patch tokens as
      a (B, C, h, w) map; with ``out_type='keys'`` it is the last block's attention keys as a
      (B, C, h, w) map (the features LOCATE's heads consume); other mmpretrain out types
      (``'cls_token'``, ``'raw'``, ``'avg_featmap'``) work as in mmpretrain.
    - ``forward_descriptors(x)`` returns ``dict(keys, cls_attn, feats)`` from one pass.
    - ``forward_with_descriptors(x)`` returns ``forward(x)`` and ``dict(keys, cls_attn)`` from one pass (how
      :class:`LoopTrans` encodes a training batch when this backbone also gives the part-discovery
      descriptors).

    Args:
        arch: mmpretrain ViT arch name or dict. Defaults to ``'deit-small'``.
        img_size: Input size the position embeddings are laid out for. Defaults to 224.
        patch_size: Patch size, 16 or 8 for the DINO weights. Defaults to 16.
        out_type: ``'featmap'`` (default), ``'keys'``, or another mmpretrain out type.
        key_layout: Channel order of the keys (C = num_heads * head_dims).
            ``'locate'`` (default) is the order LOCATE uses,
            ``key.permute(0, 2, 3, 1).flatten(-2)``: channel ``d * num_heads + head``.
            ``'heads'`` concatenates the heads: channel ``head * head_dims + d`` (the raw output
            slice of the ``qkv`` linear layer). Clustering and cosine similarity do not depend on
            it; weights trained on one layout (e.g. LOCATE's projection heads) need the same layout.
        frozen: Freeze all parameters, keep every module in eval mode (also after ``.train()``)
            and run the forward under ``torch.no_grad()``. Defaults to True, as in LOCATE.
        qkv_bias: Bias in the qkv projection. Defaults to True (DINO, DINOv2).
        norm_cfg: Normalisation config. Defaults to LayerNorm with eps 1e-6 (DINO, DINOv2).
        interpolate_offset: How the position grid is resized at forward time for a patch grid
            other than the one of ``img_size``. ``0`` (default): to the target size, as mmpretrain
            does. ``> 0``: as DINO's and DINOv2's own code, bicubic with the scale factor
            ``(target + offset) / source`` per side (their ``interpolate_offset``, 0.1 in the
            released models), which samples the source grid at slightly other positions.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads official DINO or DINOv2 weights
            (timm names, possibly wrapped as in DINO full checkpoints) or mmpretrain-named weights,
            strictly. ``PATH`` may be a local path, any MMEngine backend path or an http(s) URL.
            Optional keys: ``prefix`` (select keys, as MMEngine's ``Pretrained``), ``source``
            (``'teacher'``/``'student'`` for DINO full checkpoints), ``backend_args``.
        **kwargs: Passed to ``mmpretrain.models.backbones.VisionTransformer``, e.g.
            ``layer_scale_init_value`` (> 0 adds DINOv2's LayerScale to every block; the released
            DINOv2 weights hold its learned values).
    """

    OUT_TYPES = VisionTransformer.OUT_TYPES | {'keys'}
    KEY_LAYOUTS = ('locate', 'heads')
    OFFICIAL_WEIGHTS = _DINO_URLS

    def __init__(
        self,
        arch: Union[str, dict] = 'deit-small',
        img_size: Union[int, Sequence[int]] = 224,
        patch_size: int = 16,
        out_type: str = 'featmap',
        key_layout: str = 'locate',
        frozen: bool = True,
        qkv_bias: bool = True,
        norm_cfg: dict = dict(type='LN', eps=1e-6),
        interpolate_offset: float = 0.0,
        init_cfg: Optional[Union[dict, list]] = None,
        **kwargs,
    ) -> None:
        if not 0 <= interpolate_offset < 1:
            raise ValueError(
                f'interpolate_offset must be in [0, 1) (0: resize to the target size; 0.1: as DINO/DINOv2), '
                f'got {interpolate_offset}.'
            )
        if key_layout not in self.KEY_LAYOUTS:
            raise ValueError(f'key_layout must be one of {self.KEY_LAYOUTS}, got {key_layout!r}.')
        if kwargs.get('with_cls_token', True) is False:
            raise ValueError(
                'DINOVisionTransformer needs the CLS token (with_cls_token=True): '
                'the CLS attention is one of its outputs.'
            )
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_type=out_type,
            qkv_bias=qkv_bias,
            norm_cfg=norm_cfg,
            init_cfg=init_cfg,
            **kwargs,
        )
        self.arch = arch
        self.patch_size = patch_size
        self.num_heads = self.arch_settings['num_heads']
        self.key_layout = key_layout
        self.frozen = frozen
        self.interpolate_offset = float(interpolate_offset)
        self.layer_scale = kwargs.get('layer_scale_init_value', 0.0) > 0
        if out_type == 'keys' and list(self.out_indices) != [self.num_layers - 1]:
            raise ValueError(
                f"out_type='keys' gives the last block's keys only; out_indices must be -1 (got {self.out_indices})."
            )
        if frozen:
            self._freeze_all()

    # ------------------------------------------------------------------ freezing / modes
    def _freeze_all(self) -> None:
        """Stop gradients for every parameter and put every submodule in eval mode."""
        for param in self.parameters():
            param.requires_grad = False
        super().train(False)

    def train(self, mode: bool = True) -> 'DINOVisionTransformer':
        """Set train/eval mode; a frozen backbone (or its frozen stages) stays in eval mode."""
        super().train(mode)
        if self.frozen:
            super().train(False)
        elif mode and self.frozen_stages > 0:
            self._freeze_stages()
        return self

    def _grad_context(self) -> ContextManager:
        return torch.no_grad() if self.frozen else contextlib.nullcontext()

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Initialise randomly as mmpretrain does, or load a checkpoint strictly.

        A ``Pretrained`` entry in ``init_cfg`` is handled here rather than by MMEngine so that the
        official DINO layout is accepted and a file that does not fit fails loudly. The strict load
        sets every parameter, so no random initialisation runs before it (other ``init_cfg``
        entries next to ``Pretrained`` would be overwritten and are ignored).
        """
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        pretrained = [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']
        if not pretrained or self.is_init:
            super().init_weights()
            return
        cfg = pretrained[-1]
        self.load_dino_weights(
            cfg['checkpoint'],
            prefix=cfg.get('prefix'),
            source=cfg.get('source', 'teacher'),
            backend_args=cfg.get('backend_args'),
        )
        self._is_init = True

    def load_dino_weights(
        self,
        checkpoint: str,
        prefix: Optional[str] = None,
        source: str = 'teacher',
        backend_args: Optional[dict] = None,
    ) -> None:
        """Load a DINO / DINOv2 (timm names) or mmpretrain ViT checkpoint strictly.

        Raises:
            KeyError: naming the missing and unexpected keys, if the file is not a ViT of this
                architecture.
            ValueError: naming the tensors whose shapes differ (e.g. ViT-B weights for ViT-S).
        """
        state_dict = load_dino_state_dict(checkpoint, source=source, prefix=prefix, backend_args=backend_args)
        self.check_state_dict(state_dict, checkpoint)
        # pos_embed of another grid size is resized by mmpretrain's load_state_dict pre-hook.
        self.load_state_dict(state_dict, strict=True)
        print_log(f'{type(self).__name__}: loaded {len(state_dict)} tensors from {checkpoint}', logger='current')

    def check_state_dict(self, state_dict: Dict[str, Tensor], checkpoint: str) -> None:
        """Raise a clear error unless ``state_dict`` (mmpretrain names) fits this model exactly.

        ``pos_embed`` may have another number of tokens (it is resized on load); every other
        tensor must have this model's shape. ``checkpoint`` is only used in the messages.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if missing or unexpected:

            def show(keys):
                return f'{len(keys)} ({", ".join(keys[:8])}{", ..." if len(keys) > 8 else ""})'

            raise CheckpointKeyError(
                f'{checkpoint!r} does not fit {type(self).__name__}(arch={self._arch_name()}, '
                f'patch_size={self.patch_size}): missing keys {show(missing)}; unexpected keys '
                f'{show(unexpected)}.{self._layer_scale_hint(missing, unexpected)} Use an official DINO or '
                f'DINOv2 ViT file ({", ".join(u.rsplit("/", 1)[-1] for u in _DINO_URLS.values())}) or one '
                'converted by tools/model_converters/dino2looptrans.py, with the matching '
                'arch/patch_size.'
            )
        wrong = [
            (k, tuple(v.shape), tuple(own[k].shape))
            for k, v in state_dict.items()
            if tuple(v.shape) != tuple(own[k].shape) and not (k == 'pos_embed' and v.shape[-1] == own[k].shape[-1])
        ]
        if wrong:
            details = '; '.join(f'{k}: file {a} vs model {b}' for k, a, b in wrong[:6])
            raise ValueError(
                f'{checkpoint!r} has tensors of other shapes than '
                f'{type(self).__name__}(arch={self._arch_name()}, patch_size='
                f'{self.patch_size}): {details}. Set arch (deit-small: 384 dims, '
                'deit-base: 768) and patch_size to those of the file.'
            )

    def _arch_name(self) -> str:
        return self.arch if isinstance(self.arch, str) else 'custom'

    def _layer_scale_hint(self, missing: Sequence[str], unexpected: Sequence[str]) -> str:
        """A sentence for a load error whose only cause may be LayerScale being on in one side only."""
        if not self.layer_scale and any(_LAYER_SCALE_KEY.match(k) for k in unexpected):
            return (
                ' The file has LayerScale parameters (DINOv2: ls1/ls2.gamma): set layer_scale_init_value=1e-5 '
                '(see configs/_base_/models/dinov2_vits14.py).'
            )
        if self.layer_scale and any(_LAYER_SCALE_KEY.match(k) for k in missing):
            return (
                ' The model has LayerScale (layer_scale_init_value > 0) but the file has none (DINO rather than '
                'DINOv2 weights?): set layer_scale_init_value=0 for DINO weights.'
            )
        return ''

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Backbone forward: a tuple of feature maps, see the class docstring.

        mmpretrain's forward, with the position embeddings of :meth:`_pos_embed` (which honours
        ``interpolate_offset``).
        """
        with self._grad_context():
            if self.out_type == 'keys':
                keys, _, _, hw = self._descriptor_pass(x, with_cls_attn=False, with_feats=False)
                return (self._tokens_to_map(keys, hw),)
            x, hw = self._embed(x)
            outs = []
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i == len(self.layers) - 1 and self.final_norm:
                    x = self.ln1(x)
                if i in self.out_indices:
                    outs.append(self._format_output(x, hw))
            return tuple(outs)

    def forward_descriptors(self, x: Tensor) -> Dict[str, Tensor]:
        """Last-block keys, CLS attention and final features, from one forward pass.

        Args:
            x: Images (B, 3, H, W), normalised.

        Returns:
            dict with

            - ``keys``: (B, h*w, C) keys of the last block's self-attention for the patch tokens
              (CLS dropped), heads merged as ``key_layout`` says; computed from ``norm1`` of the
              last block's input, as LOCATE's ``get_last_key``.
            - ``cls_attn``: (B, num_heads, h, w) the CLS token's attention over the patches in the
              last block, ``softmax(q k^T / sqrt(head_dims))`` (the row sums to 1 with the CLS
              column, which is dropped).
            - ``feats``: (B, C, h, w) the final (normed if ``final_norm``) patch tokens, equal to
              ``forward(x)[-1]`` with ``out_type='featmap'``.
        """
        with self._grad_context():
            keys, cls_attn, feats, hw = self._descriptor_pass(x)
        return dict(
            keys=keys,
            cls_attn=cls_attn.reshape(cls_attn.shape[0], self.num_heads, *hw),
            feats=self._tokens_to_map(feats, hw),
        )

    def _embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch embedding, CLS token, (resized) position embedding, as mmpretrain's forward."""
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + self._pos_embed(hw)
        x = self.drop_after_pos(x)
        return self.pre_norm(x), hw

    def _pos_embed(self, hw: Tuple[int, int]) -> Tensor:
        """Position embeddings (1, extra + h*w, C) for a patch grid ``hw``, see ``interpolate_offset``."""
        if not self.interpolate_offset or tuple(hw) == tuple(self.patch_resolution):
            return resize_pos_embed(
                self.pos_embed,
                self.patch_resolution,
                hw,
                mode=self.interpolate_mode,
                num_extra_tokens=self.num_extra_tokens,
            )
        extra = self.pos_embed[:, : self.num_extra_tokens]
        grid = self.pos_embed[:, self.num_extra_tokens :]
        src_h, src_w = self.patch_resolution
        grid = grid.reshape(1, src_h, src_w, -1).permute(0, 3, 1, 2).float()
        scale = ((hw[0] + self.interpolate_offset) / src_h, (hw[1] + self.interpolate_offset) / src_w)
        # The output size is floor(src * scale) = the target (the offset keeps it off float rounding).
        grid = F.interpolate(grid, scale_factor=scale, mode=self.interpolate_mode, align_corners=False)
        grid = grid.flatten(2).transpose(1, 2).to(self.pos_embed.dtype)
        return torch.cat((extra, grid), dim=1)

    def forward_with_descriptors(self, x: Tensor) -> Tuple[Tuple[Tensor, ...], Dict[str, Tensor]]:
        """:meth:`forward`'s output and the part-discovery descriptors of the same images, from one pass.

        Returns:
            tuple: ``forward(x)`` (identical: the same operations), and ``dict(keys, cls_attn)`` as
            :meth:`forward_descriptors` gives them (identical too).
        """
        with self._grad_context():
            if self.out_type == 'keys':
                keys, cls_attn, _, hw = self._descriptor_pass(x, with_feats=False)
                outs = [self._tokens_to_map(keys, hw)]
            else:
                x, hw = self._embed(x)
                outs = []
                for i, layer in enumerate(self.layers[:-1]):
                    x = layer(x)
                    if i in self.out_indices:
                        outs.append(self._format_output(x, hw))
                keys, cls_attn = self._last_block_keys(x)
                x = self.layers[-1](x)
                if self.final_norm:
                    x = self.ln1(x)
                if len(self.layers) - 1 in self.out_indices:
                    outs.append(self._format_output(x, hw))
        return tuple(outs), dict(keys=keys, cls_attn=cls_attn.reshape(cls_attn.shape[0], self.num_heads, *hw))

    def _last_block_qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """q, k, v (each (B, heads, N, head_dims)) of the last block for its input tokens ``x`` (B, N, C)."""
        attn = self.layers[-1].attn
        B, N, _ = x.shape
        qkv = attn.qkv(self.layers[-1].ln1(x)).reshape(B, N, 3, self.num_heads, attn.head_dims)
        return qkv.permute(2, 0, 3, 1, 4)

    def _cls_attention(self, q: Tensor, k: Tensor) -> Tensor:
        """(B, heads, hw): the CLS token's attention over the patches, ``softmax(q k^T / sqrt(head_dims))``."""
        scale = self.layers[-1].attn.head_dims ** -0.5
        cls_attn = ((q[:, :, :1] * scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return cls_attn[:, :, 0, self.num_extra_tokens :]

    def _patch_keys(self, k: Tensor) -> Tensor:
        """(B, hw, C): the patch tokens' keys, heads merged as ``key_layout`` says."""
        k = k[:, :, self.num_extra_tokens :]  # patch tokens only
        if self.key_layout == 'locate':
            return k.permute(0, 2, 3, 1).flatten(-2)  # (B, hw, head_dims * heads)
        return k.transpose(1, 2).flatten(-2)  # (B, hw, heads * head_dims)

    def _last_block_keys(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Keys (B, hw, C) and CLS attention (B, heads, hw) of the last block for its input tokens ``x``."""
        q, k, _ = self._last_block_qkv(x)
        return self._patch_keys(k), self._cls_attention(q, k)

    def _descriptor_pass(self, x: Tensor, with_cls_attn: bool = True, with_feats: bool = True):
        """Blocks 0..L-2 as usual, then the last block with its keys (and CLS attention) exposed.

        Returns ``(keys (B, hw, C), cls_attn (B, heads, hw), tokens (B, hw, C), hw)``; the CLS
        attention and the tokens are None when not asked for (the rest of the last block is then
        skipped).
        """
        x, hw = self._embed(x)
        for layer in self.layers[:-1]:
            x = layer(x)
        last = self.layers[-1]
        attn = last.attn
        B, N, _ = x.shape
        q, k, v = self._last_block_qkv(x)
        cls_attn = self._cls_attention(q, k) if with_cls_attn else None

        tokens = None
        if with_feats:
            # Finish the block as mmpretrain's TransformerEncoderLayer / MultiheadAttention do.
            dropout_p = attn.attn_drop if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            y = attn.proj(y.transpose(1, 2).reshape(B, N, attn.embed_dims))
            y = attn.out_drop(attn.gamma1(attn.proj_drop(y)))
            if attn.v_shortcut:
                y = v.squeeze(1) + y
            x = x + y
            x = last.ffn(last.ln2(x), identity=x)
            if self.final_norm:
                x = self.ln1(x)
            tokens = x[:, self.num_extra_tokens :]
        return self._patch_keys(k), cls_attn, tokens, hw

    @staticmethod
    def _tokens_to_map(tokens: Tensor, hw: Tuple[int, int]) -> Tensor:
        """(B, h*w, C) -> (B, C, h, w)."""
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *hw)
