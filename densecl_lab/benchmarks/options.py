# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Speed options compared: bf16/fp16 autocast, channels-last and
``torch.compile`` of the backbones, each alone and all together.

What ``tools/analysis/benchmark_step.py --options`` does (through
:func:`~.step_benchmark.run_step_benchmark`): every variant runs DenseCL and
MoCo v2 with the same initial weights, all steps interleaved.
"""
import statistics
import time
from typing import Callable, Dict, Sequence, Tuple

import torch

from .measure import mib, sync
from .step import (benchmark_dense_loss, build_models, grid_cells, peak_memory,
                   precision_step, state_bytes)

#: the step options ``--options`` compares, each alone and all together
OPTIONS = ('amp', 'channels_last', 'compile')
#: autocast dtypes of the ``amp`` option
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def option_variants(options: Sequence[str]) -> Dict[str, Dict[str, bool]]:
    """``plain``, each option alone, and all of them together.

    Args:
        options (Sequence[str]): Names from :data:`OPTIONS`.

    Returns:
        dict[str, dict[str, bool]]: Variant name -> ``{option: on}``.
    """
    bad = [o for o in options if o not in OPTIONS]
    if bad or len(set(options)) != len(options):
        raise ValueError(f'options must be distinct names from {OPTIONS}, '
                         f'got {list(options)}')
    variants = {'plain': {o: False for o in options}}
    for o in options:
        variants[o] = {p: p == o for p in options}
    if len(options) > 1:
        variants['+'.join(options)] = {o: True for o in options}
    return variants


def benchmark_options(depth: int = 50, batch: int = 8, size: int = 224,
                      queue_len: int = 65536, iters: int = 10,
                      warmup: int = 2, device: str = 'cpu',
                      options: Sequence[str] = ('amp', 'channels_last'),
                      amp_dtype: str = 'bf16', peak: bool = True,
                      log: Callable = print) -> dict:
    """Step throughput of DenseCL and MoCo v2 with and without each option.

    Every variant (:func:`option_variants`) gets both models with the same
    initial weights; all ``2 x variants`` training steps are run round-robin,
    in alternating order, so that a shared or throttling machine slows all
    alike, and medians are compared. ``compile`` compiles both backbones at
    the first (warm-up) step, which is not timed.

    Args:
        depth (int): ResNet depth. Defaults to 50.
        batch (int): Images per step. Defaults to 8.
        size (int): Square input side. Defaults to 224.
        queue_len (int): ``K``. Defaults to 65536.
        iters (int): Timed steps per model and variant. Defaults to 10.
        warmup (int): Untimed steps first (>= 1 with ``compile``).
            Defaults to 2.
        device (str): Defaults to ``'cpu'``.
        options (Sequence[str]): From :data:`OPTIONS`. Defaults to
            ``('amp', 'channels_last')``.
        amp_dtype (str): ``'bf16'`` or ``'fp16'`` (loss-scaled; GPU only).
            Defaults to ``'bf16'``.
        peak (bool): Also measure peak step memory. Defaults to True.
        log (Callable): Progress printer. Defaults to ``print``.

    Returns:
        dict: ``variants``: per variant, per model ``median`` and ``best``
        (the fastest step, s), ``images_per_s`` (of the median) and
        ``images_per_s_best``, ``state``, ``transient`` and ``peak`` (bytes,
        as :func:`benchmark_models`); ``time_ratio`` (of the medians),
        ``time_ratio_best`` and ``pair_ratio_median`` (DenseCL / MoCo v2);
        ``speedup`` and ``speedup_best`` (plain / variant, per model). On a
        machine shared with bursty jobs the best step is the better estimate
        of the uncontended cost (the median can fall inside a burst);
        ``dense_loss`` (:func:`benchmark_dense_loss` at ``M = batch S^2``)
        with its ``share``: its median over each variant's best DenseCL
        step;
        ``config``.
    """
    _check_options(options, amp_dtype, warmup, torch.device(device))
    variants = option_variants(options)
    runs = _option_runs(variants, depth, batch, size, queue_len, device,
                        amp_dtype)
    times = _interleaved_times(runs, warmup, iters, torch.device(device), log)
    out = {name: _variant_summary(name, runs, times, batch, peak, device)
           for name in variants}
    for name in variants:
        for key, stat in (('speedup', 'median'), ('speedup_best', 'best')):
            out[name][key] = {
                algo: out['plain'][algo][stat] / out[name][algo][stat]
                for algo in ('DenseCL', 'MoCoV2')}
    dense = benchmark_dense_loss(batch * grid_cells(size), queue_len,
                                 iters=max(3, iters // 2), device=device)
    # the loss's median over the variant's fastest DenseCL step
    dense['share'] = {name: dense['frugal']['median'] /
                      out[name]['DenseCL']['best'] for name in variants}
    return dict(variants=out, dense_loss=dense, config=dict(
        depth=depth, batch=batch, size=size, queue_len=queue_len,
        iters=iters, warmup=warmup, device=device, options=list(options),
        amp_dtype=amp_dtype, threads=torch.get_num_threads()))


def _check_options(options: Sequence[str], amp_dtype: str, warmup: int,
                   dev: torch.device) -> None:
    """Refuse option combinations that cannot run here."""
    if amp_dtype not in AMP_DTYPES:
        raise ValueError(f'amp_dtype must be one of {sorted(AMP_DTYPES)}, '
                         f'got {amp_dtype!r}')
    if 'amp' in options and amp_dtype == 'fp16' and dev.type != 'cuda':
        raise ValueError('amp_dtype="fp16" needs loss scaling on a GPU; use '
                         '"bf16" on a CPU')
    if 'compile' in options and warmup < 1:
        raise ValueError('compile needs warmup >= 1 (the first step '
                         'compiles)')


def _option_runs(variants: Dict[str, Dict[str, bool]], depth: int,
                 batch: int, size: int, queue_len: int, device: str,
                 amp_dtype: str) -> Dict[Tuple[str, str], tuple]:
    """Both models per variant, with the variant's options set, the same
    initial weights and views: ``(variant, algo) -> (model, optimizer,
    views, autocast dtype, grad scaler)``."""
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(batch, 3, size, size, generator=g).to(dev)
             for _ in range(2)]
    runs = {}
    for name, on in variants.items():
        models = build_models(depth, queue_len, device=device)
        for algo, model in models.items():
            model.set_speed_options(
                channels_last=on.get('channels_last', False),
                compile_backbone=on.get('compile', False))
            v = ([x.contiguous(memory_format=torch.channels_last)
                  for x in views] if on.get('channels_last') else views)
            amp = on.get('amp', False)
            dtype = AMP_DTYPES[amp_dtype] if amp else None
            scaler = (torch.amp.GradScaler(dev.type)
                      if amp and amp_dtype == 'fp16' else None)
            optim = torch.optim.SGD(model.parameters(), lr=0.03,
                                    momentum=0.9, weight_decay=1e-4)
            runs[name, algo] = (model, optim, v, dtype, scaler)
    return runs


def _interleaved_times(runs: Dict[Tuple[str, str], tuple], warmup: int,
                       iters: int, dev: torch.device,
                       log: Callable) -> Dict[Tuple[str, str], list]:
    """Seconds of each run's timed steps, all runs round-robin in
    alternating order (the first ``warmup`` rounds untimed)."""
    keys = list(runs)
    times = {k: [] for k in keys}
    for i in range(warmup + iters):
        for k in (keys if i % 2 == 0 else keys[::-1]):
            sync(dev)
            t0 = time.perf_counter()
            precision_step(*runs[k])
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
        log(f'round {i + 1}/{warmup + iters} done')
    return times


def _variant_summary(name: str, runs: Dict[Tuple[str, str], tuple],
                     times: Dict[Tuple[str, str], list], batch: int,
                     peak: bool, device: str) -> dict:
    """One variant's medians, best steps, memory and DenseCL / MoCo v2
    ratios."""
    dev = torch.device(device)
    res = {}
    for algo in ('DenseCL', 'MoCoV2'):
        med = statistics.median(times[name, algo])
        transient = (peak_memory(
            lambda: precision_step(*runs[name, algo]), dev)
            if peak else None)
        state = state_bytes(*runs[name, algo][:2])
        best = min(times[name, algo])
        res[algo] = dict(
            times=times[name, algo], median=med, best=best,
            images_per_s=batch / med, images_per_s_best=batch / best,
            state=state, transient=transient,
            peak=None if transient is None else state + transient)
    res['time_ratio'] = res['DenseCL']['median'] / res['MoCoV2']['median']
    res['time_ratio_best'] = res['DenseCL']['best'] / res['MoCoV2']['best']
    res['pair_ratio_median'] = statistics.median(
        d / m for d, m in zip(res['DenseCL']['times'],
                              res['MoCoV2']['times']))
    return res


def format_options_report(res: dict) -> str:
    """A markdown table of :func:`benchmark_options` results.

    Args:
        res (dict): The results.

    Returns:
        str: The table, with a line on the configuration above it.
    """
    c = res['config']
    lines = [f"ResNet-{c['depth']}, batch {c['batch']}, {c['size']} px, "
             f"K={c['queue_len']}, {c['device']}, {c['threads']} threads, "
             f"amp={c['amp_dtype']}; {c['iters']} interleaved steps after "
             f"{c['warmup']} warm-up; best / median", '',
             '| variant | DenseCL img/s | MoCo v2 img/s | DenseCL / MoCo v2 '
             'time | DenseCL speed-up | DenseCL peak | dense loss share |',
             '|---|---|---|---|---|---|---|']
    for name, r in res['variants'].items():
        d, m = r['DenseCL'], r['MoCoV2']
        lines.append(
            f"| {name} | {d['images_per_s_best']:.2f} / "
            f"{d['images_per_s']:.2f} | {m['images_per_s_best']:.2f} / "
            f"{m['images_per_s']:.2f} | x{r['time_ratio_best']:.3f} / "
            f"x{r['time_ratio']:.3f} | x{r['speedup_best']['DenseCL']:.2f} / "
            f"x{r['speedup']['DenseCL']:.2f} | {mib(d['peak'])} | "
            f"{100 * res['dense_loss']['share'][name]:.1f} % |")
    return '\n'.join(lines)
