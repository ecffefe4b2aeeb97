"""Tests of the LoopTrans losses against hand / numpy computations."""

import math

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

from looptrans.models.losses import AffordanceCorrelationLoss, DenoisingDistillationLoss, MapMSELoss


# --------------------------------------------------------------------------
# DenoisingDistillationLoss
# --------------------------------------------------------------------------
def test_distillation_loss_hand_computed():
    s_noise = torch.tensor([[0.2, -0.1], [0.5, 0.4]])
    s_pixel = torch.tensor([0.6, 0.1])
    tau = 0.5
    expected = (
        math.log(1 + math.exp((0.2 - 0.6) / tau) + math.exp((-0.1 - 0.6) / tau))
        + math.log(1 + math.exp((0.5 - 0.1) / tau) + math.exp((0.4 - 0.1) / tau))
    ) / 2
    loss = DenoisingDistillationLoss(tau=tau)(s_noise, s_pixel)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    weighted = DenoisingDistillationLoss(tau=tau, loss_weight=3.0)
    assert weighted(s_noise, s_pixel).item() == pytest.approx(3 * expected, rel=1e-6)


def test_distillation_loss_is_stable_for_large_logits():
    # (s_noise - s_pixel) / tau = 2000: a naive exp overflows to inf.
    s_noise = torch.tensor([[1.0, -1.0]])
    s_pixel = torch.tensor([-1.0])
    loss = DenoisingDistillationLoss(tau=1e-3)(s_noise, s_pixel)
    # log(1 + e^2000 + e^0) = 2000 + log(1 + 2 e^-2000) ~= 2000
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(2000.0, rel=1e-6)
    # Far negative: log(1 + tiny) -> 0, not negative, not nan.
    loss = DenoisingDistillationLoss(tau=1e-3)(-s_noise.abs() - 1, s_pixel + 2)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


def test_distillation_loss_gradient_sign():
    s_noise = torch.tensor([[0.3, 0.1]], requires_grad=True)
    s_pixel = torch.tensor([0.2], requires_grad=True)
    DenoisingDistillationLoss(tau=0.5)(s_noise, s_pixel).backward()
    # Minimising pulls s_pixel up and pushes the noise similarities down.
    assert s_pixel.grad.item() < 0
    assert (s_noise.grad > 0).all()


def test_distillation_loss_bad_input():
    loss = DenoisingDistillationLoss()
    with pytest.raises(ValueError, match=r's_noise \(N, M\)'):
        loss(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match='tau'):
        DenoisingDistillationLoss(tau=0.0)


# --------------------------------------------------------------------------
# The pixel losses: mmseg's DiceLoss (as configured) and MapMSELoss
# --------------------------------------------------------------------------
PIXEL_DICE = dict(
    type='mmseg.DiceLoss',
    use_sigmoid=True,
    activate=True,
    naive_dice=True,
    eps=1.0,
    ignore_index=None,
    loss_weight=1.0,
    loss_name='loss_pixel_dice',
)


def _soft_dice(prob, target, eps=1.0):
    """The paper's soft dice per sample: 1 - (2 sum(p m) + eps) / (sum(p) + sum(m) + eps)."""
    p, m = prob.flatten(1), target.flatten(1)
    return 1 - (2 * (p * m).sum(1) + eps) / (p.sum(1) + m.sum(1) + eps)


def test_mmseg_dice_is_the_soft_dice_on_soft_targets():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 5, 6, generator=gen) * 2
    target = torch.rand(3, 1, 5, 6, generator=gen)  # soft, not one-hot
    dice = MODELS.build(PIXEL_DICE)
    expected = _soft_dice(logits.sigmoid(), target)
    assert dice(logits, target).item() == pytest.approx(expected.mean().item(), rel=1e-6)
    weight = torch.tensor([1.0, 0.0, 1.0])
    weighted = dice(logits, target, weight=weight, avg_factor=weight.sum())
    assert weighted.item() == pytest.approx(expected[[0, 2]].mean().item(), rel=1e-5)
    # Hand-computed, on probabilities: inter 1.7, sum(p) 2, sum(m) 2 -> 1 - 4.4 / 5.
    probs = MODELS.build(dict(PIXEL_DICE, activate=False))
    pred = torch.tensor([[[[0.9, 0.1], [0.8, 0.2]]]])
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert probs(pred, target).item() == pytest.approx(1 - 4.4 / 5.0, rel=1e-6)
    # eps = 1: an empty prediction on an empty target costs nothing.
    assert probs(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 0
    # A map taller than 255 rows keeps every row (ignore_index=None; mmseg's default 255 would drop one).
    tall = torch.rand(1, 1, 300, 2, generator=gen)
    assert probs(tall, tall).item() == pytest.approx(_soft_dice(tall, tall).item(), rel=1e-6)


def test_map_mse_loss_weights_and_all_invalid():
    logits = torch.tensor([[[[0.0, 2.0]]], [[[-1.0, 1.0]]]], requires_grad=True)
    target = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])
    mse = MODELS.build(dict(type='MapMSELoss', loss_weight=2.0))
    prob = logits.detach().sigmoid()
    per_sample = (prob - target).pow(2).flatten(1).mean(1)
    assert mse(logits, target).item() == pytest.approx(2 * per_sample.mean().item(), rel=1e-6)
    valid = torch.tensor([0.0, 1.0])
    assert mse(logits, target, weight=valid, avg_factor=valid.sum()).item() == pytest.approx(
        2 * per_sample[1].item(), rel=1e-5
    )
    none = mse(logits, target, weight=torch.zeros(2), avg_factor=torch.zeros(()))
    assert none.item() == 0.0 and none.requires_grad
    none.backward()
    assert (logits.grad == 0).all()
    with pytest.raises(ValueError, match='resize the target'):
        mse(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 2, 2))


# --------------------------------------------------------------------------
# AffordanceCorrelationLoss
# --------------------------------------------------------------------------
def _np_corr_loss(exo, ego, temperature):
    """Cross-View-AG's alignment term in NumPy: -T^2 mean_b sum_ij (q q^T)_ij log (p p^T)_ij."""

    def softmax(logits):
        z = logits / temperature
        p = np.exp(z - z.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)

    p, q = softmax(ego), softmax(exo.mean(1))
    per_sample = [(np.outer(qb, qb) * np.log(np.outer(pb, pb))).sum() for pb, qb in zip(p, q)]
    return -(temperature**2) * np.mean(per_sample)


@pytest.mark.parametrize('batch', [1, 3])
def test_correlation_loss_matches_numpy(batch):
    rng = np.random.default_rng(0)
    exo = rng.normal(size=(batch, 3, 5)) * 2
    ego = rng.normal(size=(batch, 5)) * 2
    loss_fn = AffordanceCorrelationLoss(loss_weight=0.5, temperature=0.7)
    exo_t = torch.tensor(exo, dtype=torch.float64, requires_grad=True)
    ego_t = torch.tensor(ego, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(exo_t, ego_t)
    assert loss.item() == pytest.approx(0.5 * _np_corr_loss(exo, ego, 0.7), rel=1e-10)
    assert loss.item() > 0
    loss.backward()
    # Mutual alignment: both views receive gradients.
    assert exo_t.grad.abs().sum() > 0 and ego_t.grad.abs().sum() > 0
    # Already-aggregated (B, C) exo logits give the same value.
    same = loss_fn(exo_t.detach().mean(1), ego_t.detach())
    assert same.item() == pytest.approx(loss.item(), rel=1e-10)


def test_correlation_loss_minimal_when_views_agree_and_bad_shapes():
    torch.manual_seed(0)
    logits = torch.randn(4, 6)
    loss_fn = MODELS.build(dict(type='AffordanceCorrelationLoss'))
    # For fixed exo predictions the loss (a cross-entropy in disguise) is smallest when ego agrees.
    agree = loss_fn(logits[:, None].repeat(1, 3, 1), logits)
    for _ in range(5):
        other = logits + 0.5 * torch.randn(4, 6)
        assert loss_fn(logits[:, None].repeat(1, 3, 1), other) > agree
    with pytest.raises(ValueError, match=r'reshape flattened exo logits'):
        loss_fn(torch.randn(12, 6), logits)
    with pytest.raises(ValueError, match='temperature'):
        AffordanceCorrelationLoss(temperature=0)


def test_losses_are_registered():
    for name in ('MapMSELoss', 'DenoisingDistillationLoss', 'AffordanceCorrelationLoss'):
        assert MODELS.get(name) is not None
    assert isinstance(MODELS.build(dict(type='MapMSELoss')), MapMSELoss)
