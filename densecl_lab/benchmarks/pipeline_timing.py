# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Per-transform timing of pipeline variants on one core each, side by side
(:func:`measure_single`, the single-core half of :mod:`.pipeline`).
"""
import contextlib
import multiprocessing as mp
import statistics
import time
import types
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from densecl_plugin.datasets import transforms as current_transforms
from .baseline_transforms import Variant, build_pipeline, transforms_of


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
def fork_safe_opencv():
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


def _serve(conn, variant: Variant, pipeline_cfg: Sequence[dict]) -> None:
    """Child process: run the pipeline on request, reply with its timings."""
    try:
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        pipeline, totals = timed_pipeline(pipeline_cfg,
                                          transforms_of(variant))
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


@contextlib.contextmanager
def _servers(variants: Sequence[Variant], pipeline_cfg: Sequence[dict]):
    """One forked single-threaded process per variant (:func:`_serve`),
    ready; yields ``ask(name, path, seed, send_views)``, which returns the
    variant's reply or raises its error. The processes stop on exit."""
    ctx = mp.get_context('fork')
    conns, procs = {}, []
    try:
        with fork_safe_opencv():
            for v in variants:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve,
                                   args=(child, v, pipeline_cfg), daemon=True)
                proc.start()
                procs.append(proc)
                conns[v.name] = parent

        def reply(name: str):
            out = conns[name].recv()
            if isinstance(out, Exception):
                raise out
            return out

        def ask(name: str, path: str, seed: int, send_views: bool):
            conns[name].send((path, seed, send_views))
            return reply(name)

        for v in variants:
            reply(v.name)  # ready, or its error
        yield ask
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


class _ViewComparison:
    """Pixel and record differences of each variant's views from the first
    variant's, accumulated over images."""

    def __init__(self, names: Sequence[str]) -> None:
        self.ref, self.others = names[0], list(names[1:])
        self.max_diff = {n: 0 for n in self.others}
        self.differing = {n: 0 for n in self.others}
        self.records_equal = {n: True for n in self.others}
        self.pixels = 0

    def add(self, outs: Dict[str, tuple]) -> None:
        """One image's replies (``(seconds, totals, views, records)``)."""
        ref_views, ref_records = outs[self.ref][2:]
        self.pixels += sum(v.size for v in ref_views)
        for n in self.others:
            views, records = outs[n][2:]
            diffs = [np.abs(a.astype(np.int16) - b.astype(np.int16))
                     for a, b in zip(ref_views, views)]
            self.max_diff[n] = max(self.max_diff[n],
                                   max(int(d.max()) for d in diffs))
            self.differing[n] += sum(int(np.count_nonzero(d)) for d in diffs)
            self.records_equal[n] &= records == ref_records

    def result(self) -> dict:
        return dict(max_abs_diff=self.max_diff,
                    differing_pixels={n: v / self.pixels
                                      for n, v in self.differing.items()},
                    records_equal=self.records_equal)


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
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f'variant names must be unique, got {names}')
    compare = len(names) > 1
    views = _ViewComparison(names)
    per_round = {n: [] for n in names}
    ms_rounds = {n: [] for n in names}
    with _servers(variants, pipeline_cfg) as ask:
        for p in paths[:2]:  # warm-up: first calls, OpenCV kernels
            for name in names:
                ask(name, p, seed, False)
        for r in range(rounds):
            elapsed = {n: 0. for n in names}
            ms = {n: {} for n in names}
            for i, p in enumerate(paths):
                step = r * len(paths) + i
                order = names if step % 2 == 0 else names[::-1]
                outs = {n: ask(n, p, seed + step, compare) for n in order}
                for n, out in outs.items():
                    elapsed[n] += out[0]
                    for k, t in _overhead_only(out[1]).items():
                        ms[n][k] = ms[n].get(k, 0.) + 1e3 * t / len(paths)
                if compare:
                    views.add(outs)
            for n in names:
                per_round[n].append(len(paths) / elapsed[n])
                ms_rounds[n].append(ms[n])
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
    if compare:
        result.update(views.result())
    return result
