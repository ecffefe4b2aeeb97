"""The published recipe, pinned: LOCATE's optimizer groups, the published LoopTrans code's schedule, pseudo-mask
rule and test map, Cross-View-AG's correlation alignment, LOCATE's token MLP and saliency part gate, one BatchNorm
for both views of the shared CAM, the six ablation rows of the paper, and the model's own config keys."""

import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from test_segmentor import batch, build

import looptrans  # noqa: F401
from looptrans.apis.inference import without_pretrained
from looptrans.models.heads import SharedCAMHead, TokenMLP
from looptrans.models.losses import AffordanceCorrelationLoss
from looptrans.models.part_discovery import PartDiscovery, cls_attention_saliency, part_saliency_score

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', name))


# ---------------------------------------------------------------- optimizer and schedule (LOCATE)
def _locate_lr(name: str, base_lr: float) -> float:
    """LOCATE's get_optimizer, transcribed, on our names: LOCATE's 'fc' layers are our token MLP and
    classifier, plus the last layers of the pixel and noise heads (which LOCATE lacks)."""
    fc_role = any(
        key in name
        for key in (
            'token_mlp.fc1',
            'token_mlp.fc2',
            'cam_head.conv_seg',
            'pixel_head.conv_seg',
            'noise_head.conv_noise',
        )
    )
    is_bias = 'bias' in name
    if fc_role:
        return base_lr * (20 if is_bias else 10)
    return base_lr * (2 if is_bias else 1)


def test_optimizer_groups_follow_locate():
    cfg = _load('looptrans_agd20k.py')
    init_default_scope('mmseg')
    model = MODELS.build(without_pretrained(cfg.model))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    opt = wrapper.optimizer
    assert isinstance(opt, torch.optim.SGD)
    lr_of = {}
    for group in opt.param_groups:
        assert group['nesterov'] is True and group['momentum'] == 0.9 and group['weight_decay'] == 5e-4
        for param in group['params']:
            lr_of[id(param)] = group['lr']
    checked = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        assert lr_of[id(param)] == pytest.approx(_locate_lr(name, 1e-3)), name
        checked += 1
    # token MLP 6, the shared projection 6, the classifier (with the noise outputs) 2, the pixel decoder 6; the
    # noise head has no parameters of its own
    assert checked == 20
    named = dict(model.named_parameters())
    representative = {
        'cam_head.token_mlp.fc1.weight': 1e-2,
        'cam_head.token_mlp.fc2.bias': 2e-2,
        'cam_head.token_mlp.norm.weight': 1e-3,
        'cam_head.token_mlp.norm.bias': 2e-3,
        'cam_head.projs.shared.0.conv.weight': 1e-3,
        'cam_head.projs.shared.0.bn.bias': 2e-3,
        'cam_head.conv_seg.weight': 1e-2,
        'cam_head.conv_seg.bias': 2e-2,
        'pixel_head.conv_in.conv.weight': 1e-3,
    }
    for name, lr in representative.items():
        assert lr_of[id(named[name])] == pytest.approx(lr), name


def _epoch_rates(cfg: Config, model: torch.nn.Module) -> list:
    """The learning rate of every epoch of a config's schedule, stepped as MMEngine's runner steps it, as a
    multiple of the optimiser's base rate (the same for every parameter group)."""
    from mmengine.registry import PARAM_SCHEDULERS

    opt = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=opt)) for s in cfg.param_scheduler]
    rates = []
    for _ in range(cfg.train_cfg.max_epochs):
        factors = {round(g['lr'] / g['initial_lr'], 12) for g in opt.param_groups}
        assert len(factors) == 1
        rates.append(factors.pop() * cfg.optim_wrapper.optimizer.lr)
        for scheduler in schedulers:
            scheduler.step()
    return rates


def test_looptrans_trains_the_published_looptrans_schedule_and_locate_its_own():
    """SooLab/LoopTrans train.py: batch 16, 5 epochs, StepLR(5, 0.1), i.e. 1e-3 throughout; LOCATE's train.py:
    15 epochs with the rate divided by 10 after epochs 5 and 10."""
    init_default_scope('mmseg')
    for name in ('looptrans_agd20k.py', 'looptrans_agd20k_unseen.py', 'looptrans_hico_iif.py'):
        cfg = _load(name)
        assert cfg.train_dataloader.batch_size == 16 and cfg.train_cfg.max_epochs == 5, name
        model = MODELS.build(without_pretrained(cfg.model))
        assert _epoch_rates(cfg, model) == pytest.approx([1e-3] * 5), name
    locate = _load('baselines/locate_agd20k.py')
    assert locate.train_dataloader.batch_size == 16 and locate.train_cfg.max_epochs == 15
    model = MODELS.build(without_pretrained(locate.model))
    assert _epoch_rates(locate, model) == pytest.approx([1e-3] * 5 + [1e-4] * 5 + [1e-5] * 5)


def test_pixel_supervision_starts_with_training_as_in_the_published_looptrans_code():
    """The published forward computes the dice and MSE terms in every step (its warm_epoch is not read)."""
    cfg = _load('looptrans_agd20k.py')
    (hook,) = [h for h in cfg.custom_hooks if h.type == 'PseudoMaskHook']
    assert hook.start_epoch == 0 and hook.get('start_iter') is None


def test_real_configs_choose_pseudo_masks_and_test_maps_as_the_published_looptrans_code():
    """SooLab/LoopTrans models/looptrans.py: fg_threshold 0.92 on the min-max CAM, the least salient of the
    K = 4 parts (CLS attention of heads 0, 1, 3) excluded, no part-score gate; test_forward scores the pixel
    decoder's raw map. The paper-derived generated-data config keeps the settings its figures were measured with."""
    model = _load('looptrans_agd20k.py').model
    finder = MODELS.build(model.part_discovery)
    assert (finder.num_parts, finder.cam_thr, finder.exclude_background) == (4, 0.92, 'least_salient')
    assert finder.saliency_heads == (0, 1, 3)
    assert model.test_cfg.heatmap == 'pixel_logits'
    synthetic = _load('looptrans_synthetic_paper_derived.py').model
    assert synthetic.part_discovery.cam_thr == 'mean' and synthetic.part_discovery.exclude_background == 'border'
    assert synthetic.test_cfg.heatmap == 'pixel'


# ---------------------------------------------------------------- correlation alignment (Cross-View-AG)
def _cross_view_ag_align(exo_logits, ego_logits, align_w=0.5, T=1.0):
    """Cross-View-AG get_loss's alignment term, transcribed (exo score = mean over views)."""
    exo_score = exo_logits.mean(1)
    b, n = ego_logits.shape
    p = F.softmax(ego_logits / T, dim=1).view(b, n, 1)
    q = F.softmax(exo_score / T, dim=1).view(b, n, 1)
    ego_m = torch.bmm(p, p.permute(0, 2, 1))
    exo_m = torch.bmm(q, q.permute(0, 2, 1))
    return -align_w * T * T * torch.mean(torch.sum(torch.sum(torch.log(ego_m) * exo_m, dim=2), dim=1))


def test_corr_loss_hand_computed():
    ego = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4)
    exo = torch.zeros(1, 2, 2)  # q = (1/2, 1/2)
    # sum_ij q_i q_j log(p_i p_j) = 2 sum_i q_i log p_i = log(1/4) + log(3/4)
    expected = -0.5 * (math.log(0.25) + math.log(0.75))
    assert AffordanceCorrelationLoss()(exo, ego).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('temperature', [1.0, 2.0])
def test_corr_loss_matches_cross_view_ag(temperature):
    gen = torch.Generator().manual_seed(0)
    exo = torch.randn(4, 3, 7, generator=gen) * 2
    ego = torch.randn(4, 7, generator=gen) * 2
    loss = AffordanceCorrelationLoss(loss_weight=0.5, temperature=temperature)(exo, ego)
    ref = _cross_view_ag_align(exo.double(), ego.double(), T=temperature)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_corr_loss_is_per_sample_and_finite_for_extreme_logits():
    gen = torch.Generator().manual_seed(1)
    exo, ego = torch.randn(6, 3, 5, generator=gen) * 3, torch.randn(6, 5, generator=gen) * 3
    loss = AffordanceCorrelationLoss()
    shuffled = ego[torch.tensor([1, 2, 3, 4, 5, 0])]
    assert abs(loss(exo, ego).item() - loss(exo, shuffled).item()) > 1e-3
    big = torch.tensor([[300.0, -300.0, 0.0]])
    assert torch.isfinite(loss(big[:, None].flip(-1), big))


def test_corr_loss_gradient_is_of_the_order_of_the_classification_loss():
    gen = torch.Generator().manual_seed(2)
    B, V, C = 16, 3, 36
    exo = (torch.randn(B, V, C, generator=gen) * 2).requires_grad_()
    ego = (torch.randn(B, C, generator=gen) * 2).requires_grad_()
    labels = torch.randint(0, C, (B,), generator=gen)
    g_corr = torch.autograd.grad(AffordanceCorrelationLoss()(exo, ego), (exo, ego))
    cls = F.cross_entropy(exo.flatten(0, 1), labels.repeat_interleave(V)) + F.cross_entropy(ego, labels)
    g_cls = torch.autograd.grad(cls, (exo, ego))
    ratio = (g_corr[0].norm() + g_corr[1].norm()) / (g_cls[0].norm() + g_cls[1].norm())
    assert 0.1 < ratio < 10, ratio


# ---------------------------------------------------------------- shared CAM head
def test_token_mlp_normalises_first_like_locate():
    torch.manual_seed(0)
    mlp = TokenMLP(8, mlp_ratio=2)
    with torch.no_grad():
        mlp.norm.weight.uniform_(0.5, 1.5)
        mlp.norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 8, 3, 4) * 5 + 2
    tokens = x.permute(0, 2, 3, 1)
    normed = F.layer_norm(tokens, (8,), mlp.norm.weight, mlp.norm.bias, eps=1e-5)
    expected = tokens + mlp.fc2(F.gelu(mlp.fc1(normed)))
    assert torch.allclose(mlp(x), expected.permute(0, 3, 1, 2), atol=1e-5)


def test_shared_bn_sees_both_views_in_one_batch():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    head = SharedCAMHead(num_classes=4, in_channels=16, channels=8, shared=True).train()
    exo = torch.randn(6, 16, 5, 5) + 3.0  # the two views have very different statistics
    ego = torch.randn(2, 16, 5, 5) - 3.0
    bn = head.projs['shared'][0].bn
    momentum = bn.momentum
    with torch.no_grad():
        conv_out = head.projs['shared'][0].conv(head.token_mlp(torch.cat([exo, ego])))
    cams_exo, emb_exo, cams_ego, emb_ego = head.forward_views(exo, ego)
    expected_mean = momentum * conv_out.mean(dim=(0, 2, 3))
    expected_var = (1 - momentum) * 1 + momentum * conv_out.var(dim=(0, 2, 3), unbiased=True)
    assert torch.allclose(bn.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(bn.running_var, expected_var, atol=1e-4)
    assert bn.num_batches_tracked.item() == 1
    assert cams_exo.shape == (6, 4, 5, 5) and cams_ego.shape == (2, 4, 5, 5)
    assert emb_exo.shape == (6, 8, 5, 5) and emb_ego.shape == (2, 8, 5, 5)
    # Test-time ego CAMs use the running statistics of that joint batch.
    head.eval()
    joint_cams = head(torch.cat([exo, ego]), view='ego')
    assert torch.allclose(head(ego, view='ego'), joint_cams[6:], atol=1e-5)


def test_shared_head_normalises_each_view_on_its_own_as_the_published_looptrans_code():
    """joint_norm=False: the shared projection is called on the exo batch, then on the ego batch (SooLab/LoopTrans
    ``self.scam(exo_proj)`` ... ``self.scam(ego_proj)``): each view's own batch statistics in training, two
    running-statistic updates per step."""
    init_default_scope('mmseg')
    torch.manual_seed(0)
    head = SharedCAMHead(num_classes=4, in_channels=16, channels=8, shared=True, joint_norm=False).train()
    exo = torch.randn(6, 16, 5, 5) + 3.0
    ego = torch.randn(2, 16, 5, 5) - 3.0
    reference = SharedCAMHead(num_classes=4, in_channels=16, channels=8, shared=True).train()
    reference.load_state_dict(head.state_dict())
    expected_exo = reference(exo, view='exo')  # one call per view, as the published code
    expected_ego = reference(ego, view='ego')
    cams_exo, _, cams_ego, _ = head.forward_views(exo, ego)
    torch.testing.assert_close(cams_exo, expected_exo)
    torch.testing.assert_close(cams_ego, expected_ego)
    bn, ref_bn = head.projs['shared'][0].bn, reference.projs['shared'][0].bn
    assert bn.num_batches_tracked.item() == 2
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
    joint = SharedCAMHead(num_classes=4, in_channels=16, channels=8, shared=True).train()
    joint.load_state_dict(reference.state_dict())
    assert not torch.allclose(joint.forward_views(exo, ego).ego_cams, cams_ego, atol=1e-3)  # the option matters


def test_real_configs_normalise_views_as_the_published_looptrans_code_and_paper_derived_ones_jointly():
    assert _load('looptrans_agd20k.py').model.cam_head.joint_norm is False
    assert _load('looptrans_synthetic_paper_derived.py').model.cam_head.joint_norm is True


def test_concentration_loss_acts_on_the_pixel_maps_of_every_class_as_the_published_looptrans_code():
    """SooLab/LoopTrans: ``loss_con += concentration_loss(ego_pred[b_])`` on the pixel decoder's maps of every
    class, in every step (pixel supervision on or off), times 0.07 in train.py."""
    from conftest import build_tiny_looptrans
    from mmseg.structures import SegDataSample

    from looptrans.models.losses import LOCATEConcentrationLoss

    assert _load('looptrans_agd20k.py').model.concentration_loss == dict(
        type='LOCATEConcentrationLoss', loss_weight=0.07
    )
    assert _load('looptrans_synthetic_paper_derived.py').model.concentration_loss is None
    torch.manual_seed(0)
    model = build_tiny_looptrans(concentration_loss=dict(type='LOCATEConcentrationLoss', loss_weight=0.07)).eval()
    inputs = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 2)]
    for supervised in (True, False):
        model.pixel_supervision = supervised
        losses = model.loss(inputs, samples)
        logits = model.pixel_head(model.extract_feat(inputs[:, 0]))
        assert logits.shape[1] == 4
        expected = LOCATEConcentrationLoss(loss_weight=0.07)(logits)
        torch.testing.assert_close(losses['loss_concentration'], expected)
        assert losses['loss_concentration'] > 0
    with pytest.raises(ValueError, match='model.concentration_loss=None'):
        build_tiny_looptrans(pixel_head=None, concentration_loss=dict(type='LOCATEConcentrationLoss'))


def _tiny_pixel_on_cam_head(**model):
    from conftest import build_tiny_looptrans

    cam = dict(type='SharedCAMHead', in_channels=384, channels=32, num_classes=4)
    pixel = dict(type='PixelAffordanceHead', in_channels=384, channels=32, num_classes=4, upsample=1)
    return build_tiny_looptrans(cam_head=cam, pixel_head=pixel, pixel_on_cam_head=True, **model)


def test_pixel_branch_reads_the_token_mlp_and_ends_in_the_cam_classifier_as_the_published_looptrans_code():
    """SooLab/LoopTrans: ``ego_pred = aff_fc(pixel_dec(ego_proj))`` with ``ego_proj = desc + aff_proj(desc)``
    (the token MLP of the CAM branch) and ``aff_fc`` the classifier that also makes the CAMs."""
    from mmseg.structures import SegDataSample

    torch.manual_seed(0)
    model = _tiny_pixel_on_cam_head()
    model.init_weights()
    model.eval()
    inputs = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    feats = model.extract_feat(inputs[:, 0])
    cam, pixel = model.cam_head, model.pixel_head
    expected = cam.conv_seg(pixel.conv_up(pixel.conv_in(cam.token_mlp(feats[-1]))))  # transcription
    torch.testing.assert_close(model.pixel_logits(feats), expected)
    heatmaps = model.decode_heatmaps(feats, tuple(expected.shape[-2:]), ('pixel_logits',))
    torch.testing.assert_close(heatmaps['pixel_logits'], expected)  # inference takes the same branch
    # one classifier: saved, initialised and optimised once, by the CAM head, at LOCATE's 10x / 20x
    assert not any(k.startswith('pixel_head.conv_seg') for k in model.state_dict())
    names = [n for n, _ in model.named_parameters()]
    assert 'cam_head.conv_seg.weight' in names and len(names) == len(set(names))
    cfg = _load('looptrans_agd20k.py')
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rate = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    assert rate[id(cam.conv_seg.weight)] == pytest.approx(1e-2) and rate[id(cam.conv_seg.bias)] == pytest.approx(2e-2)
    # the pixel loss trains the shared classifier
    model.train()
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 2)]
    losses = model.loss(inputs, samples)
    assert 'pm_valid' in losses
    cam.conv_seg.weight.grad = None
    losses['loss_pixel_mse'].backward()
    assert cam.conv_seg.weight.grad is not None and cam.conv_seg.weight.grad.abs().sum() > 0


def test_pixel_branch_on_the_cam_head_refuses_what_it_cannot_share():
    from conftest import build_tiny_looptrans

    with pytest.raises(ValueError, match='model.pixel_on_cam_head=False'):
        build_tiny_looptrans(pixel_head=None, pixel_on_cam_head=True)
    with pytest.raises(ValueError, match="give the pixel head the CAM head's channels"):
        build_tiny_looptrans(pixel_on_cam_head=True)  # the tiny heads: 32 CAM channels, 16 pixel channels
    with pytest.raises(ValueError, match='1x1 nn.Conv2d'):
        _tiny_pixel_on_cam_head().pixel_head.use_classifier(torch.nn.Conv2d(32, 4, 3))


def test_without_override_drops_only_the_named_submodule():
    from looptrans.models.heads.utils import without_override

    default = dict(type='Normal', std=0.01, override=dict(name='conv_seg'))
    assert without_override(default, 'conv_seg') is None
    torch_default = dict(type='mmseg.TorchDefault', layer=['Conv2d'])
    assert without_override(torch_default, 'conv_seg') == [torch_default]
    both = dict(type='Normal', layer='Conv2d', override=[dict(name='conv_seg'), dict(name='conv_in')])
    assert without_override([both], 'conv_seg') == [
        dict(type='Normal', layer='Conv2d', override=[dict(name='conv_in')])
    ]
    assert without_override(None, 'conv_seg') is None


def test_real_configs_build_the_published_pixel_branch_and_paper_derived_ones_their_own():
    real, synthetic = _load('looptrans_agd20k.py').model, _load('looptrans_synthetic_paper_derived.py').model
    assert real.pixel_on_cam_head is True
    assert (real.pixel_head.channels, real.pixel_head.upsample) == (384, 1)
    assert synthetic.pixel_on_cam_head is False
    init_default_scope('mmseg')
    model = MODELS.build(without_pretrained(_load('looptrans_agd20k.py').model))
    assert model.pixel_head._borrowed_classifier == (model.cam_head.conv_seg,)
    own = MODELS.build(synthetic).pixel_head
    assert (own.channels, own.upsample, own._borrowed_classifier) == (256, 2, ())
    assert own.conv_seg.in_channels == 256


def _published_pixel_losses(gt_ego_cam, pseudo_labels):
    """Transcription of the published LoopTrans code's pixel loss (SooLab/LoopTrans models/looptrans.py: its
    DiceLoss, ``nn.MSELoss``, ``normalize_minmax``; the weights of train.py): (MSE x 10, dice x 2)."""

    def normalize_minmax(cams, eps=1e-15):
        num = cams.shape[0]
        cams = cams - cams.view(num, -1).min(1)[0].view(num, 1, 1)
        return cams / (cams.view(num, -1).max(1)[0].view(num, 1, 1) + eps)

    def dice_loss(inputs, targets, smooth=1):
        inputs, targets = inputs.reshape(-1), targets.reshape(-1)
        intersection = (inputs * targets).sum()
        return 1 - (2.0 * intersection + smooth) / (inputs.sum() + targets.sum() + smooth)

    gt_ego_cam = normalize_minmax(gt_ego_cam)
    b = gt_ego_cam.shape[0]
    loss_mse = sum(F.mse_loss(gt_ego_cam[i], pseudo_labels[i]) for i in range(b)) / b
    loss_dice = sum(dice_loss(gt_ego_cam[i], pseudo_labels[i]) for i in range(b)) / b
    return loss_mse * 10, loss_dice * 2


def test_pixel_losses_of_the_real_configs_transcribe_the_published_looptrans_code():
    init_default_scope('mmseg')
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 14, 14, generator=gen) * 3
    target = (torch.rand(4, 1, 14, 14, generator=gen) > 0.7).float()
    mse, dice = _published_pixel_losses(logits[:, 0], target[:, 0])
    losses = {}
    for cfg in _load('looptrans_agd20k.py').model.pixel_head.loss_decode:
        loss = MODELS.build(cfg)
        losses[loss.loss_name] = loss(logits, target, weight=torch.ones(4), avg_factor=4)
    torch.testing.assert_close(losses['loss_pixel_mse'], mse)
    torch.testing.assert_close(losses['loss_pixel_dice'], dice)
    # the published form differs from the sigmoid one the generated-data configs keep
    sigmoid = MODELS.build(dict(type='MapMSELoss', use_sigmoid=True, loss_weight=10.0))
    assert not torch.allclose(sigmoid(logits, target), mse, atol=1e-3)


def test_map_losses_refuse_an_unknown_activation_and_a_negative_smooth():
    from looptrans.models.losses import MapDiceLoss, MapMSELoss

    with pytest.raises(ValueError, match="activation must be one of \\('sigmoid', 'minmax', 'none'\\)"):
        MapDiceLoss(activation='softmax')
    with pytest.raises(ValueError, match='activation must be one of'):
        MapMSELoss(activation='relu')
    with pytest.raises(ValueError, match='smooth must be >= 0'):
        MapDiceLoss(smooth=-1)
    assert MapMSELoss(use_sigmoid=False).activation == 'none' and MapMSELoss().use_sigmoid
    constant = torch.zeros(2, 1, 3, 3)  # a constant map min-max normalises to zeros, not NaN
    assert torch.isfinite(MapDiceLoss()(constant, torch.ones(2, 1, 3, 3)))


def _tiny_published_recipe(**model):
    """A tiny LoopTrans with every published-code switch of the real configs: the pixel decoder and the noise maps
    on the CAM head's classifier, the published pooling, map correlation and concentration loss."""
    from conftest import build_tiny_looptrans

    published = dict(
        cam_head=dict(type='SharedCAMHead', in_channels=384, channels=32, num_classes=4, joint_norm=False),
        pixel_head=dict(type='PixelAffordanceHead', in_channels=384, channels=32, num_classes=4, upsample=1),
        noise_head=dict(
            type='NoiseHead',
            channels=32,
            num_noise=15,
            pooling='published',
            loss_decode=dict(type='DenoisingDistillationLoss', tau=1.0, loss_weight=0.05, loss_name='loss_dill'),
        ),
        corr_loss=dict(type='AffordanceMapCorrelationLoss', loss_weight=1.5),
        concentration_loss=dict(type='LOCATEConcentrationLoss', loss_weight=0.07),
        pixel_on_cam_head=True,
        noise_on_cam_head=True,
    )
    return build_tiny_looptrans(**{**published, **model})


def test_noise_maps_are_extra_classifier_outputs_in_every_loss_as_the_published_looptrans_code():
    """SooLab/LoopTrans: ``aff_fc`` has C + 15 outputs; the last 15 are the noise maps of the denoising loss, and
    all C + 15 enter the cross-entropy of both views (``cross_logits``, ``aff_logits``), the correlation loss's
    Gram matrices and the concentration loss of the pixel decoder's maps. Every loss of a training step is
    recomputed here with the published code's operations on the model's own layers."""
    from mmseg.structures import SegDataSample
    from test_heads import _published_denoise

    from looptrans.models.losses import LOCATEConcentrationLoss

    torch.manual_seed(0)
    model = _tiny_published_recipe()
    model.init_weights()
    model.eval()  # BatchNorm on running statistics: the same numbers in the loss and in the transcription
    cam, pixel = model.cam_head, model.pixel_head
    assert tuple(cam.conv_seg.weight.shape[:2]) == (4 + 15, 32) and cam.num_noise == 15
    assert not list(model.noise_head.parameters()) and not any(k.startswith('noise_head') for k in model.state_dict())
    inputs = torch.randn(2, 4, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # B=2, 1 ego + 3 exo
    labels = torch.tensor([1, 3])
    samples = [SegDataSample(metainfo=dict(gt_label=int(i))) for i in labels]
    losses = model.loss(inputs, samples)

    # the published forward, transcribed on our layers (aff_proj = token MLP, scam = the shared projection)
    b, num_exo, classes = 2, 3, 4
    ego_desc = model.extract_feat(inputs[:, 0])[-1]
    exo_desc = model.extract_feat(inputs[:, 1:].flatten(0, 1))[-1]
    ego_proj, exo_proj = cam.token_mlp(ego_desc), cam.token_mlp(exo_desc)
    aff_cam = cam.conv_seg(cam.projs['shared'](exo_proj))
    aff_logits = aff_cam.mean((2, 3)).reshape(b, num_exo, -1)
    aff_cam_re = aff_cam.reshape(b, num_exo, -1, *aff_cam.shape[-2:])
    ego_pred = cam.conv_seg(pixel.conv_up(pixel.conv_in(ego_proj)))
    cross_logits = cam.conv_seg(cam.projs['shared'](ego_proj)).mean((2, 3))
    assert aff_logits.shape[-1] == ego_pred.shape[1] == classes + 15
    exo_ce = sum(F.cross_entropy(aff_logits[:, n], labels) for n in range(num_exo)) / num_exo
    torch.testing.assert_close(losses['loss_cls_exo'], exo_ce)
    torch.testing.assert_close(losses['loss_cls_ego'], F.cross_entropy(cross_logits, labels))
    torch.testing.assert_close(losses['loss_corr'], 1.5 * _published_map_correlation(ego_pred, aff_cam_re))
    torch.testing.assert_close(losses['loss_concentration'], LOCATEConcentrationLoss(loss_weight=0.07)(ego_pred))
    exo_cam = aff_cam_re[torch.arange(b), :, labels]
    noise = aff_cam_re[:, :, classes:]
    denoise = _published_denoise(
        exo_cam, noise, exo_desc.unflatten(0, (b, num_exo)), ego_pred[[0, 1], labels], ego_desc
    )
    torch.testing.assert_close(losses['loss_dill'], 0.05 * denoise)
    # the noise outputs learn from the denoising loss, as the classifier's other rows
    cam.conv_seg.weight.grad = None
    losses['loss_dill'].backward()
    assert cam.conv_seg.weight.grad[classes:].abs().sum() > 0
    # inference and its class-count checks see the C classes only
    feats = model.extract_feat(inputs[:, 0])
    assert cam(feats).shape[1] == classes and model.pixel_logits(feats).shape[1] == classes
    maps = model.decode_heatmaps(feats, (64, 64), ('cam', 'pixel_logits'))
    assert all(m.shape[1] == classes for m in maps.values())
    torch.testing.assert_close(
        maps['pixel_logits'], F.interpolate(ego_pred[:, :classes], size=(64, 64), mode='bilinear')
    )


def test_noise_maps_on_the_cam_head_refuse_what_cannot_work():
    from looptrans.models.heads import NoiseHead, ViewCAMs

    with pytest.raises(ValueError, match='model.noise_on_cam_head=False'):
        _tiny_published_recipe(noise_head=None)
    with pytest.raises(ValueError, match='model.noise_on_cam_head=True sets up'):
        _tiny_published_recipe(
            noise_on_cam_head=False, cam_head=dict(type='SharedCAMHead', num_classes=4, num_noise=15)
        )
    with pytest.raises(ValueError, match='delete model.cam_head.num_noise'):
        _tiny_published_recipe(cam_head=dict(type='SharedCAMHead', channels=32, num_classes=4, num_noise=3))
    with pytest.raises(ValueError, match='num_noise must be an integer >= 0'):
        SharedCAMHead(num_classes=4, num_noise=-1)
    head = NoiseHead(channels=8, num_noise=2, maps_from_cam_head=True)
    with pytest.raises(RuntimeError, match='no conv of its own'):
        head(torch.randn(1, 8, 2, 2))
    maps = torch.randn(3, 7, 2, 2)
    with pytest.raises(ValueError, match="the CAM head's classifier has 3 noise outputs"):
        head.noise_maps(ViewCAMs(maps, None, None, None, num_noise=3))
    torch.testing.assert_close(head.noise_maps(ViewCAMs(maps, None, None, None, num_noise=2)), maps[:, 5:])
    with pytest.raises(ValueError, match='no noise outputs'):
        ViewCAMs(maps, None, None, None).exo_noise


def test_real_configs_put_the_noise_maps_in_the_cam_classifier_and_paper_derived_ones_in_their_own_head():
    model = MODELS.build(without_pretrained(_load('looptrans_agd20k.py').model))
    assert tuple(model.cam_head.conv_seg.weight.shape[:2]) == (36 + 15, 384)
    assert model.noise_head.maps_from_cam_head and not list(model.noise_head.parameters())
    paper_derived = _load('looptrans_synthetic_paper_derived.py').model
    assert paper_derived.noise_on_cam_head is False
    assert MODELS.build(paper_derived).noise_head.conv_noise.out_channels == 3


def _published_map_correlation(ego_pred, aff_cam_re):
    """Transcription of the published LoopTrans code's correlation loss (SooLab/LoopTrans models/looptrans.py)."""
    ego_aff_feat = ego_pred.flatten(-2, -1)
    exo_aff_feat = aff_cam_re.transpose(1, 2).flatten(-2, -1).flatten(-2, -1)
    ego_aff_corr = torch.matmul(ego_aff_feat, ego_aff_feat.transpose(1, 2))
    exo_aff_corr = torch.matmul(exo_aff_feat, exo_aff_feat.transpose(1, 2))
    return 1 - F.cosine_similarity(ego_aff_corr, exo_aff_corr).mean()


def test_map_correlation_loss_transcribes_the_published_looptrans_code_and_reads_the_pixel_maps():
    from conftest import build_tiny_looptrans
    from mmseg.structures import SegDataSample

    from looptrans.models.losses import AffordanceMapCorrelationLoss

    gen = torch.Generator().manual_seed(0)
    ego, exo = torch.randn(2, 5, 7, 7, generator=gen), torch.randn(2, 3, 5, 7, 7, generator=gen)
    loss = AffordanceMapCorrelationLoss(loss_weight=1.5)
    torch.testing.assert_close(loss(exo, ego), 1.5 * _published_map_correlation(ego, exo))
    assert loss(exo, ego) > 0 and loss(exo[:, :1].expand(-1, 3, -1, -1, -1), exo[:, 0]) < 1e-6  # aligned: 0
    with pytest.raises(ValueError, match=r'exo CAMs \(B, V, C, h, w\)'):
        loss(exo.flatten(0, 1), ego)
    assert _load('looptrans_agd20k.py').model.corr_loss == dict(type='AffordanceMapCorrelationLoss', loss_weight=1.5)
    assert _load('looptrans_synthetic_paper_derived.py').model.corr_loss.type == 'AffordanceCorrelationLoss'
    # in the segmentor: the pixel head's maps with a pixel head, the ego CAMs without one
    inputs = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 2)]
    corr = dict(type='AffordanceMapCorrelationLoss', loss_weight=1.5)
    for pixel in (True, False):
        torch.manual_seed(0)
        model = build_tiny_looptrans(corr_loss=corr, **({} if pixel else dict(pixel_head=None))).eval()
        losses = model.loss(inputs, samples)
        feats = model.extract_feat(inputs.flatten(0, 1))
        cams = model.cam_head(feats, view='exo').unflatten(0, (2, 3))  # view 0 of each sample is the ego image
        ego_maps = model.pixel_logits([f[0::3] for f in feats]) if pixel else cams[:, 0]
        expected = 1.5 * _published_map_correlation(ego_maps, cams[:, 1:])
        torch.testing.assert_close(losses['loss_corr'], expected, rtol=1e-4, atol=1e-5)


def test_the_quick_start_config_has_the_real_configs_model_recipe():
    """configs/looptrans_synthetic.py is the real-data config's model (the published LoopTrans code's recipe) on a
    random 2-block ViT with the 'border' background rule and the generated data's 7 classes: nothing else may
    differ, so the quick start runs the code path of the real configs."""
    real, quick = _load('looptrans_agd20k.py').model, _load('looptrans_synthetic.py').model
    assert set(quick) == set(real)
    for key in sorted(set(real) - {'backbone', 'part_discovery', 'cam_head', 'pixel_head'}):
        assert quick[key] == real[key], key
    for head in ('cam_head', 'pixel_head'):
        assert dict(quick[head], num_classes=None) == dict(real[head], num_classes=None), head
        assert quick[head].num_classes == 7
    assert dict(quick.part_discovery, exclude_background=None, clusterer=None) == dict(
        real.part_discovery, exclude_background=None, clusterer=None
    )
    assert quick.part_discovery.get('clusterer') is None  # the authors' module was trained on DINO's keys
    assert quick.part_discovery.exclude_background == 'border'  # a random ViT's attention is no saliency
    assert quick.backbone.arch == dict(embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=1536)
    assert quick.backbone.init_cfg is None
    assert dict(quick.backbone, arch=None, init_cfg=None) == dict(real.backbone, arch=None, init_cfg=None)


def test_the_paper_derived_config_keeps_the_settings_of_its_documented_figures():
    """configs/looptrans_synthetic_paper_derived.py is the recipe of the figures measured before the published code
    was read: each of its departures from the quick start, as the docs list them."""
    quick, derived = _load('looptrans_synthetic.py').model, _load('looptrans_synthetic_paper_derived.py').model
    assert derived.part_discovery.cam_thr == 'mean' and derived.part_discovery.exclude_background == 'border'
    assert derived.cam_head.joint_norm is True and derived.concentration_loss is None
    assert derived.corr_loss == dict(type='AffordanceCorrelationLoss', loss_weight=0.5)
    assert (derived.noise_head.num_noise, derived.noise_head.pooling) == (3, 'assignment')
    assert (derived.noise_head.loss_decode.tau, derived.noise_head.loss_decode.loss_weight) == (0.5, 1.0)
    assert derived.pixel_on_cam_head is False and derived.test_cfg.heatmap == 'pixel'
    assert derived.pixel_head == dict(type='PixelAffordanceHead', in_channels=384, num_classes=7)
    assert derived.backbone == quick.backbone


def test_unshared_head_keeps_one_bn_per_view():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    head = SharedCAMHead(num_classes=4, in_channels=16, channels=8, shared=False).train()
    head.forward_views(torch.randn(6, 16, 5, 5) + 3.0, torch.randn(2, 16, 5, 5) - 3.0)
    assert head.projs['exo'][0].bn.num_batches_tracked.item() == 1
    assert head.projs['ego'][0].bn.num_batches_tracked.item() == 1
    assert not torch.allclose(head.projs['exo'][0].bn.running_mean, head.projs['ego'][0].bn.running_mean)


# ---------------------------------------------------------------- saliency prior (LOCATE)
def _attention(salient: torch.Tensor, heads: int = 6) -> torch.Tensor:
    """CLS attention (1, heads, h, w): high on ``salient`` (h, w) bool in heads 0, 1, 3, noise elsewhere."""
    gen = torch.Generator().manual_seed(3)
    attn = torch.rand(1, heads, *salient.shape, generator=gen) * 0.1
    for head in (0, 1, 3):
        attn[0, head] += salient.float()
    return attn


def test_cls_attention_saliency_transcribes_locate():
    gen = torch.Generator().manual_seed(4)
    attn = torch.rand(3, 6, 7, 9, generator=gen)
    # LOCATE models/locate.py, transcribed.
    b, _, h, w = attn.shape
    hard = (attn > attn.flatten(-2, -1).mean(-1, keepdim=True).unsqueeze(-1)).float()
    sam = hard[:, [0, 1, 3]].mean(1)
    low = sam.view(b, -1).min(1)[0].view(b, 1, 1)
    sam = sam - low
    sam = sam / (sam.view(b, -1).max(1)[0].view(b, 1, 1) + 1e-15)
    flat = sam.flatten(-2, -1)
    expected = flat > flat.mean(1, keepdim=True)
    assert torch.equal(cls_attention_saliency(attn), expected)
    with pytest.raises(ValueError, match='heads'):
        cls_attention_saliency(attn[:, :3])


def test_part_score_transcribes_locate():
    gen = torch.Generator().manual_seed(5)
    assign = torch.randint(0, 4, (2, 30), generator=gen)
    parts = F.one_hot(assign, 4).float()
    sal = (torch.rand(2, 30, generator=gen) > 0.4).float()
    score = part_saliency_score(parts, sal)
    for b in range(2):
        for k in range(4):
            part = parts[b, :, k]
            inter = (part * sal[b]).sum()
            union = part.sum() + sal[b].sum() - inter
            ref = (inter / part.sum() + sal[b].sum() / union) / 2 if part.sum() > 0 else 0.0
            assert score[b, k].item() == pytest.approx(float(ref), abs=1e-6)


def _quadrant_scene(h: int = 8, w: int = 8):
    """Descriptors of 4 clean parts: the left half (A), and three parts of the right half."""
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[:, w // 2 :] = 1
    labels[: h // 3, w // 2 :] = 2
    labels[h - 2 :, w // 2 :] = 3
    desc = F.one_hot(labels.flatten(), 4).float()[None] + 0.01 * torch.randn(
        1, h * w, 4, generator=torch.Generator().manual_seed(6)
    )
    return labels, desc


def test_saliency_keeps_a_frame_filling_affordance_part_that_the_border_rule_drops():
    labels, desc = _quadrant_scene()
    cam = (labels == 0).float()[None]  # the CAM points at part A, which touches three borders
    attn = _attention(
        torch.ones(8, 8, dtype=torch.bool).index_put_((torch.tensor([0, 7]), torch.tensor([7, 7])), torch.tensor(False))
    )
    sal = PartDiscovery(num_parts=4, exclude_background='saliency')(desc, cam, cls_attn=attn)
    assert sal['valid'].item()
    assert torch.equal(sal['pseudo_mask'][0].bool(), labels == 0)
    border = PartDiscovery(num_parts=4, exclude_background='border')(desc, cam)
    assert not torch.equal(border['pseudo_mask'][0].bool(), labels == 0)


def test_saliency_excludes_background_and_gates_unsalient_images():
    h = w = 8
    labels = torch.zeros(h, w, dtype=torch.long)  # 0 = background ring
    labels[2:6, 2:4] = 1
    labels[2:6, 4:6] = 2
    labels[3:5, 3:5] = 3
    desc = F.one_hot(labels.flatten(), 4).float()[None]
    cam = (labels == 0).float()[None]  # the CAM overlaps the background most ...
    cam[0][labels == 1] = 0.9  # ... and part 1 a little

    object_mask = labels > 0
    finder = PartDiscovery(num_parts=4, exclude_background='saliency')
    out = finder(desc, cam, cls_attn=_attention(object_mask))
    assert out['valid'].item()
    assert out['part_score'][0, out['assign'][0, 0]].item() < 0.6  # the background part scores low
    assert not out['pseudo_mask'][0, 0, 0]  # background never chosen
    assert torch.equal(out['pseudo_mask'][0].bool(), labels == 1)
    unguarded = PartDiscovery(num_parts=4)(desc, cam)
    assert unguarded['pseudo_mask'][0, 0, 0]  # without the prior the background wins
    # No salient region where the parts are: every part scores < 0.6 -> the image is skipped.
    gated = finder(
        desc, cam, cls_attn=_attention(torch.zeros(h, w, dtype=torch.bool).index_fill_(0, torch.tensor([0]), True))
    )
    assert not gated['valid'].item() and gated['pseudo_mask'].sum() == 0
    with pytest.raises(ValueError, match='cls_attn'):
        finder(desc, cam)


def test_degenerate_part_counts_are_refused():
    for bad in (0, 1):
        with pytest.raises(ValueError, match='num_parts must be >= 2'):
            PartDiscovery(num_parts=bad)
    with pytest.raises(ValueError, match='exclude_background'):
        PartDiscovery(exclude_background='salency')


# ---------------------------------------------------------------- ablation rows and model config keys
ROWS = {  # row: (shared CAM, pixel head, noise head)
    'none': (False, False, False),
    'shared_cam': (True, False, False),
    'denoising': (False, False, True),
    'shared_cam_pixel': (True, True, False),
    'shared_cam_denoising': (True, False, True),
    'all': (True, True, True),
}


@pytest.mark.parametrize('data', ['agd20k', 'synthetic'])
@pytest.mark.parametrize('row', sorted(ROWS))
def test_ablation_rows_are_the_papers(data, row):
    cfg = _load(f'ablations/looptrans_{data}_{row}.py')
    shared, pixel, noise = ROWS[row]
    model = cfg.model
    assert model.cam_head.shared is shared
    assert (model.pixel_head is not None) is pixel
    assert (model.noise_head is not None) is noise
    assert model.corr_loss is not None  # L_corr stays on in every row
    hooks = [h.type for h in cfg.custom_hooks]
    assert ('PseudoMaskHook' in hooks) is pixel
    if not pixel:
        assert model.test_cfg.heatmap == 'cam'
    main = _load('looptrans_agd20k.py' if data == 'agd20k' else 'looptrans_synthetic.py')
    if row == 'all':
        assert cfg.model == main.model and cfg.custom_hooks == main.custom_hooks


@pytest.mark.parametrize('row', sorted(ROWS))
def test_generated_ablation_rows_are_the_real_rows_on_the_random_vit(row):
    """Each generated-data row switches exactly what the real-data row switches: the two models differ only where
    the quick start differs from the real config (backbone, background rule, class count)."""
    real, synthetic = _load(f'ablations/looptrans_agd20k_{row}.py'), _load(f'ablations/looptrans_synthetic_{row}.py')

    def comparable(model):
        model = dict(model, backbone=None, part_discovery=None)
        for head in ('cam_head', 'pixel_head'):
            if model.get(head) is not None:
                model[head] = dict(model[head], num_classes=None)
        return model

    assert comparable(synthetic.model) == comparable(real.model)
    assert [h.type for h in synthetic.custom_hooks] == [h.type for h in real.custom_hooks]


def test_model_cfg_typos_are_errors():
    with pytest.raises(ValueError, match="'heatmp'.*did you mean 'heatmap'"):
        build(test_cfg=dict(heatmp='cam'))
    with pytest.raises(ValueError, match="'pixel_supervison'"):
        build(train_cfg=dict(pixel_supervison=False))
    with pytest.raises(ValueError, match='test_cfg.heatmap must be one of'):
        build(test_cfg=dict(heatmap='pixels'))
    with pytest.raises(ValueError, match='needs a pixel_head'):
        build(pixel_head=None, test_cfg=dict(heatmap='fusion'))


def test_heatmap_sources_are_consistent():
    model = build().eval()
    inputs, _ = batch()
    ego = inputs[:, 0]
    with torch.no_grad():
        feats = model.extract_feat(ego)
        maps = model.decode_heatmaps(feats, ego.shape[-2:], ('pixel', 'pixel_logits', 'cam', 'fusion'))
        for source in maps:
            model.test_cfg['heatmap'] = source
            assert torch.allclose(model.inference(inputs), maps[source], atol=1e-6), source
    assert all(m.shape == (2, 5, 64, 64) for m in maps.values())
    assert torch.allclose(maps['pixel'], maps['pixel_logits'].sigmoid())
    cam = maps['cam'].flatten(2)
    norm = (cam - cam.min(-1, keepdim=True).values) / (
        cam.max(-1, keepdim=True).values - cam.min(-1, keepdim=True).values + 1e-10
    )
    assert torch.allclose(maps['fusion'], maps['pixel'] * norm.view_as(maps['cam']), atol=1e-6)


def test_predict_without_data_samples_returns_every_affordance():
    model = build().eval()
    inputs, _ = batch()
    with torch.no_grad():
        out = model.predict(inputs)
        maps = model.inference(inputs)
    assert len(out) == 2
    for i, sample in enumerate(out):
        assert sample.pred_heatmaps.data.shape == (5, 64, 64)
        assert torch.equal(sample.pred_heatmaps.data, maps[i])


def test_multi_scale_mmseg_backbone_feeds_the_heads_by_config():
    """ResNetV1c stages through mmseg's FPN neck, merged by the heads' own resize_concat: one training step;
    the heads stay small (before the neck, the token MLP on 3584 concatenated channels held 103M parameters)."""
    from mmseg.structures import SegDataSample

    cfg = _load('backbones/looptrans_synthetic_r50_multiscale.py')
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    assert model.cam_head.in_channels == 3 * 256 and model.cam_head.input_transform == 'resize_concat'
    assert type(model.neck).__name__ == 'FPN'
    assert sum(p.numel() for p in model.cam_head.parameters()) < 10e6
    inputs = torch.randn(2, 4, 3, 64, 64)
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 3)]
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.layer2[0].conv1.weight.grad.abs().sum() > 0  # the backbone trains
    assert model.neck.lateral_convs[0].conv.weight.grad.abs().sum() > 0  # and the neck
    model.eval()
    with torch.no_grad():
        assert model.inference(inputs).shape == (2, 7, 64, 64)
