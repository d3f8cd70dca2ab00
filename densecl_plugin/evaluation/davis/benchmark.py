# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The DAVIS-2017 benchmark run behind
``tools/benchmarks/davis/label_propagation.py``: config in, tables out."""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Union

from mmengine.config import Config

from .label_propagation import build_res4_encoder, run_davis
from .metrics import format_table, sequence_rows

#: the propagation settings a config may set, and videowalk's values
PROPAGATION_DEFAULTS = dict(topk=10, radius=12, n_context=20,
                            temperature=0.05)


def write_tables(result: Dict[str, object], work_dir: str,
                 split: str = 'val') -> Dict[str, str]:
    """Write the result tables, named as davis2017-evaluation names them.

    Args:
        result (dict): what :func:`run_davis` returned (with evaluation).
        work_dir (str): output folder.
        split (str): for the file names. Defaults to ``'val'``.

    Returns:
        dict[str, str]: ``global_csv``, ``per_sequence_csv`` and ``markdown``
        paths.
    """
    os.makedirs(work_dir, exist_ok=True)
    paths = dict(
        global_csv=osp.join(work_dir, f'global_results-{split}.csv'),
        per_sequence_csv=osp.join(work_dir,
                                  f'per-sequence_results-{split}.csv'),
        markdown=osp.join(work_dir, f'results-{split}.md'))
    with open(paths['global_csv'], 'w') as f:
        f.write(format_table([result['global_row']], 'csv', digits=6))
    with open(paths['per_sequence_csv'], 'w') as f:
        f.write(format_table(result['per_object'], 'csv', digits=6))
    fps = result['frames'] / max(result['seconds'], 1e-9)
    with open(paths['markdown'], 'w') as f:
        f.write(f'## DAVIS-2017 {split}: label propagation\n\n'
                f'{len(result["sequences"])} sequences, {result["frames"]} '
                f'frames, {result["seconds"]:.1f} s ({fps:.2f} frames/s)\n\n')
        f.write(format_table([result['global_row']], 'markdown'))
        f.write('\n### Per sequence (mean over its objects)\n\n')
        f.write(format_table(sequence_rows(result['per_object']),
                             'markdown'))
        f.write('\n### Per object\n\n')
        f.write(format_table(result['per_object'], 'markdown'))
    return paths


def load_benchmark_config(config: str, davis_root: Optional[str] = None,
                          cfg_options: Optional[dict] = None) -> Config:
    """The benchmark config of ``tools/benchmarks/davis/label_propagation.py``
    with its command-line overrides applied.

    Args:
        config (str): the config file.
        davis_root (str, optional): the DAVIS-2017 root (``data.root``).
            Defaults to the config's.
        cfg_options (dict, optional): ``--cfg-options`` overrides. Defaults
            to None.

    Returns:
        Config: the config :func:`run_benchmark` takes.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if davis_root:
        cfg.setdefault('data', {})['root'] = davis_root
    return cfg


def run_benchmark(cfg: Union[Config, dict],
                  checkpoint: Optional[str],
                  work_dir: str,
                  device: str = 'cpu',
                  sequences: Optional[Sequence[str]] = None,
                  evaluate: bool = True) -> Dict[str, object]:
    """Build the encoder of ``cfg``, propagate, evaluate, write tables.

    ``cfg`` keys: ``encoder`` (backbone config), ``propagation`` (any of
    :data:`PROPAGATION_DEFAULTS`), ``data`` (``root``, ``split``,
    ``resolution``) and ``batch_size`` (frames per forward).

    Args:
        cfg (Config | dict): the benchmark config.
        checkpoint (str, optional): pre-trained weights (any layout that
            :func:`~densecl_plugin.evaluation.load_pretrained_backbone`
            takes); None keeps the encoder's own init.
        work_dir (str): predictions go to ``<work_dir>/Annotations/<res>``,
            tables to ``<work_dir>``.
        device (str): Defaults to ``'cpu'``.
        sequences (Sequence[str], optional): a subset. Defaults to the split.
        evaluate (bool): compute J&F and write tables. Defaults to True.

    Returns:
        dict: see :func:`run_davis`, plus ``tables`` (paths) when evaluated.
    """
    cfg = Config(cfg) if isinstance(cfg, dict) else cfg
    unknown = set(cfg.get('propagation', {})) - set(PROPAGATION_DEFAULTS)
    if unknown:
        raise KeyError(f'unknown propagation settings {sorted(unknown)}; '
                       f'known: {sorted(PROPAGATION_DEFAULTS)}')
    prop = {**PROPAGATION_DEFAULTS, **cfg.get('propagation', {})}
    data = cfg.get('data', {})
    if not data.get('root'):
        raise KeyError('the config needs data.root (the DAVIS-2017 folder); '
                       'set it with --davis-root or --cfg-options '
                       'data.root=...')
    split = data.get('split', 'val')
    encoder = build_res4_encoder(cfg.get('encoder'), checkpoint, device)
    result = run_davis(encoder, data['root'], work_dir, sequences, split,
                       data.get('resolution', '480p'),
                       batch_size=cfg.get('batch_size', 5), device=device,
                       evaluate=evaluate, logger='current', **prop)
    if evaluate:
        result['tables'] = write_tables(result, work_dir, split)
    return result
