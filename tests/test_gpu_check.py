"""tools/analysis_tools/gpu_check.sh: refuses without a GPU; its table builder reads every part's output.

What needs a GPU (the real check: CUDA benchmark, --amp training in bf16) is not run here; the slow test
runs the script's whole plumbing on CPU at toy sizes (``--cpu-smoke``) so that the parsers are checked
against the real outputs of benchmark.py, train.py and test.py.
"""

import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import REPO, tool_env

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import gpu_check_table as table  # noqa: E402

SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'gpu_check.sh')

BENCH = """config: configs/looptrans_agd20k.py
device: cuda (NVIDIA H100 80GB HBM3, 16 threads), torch 2.14.1, amp={amp}
batch: 16 samples = 16 ego + 48 exo images at 224x224 (64 images)
what                                  s/iter    images/s  peak GiB
training step                         {step:.4f}      {ips:.1f}      5.12
frozen backbone forward alone         0.0210      3047.6      2.01
training step / backbone forward: {ratio:.2f}x
inference (heatmaps of all classes), batch 1: 180.5 images/s
inference (heatmaps of all classes), batch 64: 4100.0 images/s
"""
TRAIN = ''.join(
    f'11/27 10:00:{i:02d} - mmengine - INFO - Iter(train) [{i:>2}/20]  base_lr: 1.0000e-03 lr: 1.0000e-03  '
    f'eta: 0:00:10  time: 0.0{i % 9 + 1}00  data_time: 0.0100  memory: 900  loss: {loss}  loss_cls: 1.0000\n'
    for i, loss in zip(range(1, 21), ['2.5000'] * 19 + ['{last}'])
)
TEST = (
    '11/27 10:01:00 - mmengine - INFO - Iter(test) [ 5/12]    eta: 0:00:01  time: 0.2000  data_time: 0.1500  '
    'memory: 500\n'
    '11/27 10:01:01 - mmengine - INFO - Iter(test) [10/12]    eta: 0:00:00  time: {t:.4f}  data_time: 0.0500  '
    'memory: 500\n'
    '11/27 10:01:02 - mmengine - INFO - Iter(test) [12/12]    KLD: 1.2345  SIM: 0.3456  NSS: 0.9876  '
    'data_time: 0.0700  time: 0.1500\n'
)


METRIC = (
    'protocol=agd20k  N=200  prediction 14x14 float32  GT 480x640 float64  device=cuda  torch threads=16\n'
    '  published per-image code      :    7.150 ms/image (runs: 7.150, 7.300)\n'
    '  AffordanceMetric, 16 thread(s) :    0.050 ms/image (runs: 0.050, 0.060)  (batches of 16)\n'
    '  ratio published / ours        :    143.0x\n'
    '  ... AffordanceMetric, 1 thread:    0.060 ms/image (runs: 0.060)  ratio 119.2x\n'
    '  max |difference|              : KLD 1.20e-07, SIM 2.10e-08, NSS 2.80e-07\n'
)


def _write_outputs(folder, last_loss='1.9000', status=None, metric=True):
    os.makedirs(folder, exist_ok=True)
    env = dict(
        gpu='NVIDIA H100 80GB HBM3',
        torch='2.14.1',
        cuda='13.0',
        bf16='yes',
        amp_dtype='bfloat16',
        mmcv='2.1.0',
        mmcv_cuda_ops='13.0',
    )
    with open(osp.join(folder, 'env.json'), 'w') as f:
        json.dump(env, f)
    with open(osp.join(folder, 'bench_fp32.txt'), 'w') as f:
        f.write(BENCH.format(amp=False, step=0.1, ips=640.0, ratio=4.76))
    with open(osp.join(folder, 'bench_amp.txt'), 'w') as f:
        f.write(BENCH.format(amp=True, step=0.05, ips=1280.0, ratio=2.38))
    with open(osp.join(folder, 'train.log'), 'w') as f:
        f.write('11/27 10:00:00 - mmengine - INFO - AMP training in bfloat16\n' + TRAIN.format(last=last_loss))
    for b, t in ((1, 0.01), (64, 0.08)):
        with open(osp.join(folder, f'test_b{b}.log'), 'w') as f:
            f.write(TEST.format(t=t))
    if metric:
        with open(osp.join(folder, 'metric.txt'), 'w') as f:
            f.write(METRIC)
    parts = status or dict(bench_fp32=0, bench_amp=0, data=0, train=0, test_b1=0, test_b64=0, metric=0)
    with open(osp.join(folder, 'status.txt'), 'w') as f:
        f.write(''.join(f'{k} {v}\n' for k, v in parts.items()))


def test_refuses_at_once_without_a_gpu(tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', PY=sys.executable)
    proc = subprocess.run(['bash', SCRIPT, str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'no CUDA GPU is visible' in proc.stderr and 'nothing was run' in proc.stderr
    assert not out.exists()  # nothing ran, nothing was written (what "at once" means; no wall-time bound: load varies)


def test_refuses_unknown_options_and_a_missing_python(tmp_path):
    proc = subprocess.run(['bash', SCRIPT, '--bogus'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and 'unknown option' in proc.stderr
    proc = subprocess.run(
        ['bash', SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PY=str(tmp_path / 'nope' / 'python')),
    )
    assert proc.returncode == 2 and 'no Python at' in proc.stderr


def test_parsers_read_the_figures():
    bench = table.parse_benchmark(BENCH.format(amp=True, step=0.05, ips=1280.0, ratio=2.38))
    assert bench['train_step_s'] == 0.05 and bench['train_images_s'] == 1280.0
    assert bench['train_peak_gib'] == 5.12 and bench['backbone_s'] == 0.021
    assert bench['step_over_backbone'] == 2.38 and bench['batch_samples'] == 16 and bench['batch_images'] == 64
    assert bench['inference_images_s'] == {1: 180.5, 64: 4100.0}
    train = table.parse_train_log(TRAIN.format(last='nan'))
    assert train['iters'] == list(range(1, 21)) and len(train['losses']) == 20 and not train['finite']
    assert train['amp_dtype'] is None and len(train['times']) == 20 and train['data_times'] == [0.01] * 20
    test = table.parse_test_log(TEST.format(t=0.08))
    assert test['time_s'] == 0.08 and test['mean_time_s'] == 0.15 and test['iters'] == 12
    assert test['metrics'] == {'KLD': 1.2345, 'SIM': 0.3456, 'NSS': 0.9876}
    metric = table.parse_metric(METRIC)
    assert metric == dict(
        num_images=200,
        device='cuda',
        published_ms=7.15,
        ours_ms=0.05,
        ratio=143.0,
        max_diff={'KLD': 1.2e-07, 'SIM': 2.1e-08, 'NSS': 2.8e-07},
    )
    assert table.parse_metric('no figures here') == {}


def test_table_of_a_good_run(tmp_path, capsys):
    _write_outputs(str(tmp_path))
    assert table.main([str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert 'NVIDIA H100 80GB HBM3' in text and '| what' in text and 'amp (bfloat16)' in text
    row = next(ln for ln in text.splitlines() if ln.startswith('| benchmark: training step,'))
    assert '0.1000' in row and '0.0500' in row and 'batch 16 (64 images)' in row
    # logged times 0.0{i % 9 + 1}00 for i = 1..20: sorted, the 10th and 11th are 0.04 and 0.05 -> median 0.045,
    # not the last iteration's 0.03
    assert '20 iters, losses finite (2.500 → 1.900), median 0.045 s/iter (data 0.010)' in text
    b64 = next(ln for ln in text.splitlines() if 'batch 64: images/s' in ln)
    assert '800.0' in b64 and 'KLD 1.234' in b64  # 64 images / 0.08 s
    metric = next(ln for ln in text.splitlines() if ln.startswith('| AGD20K metric'))
    assert '200 maps on cuda' in metric and '0.050 ms/image, 143.0x the published code (7.15 ms/image)' in metric
    assert 'KLD 1.2e-07' in metric
    assert 'PROBLEMS' not in text
    assert open(tmp_path / 'gpu_check.md').read().strip() == text.strip()
    assert json.load(open(tmp_path / 'gpu_check.json'))['bench_amp']['train_step_s'] == 0.05


def test_table_flags_non_finite_losses_and_failed_parts(tmp_path, capsys):
    _write_outputs(str(tmp_path), last_loss='nan', status=dict(bench_fp32=0, bench_amp=1, train=0), metric=False)
    os.remove(tmp_path / 'test_b64.log')
    assert table.main([str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert 'losses NOT FINITE' in text
    problems = text.split('PROBLEMS:')[1]
    assert 'bench_amp exited with status 1' in problems and 'non-finite loss' in problems
    assert 'test (batch 64): no timing' in problems
    assert 'metric: no figures in metric.txt' in problems


@pytest.mark.slow
def test_cpu_smoke_runs_every_part(tmp_path, synthetic_root):
    """The script's plumbing end to end on CPU (toy sizes, fp32 training): every part runs, the table is full."""
    out = tmp_path / 'gpu_check'
    env = tool_env(PY=sys.executable, GPU_CHECK_DATA=synthetic_root)
    proc = subprocess.run(
        ['bash', SCRIPT, '--cpu-smoke', str(out)], capture_output=True, text=True, env=env, timeout=900, cwd=REPO
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    result = json.load(open(out / 'gpu_check.json'))
    assert result['problems'] == []
    for kind in ('fp32', 'amp'):
        bench = result[f'bench_{kind}']
        assert bench['train_step_s'] > 0 and bench['backbone_s'] > 0 and bench['step_over_backbone'] > 0
        assert set(bench['inference_images_s']) == {'1', '2'}
    assert result['train']['iters'] == [1, 2, 3, 4] and result['train']['finite']
    for b in (1, 2):
        assert result[f'test_b{b}']['time_s'] > 0
        assert set(result[f'test_b{b}']['metrics']) == {'KLD', 'SIM', 'NSS'}
    assert result['metric']['device'] == 'cpu' and result['metric']['num_images'] == 8
    assert result['metric']['ratio'] > 0 and set(result['metric']['max_diff']) == {'KLD', 'SIM', 'NSS'}
    md = open(out / 'gpu_check.md').read()
    assert 'CPU (smoke run' in md and 'test (tools/test.py, generated data), batch 2: images/s' in md
