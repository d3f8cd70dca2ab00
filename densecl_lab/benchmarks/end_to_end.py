# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Images/s of whole training iterations, the data pipeline included.

What ``tools/analysis/benchmark_step.py --end-to-end [--peer]`` does
(:func:`run_end_to_end`). This is the figure a user sees: every iteration
takes a batch from a ``DataLoader`` (real JPEGs decoded and augmented by
worker processes) and runs ``model.train_step(data, optim_wrapper)``, the
data preprocessor, forward, backward and optimizer step, exactly as
MMEngine's ``IterBasedTrainLoop`` calls it.

Variants, per scenario (a config and what it overrides) and per loader worker
count:

- ``ours fp32``: our model and pipeline from the config, float32,
  contiguous memory (``OptimWrapper``, ``channels_last=False``);
- ``ours best``: the same with our fastest CPU setting, bfloat16 autocast
  (``CPUAmpOptimWrapper``) and channels-last;
- ``mmpretrain``: with ``peer=True``, mmpretrain 1.2's ``DenseCL`` with our
  initial weights (:func:`~.peer.build_peer`), its
  ``SelfSupDataPreprocessor`` and its own MoCo v2 pipeline and
  ``CustomDataset`` (``configs/_base_/datasets/imagenet_bs32_mocov2.py`` of
  mmpretrain, the crop size of the scenario) on the same folder. Its best
  CPU setting is this one: MMEngine's ``AmpOptimWrapper`` refuses a CPU and
  mmpretrain has no channels-last option.

The variants run in blocks, interleaved in alternating order round by round
(so that a shared machine slows them alike); a block drops the batches the
variant's loader workers prepared while the others ran, takes one untimed
iteration, then ``block`` timed ones. A variant's figure is its median
block's images/s.
"""
import contextlib
import copy
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config

from densecl_plugin.utils.auto_values import resolve_auto_values
from densecl_plugin.utils.config_search import crop_size, find_by_type
from .measure import measured_run

#: name -> (config under ``configs/``, overrides): the DenseCL R18 CPU
#: config with 224 px views and the paper's K, and the demo's own setting
#: (80 px, K = 64: what 'auto' gives on the demo pool, pinned so that the
#: figures do not depend on the folder timed). Split BN is off in both:
#: mmpretrain has none, and the comparison is of the same model.
SCENARIOS = {
    'r18-224px': (
        'densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py',
        dict(crop_size=224, queue_len=65536, split_bn_groups=1)),
    'demo': ('demo/densecl_resnet18_1xb16-coslr-640iters_demo-pool.py',
             dict(queue_len=64, split_bn_groups=1)),
}

#: the variant names, in the order a round runs them
OURS_FP32, OURS_BEST, PEER = 'ours fp32', 'ours best', 'mmpretrain'


def set_crop_size(pipeline: List[dict], size: int) -> List[dict]:
    """``pipeline`` (a MoCo v2 train pipeline config) with every
    ``RandomResizedCrop`` inside its ``MultiView`` cropping at ``size``."""
    out = copy.deepcopy(pipeline)
    for t in find_by_type(out, 'RandomResizedCrop'):
        t['size'] = size
    return out


def crop_size_of(pipeline: List[dict]) -> int:
    """The ``RandomResizedCrop`` size of a MoCo v2 train pipeline config."""
    size = crop_size(pipeline)
    if size is None:
        raise ValueError('the train pipeline has no MultiView with a '
                         'RandomResizedCrop: expected a MoCo v2 pipeline')
    return size


def scenario_config(name: str, images: str) -> Config:
    """The config of scenario ``name`` (:data:`SCENARIOS`) reading
    ``images``, its overrides applied."""
    if name not in SCENARIOS:
        raise ValueError(f'unknown end-to-end scenario {name!r}; expected '
                         f'one of {sorted(SCENARIOS)}')
    from densecl_lab.utils.staged_run import default_configs_dir
    path, overrides = SCENARIOS[name]
    cfg = Config.fromfile(osp.join(default_configs_dir(), path))
    ds = cfg.train_dataloader.dataset
    ds.data_root = images
    if 'crop_size' in overrides:
        ds.pipeline = set_crop_size(ds.pipeline, overrides['crop_size'])
    for key in ('queue_len', 'split_bn_groups'):
        if key in overrides:
            cfg.model[key] = overrides[key]
    # the other 'auto' values (lr, warm-up) as tools/train.py resolves them
    resolve_auto_values(cfg, world_size=1)
    return cfg


def peer_pipeline(crop_size: int) -> List[dict]:
    """mmpretrain 1.2's MoCo v2 train pipeline (its
    ``imagenet_bs32_mocov2.py``) with views of ``crop_size``."""
    view = [
        dict(type='RandomResizedCrop', scale=crop_size,
             crop_ratio_range=(0.2, 1.), backend='pillow'),
        dict(type='RandomApply', prob=0.8, transforms=[dict(
            type='ColorJitter', brightness=0.4, contrast=0.4,
            saturation=0.4, hue=0.1)]),
        dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
             channel_weights=(0.114, 0.587, 0.2989)),
        dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
             magnitude_std='inf', prob=0.5),
        dict(type='RandomFlip', prob=0.5),
    ]
    return [dict(type='LoadImageFromFile'),
            dict(type='MultiView', num_views=2, transforms=[view]),
            dict(type='PackInputs')]


def adjust_hue_numpy2(img: np.ndarray, hue_factor: float,
                      backend: Optional[str] = None) -> np.ndarray:
    """mmcv 2.1.0's ``adjust_hue`` made to run under numpy 2.

    mmcv adds ``np.uint8(hue_factor * 255)`` to the uint8 hue channel, which
    numpy 2 refuses for a negative factor (``OverflowError``), so
    mmpretrain's MoCo v2 pipeline stops at its first negative hue draw. This
    is the same arithmetic (HSV_FULL hue of cv2, or PIL's HSV, shifted by
    the truncated ``hue_factor * 255`` modulo 256, as numpy 1 wrapped it),
    at the same cost.

    Args:
        img (np.ndarray): A BGR uint8 image (H, W, 3).
        hue_factor (float): The shift, in [-0.5, 0.5] turns.
        backend (str, optional): ``'cv2'`` or ``'pillow'``. Defaults to
            None (mmcv's image backend).

    Returns:
        np.ndarray: The hue-shifted image.
    """
    import cv2
    import mmcv
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor: {hue_factor} is not in [-0.5, 0.5]')
    shift = np.uint8(int(hue_factor * 255) % 256)
    if (backend or mmcv.image.io.imread_backend) == 'pillow':
        from PIL import Image
        pil = Image.fromarray(img[..., ::-1], mode='RGB')
        h, s, v = pil.convert('HSV').split()
        np_h = np.array(h, dtype=np.uint8) + shift  # uint8: wraps
        pil = Image.merge('HSV', (Image.fromarray(np_h, 'L'), s, v))
        return np.array(pil.convert('RGB'), dtype=img.dtype)[..., ::-1]
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    hsv[..., 0] += shift  # uint8: wraps around the hue circle
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL).astype(img.dtype)


@contextlib.contextmanager
def numpy2_safe_mmcv_hue():
    """``mmcv.adjust_hue`` (what mmpretrain's ``ColorJitter`` calls) is
    :func:`adjust_hue_numpy2` inside this context (and in loader workers
    started inside it)."""
    import mmcv
    saved = mmcv.adjust_hue
    mmcv.adjust_hue = adjust_hue_numpy2
    try:
        yield
    finally:
        mmcv.adjust_hue = saved


class Variant:
    """One thing to time: a model, its optimizer wrapper and its loader.

    Args:
        name (str): Its row label.
        model (nn.Module): An MMEngine ``BaseModel`` in train mode.
        optim_wrapper: Its ``OptimWrapper``.
        loader (DataLoader): Its batches (persistent workers).
        scope (str): The default scope its steps run in.
    """

    def __init__(self, name, model, optim_wrapper, loader, scope):
        self.name = name
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.loader = loader
        self.scope = scope
        self._it = None

    def warm(self, n: int) -> None:
        """``n`` untimed iterations (the first steps of a model, and of
        bf16 / channels-last kernels, are slower)."""
        if n > 0:
            self.block(n)

    def block(self, n: int) -> float:
        """Images/s over ``n`` timed iterations.

        The loader's iterator lives across blocks (an infinite sampler's
        loader cannot be restarted), so the batches its workers prepared
        while other variants ran are dropped first, then one untimed
        iteration brings the workers back to their steady state.
        """
        from mmengine.registry import DefaultScope
        loader = self.loader
        with DefaultScope.overwrite_default_scope(self.scope):
            if self._it is None:
                self._it = iter(loader)
            else:
                for _ in range((loader.prefetch_factor or 0)
                               * loader.num_workers):
                    next(self._it)  # prepared while this variant waited
            self.model.train_step(next(self._it), self.optim_wrapper)
            t0 = time.perf_counter()
            for _ in range(n):
                self.model.train_step(next(self._it), self.optim_wrapper)
            dt = time.perf_counter() - t0
        return n * loader.batch_size / dt


def _loader(cfg_loader: dict, workers: int, scope: str):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    cfg_loader = copy.deepcopy(cfg_loader)
    cfg_loader.update(num_workers=workers, persistent_workers=False,
                      sampler=dict(type='InfiniteSampler', shuffle=True,
                                   seed=0))
    with DefaultScope.overwrite_default_scope(scope):
        return Runner.build_dataloader(cfg_loader, seed=0)


def build_variants(cfg: Config, workers: int, peer: bool = False,
                   standin: Optional[str] = None) -> List[Variant]:
    """The variants of one scenario config at ``workers`` loader workers.

    All models start from the same weights (our ``init_weights`` with seed
    0); the optimizer is the config's SGD.
    """
    from mmengine.optim import OptimWrapper

    import densecl_plugin  # noqa: F401  (registers our modules)
    from densecl_plugin.apis.inference import quiet_init_weights
    from densecl_plugin.registry import MODELS, OPTIM_WRAPPERS
    from .peer import build_peer
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['channels_last'] = False
    base = MODELS.build(model_cfg)
    quiet_init_weights(base)
    state = copy.deepcopy(base.state_dict())
    opt_cfg = copy.deepcopy(cfg.optim_wrapper.optimizer)
    opt_type = opt_cfg.pop('type')
    if opt_type != 'SGD':
        raise ValueError(f'end-to-end benchmark: expected an SGD optimizer '
                         f'in the config, got {opt_type!r}')

    def sgd(model):
        return torch.optim.SGD(model.parameters(), **opt_cfg)

    variants = []
    loader = _loader(cfg.train_dataloader, workers, 'densecl_plugin')
    variants.append(Variant(OURS_FP32, base.train(),
                            OptimWrapper(sgd(base)), loader,
                            'densecl_plugin'))
    best_cfg = dict(model_cfg, channels_last=True)
    best = MODELS.build(best_cfg)
    best.load_state_dict(state)
    variants.append(Variant(
        OURS_BEST, best.train(),
        OPTIM_WRAPPERS.build(dict(type='CPUAmpOptimWrapper',
                                  dtype='bfloat16', optimizer=sgd(best))),
        _loader(cfg.train_dataloader, workers, 'densecl_plugin'),
        'densecl_plugin'))
    if peer:
        fresh = MODELS.build(model_cfg)
        fresh.load_state_dict(state)
        pre = cfg.model.data_preprocessor
        mm = build_peer(fresh, cfg.model.backbone.depth, standin,
                        data_preprocessor=dict(
                            type='SelfSupDataPreprocessor', mean=pre.mean,
                            std=pre.std, to_rgb=pre.get('to_rgb', True)))
        peer_loader = dict(
            copy.deepcopy(cfg.train_dataloader),
            dataset=dict(type='CustomDataset',
                         data_root=cfg.train_dataloader.dataset.data_root,
                         with_label=False,
                         pipeline=peer_pipeline(crop_size_of(
                             cfg.train_dataloader.dataset.pipeline))))
        variants.append(Variant(PEER, mm, OptimWrapper(sgd(mm)),
                                _loader(peer_loader, workers, 'mmpretrain'),
                                'mmpretrain'))
    return variants


def benchmark_end_to_end(scenarios: Sequence[str] = tuple(SCENARIOS),
                         images: str = 'data/demo/unlabeled',
                         workers: Sequence[int] = (1, 2), rounds: int = 3,
                         block: int = 4, peer: bool = False,
                         standin: Optional[str] = None,
                         log: Callable = print, warmup: int = 2) -> dict:
    """Images/s of whole training iterations of every variant.

    Args:
        scenarios (Sequence[str]): Names in :data:`SCENARIOS`. Defaults to
            all.
        images (str): The folder of images (``UnlabeledImageDataset`` and
            mmpretrain's ``CustomDataset`` read the same files). Defaults to
            the demo pool (``data/demo/unlabeled``, deepforest tiles and
            photos as JPEGs).
        workers (Sequence[int]): Loader worker counts. Defaults to (1, 2).
        rounds (int): Interleaved rounds (one block per variant each).
            Defaults to 3.
        block (int): Timed iterations per block. Defaults to 4.
        peer (bool): Add mmpretrain 1.2's DenseCL (needs
            ``mmpretrain==1.2.0``). Defaults to False.
        standin (str, optional): See :func:`~.peer.import_mmpretrain`.
        log (Callable): Progress printer. Defaults to ``print``.
        warmup (int): Untimed iterations of each variant before the first
            round (besides the untimed first iteration of every block).
            Defaults to 2.

    Returns:
        dict: ``scenarios``: name -> ``config``, ``batch``, ``crop_size``,
        ``queue_len`` and ``workers``: count -> variant -> ``blocks``
        (images/s of each) and ``median``; ``ratios``: name -> ``same``
        (ours fp32 / mmpretrain per worker count) and ``best`` (the best of
        ours over the worker counts / the best of mmpretrain); ``threads``.
    """
    if not osp.isdir(images):
        raise FileNotFoundError(
            f'end-to-end benchmark: no image folder {images!r}; `make demo` '
            f'(or prepare_demo_data) writes the demo pool there, or pass '
            f'--images DIR')
    if peer:
        from .peer import import_mmpretrain
        import_mmpretrain(standin)
    out = dict(scenarios={}, ratios={}, threads=torch.get_num_threads())
    for name in scenarios:
        cfg = scenario_config(name, images)
        info = dict(config=SCENARIOS[name][0],
                    batch=cfg.train_dataloader.batch_size,
                    crop_size=crop_size_of(
                        cfg.train_dataloader.dataset.pipeline),
                    queue_len=cfg.model.queue_len,
                    depth=cfg.model.backbone.depth, workers={})
        out['scenarios'][name] = info
        for w in workers:
            variants = build_variants(cfg, w, peer, standin)
            blocks: Dict[str, List[float]] = {v.name: [] for v in variants}
            with numpy2_safe_mmcv_hue():
                for v in variants:
                    v.warm(warmup)
                for r in range(rounds):
                    order = variants if r % 2 == 0 else variants[::-1]
                    for v in order:
                        blocks[v.name].append(v.block(block))
                    log(f'{name}, {w} worker(s), round {r + 1}/{rounds}: '
                        + ', '.join(f'{n} {b[-1]:.1f} img/s'
                                    for n, b in blocks.items()))
            info['workers'][w] = {
                n: dict(blocks=b, median=statistics.median(b))
                for n, b in blocks.items()}
            del variants  # stop this count's loader workers
        out['ratios'][name] = _ratios(info['workers']) if peer else None
    return out


def _ratios(per_workers: dict) -> dict:
    same = {w: r[OURS_FP32]['median'] / r[PEER]['median']
            for w, r in per_workers.items()}
    ours = max(max(r[OURS_FP32]['median'], r[OURS_BEST]['median'])
               for r in per_workers.values())
    theirs = max(r[PEER]['median'] for r in per_workers.values())
    return dict(same=same, best=ours / theirs)


def format_end_to_end(result: dict) -> str:
    """The report of :func:`benchmark_end_to_end`: a table per scenario."""
    lines = [f"whole training iterations (loader + train_step), "
             f"{result['threads']} torch threads in the main process; "
             f'median block images/s']
    for name, s in result['scenarios'].items():
        lines.append(f"{name}: DenseCL R{s['depth']}, batch {s['batch']}, "
                     f"{s['crop_size']} px views, K={s['queue_len']} "
                     f"({s['config']})")
        counts = list(s['workers'])
        names = list(s['workers'][counts[0]])
        lines.append('  | variant | ' + ' | '.join(
            f'{w} worker(s)' for w in counts) + ' |')
        for n in names:
            lines.append(f'  | {n} | ' + ' | '.join(
                f"{s['workers'][w][n]['median']:.1f}" for w in counts) + ' |')
        r = result['ratios'].get(name)
        if r:
            lines.append('  ours fp32 / mmpretrain: ' + ', '.join(
                f'x{v:.3f} ({w} worker(s))' for w, v in r['same'].items())
                + f"; ours best / mmpretrain best x{r['best']:.3f}")
    return '\n'.join(lines)


def run_end_to_end(scenarios: Sequence[str] = tuple(SCENARIOS),
                   images: str = 'data/demo/unlabeled',
                   workers: Sequence[int] = (1, 2), rounds: int = 3,
                   block: int = 4, peer: bool = False,
                   standin: Optional[str] = None,
                   threads: Optional[int] = None,
                   json_path: Optional[str] = None,
                   log: Callable = print) -> dict:
    """What ``benchmark_step.py --end-to-end`` does:
    :func:`benchmark_end_to_end` with the load average recorded
    (:class:`~.measure.LoadRecord`), printed by :func:`format_end_to_end`,
    saved as JSON with ``json_path`` (:func:`~.measure.measured_run`)."""
    return measured_run(
        lambda: benchmark_end_to_end(scenarios, images, workers, rounds,
                                     block, peer, standin, log),
        format_end_to_end, threads, json_path, log)
