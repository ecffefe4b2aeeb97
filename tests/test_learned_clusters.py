"""The published LoopTrans code's trained part clustering (``LearnedPartClusterer``), against a transcription."""

import pytest
import torch
import torch.nn.functional as F
from conftest import build_tiny_looptrans
from test_part_discovery import _published_looptrans_choice
from torch import nn

from looptrans.models.part_discovery import PUBLISHED_WEIGHTS_URL, LearnedPartClusterer, PartDiscovery


# ---------------------------------------------------------------- transcription of SooLab/LoopTrans models/cluster.py
class _PublishedFFN(nn.Module):
    def __init__(self, dim, hidden_dim, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x):
        return self.net(x)


class _PublishedCluster(nn.Module):
    def __init__(self, num_token=4, token_dim=384, num_layers=8, num_heads=8):
        super().__init__()
        self.tokens = nn.Embedding(num_token, token_dim)
        self.cross_attn_layers = nn.ModuleList([nn.MultiheadAttention(token_dim, num_heads) for _ in range(num_layers)])
        self.self_attn_layers = nn.ModuleList([nn.MultiheadAttention(token_dim, num_heads) for _ in range(num_layers)])
        self.norm_layers = nn.ModuleList([nn.LayerNorm(token_dim) for _ in range(num_layers)])
        self.ffn_layers = nn.ModuleList([_PublishedFFN(token_dim, token_dim * 4) for _ in range(num_layers)])

    def forward(self, x):
        b, n, c = x.shape
        query = self.tokens.weight.unsqueeze(0).expand(b, -1, -1)
        query_seq_first = query.permute(1, 0, 2)
        x_seq_first = x.permute(1, 0, 2)
        for cross_attn, self_attn, norm, ffn in zip(
            self.cross_attn_layers, self.self_attn_layers, self.norm_layers, self.ffn_layers
        ):
            query = query + cross_attn(query_seq_first, x_seq_first, x_seq_first)[0].permute(1, 0, 2)
            query = query + self_attn(query_seq_first, query_seq_first, query_seq_first)[0].permute(1, 0, 2)
            query = query + ffn(query)
            query = norm(query)
        query = F.normalize(query, p=2, dim=-1)
        x = F.normalize(x, p=2, dim=-1)
        return torch.matmul(x, query.transpose(1, 2)) + 1


def _trained_reference(seed=0, **kwargs):
    """The transcribed module with weights that are not the defaults (LayerNorm and biases perturbed too)."""
    torch.manual_seed(seed)
    ref = _PublishedCluster(**kwargs).eval()
    with torch.no_grad():
        for param in ref.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return ref


SMALL = dict(num_token=4, token_dim=32, num_layers=2, num_heads=4)
OURS_SMALL = dict(num_parts=4, embed_dims=32, num_layers=2, num_heads=4)


def test_the_published_layout_loads_and_gives_the_published_similarity():
    ref = _trained_reference(**SMALL)
    ours = LearnedPartClusterer(**OURS_SMALL).eval()
    assert set(ours.state_dict()) == set(ref.state_dict())  # the authors' files load by name, as they are
    ours.load_state_dict(ref.state_dict())
    desc = torch.randn(3, 49, 32, generator=torch.Generator().manual_seed(1)) * 2 + 0.5
    expected = ref(desc)
    torch.testing.assert_close(ours(desc), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.assign(desc), expected.argmax(dim=-1))
    assert expected.argmax(dim=-1).unique().numel() > 1  # the comparison involves several parts
    # the published query of every layer is the initial tokens: attending with the refined tokens would differ
    refined = ref.tokens.weight.unsqueeze(0).expand(3, -1, -1)
    assert not torch.allclose(ours(desc), _refined_query_variant(ours, desc, refined), atol=1e-3)


def _refined_query_variant(module, desc, query):
    """What the module would give if each layer attended with the refined tokens (not the published behaviour)."""
    keys = desc.transpose(0, 1)
    for cross, self_attn, norm, ffn in zip(
        module.cross_attn_layers, module.self_attn_layers, module.norm_layers, module.ffn_layers
    ):
        q = query.transpose(0, 1)
        query = query + cross(q, keys, keys)[0].transpose(0, 1)
        q = query.transpose(0, 1)
        query = query + self_attn(q, q, q)[0].transpose(0, 1)
        query = norm(query + ffn(query))
    return F.normalize(desc, dim=-1) @ F.normalize(query, dim=-1).transpose(1, 2) + 1


def test_the_module_is_frozen_and_the_default_is_the_published_size():
    module = LearnedPartClusterer()
    assert not any(p.requires_grad for p in module.parameters())
    ref = _PublishedCluster()
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()
    }


@pytest.mark.parametrize('wrapped', [None, 'state_dict', 'model'])
def test_part_discovery_loads_the_file_when_weights_are_initialised(tmp_path, wrapped):
    ref = _trained_reference(**SMALL)
    path = tmp_path / 'cluster_seen.pth'
    torch.save(ref.state_dict() if wrapped is None else {wrapped: ref.state_dict()}, path)
    finder = PartDiscovery(num_parts=4, clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL, checkpoint=str(path)))
    assert not torch.equal(finder.clusterer.tokens.weight, ref.tokens.weight)  # nothing loaded at build time
    finder.init_weights()
    for key, value in ref.state_dict().items():
        assert torch.equal(finder.clusterer.state_dict()[key], value), key


def test_part_discovery_with_the_clusterer_chooses_the_published_pseudo_masks():
    """SooLab/LoopTrans models/looptrans.py: labels = argmax of the cluster module's similarity, then the
    least-salient background and the CAM binarised at 0.92 (the loop transcribed in test_part_discovery)."""
    ref = _trained_reference(**SMALL)
    finder = PartDiscovery(
        num_parts=4,
        cam_thr=0.92,
        exclude_background='least_salient',
        clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL),
    )
    finder.clusterer.load_state_dict(ref.state_dict())
    gen = torch.Generator().manual_seed(2)
    grid = 7
    desc = torch.randn(12, grid * grid, 32, generator=gen)
    cam = torch.rand(12, grid, grid, generator=gen)
    cls_attn = torch.rand(12, 6, grid, grid, generator=gen)
    ours = finder(desc, cam, cls_attn=cls_attn)
    labels = ref(desc).argmax(dim=-1)
    assert torch.equal(ours['assign'], labels)
    expected, _ = _published_looptrans_choice(labels, cam, cls_attn, num_clu=4)
    valid = ours['valid']
    assert int(valid.sum()) >= 6
    torch.testing.assert_close(ours['pseudo_mask'][valid], expected[valid])
    kmeans = PartDiscovery(num_parts=4, cam_thr=0.92, exclude_background='least_salient')(desc, cam, cls_attn=cls_attn)
    assert not torch.equal(kmeans['assign'], ours['assign'])  # the clusterer, not K-means, made the parts


def test_a_missing_or_foreign_file_is_a_clear_error(tmp_path):
    missing = tmp_path / 'checkpoints' / 'cluster_seen.pth'
    finder = PartDiscovery(clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL, checkpoint=str(missing)))
    with pytest.raises(FileNotFoundError) as err:
        finder.init_weights()
    assert str(missing) in str(err.value) and PUBLISHED_WEIGHTS_URL in str(err.value)
    assert 'model.part_discovery.clusterer=None' in str(err.value)  # the K-means way out
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='cannot read .*garbage.pth'):
        PartDiscovery(clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL, checkpoint=str(garbage))).init_weights()
    other = tmp_path / 'other_layers.pth'
    torch.save(_trained_reference(num_token=4, token_dim=32, num_layers=3, num_heads=4).state_dict(), other)
    with pytest.raises(ValueError, match=r'unexpected \[.*layers\.2'):
        PartDiscovery(clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL, checkpoint=str(other))).init_weights()
    wide = tmp_path / 'wide.pth'
    torch.save(_trained_reference(num_token=4, token_dim=48, num_layers=2, num_heads=4).state_dict(), wide)
    with pytest.raises(ValueError, match=r'wrong shapes \[cross_attn_layers.0.in_proj_bias: \(144,\) vs \(96,\)'):
        PartDiscovery(clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL, checkpoint=str(wide))).init_weights()
    empty = tmp_path / 'empty.pth'
    torch.save({}, empty)
    with pytest.raises(ValueError, match='no state dict of tensors'):
        PartDiscovery(clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL, checkpoint=str(empty))).init_weights()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match='clusterer has 4 part tokens, but num_parts is 5'):
        PartDiscovery(num_parts=5, clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL))
    with pytest.raises(ValueError, match='num_parts is auto'):
        PartDiscovery(num_parts='auto', clusterer=dict(type='LearnedPartClusterer', **OURS_SMALL))
    with pytest.raises(ValueError, match='divisible by num_heads'):
        LearnedPartClusterer(embed_dims=30, num_heads=4)
    with pytest.raises(ValueError, match=r'expected descriptors \(B, N, 32\)'):
        LearnedPartClusterer(**OURS_SMALL)(torch.randn(2, 9, 16))


def test_looptrans_trains_with_the_clusterer_and_keeps_it_frozen(tmp_path):
    from mmseg.structures import SegDataSample

    ref = _trained_reference(num_token=4, token_dim=384, num_layers=1, num_heads=8)
    path = tmp_path / 'cluster_seen.pth'
    torch.save(ref.state_dict(), path)
    clusterer = dict(type='LearnedPartClusterer', num_layers=1, checkpoint=str(path))
    model = build_tiny_looptrans(
        part_discovery=dict(type='PartDiscovery', exclude_background='least_salient', clusterer=clusterer)
    )
    model.init_weights()  # the segmentor's initialisation reaches the clusterer
    assert torch.equal(model.part_discovery.clusterer.tokens.weight, ref.tokens.weight)
    inputs = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    samples = [SegDataSample(metainfo=dict(gt_label=i)) for i in (1, 2)]
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    assert torch.isfinite(losses['loss_pixel_dice'])
    assert all(p.grad is None for p in model.part_discovery.clusterer.parameters())
    # a whole-model checkpoint carries the clusterer: testing builds it without the file and loads its weights
    assert any(k.startswith('part_discovery.clusterer.') for k in model.state_dict())


def test_the_agd20k_configs_take_the_published_modules_and_the_rest_k_means():
    from conftest import REPO
    from mmengine.config import Config, DictAction

    def part_discovery(name, *options):
        cfg = Config.fromfile(f'{REPO}/configs/{name}')
        if options:
            parser = __import__('argparse').ArgumentParser()
            parser.add_argument('--cfg-options', nargs='+', action=DictAction)
            cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
        return cfg.model.part_discovery

    assert part_discovery('looptrans_agd20k.py').clusterer.checkpoint == 'checkpoints/cluster_seen.pth'
    assert part_discovery('looptrans_agd20k_unseen.py').clusterer.checkpoint == 'checkpoints/cluster_unseen.pth'
    assert part_discovery('ablations/looptrans_agd20k_shared_cam_pixel.py').clusterer.type == 'LearnedPartClusterer'
    for name in ('looptrans_hico_iif.py', 'looptrans_opra.py', 'backbones/looptrans_agd20k_dinov2_vits14.py'):
        assert part_discovery(name).get('clusterer') is None, name  # no published module for these
    # the way out the error message names: K-means from the command line
    assert part_discovery('looptrans_agd20k.py', 'model.part_discovery.clusterer=None').clusterer is None
