# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Our DenseCL and MoCo v2 steps against mmpretrain 1.2's, side by side.

What ``tools/analysis/benchmark_step.py --peer`` does
(:func:`run_peer_benchmark`). mmpretrain 1.2.0 is not a dependency of this
package (``pip install mmpretrain==1.2.0`` for this comparison and the
parity tests); :func:`build_peer` builds its ``DenseCL`` / ``MoCo`` from one
of our models and loads our state dict into it *strictly* (our state-dict
layout is mmpretrain's), so both start from the same weights and queues.
Every step of the four models (ours and mmpretrain's DenseCL and MoCo v2) is
run interleaved, in alternating order, on the same views with the same
shuffle permutation; the fastest and the median step of each are compared.

mmpretrain imports torchvision at module level, but its model code never
calls it. Where the installed torchvision does not load beside the
installed torch (a build for another torch, or none), a directory holding a
stand-in ``torchvision`` package that provides the imported names can be put
on ``sys.path`` (``standin``; the tests ship one in
``tests/peers/standin``).
"""
import copy
import importlib
import importlib.util
import statistics
import sys
from typing import Callable, List, Optional

import torch
from torch import nn

#: the mmpretrain release whose models are the peers
PEER_VERSION = '1.2.0'


def import_mmpretrain(standin: Optional[str] = None):
    """``mmpretrain`` with its models registered.

    Args:
        standin (str, optional): A directory with a stand-in ``torchvision``
            package, put first on ``sys.path`` when the installed
            torchvision does not import (none, or a build for another
            torch). Defaults to None (the installed one must work).

    Returns:
        module: ``mmpretrain``.

    Raises:
        ImportError: when mmpretrain (or a working torchvision, without
            ``standin``) is missing, or it is not version 1.2.0; the message
            says ``pip install mmpretrain==1.2.0``.
    """
    try:
        import torchvision.ops.boxes  # noqa: F401
        import torchvision.transforms.functional  # noqa: F401
    except Exception as e:  # none, or built for another torch
        if standin is None:
            hint = (f'torchvision does not import ({type(e).__name__}: {e}); '
                    f'install the torchvision build of torch '
                    f'{torch.__version__}, or pass a stand-in directory '
                    f'(--torchvision-standin DIR, e.g. tests/peers/standin)')
            if importlib.util.find_spec('mmpretrain') is None:
                raise ImportError(
                    f'the comparison with mmpretrain needs it: pip install '
                    f'mmpretrain=={PEER_VERSION} ({hint})') from e
            raise ImportError(f'mmpretrain needs torchvision: {hint}') from e
        for name in [m for m in sys.modules
                     if m.split('.')[0] == 'torchvision']:
            del sys.modules[name]
        if standin not in sys.path:
            sys.path.insert(0, standin)
    try:
        mmpretrain = importlib.import_module('mmpretrain')
        importlib.import_module('mmpretrain.models')
    except ImportError as e:
        raise ImportError(
            f'the comparison with mmpretrain needs it: pip install '
            f'mmpretrain=={PEER_VERSION} ({e})') from e
    if mmpretrain.__version__ != PEER_VERSION:
        raise ImportError(
            f'mmpretrain {mmpretrain.__version__} is installed; the peer '
            f'models are those of {PEER_VERSION}: pip install '
            f'mmpretrain=={PEER_VERSION}')
    return mmpretrain


def peer_backbone(depth: int) -> dict:
    """mmpretrain's own ResNet (its defaults: BN trains, nothing frozen)."""
    return dict(type='ResNet', depth=depth, out_indices=(3, ),
                norm_cfg=dict(type='BN'), zero_init_residual=False)


def peer_config(ours: nn.Module, depth: int) -> dict:
    """The mmpretrain config of ``ours`` (a DenseCL or MoCoV2 on a ResNet
    of ``depth``): the same hyper-parameters in mmpretrain's terms."""
    from densecl_plugin.models import DenseCL
    is_dense = isinstance(ours, DenseCL)
    C = ours.neck.in_channels
    hid = ours.neck.mlp[0].out_features
    neck = dict(type='DenseCLNeck' if is_dense else 'MoCoV2Neck',
                in_channels=C, hid_channels=hid, out_channels=ours.D)
    if not is_dense:
        neck['with_avg_pool'] = True
    cfg = dict(
        type='DenseCL' if is_dense else 'MoCo',
        backbone=peer_backbone(depth),
        neck=neck,
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=ours.head.temperature),
        queue_len=ours.K, feat_dim=ours.D,
        momentum=1 - ours.encoder_k.m)  # mmpretrain's convention
    if is_dense:
        cfg['loss_lambda'] = ours.loss_lambda
    return cfg


def build_peer(ours: nn.Module, depth: int,
               standin: Optional[str] = None,
               data_preprocessor: Optional[dict] = None) -> nn.Module:
    """mmpretrain's DenseCL or MoCo with our model's hyper-parameters and
    state.

    Built under ``DefaultScope.overwrite_default_scope('mmpretrain')``: a
    runner built earlier leaves ``densecl_plugin`` the current scope, and
    the peer's nested builds must resolve in mmpretrain's registries.

    Args:
        ours (DenseCL | MoCoV2): Our model.
        depth (int): Its ResNet depth.
        standin (str, optional): See :func:`import_mmpretrain`.
        data_preprocessor (dict, optional): Its data preprocessor config
            (e.g. ``SelfSupDataPreprocessor`` with mean, std and to_rgb),
            for models that are fed loader batches. Defaults to None
            (mmpretrain's default; the step benchmarks feed views).

    Returns:
        nn.Module: The mmpretrain model, ``load_state_dict(strict=True)``-ed
        from ``ours`` (every key and shape must match), on the device of
        ``ours``, in train mode.
    """
    import_mmpretrain(standin)
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg = copy.deepcopy(peer_config(ours, depth))
    if data_preprocessor is not None:
        cfg['data_preprocessor'] = copy.deepcopy(data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        peer = MODELS.build(cfg)
    peer.load_state_dict(ours.state_dict(), strict=True)
    device = next(ours.parameters()).device
    return peer.to(device).train()


def _summary(times: List[float]) -> dict:
    return dict(times=times, fastest=min(times),
                median=statistics.median(times))


def benchmark_peer(depth: int = 50, batch: int = 8, size: int = 224,
                   queue_len: int = 65536, iters: int = 5, warmup: int = 1,
                   device: str = 'cpu', standin: Optional[str] = None,
                   log: Callable = print) -> dict:
    """Step times of our DenseCL / MoCo v2 and mmpretrain's, interleaved.

    Args:
        depth (int): ResNet depth. Defaults to 50.
        batch (int): Images per step. Defaults to 8.
        size (int): Input side in pixels. Defaults to 224.
        queue_len (int): ``K``. Defaults to 65536.
        iters (int): Timed steps per model. Defaults to 5.
        warmup (int): Untimed steps per model first. Defaults to 1.
        device (str): Defaults to ``'cpu'``.
        standin (str, optional): See :func:`import_mmpretrain`.
        log (Callable): Progress printer. Defaults to ``print``.

    Returns:
        dict: ``models``: per model (``DenseCL``, ``mmpretrain DenseCL``,
        ``MoCoV2``, ``mmpretrain MoCo``) ``times``, ``fastest`` and
        ``median`` (s) and ``loss`` (of the last step); ``ratios``: ours /
        mmpretrain's for ``DenseCL`` and ``MoCoV2`` and DenseCL / MoCo v2
        for ``ours`` and ``mmpretrain``, each with ``fastest``, ``median``
        and ``pairs`` (the median over the interleaved steps of their
        ratio); ``config``.
    """
    from .step import build_models, interleaved_steps, step_inputs
    import_mmpretrain(standin)
    dev = torch.device(device)
    ours = build_models(depth, queue_len, device=device)
    models = {
        'DenseCL': ours['DenseCL'],
        'mmpretrain DenseCL': build_peer(ours['DenseCL'], depth, standin),
        'MoCoV2': ours['MoCoV2'],
        'mmpretrain MoCo': build_peer(ours['MoCoV2'], depth, standin),
    }
    optims, views = step_inputs(models, batch, size, dev)
    names = list(models)
    # the same shuffle permutation for every model of a round
    times, losses = interleaved_steps(models, optims, views, warmup, iters,
                                      dev, log, reseed=True)
    result = dict(models={n: dict(_summary(times[n]), loss=losses[n])
                          for n in names})

    def ratio(a: str, b: str) -> dict:
        ra, rb = result['models'][a], result['models'][b]
        return dict(fastest=ra['fastest'] / rb['fastest'],
                    median=ra['median'] / rb['median'],
                    pairs=statistics.median(
                        x / y for x, y in zip(times[a], times[b])))

    result['ratios'] = {
        'DenseCL': ratio('DenseCL', 'mmpretrain DenseCL'),
        'MoCoV2': ratio('MoCoV2', 'mmpretrain MoCo'),
        'ours': ratio('DenseCL', 'MoCoV2'),
        'mmpretrain': ratio('mmpretrain DenseCL', 'mmpretrain MoCo'),
    }
    result['config'] = dict(depth=depth, batch=batch, size=size,
                            queue_len=queue_len, iters=iters, warmup=warmup,
                            device=device, threads=torch.get_num_threads())
    return result


def format_peer_report(result: dict) -> str:
    """Human-readable summary of :func:`benchmark_peer`."""
    c = result['config']
    lines = [f"ResNet-{c['depth']}, batch {c['batch']}, {c['size']} px, "
             f"K={c['queue_len']}, {c['device']} fp32, {c['threads']} "
             f"threads, {c['iters']} interleaved steps each after "
             f"{c['warmup']} warm-up (same weights, queues, views)"]
    for name, r in result['models'].items():
        lines.append(f"  {name:20s} fastest {r['fastest']:.3f} s   median "
                     f"{r['median']:.3f} s   loss {r['loss']:.4f}")
    labels = {'DenseCL': 'our DenseCL / mmpretrain DenseCL',
              'MoCoV2': 'our MoCo v2 / mmpretrain MoCo',
              'ours': 'ours: DenseCL / MoCo v2',
              'mmpretrain': 'mmpretrain: DenseCL / MoCo'}
    for key, label in labels.items():
        r = result['ratios'][key]
        lines.append(f"  {label:34s} fastest x{r['fastest']:.3f}   median "
                     f"x{r['median']:.3f}   median of pairs x{r['pairs']:.3f}")
    return '\n'.join(lines)


def run_peer_benchmark(depth: int = 50, batch: int = 8, size: int = 224,
                       queue_len: int = 65536, iters: int = 5,
                       warmup: int = 1, device: str = 'cpu',
                       threads: Optional[int] = None,
                       standin: Optional[str] = None,
                       json_path: Optional[str] = None,
                       log: Callable = print) -> dict:
    """What ``benchmark_step.py --peer`` does: :func:`benchmark_peer`,
    printed by :func:`format_peer_report`, saved as JSON with
    ``json_path``; ``threads`` sets torch's CPU threads. The result's
    ``load`` is the machine's load before and during
    (:func:`~.measure.measured_run`)."""
    from .measure import measured_run
    return measured_run(
        lambda: benchmark_peer(depth, batch, size, queue_len, iters, warmup,
                               device, standin, log),
        format_peer_report, threads, json_path, log)
