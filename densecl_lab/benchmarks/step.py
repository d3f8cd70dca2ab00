# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Step time and peak memory of DenseCL against MoCo v2 (same everything).

What ``tools/analysis/benchmark_step.py`` measures (it runs
:func:`~.step_benchmark.run_step_benchmark`; its ``--options`` comparison is
:mod:`.options`). Both models get the same
backbone (same weights), batch, input size and queue length; their full
training steps (forward, backward, SGD step) are run *interleaved*, in
alternating order, so that a shared or throttling machine slows both alike,
and the medians are compared. Peak memory is measured per step in separate,
untimed passes, as the most tensor memory live at once during the step above
what was live before it:

- CUDA: ``torch.cuda.max_memory_allocated``;
- CPU: the memory timeline of ``torch.profiler`` (every tensor allocation
  and free with its time), which does not depend on how the C allocator
  reuses or returns freed memory; None if this torch lacks it.
"""
import contextlib
import gc
import math
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densecl_plugin.apis.inference import quiet_init_weights
from densecl_plugin.models.losses import queue_infonce_loss
from .measure import mib, sync
from .models import build_benchmark_model


def _cpu_peak(fn: Callable[[], object]) -> Optional[int]:
    """Peak live CPU tensor bytes during ``fn()`` from the profiler."""
    try:
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler._memory_profiler import Action
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                     record_shapes=True, with_stack=True) as prof:
            fn()
        timeline = prof._memory_profile().timeline
    except (ImportError, AttributeError, ValueError, RuntimeError):
        return None
    live = peak = 0
    for _, action, (key, _), nbytes in timeline:
        if key.device.type != 'cpu' or action == Action.PREEXISTING:
            continue
        if action == Action.CREATE:
            live += nbytes
        elif action == Action.DESTROY:
            live -= nbytes
        peak = max(peak, live)
    return peak


def peak_memory(fn: Callable[[], object],
                device: torch.device) -> Optional[int]:
    """Most bytes of tensors live at once during ``fn()``, beyond those
    live before it.

    Args:
        fn (Callable): The work to measure.
        device (torch.device): Where it runs.

    Returns:
        int | None: The peak in bytes; None on a CPU whose torch has no
        profiler memory timeline.
    """
    gc.collect()
    if device.type == 'cuda':
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    return _cpu_peak(fn)


def build_models(depth: int = 50, queue_len: int = 65536,
                 feat_dim: int = 128, device: str = 'cpu',
                 seed: int = 0) -> Dict[str, nn.Module]:
    """DenseCL and MoCo v2 with the same ResNet (same weights) and queue.

    Args:
        depth (int): ResNet depth (18, 34, 50, 101). Defaults to 50.
        queue_len (int): ``K``. Defaults to 65536.
        feat_dim (int): ``D``. Defaults to 128.
        device (str): Defaults to ``'cpu'``.
        seed (int): Initialisation seed. Defaults to 0.

    Returns:
        dict[str, nn.Module]: ``{'DenseCL': ..., 'MoCoV2': ...}`` in train
        mode.
    """
    torch.manual_seed(seed)
    densecl = build_benchmark_model('DenseCL', depth, queue_len, feat_dim)
    mocov2 = build_benchmark_model('MoCoV2', depth, queue_len, feat_dim)
    quiet_init_weights(densecl)  # init_weights lists every parameter
    mocov2.backbone.load_state_dict(densecl.backbone.state_dict())
    mocov2.neck.mlp.load_state_dict(densecl.neck.mlp.state_dict())
    return {name: m.to(device).train()
            for name, m in (('DenseCL', densecl), ('MoCoV2', mocov2))}


def precision_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                   views: List[Tensor], dtype: Optional[torch.dtype] = None,
                   scaler=None) -> float:
    """One full training step with autocast to ``dtype`` (None: float32).

    With a ``scaler`` (``torch.amp.GradScaler``, what float16 needs) the loss
    is scaled before backward and the step skipped on non-finite gradients.

    Args:
        model (nn.Module): Called as ``model(views, mode='loss')``.
        optimizer (torch.optim.Optimizer): Its optimizer.
        views (list[Tensor]): The input views.
        dtype (torch.dtype, optional): Autocast dtype. Defaults to None.
        scaler (torch.amp.GradScaler, optional): Loss scaler. Defaults to
            None.

    Returns:
        float: The summed loss.
    """
    optimizer.zero_grad(set_to_none=True)
    device = views[0].device
    ctx = (torch.autocast(device.type, dtype=dtype) if dtype is not None
           else contextlib.nullcontext())
    with ctx:
        losses = model(views, mode='loss')
    loss = sum(losses.values())
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    sync(device)
    return float(loss.detach())


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
               views: List[Tensor], amp: bool = False) -> float:
    """One full training step (bf16 autocast with ``amp``); returns the
    summed loss."""
    return precision_step(model, optimizer, views,
                          torch.bfloat16 if amp else None)


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the training state that lives between steps: parameters,
    buffers (queues, BN statistics), gradients and optimizer state."""
    tensors = list(model.parameters()) + list(model.buffers())
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [t for st in optimizer.state.values() for t in st.values()
                if isinstance(t, Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def step_inputs(models: Dict[str, nn.Module], batch: int, size: int,
                device: torch.device):
    """What every benchmark steps its models with.

    Returns:
        tuple[dict, list]: an SGD optimizer per model (lr 0.03, momentum
        0.9, weight decay 1e-4, as the configs) and the two fixed random
        views ``(batch, 3, size, size)`` (seed 0) on ``device``.
    """
    optims = {n: torch.optim.SGD(m.parameters(), lr=0.03, momentum=0.9,
                                 weight_decay=1e-4)
              for n, m in models.items()}
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(batch, 3, size, size, generator=g).to(device)
             for _ in range(2)]
    return optims, views


def interleaved_steps(models: Dict[str, nn.Module], optims: dict,
                      views: List[Tensor], warmup: int, iters: int,
                      device: torch.device, log: Callable[[str], None],
                      amp: bool = False, reseed: bool = False):
    """Step the models turn by turn, the order reversed every other round
    (so that a shared machine slows them alike), and time the steps.

    Args:
        reseed (bool): seed torch with ``1000 + round`` before each step, so
            that every model draws the same shuffle permutation. Defaults to
            False.

    Returns:
        tuple[dict, dict]: the timed steps' seconds per model (after
        ``warmup`` untimed rounds) and each model's last loss.
    """
    names = list(models)
    times: Dict[str, List[float]] = {n: [] for n in names}
    losses: Dict[str, float] = {}
    for i in range(warmup + iters):
        dts = {}
        for name in (names if i % 2 == 0 else names[::-1]):
            if reseed:
                torch.manual_seed(1000 + i)
            sync(device)
            t0 = time.perf_counter()
            losses[name] = train_step(models[name], optims[name], views, amp)
            dts[name] = time.perf_counter() - t0
            if i >= warmup:
                times[name].append(dts[name])
        kind = 'warm-up' if i < warmup else 'timed'
        log(f'{kind} step {i + 1}/{warmup + iters}: '
            + ', '.join(f'{n} {dts[n]:.3f} s' for n in names))
    return times, losses


def benchmark_models(depth: int = 50, batch: int = 8, size: int = 224,
                     queue_len: int = 65536, iters: int = 10,
                     warmup: int = 2, device: str = 'cpu',
                     amp: bool = False, log: Callable = print,
                     peak: bool = True) -> dict:
    """Median step time and peak step memory of DenseCL and MoCo v2.

    Args:
        depth (int): ResNet depth. Defaults to 50.
        batch (int): Images per step. Defaults to 8.
        size (int): Square input side in pixels. Defaults to 224.
        queue_len (int): ``K``. Defaults to 65536.
        iters (int): Timed steps per model. Defaults to 10.
        warmup (int): Untimed steps per model first. Defaults to 2.
        device (str): Defaults to ``'cpu'``.
        amp (bool): bf16 autocast. Defaults to False.
        log (Callable): Progress printer. Defaults to ``print``.
        peak (bool): Also measure the peak step memory (one profiled step
            per model; ``transient`` is None without). Defaults to True.

    Returns:
        dict: Per model ``times`` (s), ``median`` (s), ``state`` (bytes of
        parameters, buffers, gradients and optimizer state between steps),
        ``transient`` (bytes: the step's peak above all that was live before
        it, None where unmeasurable) and ``peak`` (``state + transient``);
        and the ratios ``time_ratio`` and ``peak_ratio``
        (DenseCL / MoCo v2, of the medians) and ``pair_ratio_median`` (the
        median over the interleaved step pairs of their time ratio).
    """
    dev = torch.device(device)
    models = build_models(depth, queue_len, device=device)
    optims, views = step_inputs(models, batch, size, dev)
    names = list(models)
    times, _ = interleaved_steps(models, optims, views, warmup, iters, dev,
                                 log, amp)
    result = {}
    for name in names:
        # one pass: the models are warm, and the CPU profiler with stacks
        # needs memory of its own
        transient = peak_memory(lambda: train_step(
            models[name], optims[name], views, amp), dev) if peak else None
        state = state_bytes(models[name], optims[name])
        result[name] = dict(
            times=times[name], median=statistics.median(times[name]),
            state=state, transient=transient,
            peak=None if transient is None else state + transient)
    dc, mc = result['DenseCL'], result['MoCoV2']
    result['time_ratio'] = dc['median'] / mc['median']
    result['pair_ratio_median'] = statistics.median(
        d / m for d, m in zip(dc['times'], mc['times']))
    result['peak_ratio'] = (dc['peak'] / mc['peak']
                            if dc['peak'] and mc['peak'] else None)
    result['config'] = dict(depth=depth, batch=batch, size=size,
                            queue_len=queue_len, iters=iters, warmup=warmup,
                            device=device, amp=amp,
                            threads=torch.get_num_threads())
    return result


def benchmark_memory(depth: int = 50, batch: int = 32, size: int = 224,
                     queue_len: int = 65536, warmup: int = 1,
                     device: str = 'cpu', amp: bool = False,
                     log: Callable = print) -> dict:
    """Peak step memory of DenseCL and MoCo v2 only (no timed steps).

    Each model takes ``warmup`` untimed steps (which create the gradients
    and the SGD momentum buffers), then one step measured as in
    :func:`benchmark_models`.

    Returns:
        dict: Per model ``state``, ``transient`` and ``peak`` (bytes), and
        ``peak_ratio`` and ``transient_ratio`` (DenseCL / MoCo v2), and
        ``config``.
    """
    dev = torch.device(device)
    models = build_models(depth, queue_len, device=device)
    optims, views = step_inputs(models, batch, size, dev)
    result = {}
    for name, model in models.items():
        for _ in range(warmup):
            train_step(model, optims[name], views, amp)
        transient = peak_memory(
            lambda: train_step(model, optims[name], views, amp), dev)
        state = state_bytes(model, optims[name])
        result[name] = dict(
            state=state, transient=transient,
            peak=None if transient is None else state + transient)
        log(f'{name}: peak {mib(result[name]["peak"])} (state '
            f'{mib(state)} + step {mib(transient)})')
    dc, mc = result['DenseCL'], result['MoCoV2']
    ok = dc['peak'] and mc['peak']
    result['peak_ratio'] = dc['peak'] / mc['peak'] if ok else None
    result['transient_ratio'] = (dc['transient'] / mc['transient']
                                 if ok else None)
    result['config'] = dict(depth=depth, batch=batch, size=size,
                            queue_len=queue_len, warmup=warmup,
                            device=device, amp=amp,
                            threads=torch.get_num_threads())
    return result


def format_memory_report(result: dict) -> str:
    """Human-readable summary of :func:`benchmark_memory`."""
    c = result['config']
    lines = [f"Peak step memory, ResNet-{c['depth']}, batch {c['batch']}, "
             f"{c['size']} px, K={c['queue_len']}, {c['device']}"
             f"{' bf16 autocast' if c['amp'] else ' fp32'}"]
    for name in ('DenseCL', 'MoCoV2'):
        r = result[name]
        lines.append(f"  {name:8s} peak {mib(r['peak'])} (state "
                     f"{mib(r['state'])} + step {mib(r['transient'])})")
    if result['peak_ratio'] is not None:
        dc, mc = result['DenseCL'], result['MoCoV2']
        lines.append(
            f"  DenseCL / MoCo v2: peak x{result['peak_ratio']:.3f} "
            f"(+{mib(dc['peak'] - mc['peak'])}: state "
            f"+{mib(dc['state'] - mc['state'])}, step "
            f"+{mib(dc['transient'] - mc['transient'])}; step alone "
            f"x{result['transient_ratio']:.3f})")
    return '\n'.join(lines)


def plain_infonce(q: Tensor, k: Tensor, queue: Tensor, T: float) -> Tensor:
    """The textbook loss ``CE(cat([l_pos, l_neg]) / T, 0)``, for comparison."""
    l_pos = (q * k).sum(dim=1, keepdim=True)  # Mx1
    l_neg = q @ queue  # MxK
    logits = torch.cat([l_pos, l_neg], dim=1) / T  # Mx(1+K)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels)


def benchmark_dense_loss(M: int, K: int = 65536, D: int = 128,
                         iters: int = 5, device: str = 'cpu') -> dict:
    """Time and peak memory of the dense loss (forward + backward), plain
    ``cross_entropy`` against :func:`queue_infonce_loss`.

    Args:
        M (int): Rows, ``N * S^2`` (1568 for N=32 at 224 px).
        K (int): Queue length. Defaults to 65536.
        D (int): Feature dimension. Defaults to 128.
        iters (int): Timed repetitions (median). Defaults to 5.
        device (str): Defaults to ``'cpu'``.

    Returns:
        dict: ``{'plain': {...}, 'frugal': {...}}``, each with ``median``
        (s), ``peak`` (bytes or None) and ``loss``; and ``max_abs_diff`` of
        the two losses.
    """
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(M, D, generator=g), dim=1).to(dev)
    k = F.normalize(torch.randn(M, D, generator=g), dim=1).to(dev)
    queue = F.normalize(torch.randn(D, K, generator=g), dim=0).to(dev)
    fns = dict(plain=plain_infonce,
               frugal=lambda *a: queue_infonce_loss(*a))

    def run(fn) -> float:
        q_ = q.clone().requires_grad_(True)
        loss = fn(q_, k, queue, 0.2)
        loss.backward()
        sync(dev)
        return float(loss.detach())

    out = {}
    for name, fn in fns.items():
        run(fn)  # warm-up
        ts = []
        for _ in range(iters):
            t0 = time.perf_counter()
            loss = run(fn)
            ts.append(time.perf_counter() - t0)
        out[name] = dict(median=statistics.median(ts), loss=loss,
                         peak=peak_memory(lambda: run(fn), dev))
    out['max_abs_diff'] = abs(out['plain']['loss'] - out['frugal']['loss'])
    out['config'] = dict(M=M, K=K, D=D, iters=iters, device=device)
    return out


def grid_cells(size: int, stride: int = 32) -> int:
    """``S^2`` of a ResNet C5 map for a square ``size`` input."""
    return math.ceil(size / stride) ** 2


def format_report(steps: Optional[dict] = None,
                  dense: Optional[dict] = None) -> str:
    """Human-readable summary of :func:`benchmark_models` and
    :func:`benchmark_dense_loss` results."""
    lines = []
    if steps is not None:
        c = steps['config']
        lines.append(
            f"ResNet-{c['depth']}, batch {c['batch']}, {c['size']} px, "
            f"K={c['queue_len']}, {c['device']}"
            f"{' bf16 autocast' if c['amp'] else ' fp32'}, "
            f"{c['threads']} threads, {c['iters']} interleaved steps each "
            f"after {c['warmup']} warm-up")
        for name in ('DenseCL', 'MoCoV2'):
            r = steps[name]
            lines.append(f"  {name:8s} median step {r['median']:.3f} s   "
                         f"peak memory {mib(r['peak'])} (state "
                         f"{mib(r['state'])} + step {mib(r['transient'])})")
        ratio = steps['peak_ratio']
        lines.append(f"  DenseCL / MoCo v2: time x{steps['time_ratio']:.3f} "
                     f"(median of pairs x{steps['pair_ratio_median']:.3f}), "
                     f"peak memory "
                     f"{'n/a' if ratio is None else f'x{ratio:.3f}'}")
    if dense is not None:
        c = dense['config']
        lines.append(f"Dense loss alone (forward + backward), M={c['M']} "
                     f"rows, K={c['K']}, D={c['D']}, {c['device']}:")
        for name in ('plain', 'frugal'):
            r = dense[name]
            lines.append(f"  {name:6s} {r['median'] * 1e3:8.1f} ms   peak "
                         f"{mib(r['peak'])}")
        lines.append(f"  |loss_plain - loss_frugal| = "
                     f"{dense['max_abs_diff']:.2e}")
        if steps is not None:
            share = dense['frugal']['median'] / steps['DenseCL']['median']
            lines.append(f"  share of the DenseCL step: {100 * share:.1f} %")
    return '\n'.join(lines)
