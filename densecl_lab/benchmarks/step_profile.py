# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Where a DenseCL step spends its time, region by region, against MoCo v2.

What ``tools/analysis/profile_step.py`` does (:func:`run_step_profile`).
Both models of :func:`~.step.build_models` (same backbone weights, queue
length, input) take warm-up steps, then a few steps each under
``torch.profiler`` (CPU activity; CUDA too on a GPU). The models hold no
profiling code: for the profiled steps :func:`model_regions` installs named
``record_function`` regions around the calls a step makes (the encoders'
modules, the neck's branches, the key path's parts, the head's two
InfoNCEs, the matching, the enqueue; :data:`REGIONS`) and removes them
after. Each profiled op is charged to the innermost region around it:

- forward ops to the region they ran in (``key_forward`` parts are nested:
  ``momentum_update``, ``shuffle``, ``key_backbone``, ``key_neck`` ...);
- backward ops (``autograd::engine::evaluate_function: ...``) to the region
  of the forward op that created their autograd node (the profiler's
  ``sequence_nr`` links the two), as ``<region> [bwd]``; gradient
  accumulation into ``.grad`` is its own row;
- time inside a region but outside any op (Python, the profiler's own
  bookkeeping) stays with the region.

Collectives (``c10d``/``all_gather``/``broadcast`` ops) are counted apart:
in one process :mod:`mmengine.dist` does not call any, and the count says
so.
"""
import collections
import contextlib
import functools
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import torch
from torch import nn

from densecl_plugin.models.algorithms import base as _base
from .measure import sync
from .step import build_models, step_inputs, train_step

#: what the profiler's event names of the regions start with
PREFIX = 'region::'


def region(name: str) -> torch.profiler.record_function:
    """A profiler region named ``name`` (the event ``'region::' + name``)."""
    return torch.profiler.record_function(PREFIX + name)


#: region -> the calls of a step it wraps, as ``(owner, attribute)``:
#: ``owner`` a dotted path from the model (``''`` the model itself, a digit
#: an index), the attribute a method (a module's ``forward`` is what
#: ``module(...)`` runs) or a function of :mod:`..algorithms.base`
#: (``'base:...'``). Calls a model does not make are skipped; the regions
#: nest as the calls do (``key_forward`` runs the key encoder's parts).
REGIONS = (
    ('query_backbone', 'backbone', 'forward'),
    ('query_neck', 'neck', 'forward_cells'),  # DenseCL's neck interface
    ('query_neck', 'neck', 'forward'),  # MoCo v2's
    ('cell_features', '', 'cell_features'),
    ('key_forward', '', 'key_forward'),
    ('momentum_update', 'encoder_k', 'update'),
    ('shuffle', 'base:', 'batch_shuffle_ddp'),
    ('key_backbone', 'encoder_k.module.0', 'forward'),
    ('key_neck', 'encoder_k.module.1', 'forward_cells'),
    ('key_neck', 'encoder_k.module.1', 'forward'),
    ('unshuffle', 'base:', 'batch_unshuffle_ddp'),
    ('neck.global', 'neck', 'global_embedding'),
    ('neck.global', 'encoder_k.module.1', 'global_embedding'),
    ('neck.dense', 'neck', 'dense_embedding'),
    ('neck.dense', 'encoder_k.module.1', 'dense_embedding'),
    ('<infonce>', 'head', 'loss_queue'),  # single_infonce / dense_infonce
    ('matching', '', '_match'),
    ('gather', '', '_gather'),
    ('enqueue', '', '_dequeue_and_enqueue'),
)


def _owner(model: nn.Module, path: str):
    """The object at a dotted ``path`` of :data:`REGIONS` (None if absent)."""
    if path == 'base:':
        return _base
    obj = model
    for part in filter(None, path.split('.')):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _wrapped(fn: Callable, name: Union[str, Callable]) -> Callable:
    """``fn`` inside the region ``name`` (or ``name(*args)`` when callable)."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with region(name(*args) if callable(name) else name):
            return fn(*args, **kwargs)
    return call


@contextlib.contextmanager
def model_regions(model: nn.Module) -> Iterator[None]:
    """Within the block, the calls of :data:`REGIONS` run in their regions.

    Each wrapped method is set on its owner instance (shadowing the
    class's, as split BN swaps a layer's ``forward``) and removed on exit,
    also on an error; the two functions of :mod:`..algorithms.base` are
    swapped in the module and restored. The head's ``loss_queue`` is
    ``single_infonce`` against the model's ``queue`` and ``dense_infonce``
    against ``queue2``. Outside the block the model runs unchanged.

    Args:
        model (nn.Module): A DenseCL or MoCo v2 model (unwrapped).
    """
    def infonce(q, k, queue, *args):
        return 'single_infonce' if queue is model.queue else 'dense_infonce'

    undo = []
    try:
        for name, path, attr in REGIONS:
            owner = _owner(model, path)
            fn = getattr(owner, attr, None) if owner is not None else None
            if fn is None or any(o is owner and a == attr
                                 for o, a, _ in undo):  # absent, or done
                continue
            setattr(owner, attr, _wrapped(
                fn, infonce if name == '<infonce>' else name))
            undo.append((owner, attr, fn))
        yield
    finally:
        for owner, attr, fn in reversed(undo):
            if owner is _base:
                setattr(owner, attr, fn)
            else:
                delattr(owner, attr)


#: the table's row order (others follow, largest first)
ORDER = tuple(
    f'{p}{s}' for p in (
        'zero_grad', 'forward/query_backbone', 'forward/query_neck',
        'forward/query_neck/neck.global', 'forward/query_neck/neck.dense',
        'forward/cell_features',
        'forward/key_forward', 'forward/key_forward/momentum_update',
        'forward/key_forward/shuffle', 'forward/key_forward/key_backbone',
        'forward/key_forward/key_neck',
        'forward/key_forward/key_neck/neck.global',
        'forward/key_forward/key_neck/neck.dense',
        'forward/key_forward/cell_features',
        'forward/key_forward/unshuffle', 'forward/single_infonce',
        'forward/matching', 'forward/gather', 'forward/dense_infonce',
        'forward/enqueue', 'forward')
    for s in ('', ' [bwd]')) + (
        'backward: accumulate grad', 'backward', 'optimizer_step')

_BWD = 'autograd::engine::evaluate_function: '
_COLLECTIVES = ('c10d', 'all_gather', 'allgather', 'broadcast', 'all_reduce',
                'allreduce', 'nccl', 'gloo')


def _region_path(event) -> Optional[str]:
    """The ``/``-joined names of the regions around ``event`` (itself
    included when it is one), outermost first; None outside all."""
    names = []
    e = event
    while e is not None:
        if e.name.startswith(PREFIX):
            names.append(e.name[len(PREFIX):])
        e = e.cpu_parent
    return '/'.join(reversed(names)) or None


def _ms(us: float) -> float:
    return us / 1e3


def attribute(events, steps: int = 1) -> Dict[str, object]:
    """Charge the profiled events of ``steps`` steps to regions.

    Args:
        events: ``prof.events()`` of a profile whose steps ran in regions
            ``zero_grad``, ``forward``, ``backward``, ``optimizer_step``.
        steps (int): How many steps the profile holds (times are per step).
            Defaults to 1.

    Returns:
        dict: ``regions`` (``{path: ms per step}``, exclusive of nested
        regions, backward ops as ``<path> [bwd]``), ``step_ms`` (the sum of
        the top regions per step), ``ops`` (``{aten op: self ms per step}``)
        and ``collectives`` (number of collective ops per step).
    """
    regions: Dict[str, float] = collections.defaultdict(float)
    seq_region: Dict[int, str] = {}
    region_events = [e for e in events if e.name.startswith(PREFIX)]
    step_us = sum(e.time_range.elapsed_us() for e in region_events
                  if e.cpu_parent is None)
    # exclusive time of each region: its span less its child regions' spans
    for e in region_events:
        path = _region_path(e)
        child = sum(c.time_range.elapsed_us() for c in e.cpu_children
                    if c.name.startswith(PREFIX))
        regions[path] += e.time_range.elapsed_us() - child
    # forward ops with an autograd node: remember their region
    for e in events:
        if e.sequence_nr >= 0 and not e.name.startswith(_BWD) and \
                not e.name.startswith(PREFIX):
            path = _region_path(e)
            if path is not None and not path.startswith('backward'):
                seq_region.setdefault(e.sequence_nr, path)
    # backward nodes: move their time from 'backward' to their region
    for e in events:
        if not e.name.startswith(_BWD):
            continue
        parent = _region_path(e.cpu_parent) if e.cpu_parent else None
        if parent != 'backward':
            continue  # nested in another node (reentrant): counted there
        us = e.time_range.elapsed_us()
        if 'AccumulateGrad' in e.name:
            target = 'backward: accumulate grad'
        else:
            src = seq_region.get(e.sequence_nr)
            target = f'{src} [bwd]' if src is not None else 'backward'
        regions['backward'] -= us
        regions[target] += us
    ops: Dict[str, float] = collections.defaultdict(float)
    collectives = 0
    for e in events:
        if e.name.startswith(PREFIX) or e.name.startswith(_BWD):
            continue
        ops[e.name] += e.self_cpu_time_total
        if any(c in e.name.lower() for c in _COLLECTIVES):
            collectives += 1
    return dict(regions={k: _ms(v) / steps for k, v in regions.items()},
                step_ms=_ms(step_us) / steps,
                ops={k: _ms(v) / steps for k, v in ops.items()},
                collectives=collectives / steps)


def profiled_steps(model: nn.Module, optimizer: torch.optim.Optimizer,
                   views: List[torch.Tensor], steps: int = 2) -> dict:
    """:func:`attribute` of ``steps`` full training steps of ``model``."""
    from torch.profiler import ProfilerActivity, profile
    device = views[0].device
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with model_regions(model), profile(activities=activities) as prof:
        for _ in range(steps):
            with region('zero_grad'):
                optimizer.zero_grad(set_to_none=True)
            with region('forward'):
                losses = model(views, mode='loss')
                loss = sum(losses.values())
            with region('backward'):
                loss.backward()
            with region('optimizer_step'):
                optimizer.step()
            sync(device)
    return attribute(prof.events(), steps)


def profile_models(depth: int = 50, batch: int = 8, size: int = 224,
                   queue_len: int = 65536, steps: int = 2, warmup: int = 2,
                   device: str = 'cpu', log: Callable = print) -> dict:
    """Profile DenseCL and MoCo v2 steps (same weights, input and queues).

    Args:
        depth (int): ResNet depth. Defaults to 50.
        batch (int): Images per step. Defaults to 8.
        size (int): Input side in pixels. Defaults to 224.
        queue_len (int): ``K``. Defaults to 65536.
        steps (int): Profiled steps per model (the table is per step).
            Defaults to 2.
        warmup (int): Unprofiled steps per model first. Defaults to 2.
        device (str): Defaults to ``'cpu'``.
        log (Callable): Progress printer. Defaults to ``print``.

    Returns:
        dict: ``{'DenseCL': attribute(...), 'MoCoV2': ..., 'config': ...}``.
    """
    dev = torch.device(device)
    models = build_models(depth, queue_len, device=device)
    optims, views = step_inputs(models, batch, size, dev)
    for i in range(warmup):
        for name in models:
            train_step(models[name], optims[name], views)
        log(f'warm-up step {i + 1}/{warmup} done')
    # one profiled step at a time, the models in alternating order (as the
    # step benchmark), so that a shared machine slows both alike
    runs: Dict[str, List[dict]] = {n: [] for n in models}
    names = list(models)
    for i in range(steps):
        for name in (names if i % 2 == 0 else names[::-1]):
            runs[name].append(profiled_steps(models[name], optims[name],
                                             views, 1))
        log(f'profiled step {i + 1}/{steps}: ' + ', '.join(
            f"{n} {runs[n][-1]['step_ms']:.0f} ms" for n in names))
    result = {name: _mean_runs(r) for name, r in runs.items()}
    result['config'] = dict(depth=depth, batch=batch, size=size,
                            queue_len=queue_len, steps=steps, warmup=warmup,
                            device=device, threads=torch.get_num_threads())
    return result


def _mean_runs(runs: List[dict]) -> dict:
    """The mean of several :func:`attribute` results, with each step's
    total in ``step_ms_all``."""
    out: dict = dict(step_ms_all=[r['step_ms'] for r in runs])
    for field in ('regions', 'ops'):
        keys = set().union(*(r[field] for r in runs))
        out[field] = {k: sum(r[field].get(k, 0.) for r in runs) / len(runs)
                      for k in keys}
    for field in ('step_ms', 'collectives'):
        out[field] = sum(r[field] for r in runs) / len(runs)
    return out


def _rows(keys: Sequence[str], a: Dict[str, float],
          b: Dict[str, float]) -> List[str]:
    ordered = [k for k in ORDER if k in keys]
    ordered += sorted((k for k in keys if k not in ORDER),
                      key=lambda k: -(a.get(k, 0) + b.get(k, 0)))
    return ordered


def format_profile(result: dict, top_ops: int = 15) -> str:
    """The per-region table (ms per step and % of the step, DenseCL vs
    MoCo v2, and the difference), then the ``top_ops`` aten ops whose self
    time differs most."""
    dc, mc = result['DenseCL'], result['MoCoV2']
    c = result['config']
    lines = [
        f"ResNet-{c['depth']}, batch {c['batch']}, {c['size']} px, "
        f"K={c['queue_len']}, {c['device']} fp32, {c['threads']} threads, "
        f"train-mode BN; ms per step, mean of {c['steps']} profiled steps "
        f"each (interleaved) after {c['warmup']} warm-up",
        f"{'region':46s} {'DenseCL':>9s} {'%':>5s} {'MoCo v2':>9s} "
        f"{'%':>5s} {'diff':>8s}"]
    ra, rb = dc['regions'], mc['regions']
    for k in _rows(set(ra) | set(rb), ra, rb):
        a, b = ra.get(k, 0.), rb.get(k, 0.)
        if abs(a) < 0.05 and abs(b) < 0.05:
            continue
        lines.append(f'{k:46s} {a:9.1f} {100 * a / dc["step_ms"]:5.1f} '
                     f'{b:9.1f} {100 * b / mc["step_ms"]:5.1f} {a - b:+8.1f}')
    lines.append(f"{'step':46s} {dc['step_ms']:9.1f} {100.:5.1f} "
                 f"{mc['step_ms']:9.1f} {100.:5.1f} "
                 f"{dc['step_ms'] - mc['step_ms']:+8.1f}   "
                 f"(x{dc['step_ms'] / mc['step_ms']:.3f})")
    lines.append(f"collective ops per step: DenseCL {dc['collectives']:g}, "
                 f"MoCo v2 {mc['collectives']:g} (one process: "
                 f"mmengine.dist calls none)")
    oa, ob = dc['ops'], mc['ops']
    diff = sorted(set(oa) | set(ob),
                  key=lambda k: -abs(oa.get(k, 0.) - ob.get(k, 0.)))
    lines.append('aten ops whose self time differs most (ms per step):')
    lines.append(f"{'op':46s} {'DenseCL':>9s} {'MoCo v2':>9s} {'diff':>8s}")
    for k in diff[:top_ops]:
        a, b = oa.get(k, 0.), ob.get(k, 0.)
        lines.append(f'{k:46s} {a:9.1f} {b:9.1f} {a - b:+8.1f}')
    return '\n'.join(lines)


def run_step_profile(depth: int = 50, batch: int = 8, size: int = 224,
                     queue_len: int = 65536, steps: int = 2, warmup: int = 2,
                     device: str = 'cpu', threads: Optional[int] = None,
                     json_path: Optional[str] = None,
                     log: Callable = print) -> dict:
    """What ``tools/analysis/profile_step.py`` does: :func:`profile_models`,
    printed by :func:`format_profile` (and saved as JSON with
    ``json_path``). ``threads`` sets torch's CPU threads. The result's
    ``load`` is the machine's load before and during
    (:func:`~.measure.measured_run`)."""
    from .measure import measured_run
    return measured_run(
        lambda: profile_models(depth, batch, size, queue_len, steps, warmup,
                               device, log),
        format_profile, threads, json_path, log)


__all__ = ['REGIONS', 'attribute', 'format_profile', 'model_regions',
           'profile_models', 'profiled_steps', 'region', 'run_step_profile']
