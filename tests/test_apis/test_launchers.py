# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Training through the real launchers, on this CPU machine: torchrun 1 node
x 2 processes and 2 nodes x 1 process (``tools/dist_train.sh``, two
invocations and a c10d rendezvous on 127.0.0.1), ``tools/slurm_train.sh`` on
a real one-node Slurm (``tests/slurm_cluster.py``), a rank SIGKILLed
mid-run, a torchrun restart and a Slurm requeue that resume by themselves.

Every run is the shipped CPU config made tiny with ``--cfg-options`` on the
same 7 real photos and seed; the losses of every iteration agree with the
in-process 2-rank DDP run (two spawned processes calling
:func:`densecl_plugin.apis.train` with torchrun's variables, no launcher).
Without ``densecl_plugin.utils.dist_launch`` every launched run fails
before its first iteration (``torch.cuda.set_device`` on a CPU torch, then
DDP's ``device_ids``); without ``RNGStateHook`` the losses after a restart
differ from the uninterrupted run's.
"""
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch.multiprocessing as mp
from test_train import _scalars

from densecl_plugin.utils.checkpoint_integrity import is_intact, resolve_resume

pytestmark = pytest.mark.slow

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    REPO, 'configs/densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py')
DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')
SLURM_TRAIN = osp.join(REPO, 'tools', 'slurm_train.sh')
MAX_ITERS = 6


def tiny_options(image_dir: str) -> dict:
    """The shipped CPU config in seconds: 32 px views, 4 images per process,
    K=16, 6 iterations of an 8-iteration cosine schedule, lambda after
    3 iterations, a checkpoint every 2 iterations."""
    return {
        'train_dataloader.dataset.data_root': image_dir,
        'train_dataloader.batch_size': 4,
        'train_dataloader.dataset.pipeline.1.transforms.0.0.size': 32,
        'model.queue_len': 16,
        'optim_wrapper.optimizer.lr': 0.0075,
        'train_cfg.max_iters': MAX_ITERS,
        'param_scheduler.0.T_max': 8,
        'param_scheduler.0.end': 8,
        'custom_hooks.0.start_iters': 3,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'randomness.seed': 1234,
        # a hang fails the test instead of blocking it
        'env_cfg.dist_cfg.timeout': 120,
    }


def cli_options(image_dir: str) -> list:
    return ['--cfg-options'] + [f'{k}={v}' for k, v in
                                tiny_options(image_dir).items()]


def free_port() -> int:
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def launch_env(**extra) -> dict:
    return {**os.environ, 'PYTHON': sys.executable, 'OMP_NUM_THREADS': '1',
            **{k: str(v) for k, v in extra.items()}}


def losses(work_dir: str) -> dict:
    """``step -> (loss_single, loss_dense)`` (a restart's rows win)."""
    rows = _scalars(work_dir)
    return {s: (r['loss_single'], r['loss_dense']) for s, r in rows.items()
            if 'loss_single' in r}


def assert_same_losses(got: dict, want: dict, steps) -> None:
    for step in steps:
        assert step in got, (step, sorted(got))
        assert got[step] == pytest.approx(want[step], abs=1e-5), step


def _rank_main(rank: int, image_dir: str, work_dir: str, port: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    from densecl_plugin.apis import build_train_config, train
    from densecl_plugin.utils.dist_launch import close_launcher_dist
    train(build_train_config(CONFIG, work_dir, None, False, False,
                             tiny_options(image_dir), 'pytorch'))
    close_launcher_dist()


@pytest.fixture(scope='module')
def reference(real_image_dir, tmp_path_factory) -> dict:
    """The in-process 2-rank DDP run's losses, by step."""
    work_dir = str(tmp_path_factory.mktemp('in_process'))
    # one thread per rank, as the launched runs (launch_env): the spawned
    # ranks read OMP_NUM_THREADS when they import torch, before _rank_main,
    # and 2 threads sum in another order (8.5e-5 apart by step 3)
    threads = os.environ.get('OMP_NUM_THREADS')
    os.environ['OMP_NUM_THREADS'] = '1'
    try:
        mp.start_processes(_rank_main, args=(real_image_dir, work_dir,
                                             free_port()),
                           nprocs=2, start_method='spawn')
    finally:
        if threads is None:
            del os.environ['OMP_NUM_THREADS']
        else:
            os.environ['OMP_NUM_THREADS'] = threads
    out = losses(work_dir)
    assert sorted(out) == list(range(1, MAX_ITERS + 1))
    assert out[3][1] == 0 and out[4][1] > 0  # lambda after 3 iterations
    return out


def run(cmd, env, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def test_torchrun_one_node_two_processes(reference, real_image_dir,
                                         tmp_path):
    wd = str(tmp_path / 'w')
    proc = run(['bash', DIST_TRAIN, CONFIG, '2', '--work-dir', wd,
                *cli_options(real_image_dir)],
               launch_env(PORT=free_port()))
    assert 'Distributed launcher: pytorch' in proc.stdout + proc.stderr
    assert_same_losses(losses(wd), reference, range(1, MAX_ITERS + 1))


def test_torchrun_two_nodes_one_process_each(reference, real_image_dir,
                                             tmp_path):
    """Two dist_train.sh invocations (NNODES=2, NODE_RANK=0/1), one c10d
    rendezvous on 127.0.0.1."""
    wd = str(tmp_path / 'w')
    port = free_port()
    cmd = ['bash', DIST_TRAIN, CONFIG, '1', '--work-dir', wd,
           *cli_options(real_image_dir)]
    nodes = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=launch_env(NNODES=2, NODE_RANK=r,
                                             PORT=port))
             for r in (0, 1)]
    outs = [p.communicate(timeout=300)[0] for p in nodes]
    for p, out in zip(nodes, outs):
        assert p.returncode == 0, out[-5000:]
    assert_same_losses(losses(wd), reference, range(1, MAX_ITERS + 1))


def _pid_of_rank(work_dir: str, var: str, rank: int):
    """The pid of the training process of ``rank`` that writes
    ``work_dir``, read from /proc (its command line and environment)."""
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().split(b'\0')
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = f.read().split(b'\0')
        except OSError:
            continue
        if any(c.endswith(b'tools/train.py') for c in cmd) and \
                any(work_dir.encode() in c for c in cmd) and \
                f'{var}={rank}'.encode() in env:
            return int(pid)
    return None


def _kill_rank_after(work_dir: str, ckpt: str, var: str, rank: int,
                     proc, timeout: float = 300) -> None:
    """SIGKILL ``rank`` once ``ckpt`` is in ``work_dir``, mid-run."""
    deadline = time.time() + timeout
    path = osp.join(work_dir, ckpt)
    while not osp.exists(path):
        assert proc is None or proc.poll() is None, 'the run ended first'
        assert time.time() < deadline, f'no {path}'
        time.sleep(0.02)
    pid = _pid_of_rank(work_dir, var, rank)
    assert pid is not None, f'no process of {var}={rank} writes {work_dir}'
    os.kill(pid, signal.SIGKILL)
    assert not osp.exists(osp.join(work_dir, f'iter_{MAX_ITERS}.pth')), \
        'the kill came after the last iteration: not mid-run'


@pytest.mark.parametrize('restarts', [0, 1])
def test_torchrun_killed_rank(reference, real_image_dir, tmp_path,
                              restarts):
    """Rank 1 SIGKILLed after iteration 2. MAX_RESTARTS=0: the job ends at
    once (not at the 120-s collective timeout), torchrun names rank 1 and
    its signal, iter_2.pth stays intact. MAX_RESTARTS=1: torchrun starts
    both processes again, they resume from the newest intact checkpoint by
    themselves and iterations 3..6 give the uninterrupted run's losses."""
    wd = str(tmp_path / 'w')
    proc = subprocess.Popen(
        ['bash', DIST_TRAIN, CONFIG, '2', '--work-dir', wd,
         *cli_options(real_image_dir)], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env=launch_env(PORT=free_port(), MAX_RESTARTS=restarts))
    _kill_rank_after(wd, 'iter_2.pth', 'RANK', 1, proc)
    killed = time.time()
    out = proc.communicate(timeout=100)[0]  # < the collective timeout
    ended_after = time.time() - killed
    if restarts == 0:
        assert proc.returncode != 0
        assert re.search(r'rank\s*:\s*1 \(local_rank: 1\)', out), out[-3000:]
        assert 'Signal 9 (SIGKILL)' in out, out[-3000:]
        assert ended_after < 100
        assert is_intact(osp.join(wd, 'iter_2.pth')) is None
        assert resolve_resume(wd) is not None
        return
    assert proc.returncode == 0, out[-5000:]
    assert re.search(r'restart 1 of job torchrun:\S+: resuming from '
                     r'\S+iter_[24]\.pth', out), out[-5000:]
    got = losses(wd)
    assert_same_losses(got, reference, range(3, MAX_ITERS + 1))
    assert len(os.listdir(wd)) and len(
        [d for d in os.listdir(wd) if d[:8].isdigit()]) == 2  # two starts


def test_slurm_train_on_a_cpu_partition(reference, real_image_dir, tmp_path,
                                        slurm_cluster):
    """srun, 2 tasks, no GPU gres (GPUS_PER_NODE=0)."""
    wd = str(tmp_path / 'w')
    run(['bash', SLURM_TRAIN, 'cpu', 'densecl-cpu', CONFIG, wd,
         *cli_options(real_image_dir)],
        launch_env(**slurm_cluster.env, GPUS=2, GPUS_PER_NODE=0,
                   CPUS_PER_TASK=1))
    assert_same_losses(losses(wd), reference, range(1, MAX_ITERS + 1))


def test_slurm_killed_task_ends_the_step(real_image_dir, tmp_path,
                                         slurm_cluster):
    """Task 1 SIGKILLed after iteration 2: srun (--kill-on-bad-exit)
    ends the step at once, naming task 1; iter_2.pth stays intact."""
    wd = str(tmp_path / 'w')
    proc = subprocess.Popen(
        ['bash', SLURM_TRAIN, 'cpu', 'densecl-kill', CONFIG, wd,
         *cli_options(real_image_dir)], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env=launch_env(**slurm_cluster.env, GPUS=2, GPUS_PER_NODE=0,
                       CPUS_PER_TASK=1))
    _kill_rank_after(wd, 'iter_2.pth', 'SLURM_PROCID', 1, proc)
    out = proc.communicate(timeout=100)[0]  # < the collective timeout
    assert proc.returncode != 0
    assert re.search(r'srun: error: \S+: task 1: Killed', out), out[-3000:]
    assert is_intact(osp.join(wd, 'iter_2.pth')) is None


def _job_field(cluster, job: str, field: str) -> str:
    out = cluster.run(['scontrol', 'show', 'job', '-o', job]).stdout
    m = re.search(rf'\b{field}=(\S*)', out)
    return m.group(1) if m else ''


def _wait_state(cluster, job: str, states, timeout=300) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = _job_field(cluster, job, 'JobState')
        if state in states:
            return state
        time.sleep(0.5)
    raise AssertionError(f'job {job} not in {states} after {timeout} s: '
                         f'{state}')


def test_slurm_batch_job_requeued_resumes(reference, real_image_dir,
                                          tmp_path, slurm_cluster):
    """BATCH=1 on the GPU partition: sbatch --requeue asking for the 2 GPUs
    it uses; `scontrol requeue` after iteration 2 starts the job again,
    which resumes by itself (SLURM_RESTART_COUNT) and ends with the
    uninterrupted run's losses."""
    wd = str(tmp_path / 'w')
    proc = run(['bash', SLURM_TRAIN, 'gpu', 'densecl-gpu', CONFIG, wd,
                *cli_options(real_image_dir)],
               launch_env(**slurm_cluster.env, GPUS=2, CPUS_PER_TASK=1,
                          BATCH=1))
    job = open(osp.join(wd, 'slurm_job_id')).read().strip()
    assert f'Submitted batch job {job}' in proc.stdout
    assert _job_field(slurm_cluster, job, 'TresPerNode') == 'gres:gpu:2'
    assert _wait_state(slurm_cluster, job, ('RUNNING', 'FAILED')) == \
        'RUNNING'
    deadline = time.time() + 300
    while not osp.exists(osp.join(wd, 'iter_2.pth')):
        assert time.time() < deadline
        assert _job_field(slurm_cluster, job, 'JobState') == 'RUNNING'
        time.sleep(0.05)
    slurm_cluster.run(['scontrol', 'requeue', job], check=True)
    assert not osp.exists(osp.join(wd, f'iter_{MAX_ITERS}.pth'))
    # Slurm holds a requeued job back for a while; let it start now
    _wait_state(slurm_cluster, job, ('PENDING', ))
    slurm_cluster.run(['scontrol', 'update', f'JobId={job}',
                       'StartTime=now'], check=True)
    assert _wait_state(slurm_cluster, job, ('COMPLETED', 'FAILED',
                                            'CANCELLED')) == 'COMPLETED'
    assert _job_field(slurm_cluster, job, 'Restarts') == '1'
    log = open(osp.join(wd, f'slurm-{job}.out')).read()
    assert re.search(rf'restart 1 of job slurm:{job}: resuming from '
                     rf'\S+iter_[24]\.pth', log), log[-5000:]
    assert_same_losses(losses(wd), reference, range(3, MAX_ITERS + 1))
