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
import contextlib
import glob
import json
import math
import multiprocessing as mp
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
import types
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from densecl_plugin.datasets import transforms as current_transforms

#: the repository (the git history of ``--baseline-rev``, ``configs/``)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.realpath(__file__))))

#: the MoCo v2 pipeline config the benchmark runs by default (224 px views)
DEFAULT_CONFIG = osp.join(ROOT, 'configs/_base_/datasets/mocov2_pipeline.py')
#: scikit-image's colour photographs that load offline
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'immunohistochemistry',
          'hubble_deep_field', 'retina')
#: what a baseline revision contributes (paths relative to the repository)
_BASELINE_DIRS = ('densecl_plugin/datasets/transforms', )
_BASELINE_FILES = ('densecl_plugin/datasets/self_sup_data_sample.py', )


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


def _git(args: Sequence[str], root: str = ROOT) -> str:
    try:
        return subprocess.run(['git', *args], cwd=root, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, 'stderr', '') or str(e)
        raise RuntimeError(f'git {" ".join(args)} failed in {root}: '
                           f'{err.strip()}') from e


def load_baseline_transforms(rev: str,
                             root: str = ROOT) -> types.ModuleType:
    """Import the transforms package as it was at git revision ``rev``.

    The files of ``densecl_plugin/datasets/transforms`` (and the data sample
    they import) at ``rev`` are written to a temporary package and imported
    with a registry of their own (parented to MMEngine's), so that they
    neither clash with nor replace the current transforms.

    Args:
        rev (str): A git revision, e.g. a commit hash.
        root (str): The repository. Defaults to this checkout.

    Returns:
        module: The baseline ``transforms`` package (``build_pipeline``,
        ``RandomResizedCrop``, ...).

    Raises:
        RuntimeError: if git or the revision is not available.
    """
    from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
    from mmengine.registry import Registry
    sha = _git(['rev-parse', '--short=10', f'{rev}^{{commit}}'], root).strip()
    pkg = f'densecl_baseline_{sha}'
    if pkg in sys.modules:
        return sys.modules[f'{pkg}.transforms']
    folder = tempfile.mkdtemp(prefix='densecl_baseline_')
    files = list(_BASELINE_FILES)
    for d in _BASELINE_DIRS:
        files += [f for f in _git(['ls-tree', '--name-only', sha, d + '/'],
                                  root).split() if f.endswith('.py')]
    for f in files:
        rel = osp.relpath(f, 'densecl_plugin/datasets')
        dst = osp.join(folder, pkg, rel)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        with open(dst, 'w') as fh:
            fh.write(_git(['show', f'{sha}:{f}'], root))
    open(osp.join(folder, pkg, '__init__.py'), 'a').close()
    registry = types.ModuleType('densecl_plugin.registry')
    registry.TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS,
                                   scope=pkg)
    saved = sys.modules['densecl_plugin.registry']
    sys.modules['densecl_plugin.registry'] = registry
    sys.path.insert(0, folder)
    try:
        __import__(f'{pkg}.transforms')
    finally:
        sys.modules['densecl_plugin.registry'] = saved
        sys.path.remove(folder)
    return sys.modules[f'{pkg}.transforms']


def build_pipeline(pipeline_cfg: Sequence[dict],
                   transforms: types.ModuleType = current_transforms):
    """Build a pipeline with ``transforms`` (current or a baseline), in that
    package's registry scope.

    Under a default scope (a runner's, or one an earlier caller left),
    MMEngine resolves ``type`` names through that scope's registry first; so
    each package's pipeline is built with its own scope as the default.

    Args:
        pipeline_cfg (Sequence[dict]): Transform configs.
        transforms (module): The transforms package. Defaults to the
            current one.

    Returns:
        Compose: The pipeline.
    """
    from mmengine.registry import DefaultScope
    scope = transforms.__name__.split('.')[0]
    with DefaultScope.overwrite_default_scope(scope):
        return transforms.build_pipeline(pipeline_cfg)


class Timed:
    """A transform that adds its wall time to ``totals[name]``."""

    def __init__(self, transform: Callable, name: str,
                 totals: Dict[str, float]) -> None:
        self.transform = transform
        self.name = name
        self.totals = totals
        totals.setdefault(name, 0.)

    def __call__(self, results: dict) -> Optional[dict]:
        start = time.perf_counter()
        out = self.transform(results)
        self.totals[self.name] += time.perf_counter() - start
        return out


def timed_pipeline(pipeline_cfg: Sequence[dict],
                   transforms: types.ModuleType = current_transforms
                   ) -> Tuple[Callable, Dict[str, float]]:
    """Build a pipeline whose every transform (also inside ``MultiView``)
    records its time.

    Args:
        pipeline_cfg (Sequence[dict]): Transform configs.
        transforms (module): The transforms package that builds them.
            Defaults to the current one.

    Returns:
        tuple[Compose, dict[str, float]]: The pipeline and the seconds spent
        per transform name, accumulated over calls. ``MultiView`` is its own
        overhead (copies, records), without the view transforms inside it.
    """
    pipeline = build_pipeline(pipeline_cfg, transforms)
    totals: Dict[str, float] = {}
    wrapped = set()
    for i, t in enumerate(pipeline.transforms):
        name = type(t).__name__
        inner = getattr(t, 'pipelines', None)
        if inner is not None:  # MultiView: time each view transform
            for compose in inner:
                if id(compose) in wrapped:
                    continue
                wrapped.add(id(compose))
                compose.transforms = [
                    Timed(v, type(v).__name__, totals)
                    for v in compose.transforms
                ]
            name = f'{name} (overhead)'
        pipeline.transforms[i] = Timed(t, name, totals)
    return pipeline, totals


def _overhead_only(totals: Dict[str, float]) -> Dict[str, float]:
    """Subtract the view transforms' time from ``MultiView``'s."""
    out = dict(totals)
    for name in out:
        if name.endswith('(overhead)'):
            inner = sum(v for k, v in totals.items()
                        if k not in ('LoadImageFromFile', 'PackSelfSupInputs')
                        and not k.endswith('(overhead)'))
            out[name] = totals[name] - inner
    return out


@contextlib.contextmanager
def _fork_safe_opencv():
    """Run OpenCV single-threaded in this process while children are forked.

    OpenCV's thread pool does not survive ``fork``: a child forked while the
    parent's pool has threads can hang in its first parallel call. With one
    thread there is no pool (MMEngine's runner does the same before it
    forks dataloader workers). The parent's setting is restored afterwards.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def _view_arrays(results: dict) -> List[np.ndarray]:
    return [t.permute(1, 2, 0).numpy() for t in results['inputs']]


class Variant(NamedTuple):
    """One pipeline implementation to measure.

    Attributes:
        name (str): Its name in the results.
        rev (str, optional): Git revision of the transforms; None for the
            current checkout.
    """
    name: str
    rev: Optional[str] = None


def _transforms_of(variant: Variant) -> types.ModuleType:
    if variant.rev is None:
        return current_transforms
    return load_baseline_transforms(variant.rev)


def _serve(conn, variant: Variant, pipeline_cfg: Sequence[dict]) -> None:
    """Child process: run the pipeline on request, reply with its timings."""
    try:
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        pipeline, totals = timed_pipeline(pipeline_cfg,
                                          _transforms_of(variant))
        conn.send(None)
        while True:
            msg = conn.recv()
            if msg is None:
                return
            path, seed, send_views = msg
            for k in totals:
                totals[k] = 0.
            np.random.seed(seed)
            start = time.perf_counter()
            out = pipeline(dict(img_path=path))
            elapsed = time.perf_counter() - start
            conn.send((elapsed, dict(totals),
                       _view_arrays(out) if send_views else None,
                       out['data_samples'].views))
    except Exception as e:  # reported by the parent, with the variant name
        conn.send(RuntimeError(f'{variant.name}: {type(e).__name__}: {e}'))


def measure_single(variants: Sequence[Variant],
                   pipeline_cfg: Sequence[dict],
                   paths: Sequence[str],
                   rounds: int = 15,
                   seed: int = 0) -> dict:
    """Time pipeline variants on one core each, side by side.

    Each variant runs in its own single-threaded process (its own heap, so
    that one variant's allocations do not change another's page faults).
    The processes take turns image by image (the order alternating), each
    re-seeding numpy with the same seed, so that they run under the same
    machine load and draw the same random parameters. The throughput of a
    round (one pass over ``paths``) is ``len(paths) / time``; the figures
    reported (throughput and per-transform ms) are medians over rounds, the
    ratios medians of the per-round ratios to the first variant.

    Args:
        variants (Sequence[Variant]): What to compare; the first is the
            reference of the ratios and pixel comparisons.
        pipeline_cfg (Sequence[dict]): The pipeline config (a
            ``train_pipeline``).
        paths (Sequence[str]): Image files.
        rounds (int): Passes over ``paths``. Defaults to 15.
        seed (int): Base numpy seed. Defaults to 0.

    Returns:
        dict: ``images_per_s`` (median per variant), ``images_per_s_rounds``,
        ``ms_per_image`` (per variant and transform), ``ratio`` and, with
        several variants, ``max_abs_diff``/``differing_pixels`` of their
        views against the first variant's and ``records_equal``.
    """
    ctx = mp.get_context('fork')
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f'variant names must be unique, got {names}')
    conns = {}
    procs = []
    try:
        with _fork_safe_opencv():
            for v in variants:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve,
                                   args=(child, v, pipeline_cfg), daemon=True)
                proc.start()
                procs.append(proc)
                conns[v.name] = parent

        def ask(name, path, seed, send_views):
            conns[name].send((path, seed, send_views))
            reply = conns[name].recv()
            if isinstance(reply, Exception):
                raise reply
            return reply

        for name in names:
            ready = conns[name].recv()
            if isinstance(ready, Exception):
                raise ready
        for p in paths[:2]:  # warm-up: first calls, OpenCV kernels
            for name in names:
                ask(name, p, seed, False)
        per_round = {n: [] for n in names}
        ms_rounds = {n: [] for n in names}
        max_diff = {n: 0 for n in names[1:]}
        differing = {n: 0 for n in names[1:]}
        records_equal = {n: True for n in names[1:]}
        pixels = 0
        for r in range(rounds):
            elapsed = {n: 0. for n in names}
            ms = {n: {} for n in names}
            for i, p in enumerate(paths):
                step = r * len(paths) + i
                order = names if step % 2 == 0 else names[::-1]
                outs = {}
                for n in order:
                    outs[n] = ask(n, p, seed + step, len(names) > 1)
                    elapsed[n] += outs[n][0]
                    for k, t in _overhead_only(outs[n][1]).items():
                        ms[n][k] = ms[n].get(k, 0.) + 1e3 * t / len(paths)
                if len(names) == 1:
                    continue
                ref_views, ref_records = outs[names[0]][2:]
                pixels += sum(v.size for v in ref_views)
                for n in names[1:]:
                    views, records = outs[n][2:]
                    diffs = [
                        np.abs(a.astype(np.int16) - b.astype(np.int16))
                        for a, b in zip(ref_views, views)
                    ]
                    max_diff[n] = max(max_diff[n],
                                      max(int(d.max()) for d in diffs))
                    differing[n] += sum(int(np.count_nonzero(d))
                                        for d in diffs)
                    records_equal[n] &= records == ref_records
            for n in names:
                per_round[n].append(len(paths) / elapsed[n])
                ms_rounds[n].append(ms[n])
    finally:
        for conn in conns.values():
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
    result = dict(
        images=len(paths),
        rounds=rounds,
        images_per_s={n: statistics.median(per_round[n]) for n in names},
        images_per_s_rounds=per_round,
        ms_per_image={
            n: {k: statistics.median(m.get(k, 0.) for m in ms_rounds[n])
                for k in ms_rounds[n][0]}
            for n in names
        },
        ratio={
            n: statistics.median(a / b for a, b in zip(per_round[n],
                                                       per_round[names[0]]))
            for n in names
        })
    if len(names) > 1:
        result['max_abs_diff'] = max_diff
        result['differing_pixels'] = {n: v / pixels
                                      for n, v in differing.items()}
        result['records_equal'] = records_equal
    return result


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
    pipeline = build_pipeline(pipeline_cfg, _transforms_of(variant))
    dataset = PipelineDataset(paths, pipeline, num_images + batch_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init,
        multiprocessing_context='fork')
    count, start = 0, None
    with _fork_safe_opencv():
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

