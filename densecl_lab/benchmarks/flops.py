# Copyright (c) densecl_plugin contributors. All rights reserved.
"""FLOPs and bytes of one DenseCL / MoCo v2 training step, and GPU-days.

What ``tools/analysis/flops.py`` does (:func:`run_flops_estimate`).

Counts, with ``torch.utils.flop_counter.FlopCounterMode``, the FLOPs of
every part of a step: the query backbone forward and backward, the key
encoder forward, the global and dense necks, the backbone-feature matching
and the logits of both InfoNCE losses (the memory-frugal loss computes its
input gradients in its forward, so its count holds both matrix products).
The networks run on fake tensors (``FakeTensorMode``: shapes only, nothing
is computed, so ResNet-50 at the paper's batch takes seconds on any
machine); the losses, which look at values, run on real random unit
vectors. Bytes: parameters, gradients and SGD momentum, the activations
autograd saves for the backward pass, and the dense logits (what the plain
loss keeps against the frugal loss's chunk).
Then the time of a run at a stated fraction of a GPU's peak::

    python tools/analysis/flops.py                      # R50, N=32, 224 px
    python tools/analysis/flops.py --gpu A100 --dtype bf16 --efficiency 0.35

Matrix products and convolutions only: elementwise work (BN, ReLU, the
exponentials of the softmax, the momentum update) is not in FlopCounterMode's
count; the momentum update is listed under bytes instead.
"""
import functools
import json
import os
import os.path as osp
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from densecl_plugin.models.losses import queue_infonce_loss
from .models import build_benchmark_model

#: dense peak TFLOP/s (no sparsity) from the vendors' datasheets, per dtype
GPU_PEAK_TFLOPS = {
    'V100': dict(fp32=15.7, fp16=125.),  # SXM2
    'A100': dict(fp32=19.5, tf32=156., bf16=312., fp16=312.),  # SXM
    'H100': dict(fp32=67., tf32=494.7, bf16=989.4, fp16=989.4),  # SXM
}
#: ImageNet-1k training images
IMAGENET_TRAIN = 1281167


def _addmm_flops(self_shape, a_shape, b_shape, *args, out_shape=None,
                 **kwargs) -> int:
    """``(m, k) @ (k, n)``: ``2 m k n``, for ``addmm_`` (shapes given)."""
    m, k = a_shape
    return 2 * m * k * b_shape[1]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (matmuls and convolutions, 2 per multiply-add) of ``fn()``.

    In-place ``addmm_`` (which torch's counter does not know; the dense
    neck's backward and the dense loss accumulate with it) counts as
    ``addmm``.
    """
    with FlopCounterMode(display=False,
                         custom_mapping={torch.ops.aten.addmm_: _addmm_flops}
                         ) as counter:
        fn()
    return int(counter.get_total_flops())


def _build(algo: str, depth: int, queue_len: int, feat_dim: int):
    with torch.device('meta'):  # no memory, then fake CPU tensors
        model = build_benchmark_model(algo, depth, queue_len, feat_dim)
    # fake tensors hold no values: skip what needs them (no FLOPs there)
    model.encoder_k.update = lambda *args: None
    model._dequeue_and_enqueue = lambda **keys: None
    return model.train()


def _numel_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def saved_activation_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs.

    Parameters are not counted (they exist anyway); a tensor saved by
    several ops is counted once per op (an upper bound).
    """
    params = set()
    total = [0]

    def pack(t: torch.Tensor):
        if id(t) not in params:
            total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


class _LargestOutput(TorchDispatchMode):
    """Records the bytes of the largest tensor any operation produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out, )):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest,
                                   t.numel() * t.element_size())
        return out


@functools.lru_cache(maxsize=None)
def loss_costs(M: int, K: int, D: int) -> Tuple[int, int]:
    """FLOPs and largest buffer of :func:`queue_infonce_loss` (forward and
    backward).

    Run on real random unit vectors: the loss looks at its values (to
    choose whether to shift the logits), which shape-only tensors lack.

    Args:
        M (int): Rows (queries).
        K (int): Queue length.
        D (int): Feature dimension.

    Returns:
        tuple[int, int]: FLOPs, and the bytes of the largest tensor that
        any of its operations produces (its chunk of logits).
    """
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(M, D, generator=g), dim=1)  # MxD
    k = F.normalize(torch.randn(M, D, generator=g), dim=1)  # MxD
    queue = F.normalize(torch.randn(D, K, generator=g), dim=0)  # DxK
    q.requires_grad_(True)
    with _LargestOutput() as largest:
        flops = count_flops(
            lambda: queue_infonce_loss(q, k, queue, 0.2).backward())
    return flops, largest.largest


def step_costs(algo: str = 'DenseCL', depth: int = 50, batch: int = 32,
               size: int = 224, queue_len: int = 65536,
               feat_dim: int = 128) -> dict:
    """FLOPs and bytes of one training step on one GPU (``batch`` images).

    The networks run on fake tensors (shapes only); the InfoNCE losses,
    which need values, are counted by :func:`loss_costs` for the shapes
    they are called with.

    Args:
        algo (str): ``'DenseCL'`` or ``'MoCoV2'``. Defaults to DenseCL.
        depth (int): ResNet depth. Defaults to 50.
        batch (int): Images per GPU, ``N``. Defaults to 32.
        size (int): Square crop side. Defaults to 224.
        queue_len (int): ``K``. Defaults to 65536.
        feat_dim (int): ``D``. Defaults to 128.

    Returns:
        dict: ``flops`` (per part, and ``total``: a whole step counted in
        one pass, which the parts must add up to), ``bytes``, and the
        configuration with the backbone map's ``C`` and ``S``.
    """
    if algo not in ('DenseCL', 'MoCoV2'):
        raise ValueError(f"algo must be 'DenseCL' or 'MoCoV2', got {algo!r}")
    from torch._subclasses.fake_tensor import FakeTensorMode
    model = _build(algo, depth, queue_len, feat_dim)
    loss_calls = []  # (M, K, D) of each InfoNCE loss of a step

    def loss_queue(q, k, queue, valid=None):  # the loss, for shapes only
        rows = q.shape[0] if valid is None else int(valid.sum())
        loss_calls.append((rows, queue.shape[1], q.shape[1]))
        return (q * k).sum() * 0.  # keeps the graph to q for backward

    model.head.loss_queue = loss_queue
    with FakeTensorMode(allow_non_fake_inputs=True):
        model.to_empty(device='cpu')
        costs = _network_costs(model, algo, batch, size, loss_calls)
    flops = costs['flops']
    flops['logits_single'] = loss_costs(batch, queue_len, feat_dim)[0]
    if algo == 'DenseCL':
        M = batch * costs['S']**2  # dense rows
        flops['logits_dense'], chunk_bytes = loss_costs(M, queue_len,
                                                        feat_dim)
        costs['bytes']['dense_logits_plain'] = M * (queue_len + 1) * 4
        costs['bytes']['dense_logits_frugal_chunk'] = chunk_bytes
    # the whole step: networks (fake) plus the losses it called
    flops['total'] = flops.pop('total_networks') + sum(
        loss_costs(*call)[0] for call in costs.pop('loss_calls'))
    return dict(algo=algo, depth=depth, batch=batch, size=size,
                K=queue_len, D=feat_dim, **costs)


def _network_costs(model, algo: str, N: int, size: int,
                   loss_calls: list) -> dict:
    """The parts of :func:`step_costs` that run on fake tensors."""
    im_q = torch.empty(N, 3, size, size)  # Nx3xHxW
    flops: Dict[str, int] = {}
    # query backbone, forward then backward (grads of the weights and input
    # of every layer but the first conv, as in training)
    out = {}
    flops['backbone_q_fwd'] = count_flops(
        lambda: out.setdefault('q_b', model.backbone(im_q)[-1]))
    q_b = out['q_b']  # NxCxSxS
    C, S = q_b.shape[1], q_b.shape[2]
    flops['backbone_q_bwd'] = count_flops(
        lambda: q_b.backward(torch.empty_like(q_b)))
    # global branch (both algorithms): avgpool -> Linear -> ReLU -> Linear
    pooled = torch.empty(N, C, requires_grad=True)  # NxC
    g = {}
    flops['neck_global_fwd'] = count_flops(
        lambda: g.setdefault('q', model.neck.mlp(pooled)))  # NxD
    flops['neck_global_bwd'] = count_flops(
        lambda: g['q'].backward(torch.empty_like(g['q'])))
    if algo == 'DenseCL':  # dense branch: 1x1 conv -> ReLU -> 1x1 conv
        x = torch.empty(N, C, S, S, requires_grad=True)  # NxCxSxS
        flops['neck_dense_fwd'] = count_flops(
            lambda: g.setdefault('q_grid', model.neck.mlp2(x)))  # NxDxSxS
        flops['neck_dense_bwd'] = count_flops(
            lambda: g['q_grid'].backward(torch.empty_like(g['q_grid'])))
    with torch.no_grad():
        flops['key_fwd'] = count_flops(lambda: model.encoder_k(im_q))
    if algo == 'DenseCL':
        feats = torch.empty(N, C, S * S)  # NxCxS^2
        flops['matching'] = count_flops(
            lambda: torch.bmm(feats.transpose(1, 2), feats))  # NxS^2xS^2

    def step_loss():
        return sum(model([im_q, torch.empty_like(im_q)], mode='loss').values())

    model.zero_grad(set_to_none=True)
    loss_calls.clear()
    flops['total_networks'] = count_flops(lambda: step_loss().backward())
    step_loss_calls = list(loss_calls)
    params = [p for p in model.parameters() if p.requires_grad]
    key_params = [p for n, p in model.named_parameters()
                  if n.startswith('encoder_k')]
    model.zero_grad(set_to_none=True)
    nbytes = dict(
        params_trained=_numel_bytes(params),
        params_key_encoder=_numel_bytes(key_params),
        grads=_numel_bytes(params),
        sgd_momentum=_numel_bytes(params),
        queues=_numel_bytes(b for n, b in model.named_buffers()
                            if n.startswith('queue') and b.dim() == 2),
        # read k, read q, write k: what the momentum update moves per step
        momentum_update_traffic=3 * _numel_bytes(key_params),
        saved_activations=saved_activation_bytes(step_loss),
    )
    return dict(C=C, S=S, flops=flops, bytes=nbytes,
                loss_calls=step_loss_calls)


def run_time(step_flops: float, batch_per_gpu: int, gpus: int, epochs: int,
             images: int, peak_tflops: float, efficiency: float) -> dict:
    """Wall time of a run whose steps cost ``step_flops`` per GPU.

    Args:
        step_flops (float): FLOPs of one step on one GPU.
        batch_per_gpu (int): Images per GPU per step.
        gpus (int): GPUs.
        epochs (int): Epochs.
        images (int): Images per epoch.
        peak_tflops (float): A GPU's peak (TFLOP/s).
        efficiency (float): Achieved fraction of the peak, in (0, 1].

    Returns:
        dict: ``steps``, ``total_flops``, ``hours``, ``days`` and
        ``images_per_s_per_gpu``.
    """
    if not 0 < efficiency <= 1:
        raise ValueError(f'efficiency must be in (0, 1], got {efficiency}')
    steps = epochs * (images // (batch_per_gpu * gpus))  # drop_last
    step_s = step_flops / (peak_tflops * 1e12 * efficiency)
    seconds = steps * step_s
    return dict(steps=steps, total_flops=steps * step_flops * gpus,
                hours=seconds / 3600, days=seconds / 86400,
                images_per_s_per_gpu=batch_per_gpu / step_s)


def implied_efficiency(step_flops: float, batch_per_gpu: int, gpus: int,
                       epochs: int, images: int, peak_tflops: float,
                       days: float) -> float:
    """The fraction of peak that a reported run time implies."""
    t = run_time(step_flops, batch_per_gpu, gpus, epochs, images,
                 peak_tflops, 1.)
    return t['days'] / days


def _g(x: float) -> str:
    return f'{x / 1e9:,.1f}'


def format_report(costs: Dict[str, dict], estimates: Sequence[dict]) -> str:
    """Markdown tables of :func:`step_costs` results and run times."""
    dc, mc = costs['DenseCL'], costs.get('MoCoV2')
    lines = [f"Per GPU and step: ResNet-{dc['depth']}, N={dc['batch']}, "
             f"{dc['size']} px (C5 {dc['S']}x{dc['S']}, C={dc['C']}), "
             f"K={dc['K']}, D={dc['D']}; GFLOP (2 per multiply-add)", '',
             '| part | DenseCL | MoCo v2 |', '|---|---|---|']
    keys = list(dc['flops'])
    for k in keys:
        m = mc['flops'].get(k) if mc else None
        lines.append(f"| {k} | {_g(dc['flops'][k])} | "
                     f"{'-' if m is None else _g(m)} |")
    parts = {n: sum(v for k, v in c['flops'].items() if k != 'total')
             for n, c in costs.items()}
    lines.append(f"| sum of parts | {_g(parts['DenseCL'])} | "
                 f"{_g(parts['MoCoV2']) if mc else '-'} |")
    if mc:
        r = dc['flops']['total'] / mc['flops']['total']
        lines += ['', f'DenseCL / MoCo v2 step FLOPs: x{r:.3f} '
                  f'(+{100 * (r - 1):.1f} %)']
    lines += ['', '| bytes | DenseCL | MoCo v2 |', '|---|---|---|']
    for k in dc['bytes']:
        m = mc['bytes'].get(k) if mc else None
        lines.append(f"| {k} | {dc['bytes'][k] / 2**20:,.1f} MiB | "
                     f"{'-' if m is None else f'{m / 2**20:,.1f} MiB'} |")
    if estimates:
        lines += ['', '| run | GPU | dtype | peak TFLOP/s | efficiency | '
                  'hours | images/s per GPU | data cores per GPU |',
                  '|---|---|---|---|---|---|---|---|']
        for e in estimates:
            cores = e.get('cores_per_gpu')
            lines.append(
                f"| {e['label']} | {e['gpus']}x {e['gpu']} | {e['dtype']} | "
                f"{e['peak_tflops']:g} | {e['efficiency']:.0%} | "
                f"{e['hours']:.1f} | {e['images_per_s_per_gpu']:,.0f} | "
                f"{'-' if cores is None else f'{cores:.1f}'} |")
    return '\n'.join(lines)


def run_flops_estimate(depth: int = 50, batch: int = 32, size: int = 224,
                       queue_len: int = 65536, feat_dim: int = 128,
                       gpus: int = 8, epochs: int = 200,
                       images: int = IMAGENET_TRAIN,
                       gpu: Sequence[str] = ('V100', 'A100', 'H100'),
                       dtype: Optional[str] = None,
                       efficiency: Optional[Sequence[float]] = None,
                       pipeline_rate: Optional[float] = None,
                       json_path: Optional[str] = None,
                       log: Callable = print) -> dict:
    """What ``tools/analysis/flops.py`` does: count, estimate, print, save.

    Args:
        depth (int): ResNet depth. Defaults to 50.
        batch (int): Images per GPU. Defaults to 32.
        size (int): Square crop side. Defaults to 224.
        queue_len (int): ``K``. Defaults to 65536.
        feat_dim (int): ``D``. Defaults to 128.
        gpus (int): GPUs of the run. Defaults to 8.
        epochs (int): Epochs of the run. Defaults to 200.
        images (int): Images per epoch. Defaults to :data:`IMAGENET_TRAIN`.
        gpu (Sequence[str]): GPUs of :data:`GPU_PEAK_TFLOPS` to estimate
            for. Defaults to ``('V100', 'A100', 'H100')``.
        dtype (str, optional): ``fp32``, ``tf32``, ``bf16`` or ``fp16``.
            Defaults to None (fp32 for V100, bf16 otherwise).
        efficiency (Sequence[float], optional): Fractions of peak. Defaults
            to None (what the authors' 2.3 days on 8 V100s imply, and 0.25).
        pipeline_rate (float, optional): Two-view images/s of one CPU core
            through the data pipeline, to size the data loading per GPU.
            Defaults to None.
        json_path (str, optional): Also write the results here. Defaults to
            None.
        log (Callable): Printer of the report. Defaults to ``print``.

    Returns:
        dict: ``costs`` (:func:`step_costs` per algorithm), ``estimates``
        (:func:`run_time` per GPU and efficiency) and
        ``implied_v100_efficiency`` (None unless computed).
    """
    costs = {a: step_costs(a, depth, batch, size, queue_len, feat_dim)
             for a in ('DenseCL', 'MoCoV2')}
    step = costs['DenseCL']['flops']['total']
    # the authors' README: 200 ImageNet epochs of R50, 8 V100s x 32 images,
    # took 2.3 days; the fraction of peak that implies, at their settings
    # (computed when it is the default efficiency or comes for free)
    paper = (50, 32, 224, 65536, 128)
    is_paper = (depth, batch, size, queue_len, feat_dim) == paper
    implied = None
    if is_paper or not efficiency:
        paper_step = step if is_paper else step_costs(
            'DenseCL', *paper)['flops']['total']
        implied = implied_efficiency(paper_step, 32, 8, 200, IMAGENET_TRAIN,
                                     GPU_PEAK_TFLOPS['V100']['fp32'], 2.3)
    estimates = []
    for name in gpu:
        dt = dtype or ('fp32' if name == 'V100' else 'bf16')
        if dt not in GPU_PEAK_TFLOPS[name]:
            raise ValueError(f'no {dt} peak listed for {name}: '
                             f'{sorted(GPU_PEAK_TFLOPS[name])}')
        peak = GPU_PEAK_TFLOPS[name][dt]
        for eff in efficiency or (implied, 0.25):
            t = run_time(step, batch, gpus, epochs, images, peak, eff)
            if pipeline_rate:
                t['cores_per_gpu'] = t['images_per_s_per_gpu'] / pipeline_rate
            estimates.append(dict(label=f'{epochs} ep', gpu=name, gpus=gpus,
                                  dtype=dt, peak_tflops=peak, efficiency=eff,
                                  **t))
    log(format_report(costs, estimates))
    if implied is not None:
        log(f'\nThe authors\' 2.3 days for 200 epochs of R50 on 8 V100s '
            f'(fp32) imply {implied:.0%} of the V100 fp32 peak.')
    results = dict(costs=costs, estimates=estimates,
                   implied_v100_efficiency=implied)
    if json_path:
        os.makedirs(osp.dirname(osp.abspath(json_path)), exist_ok=True)
        with open(json_path, 'w') as f:
            json.dump(results, f, indent=2)
    return results
