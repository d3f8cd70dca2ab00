# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Images/s of the two-view MoCo v2 data pipeline on real JPEGs.

What ``tools/analysis/benchmark_pipeline.py`` does
(:func:`run_pipeline_benchmark`).

Measures the full pipeline ``LoadImageFromFile -> MultiView(2 x view
pipeline) -> PackSelfSupInputs`` on one core (a single-threaded process per
variant), with a per-transform breakdown, and its throughput through a
``torch.utils.data.DataLoader`` with N worker processes. Variants run side by
side: the transforms of an earlier git revision (``--baseline-rev``) and the
current ones take turns image by image with the same random draws, so that
the ratio is measured under the same machine load and the views are compared
pixel by pixel::

    python tools/analysis/benchmark_pipeline.py --baseline-rev e3d9479 \
        --workers 1 2 --out work_dirs/pipeline.json

The images are scikit-image's colour photos written as JPEGs with their
longest side ``--max-side`` (ImageNet-like sizes), or any folder
(``--images``).
"""
import glob
import json
import math
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from densecl_plugin.datasets import transforms as current_transforms
from .baseline_transforms import ROOT, Variant, build_pipeline, transforms_of
from .pipeline_timing import fork_safe_opencv, measure_single

#: the MoCo v2 pipeline config the benchmark runs by default (224 px views)
DEFAULT_CONFIG = osp.join(ROOT, 'configs/_base_/datasets/mocov2_pipeline.py')
#: scikit-image's colour photographs that load offline
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'immunohistochemistry',
          'hubble_deep_field', 'retina')


def write_photos(folder: str, max_side: int = 500) -> List[str]:
    """Write scikit-image's colour photos as JPEGs (quality 95).

    Args:
        folder (str): Output folder (created).
        max_side (int): Longest side in pixels; larger photos are shrunk
            with ``INTER_AREA``, smaller ones kept. Defaults to 500.

    Returns:
        list[str]: The JPEG paths, in :data:`PHOTOS` order.
    """
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in PHOTOS:
        img = np.ascontiguousarray(getattr(data, name)()[..., :3])  # HxWx3
        scale = max_side / max(img.shape[:2])
        if scale < 1:
            size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        path = osp.join(folder, f'{name}.jpg')
        cv2.imwrite(path, img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


class PipelineDataset(torch.utils.data.Dataset):
    """``length`` items cycling over ``paths``, each through ``pipeline``."""

    def __init__(self, paths: Sequence[str], pipeline: Callable,
                 length: int) -> None:
        self.paths = list(paths)
        self.pipeline = pipeline
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.pipeline(dict(img_path=self.paths[index %
                                                      len(self.paths)]))


def _collate(batch: list) -> int:
    """Collate views as the trainer does; return the batch size."""
    views = [torch.stack([b['inputs'][v] for b in batch])  # Nx3xHxW
             for v in range(len(batch[0]['inputs']))]
    return views[0].shape[0]


def _worker_init(worker_id: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    np.random.seed(1000 + worker_id)


def measure_workers(variant: Variant,
                    pipeline_cfg: Sequence[dict],
                    paths: Sequence[str],
                    num_workers: int,
                    num_images: int = 256,
                    batch_size: int = 16) -> float:
    """Images/s of a variant through a DataLoader with ``num_workers``.

    The clock starts when the first batch arrives (workers started and warm)
    and stops at the last; collation stacks the views as the trainer does.

    Args:
        variant (Variant): The implementation.
        pipeline_cfg (Sequence[dict]): The pipeline config.
        paths (Sequence[str]): Image files, cycled.
        num_workers (int): Worker processes (>= 1).
        num_images (int): Images timed after the first batch.
            Defaults to 256.
        batch_size (int): Defaults to 16.

    Returns:
        float: Images per second.
    """
    if num_workers < 1:
        raise ValueError(f'num_workers must be >= 1, got {num_workers}')
    pipeline = build_pipeline(pipeline_cfg, transforms_of(variant))
    dataset = PipelineDataset(paths, pipeline, num_images + batch_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init,
        multiprocessing_context='fork')
    count, start = 0, None
    with fork_safe_opencv():
        for n in loader:
            if start is None:
                start = time.perf_counter()
                continue
            count += n
    return count / (time.perf_counter() - start)


def reduced_decode_study(paths: Sequence[str],
                         size: int = 224,
                         scale: Tuple[float, float] = (0.2, 1.),
                         samples: int = 2000,
                         seed: int = 0) -> dict:
    """How often JPEG decoding at 1/2 size would do, and what it saves.

    A view may be cut from an image decoded at ``1/f`` only if its crop,
    shrunk ``f`` times, still has at least ``size`` pixels per side (else
    the view would be upsampled from fewer pixels than the full decode
    gives); both views of an image share one decode.

    Args:
        paths (Sequence[str]): JPEG files.
        size (int): View size. Defaults to 224.
        scale (tuple[float, float]): Crop area range. Defaults to
            ``(0.2, 1.)``.
        samples (int): Crop pairs drawn per image. Defaults to 2000.
        seed (int): numpy seed. Defaults to 0.

    Returns:
        dict: ``fraction_half`` (image pairs that could use 1/2) and
        ``decode_ms`` full vs ``IMREAD_REDUCED_COLOR_2``.
    """
    rrc = current_transforms.RandomResizedCrop(size, scale=scale)
    rng_state = np.random.get_state()
    np.random.seed(seed)
    ok = total = 0
    full_ms, half_ms = [], []
    for p in paths:
        buf = np.fromfile(p, np.uint8)
        h, w = cv2.imdecode(buf, cv2.IMREAD_COLOR).shape[:2]
        for _ in range(samples):
            crops = [rrc.sample_crop(h, w) for _ in range(2)]
            ok += all(min(cw, ch) >= 2 * size for _, _, cw, ch in crops)
            total += 1
        for flags, out in ((cv2.IMREAD_COLOR, full_ms),
                           (cv2.IMREAD_REDUCED_COLOR_2, half_ms)):
            start = time.perf_counter()
            for _ in range(10):
                cv2.imdecode(buf, flags)
            out.append(100. * (time.perf_counter() - start))
    np.random.set_state(rng_state)
    return dict(fraction_half=ok / total,
                decode_ms=dict(full=statistics.mean(full_ms),
                               reduced_2=statistics.mean(half_ms)))


def check_options(rounds: int = 15, max_side: int = 500,
                  worker_rounds: int = 3, workers: Sequence[int] = ()) -> None:
    """Refuse counts the benchmark cannot run with.

    Args:
        rounds (int): Passes over the images. Defaults to 15.
        max_side (int): Longest side of the written photos. Defaults to 500.
        worker_rounds (int): DataLoader measurements per variant and count.
            Defaults to 3.
        workers (Sequence[int]): DataLoader worker counts. Defaults to ().

    Raises:
        ValueError: naming the command-line flags at fault.
    """
    if rounds < 1 or max_side < 32 or worker_rounds < 1:
        raise ValueError('--rounds and --worker-rounds must be >= 1 and '
                         '--max-side >= 32')
    if any(w < 1 for w in workers):
        raise ValueError(f'--workers must be >= 1, got {list(workers)}')


def image_paths(folder: str) -> List[str]:
    """The ``.jpg``/``.jpeg``/``.png`` files under ``folder``, sorted."""
    paths = sorted(p for p in glob.glob(osp.join(folder, '**', '*'),
                                        recursive=True)
                   if osp.splitext(p)[1].lower() in ('.jpg', '.jpeg', '.png'))
    if not paths:
        raise FileNotFoundError(f'no .jpg/.jpeg/.png under {folder}')
    return paths


def run_pipeline_benchmark(config: str = DEFAULT_CONFIG,
                           images: Optional[str] = None,
                           max_side: int = 500,
                           rounds: int = 15,
                           workers: Sequence[int] = (),
                           worker_images: int = 256,
                           worker_rounds: int = 3,
                           baseline_rev: Optional[str] = None,
                           decode_study: bool = False,
                           seed: int = 0,
                           out: Optional[str] = None,
                           command: Optional[str] = None,
                           log: Callable = print) -> dict:
    """Run the benchmark; print a table and return the results.

    What ``tools/analysis/benchmark_pipeline.py`` does. This process and
    its children run OpenCV and torch single-threaded.

    Args:
        config (str): A config with a ``train_pipeline``. Defaults to
            :data:`DEFAULT_CONFIG`.
        images (str, optional): A folder of images. Defaults to None
            (scikit-image's photos written to a temporary folder).
        max_side (int): Longest side of the written photos. Defaults to 500.
        rounds (int): Passes over the images (median reported).
            Defaults to 15.
        workers (Sequence[int]): Also measure DataLoaders with these numbers
            of worker processes (>= 1). Defaults to ().
        worker_images (int): Images per DataLoader measurement.
            Defaults to 256.
        worker_rounds (int): DataLoader measurements per variant and count
            (interleaved, median reported). Defaults to 3.
        baseline_rev (str, optional): A git revision whose transforms run
            side by side. Defaults to None.
        decode_study (bool): Also measure reduced-size JPEG decoding
            (:func:`reduced_decode_study`). Defaults to False.
        seed (int): Base numpy seed. Defaults to 0.
        out (str, optional): Write the results as JSON here. Defaults to
            None.
        command (str, optional): The command line recorded in the results.
            Defaults to None (``python tools/analysis/benchmark_pipeline.py``
            with this process's arguments).
        log (Callable): Printer of the table. Defaults to ``print``.

    Returns:
        dict: :func:`measure_single`'s results with ``workers`` (variant ->
        worker count -> images/s), ``decode_study`` (if asked), ``paths``
        (file names), ``command`` and ``load`` (the load average before
        and after, :class:`~.measure.LoadRecord`, which warns above 0.5 per
        core).
    """
    from mmengine.config import Config
    check_options(rounds, max_side, worker_rounds, workers)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    cfg = Config.fromfile(config)
    if 'train_pipeline' not in cfg:
        raise KeyError(f'{config} defines no `train_pipeline`')
    if images:
        paths = image_paths(images)
    else:
        paths = write_photos(tempfile.mkdtemp(prefix='bench_photos_'),
                             max_side)
    variants = []
    if baseline_rev:
        variants.append(Variant(f'baseline@{baseline_rev}', rev=baseline_rev))
    variants.append(Variant('current'))
    from .measure import LoadRecord, format_load
    with LoadRecord(log) as load:
        res = measure_single(variants, cfg.train_pipeline, paths, rounds,
                             seed)
        res['workers'] = {v.name: {} for v in variants}
        for w in workers:
            runs = {v.name: [] for v in variants}
            for r in range(worker_rounds):  # interleaved, alternating
                for v in (variants if r % 2 == 0 else variants[::-1]):
                    runs[v.name].append(measure_workers(
                        v, cfg.train_pipeline, paths, w, worker_images))
            for v in variants:
                res['workers'][v.name][w] = statistics.median(runs[v.name])
        if decode_study:
            res['decode_study'] = reduced_decode_study(paths)
    res['load'] = load.as_dict()
    res['paths'] = [osp.basename(p) for p in paths]
    res['command'] = command or ' '.join(
        ['python', 'tools/analysis/benchmark_pipeline.py', *sys.argv[1:]])
    log(format_table(res))
    log(format_load(res['load']))
    if out:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            json.dump(res, f, indent=2)
    return res


def format_table(res: dict) -> str:
    """The results as a markdown table (ms per image, images/s, ratios).

    Args:
        res (dict): :func:`run_pipeline_benchmark` or
            :func:`measure_single` results.

    Returns:
        str: The table, then the pixel comparison and decode study lines.
    """
    names = list(res['images_per_s'])
    keys = []
    for n in names:
        keys += [k for k in res['ms_per_image'][n] if k not in keys]
    lines = ['| transform | ' + ' | '.join(names) + ' |',
             '|---' * (len(names) + 1) + '|']
    for k in keys:
        lines.append(f'| {k} | ' + ' | '.join(
            f"{res['ms_per_image'][n].get(k, math.nan):.3f} ms"
            for n in names) + ' |')
    lines.append('| **images/s (1 core)** | ' + ' | '.join(
        f"{res['images_per_s'][n]:.1f}" for n in names) + ' |')
    lines.append('| ratio (paired median) | ' + ' | '.join(
        f"{res['ratio'][n]:.2f}x" for n in names) + ' |')
    for w in sorted({w for d in res.get('workers', {}).values() for w in d}):
        lines.append(f'| images/s, {w} workers | ' + ' | '.join(
            f"{res['workers'][n][w]:.1f}" for n in names) + ' |')
    if 'max_abs_diff' in res:
        lines.append('')
        for n in names[1:]:
            lines.append(
                f'{n} vs {names[0]}: max |pixel diff| '
                f"{res['max_abs_diff'][n]}, differing pixels "
                f"{100 * res['differing_pixels'][n]:.4f} %, records equal: "
                f"{res['records_equal'][n]}")
    if 'decode_study' in res:
        d = res['decode_study']
        lines.append(
            f"decode: full {d['decode_ms']['full']:.2f} ms, 1/2 "
            f"{d['decode_ms']['reduced_2']:.2f} ms per image; both crops "
            f"allow 1/2 in {100 * d['fraction_half']:.1f} % of images")
    return '\n'.join(lines)

