"""Temporal aggregators (LSTMTemporalAggregator, TemporalAttentionAggregator) and their use in LoopTrans."""

import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from looptrans.models.necks import LSTMTemporalAggregator, TemporalAttentionAggregator

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _clip(b=2, t=5, c=8, h=3, w=4, seed=0):
    return torch.randn(b, t, c, h, w, generator=torch.Generator().manual_seed(seed))


def _lstm(c=8, **kwargs):
    torch.manual_seed(0)
    return LSTMTemporalAggregator(c, **kwargs).eval()


def _attn(c=8, **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault('num_heads', 2)
    return TemporalAttentionAggregator(c, **kwargs).eval()


# ------------------------------------------------------------------ reference computations
def _reference_lstm(module: LSTMTemporalAggregator, seq: torch.Tensor) -> torch.Tensor:
    """The LSTM equations written out (PyTorch gate order i, f, g, o) for one sequence (T, C), then the
    projection and the residual."""
    lstm = module.lstm
    w_ih, w_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
    bias = lstm.bias_ih_l0 + lstm.bias_hh_l0
    h = torch.zeros(module.hidden)
    c = torch.zeros(module.hidden)
    outs = []
    for x in seq:
        i, f, g, o = (w_ih @ x + w_hh @ h + bias).chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(module.proj(h) + (x if module.residual else 0))
    return torch.stack(outs)


def _reference_attention(module: TemporalAttentionAggregator, seq: torch.Tensor) -> torch.Tensor:
    """Pre-norm multi-head self-attention over the frames of one sequence (T, C), written out."""
    t, c = seq.shape
    heads = module.attn.num_heads
    q_in = F.layer_norm(seq, (c,), module.norm.weight, module.norm.bias, module.norm.eps)
    if module.pos_embed is not None:
        q_in = q_in + module.pos_embed[0, :t]
    w, b = module.attn.in_proj_weight, module.attn.in_proj_bias
    q, k, v = (q_in @ w[i * c : (i + 1) * c].T + b[i * c : (i + 1) * c] for i in range(3))
    d = c // heads
    out = []
    for hd in range(heads):
        sl = slice(hd * d, (hd + 1) * d)
        att = torch.softmax(q[:, sl] @ k[:, sl].T / d**0.5, dim=-1)
        out.append(att @ v[:, sl])
    out = torch.cat(out, dim=1) @ module.attn.out_proj.weight.T + module.attn.out_proj.bias
    return out + seq if module.residual else out


# ------------------------------------------------------------------ LSTM
@pytest.mark.parametrize('shape', [(2, 5, 8, 3, 4), (1, 1, 8, 2, 2), (3, 2, 8, 1, 5)])
def test_lstm_shape(shape):
    x = torch.randn(*shape)
    assert _lstm()(x).shape == x.shape


@pytest.mark.parametrize('residual,hidden', [(True, None), (False, 5)])
def test_lstm_matches_written_out_equations_at_every_location(residual, hidden):
    module = _lstm(hidden=hidden, residual=residual)
    x = _clip()
    with torch.no_grad():
        out = module(x)
        for b, y, xx in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
            expected = _reference_lstm(module, x[b, :, :, y, xx])
            torch.testing.assert_close(out[b, :, :, y, xx], expected, rtol=1e-5, atol=1e-5)


def test_lstm_is_causal_and_one_frame_is_the_first_step():
    module = _lstm()
    x = _clip(t=6)
    with torch.no_grad():
        full = module(x)
        for k in (1, 3):
            torch.testing.assert_close(module(x[:, :k]), full[:, :k], rtol=1e-5, atol=1e-6)


def test_lstm_one_frame_round_trips_to_identity_when_the_projection_is_zero():
    module = _lstm()
    with torch.no_grad():
        module.proj.weight.zero_()
        module.proj.bias.zero_()
        x = _clip(t=1)
        torch.testing.assert_close(module(x), x)
        torch.testing.assert_close(module(_clip(t=4)), _clip(t=4))  # residual: any length


def test_lstm_depends_on_frame_order():
    module = _lstm()
    x = _clip(t=4)
    perm = torch.tensor([3, 1, 0, 2])
    with torch.no_grad():
        permuted_out = module(x[:, perm])
        out_permuted = module(x)[:, perm]
    # not permutation-equivariant: reordering frames changes every frame's context
    assert (permuted_out - out_permuted).abs().max() > 1e-3
    assert not torch.allclose(permuted_out[:, 1:], out_permuted[:, 1:], atol=1e-4)


def test_lstm_gradients_reach_every_parameter_and_the_input():
    module = _lstm().train()
    x = _clip(t=3).requires_grad_(True)
    (module(x) * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_lstm_is_deterministic():
    x = _clip()
    a, b = _lstm(), _lstm()  # same seed -> same initialisation
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
        torch.testing.assert_close(a(x), a(x), rtol=0, atol=0)


# ------------------------------------------------------------------ attention
@pytest.mark.parametrize('pos_embed', [True, False])
def test_attention_matches_written_out_attention(pos_embed):
    module = _attn(pos_embed=pos_embed)
    x = _clip(t=4)
    with torch.no_grad():
        out = module(x)
        assert out.shape == x.shape
        for b, y, xx in [(0, 0, 0), (1, 2, 3)]:
            torch.testing.assert_close(
                out[b, :, :, y, xx], _reference_attention(module, x[b, :, :, y, xx]), rtol=1e-5, atol=1e-5
            )


def test_attention_order_matters_only_through_the_position_embedding():
    x = _clip(t=4)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        plain = _attn(pos_embed=False)
        torch.testing.assert_close(plain(x[:, perm]), plain(x)[:, perm], rtol=1e-5, atol=1e-5)
        ordered = _attn(pos_embed=True)
        assert (ordered(x[:, perm]) - ordered(x)[:, perm]).abs().max() > 1e-4


def test_attention_one_frame_and_gradients():
    module = _attn().train()
    x = _clip(t=1).requires_grad_(True)
    out = module(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    (out * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    assert x.grad.abs().sum() > 0
    assert module.attn.in_proj_weight.grad.abs().sum() > 0 and module.pos_embed.grad.abs().sum() > 0


# ------------------------------------------------------------------ errors and registry
@pytest.mark.parametrize('make', [_lstm, _attn])
def test_bad_inputs_name_the_fix(make):
    module = make()
    with pytest.raises(ValueError, match=r'\(B, T, C, h, w\)'):
        module(torch.randn(2, 8, 3, 3))
    with pytest.raises(ValueError, match='channels=6'):
        module(torch.randn(1, 2, 6, 3, 3))


def test_attention_argument_errors():
    with pytest.raises(ValueError, match='divisible'):
        TemporalAttentionAggregator(10, num_heads=3)
    with pytest.raises(ValueError, match='max_frames'):
        _attn(max_frames=2)(torch.randn(1, 3, 8, 2, 2))


def test_registered_in_mmseg_models():
    assert isinstance(MODELS.build(dict(type='LSTMTemporalAggregator', channels=4)), LSTMTemporalAggregator)
    built = MODELS.build(dict(type='TemporalAttentionAggregator', channels=4, num_heads=2))
    assert isinstance(built, TemporalAttentionAggregator)


# ------------------------------------------------------------------ in the segmentor
def test_loop_trans_trains_the_lstm_on_clip_views():
    """configs/looptrans_synthetic_opra.py, shrunk: loss() on (B, 1 + T, 3, H, W) reaches the LSTM."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.structures import SegDataSample

    import looptrans  # noqa: F401

    cfg = Config.fromfile(osp.join(REPO, 'configs', 'looptrans_synthetic_opra.py'))
    cfg.model.backbone.arch.num_layers = 1
    cfg.model.cam_head.channels = 32
    cfg.model.noise_head.channels = 32
    cfg.model.pixel_head.channels = 32  # = the CAM head's: the pixel decoder ends in its classifier
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert isinstance(model.temporal, LSTMTemporalAggregator)
    b, t = 2, 3
    inputs = torch.randn(b, 1 + t, 3, 64, 64)
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in range(b)]
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    grad = model.temporal.lstm.weight_ih_l0.grad
    assert grad is not None and grad.abs().sum() > 0
