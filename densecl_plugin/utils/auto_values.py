# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Values that size themselves: ``'auto'`` in a pre-training config,
resolved from the data set size and the world size before the Runner is
built (``docs/auto_values.md``).

The rules are small pure functions (:func:`auto_queue_len`,
:func:`auto_split_bn_groups`, :func:`auto_warmup_iters`,
:func:`scaled_lr`, :func:`dense_grid`); :class:`PretrainingSanityHook
<densecl_plugin.engine.hooks.PretrainingSanityHook>` suggests the same
values, so a resolved config draws no suggestion from it.
:func:`resolve_auto_values` applies them to a config in place (explicit
values always win) and returns the table of what a run will use; it adds a
``ResolvedValuesHook`` that logs the table when the run starts and writes it
to ``<work_dir>/resolved_values.json``. ``tools/train.py``
(:func:`densecl_plugin.apis.train`), the demo and the study resolve through
it.

Keys that may be ``'auto'``:

* ``model.queue_len``: :func:`auto_queue_len` of the data set size ``n``
  and the total batch;
* ``model.split_bn_groups``: :func:`auto_split_bn_groups` (2 in one
  process, 1 = off under DDP, where shuffle-BN works);
* ``optim_wrapper.optimizer.lr``: ``auto_scale_lr.base_lr`` at
  ``auto_scale_lr.base_batch_size``, scaled to the total batch by
  ``auto_scale_lr.rule``: ``'linear'`` through MMEngine's own
  ``auto_scale_lr`` (``enable=True``), ``'sqrt'`` here (MMEngine scales
  linearly only);
* ``start_iters`` of a ``DenseCLHook`` in ``custom_hooks``:
  :func:`auto_warmup_iters`.
"""
import copy
import json
import math
import os
import os.path as osp
from typing import Any, List, Optional

from densecl_plugin.utils.config_search import crop_size

AUTO = 'auto'
#: the paper's queue (ImageNet and COCO); 'auto' never goes above it
MAX_QUEUE = 65536
#: from this many images on, the paper's recipes are the evidence (the
#: authors pre-trained on COCO, 118,287 images, and ImageNet, 1.28M: dense
#: loss from iteration 0, K = 65536 = 0.55 n on COCO); below it, the
#: small-data search of docs/pretraining_health.md
LARGE_DATA = 100_000
#: the smallest dense grid measured to learn here (DenseCL, ResNet-18,
#: 80 px views on the demo pool: docs/pretraining_health.md)
MIN_DENSE_GRID = 3
#: MoCo v2 / DenseCL: SGD lr 0.03 for a total batch of 256
LR_PER_256 = 0.03
#: the scaling rules of ``auto_scale_lr.rule``
LR_RULES = ('linear', 'sqrt')
#: the file :func:`resolve_auto_values`'s hook writes into the work dir
RESOLVED_FILE = 'resolved_values.json'
#: the registered name of the hook that logs and saves the table
HOOK_TYPE = 'densecl_plugin.ResolvedValuesHook'

_WORLD_VARS = {'pytorch': 'WORLD_SIZE', 'slurm': 'SLURM_NTASKS',
               'mpi': 'OMPI_COMM_WORLD_SIZE'}


def own_key_share(K: int, n: int) -> float:
    """Share of queries with an older key of their own image in the queue.

    MMEngine's ``InfiniteSampler(shuffle=True)`` draws a fresh permutation
    of the ``n`` images each pass. An image drawn at position ``p2`` of a
    pass was last drawn at ``p1`` of the previous one, ``n - p1 + p2``
    draws ago, ``p1, p2`` independent uniform: its previous key is still
    among the last ``K`` keys iff ``p2 - p1 <= K - n``. With ``r = K / n``:
    ``r**2 / 2`` for ``r <= 1``, ``1 - (2 - r)**2 / 2`` for ``1 < r < 2``,
    1 beyond. (Checked by simulation in the tests; e.g. 405 images, K=256:
    20 %; K = n: 50 %; K = n / 4: 3 %. The mean number of own keys in the
    queue is ``r`` in every case.)

    Args:
        K (int): the queue length.
        n (int): the number of images.
    """
    r = K / max(n, 1)
    if r <= 1:
        return r * r / 2
    if r < 2:
        return 1 - (2 - r)**2 / 2
    return 1.0


def pow2_floor(x: float) -> int:
    """The largest power of two ``<= x`` (1 for ``x < 2``)."""
    return 2**int(math.floor(math.log2(x))) if x >= 2 else 1


def pow2_ceil(x: float) -> int:
    """The smallest power of two ``>= x`` (1 for ``x <= 1``)."""
    return 2**int(math.ceil(math.log2(x))) if x > 1 else 1


def auto_queue_len(n: int, total_batch: int) -> int:
    """The queue length ``'auto'`` gives for ``n`` images.

    The largest power of two ``<= n / 4`` (at most 1 query in 32 meets an
    older key of its own image, :func:`own_key_share`), raised to hold at
    least one step's keys (the total batch, as a power of two) as long as
    that stays ``<= n / 2`` (1 in 8: what the sanity hook accepts on small
    data), and never above the paper's 65536. On the demo pool (405
    images) this is the measured recipe's 64; K = 128 stalled (640
    iterations) and K = 256 collapsed (160 iterations) there.
    LightlyTrain's buckets give twice as much below 200k images
    (docs/auto_values.md).

    Args:
        n (int): the number of images.
        total_batch (int): batch per process x processes.
    """
    k = pow2_floor(max(n / 4, 1))
    k = max(k, min(pow2_ceil(total_batch), pow2_floor(max(n / 2, 1))))
    return min(k, MAX_QUEUE)


def auto_split_bn_groups(batch: int, world_size: int) -> int:
    """``split_bn_groups`` for ``'auto'``: 2 in one process (the measured
    recipe; one process has no shuffle-BN, so query and key would share
    the BN statistics), 1 (off) under DDP, where shuffle-BN works, or for
    a batch that 2 groups of at least 2 images do not divide.

    Args:
        batch (int): the batch per process.
        world_size (int): the number of processes.
    """
    if world_size == 1 and batch % 2 == 0 and batch >= 4:
        return 2
    return 1


def auto_warmup_iters(n: int, max_iters: int) -> int:
    """``DenseCLHook.start_iters`` for ``'auto'``: a tenth of the run below
    :data:`LARGE_DATA` images (the dense positives are picked by an argmax
    over backbone features, nearly arbitrary at random init: the recipe of
    docs/pretraining_health.md), 0 from there on (the authors run the
    dense loss from iteration 0 on COCO and ImageNet).

    Args:
        n (int): the number of images.
        max_iters (int): the iterations of the run.
    """
    return 0 if n >= LARGE_DATA else max(1, max_iters // 10)


def sqrt_rule_lr(total_batch: int) -> float:
    """The square-root scaling rule from :data:`LR_PER_256`:
    ``0.03 x sqrt(total / 256)`` (0.0075 at 16)."""
    return LR_PER_256 * math.sqrt(total_batch / 256)


def scaled_lr(base_lr: float, base_batch: int, total_batch: int,
              rule: str) -> float:
    """``base_lr`` (at ``base_batch``) scaled to ``total_batch``.

    Args:
        base_lr (float): the lr at ``base_batch``.
        base_batch (int): the batch ``base_lr`` is for.
        total_batch (int): batch per process x processes.
        rule (str): ``'linear'`` (``x total / base``, MMEngine's
            ``auto_scale_lr``) or ``'sqrt'`` (``x sqrt(total / base)``).
    """
    ratio = total_batch / base_batch
    return base_lr * (ratio if rule == 'linear' else math.sqrt(ratio))


def dense_grid(size: int, backbone: Optional[dict] = None) -> Optional[int]:
    """The side of the C5 grid of a ResNet on ``size`` px views.

    The arithmetic of mmdet's / torchvision's ResNet: the 7x7 stride-2
    stem, the stride-2 max pool and a 3x3 stride-2 convolution in each of
    the last three stages (``strides=(1, 2, 2, 2)``, no dilation). None
    for a backbone config of another shape (the sanity hook measures the
    grid by a forward pass instead).

    Args:
        size (int): the view size in pixels.
        backbone (dict, optional): the backbone config. Defaults to None
            (a standard ResNet).
    """
    b = backbone or {}
    if b and ('ResNet' not in str(b.get('type', '')) or b.get('deep_stem')
              or tuple(b.get('strides', (1, 2, 2, 2))) != (1, 2, 2, 2)
              or any(d != 1 for d in b.get('dilations', (1, 1, 1, 1)))
              or tuple(b.get('out_indices', (3, )))[-1:] != (3, )):
        return None
    s = (size + 2 * 3 - 7) // 2 + 1  # stem
    for _ in range(4):  # max pool, then stages 2-4
        s = (s + 2 - 3) // 2 + 1
    return s


def launch_world_size(launcher: str = 'none') -> int:
    """The number of processes, read before distributed training starts.

    ``torchrun`` sets ``WORLD_SIZE``; ``srun`` (``--launcher slurm``) and
    ``mpirun`` (``--launcher mpi``) set ``SLURM_NTASKS`` /
    ``OMPI_COMM_WORLD_SIZE`` (MMEngine's ``init_dist`` copies them to
    ``WORLD_SIZE`` later).

    Args:
        launcher (str): the config's ``launcher``. Defaults to ``'none'``.

    Returns:
        int: 1 for ``'none'`` or where nothing says otherwise.
    """
    if launcher == 'none':
        return 1
    var = _WORLD_VARS.get(launcher, 'WORLD_SIZE')
    value = os.environ.get(var, os.environ.get('WORLD_SIZE', '1'))
    try:
        world = int(value)
    except ValueError:
        raise ValueError(f'{var}={value!r} is not a number of processes '
                         f'(launcher {launcher!r})') from None
    if world < 1:
        raise ValueError(f'{var}={world} must be >= 1 (launcher '
                         f'{launcher!r})')
    return world


def count_dataset(cfg) -> int:
    """The number of items of ``cfg.train_dataloader.dataset``.

    The data set is built as the Runner builds it (the config's
    ``default_scope``), but without its pipeline and without packing its
    data list when it is an MMEngine ``BaseDataset``, so only the index is
    made (a folder scan or a list file).

    Raises:
        ValueError: when the config has no ``train_dataloader.dataset``;
            the data set's own errors (a missing folder, say) propagate,
            and :func:`resolve_auto_values` names the key that needed it.
    """
    from mmengine.dataset import BaseDataset
    # MMEngine's registry under the config's scope finds ours (and imports
    # it) as the Runner does; utils/ imports no plugin layer above it
    from mmengine.registry import DATASETS, DefaultScope
    loader = cfg.get('train_dataloader') or {}
    ds_cfg = loader.get('dataset')
    if not ds_cfg:
        raise ValueError('train_dataloader.dataset is missing: the data set '
                         'size is needed')
    ds_cfg = copy.deepcopy(dict(ds_cfg))
    scope = cfg.get('default_scope', 'densecl_plugin')
    with DefaultScope.overwrite_default_scope(scope):
        cls = DATASETS.get(ds_cfg.get('type')) if isinstance(
            ds_cfg.get('type'), str) else ds_cfg.get('type')
        if isinstance(cls, type) and issubclass(cls, BaseDataset):
            ds_cfg.update(pipeline=[], serialize_data=False, lazy_init=False)
        dataset = DATASETS.build(ds_cfg)
    return len(dataset)


def _check_count(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < minimum:
        raise ValueError(f"{key} must be an int >= {minimum} or 'auto', "
                         f'got {value!r}')


def _kept(key: str, owner: dict, name: str, default: int, minimum: int,
          where: str = '') -> dict:
    """The row of a value that is not ``'auto'``: ``owner[name]`` (or its
    ``default``), checked to be an int >= ``minimum``."""
    value = owner.get(name, default)
    _check_count(key + where, value, minimum)
    return _row(key, value, 'explicit' if name in owner else 'default')


def _is_auto(key: str, value: Any) -> bool:
    if isinstance(value, str):
        if value != AUTO:
            raise ValueError(f"{key} must be 'auto' or a number, got "
                             f'{value!r}')
        return True
    return False


def _row(key: str, value: Any, source: str, rule: str = '') -> dict:
    return dict(key=key, value=value, source=source, rule=rule)


def _max_iters(cfg, n: Optional[int], total: int) -> Optional[int]:
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_iters' in train_cfg:
        return int(train_cfg['max_iters'])
    if 'max_epochs' in train_cfg and n is not None:
        drop = (cfg.get('train_dataloader') or {}).get('drop_last', False)
        per_epoch = n // total if drop else math.ceil(n / total)
        return int(train_cfg['max_epochs']) * max(per_epoch, 1)
    return None


def is_contrast_config(cfg) -> bool:
    """Whether ``cfg.model`` is a momentum-contrast pre-training model
    (it has a ``queue_len``)."""
    model = cfg.get('model') or {}
    return isinstance(model, dict) and 'queue_len' in model


def resolve_auto_values(cfg,
                        world_size: Optional[int] = None,
                        dataset_size: Optional[int] = None) -> List[dict]:
    """Resolve the ``'auto'`` values of a pre-training config in place.

    Explicit values are kept as they are. Configs of other models (mmdet,
    mmseg) are left alone. The table is also put into the config as a
    ``ResolvedValuesHook`` in ``custom_hooks``, which logs it when the run
    starts and writes it to ``<work_dir>/resolved_values.json``; a config
    resolved before (it holds that hook) is not resolved again.

    Args:
        cfg (Config): the config; changed in place.
        world_size (int, optional): the number of processes. Defaults to
            None: :func:`launch_world_size` of ``cfg.launcher``.
        dataset_size (int, optional): the number of images. Defaults to
            None: counted (:func:`count_dataset`) when a rule needs it.

    Returns:
        list[dict]: one row per value (``key``, ``value``, ``source``:
        ``'auto'``, ``'explicit'``, ``'counted'``, ``'given'`` or
        ``'launcher'``, and ``rule``).

    Raises:
        ValueError: a key holds neither ``'auto'`` nor a valid value, or an
            ``'auto'`` cannot be resolved (the message names the key).
    """
    if not is_contrast_config(cfg):
        return []
    hooks = list(cfg.get('custom_hooks') or [])
    done = [h for h in hooks if h.get('type') == HOOK_TYPE]
    if done:
        return copy.deepcopy(list(done[0]['rows']))
    model = cfg.model
    world_source = 'given'
    if world_size is None:
        world_size = launch_world_size(cfg.get('launcher', 'none'))
        world_source = f"launcher {cfg.get('launcher', 'none')!r}"
    _check_count('world size', world_size, 1)
    loader = cfg.get('train_dataloader') or {}
    batch = loader.get('batch_size', 1)
    _check_count('train_dataloader.batch_size', batch, 1)
    total = batch * world_size
    lr_cfg = ((cfg.get('optim_wrapper') or {}).get('optimizer') or {})
    warm = [h for h in hooks if str(h.get('type', '')).split('.')[-1]
            == 'DenseCLHook']

    auto_keys = []
    if _is_auto('model.queue_len', model.get('queue_len')):
        auto_keys.append('model.queue_len')
    if _is_auto('model.split_bn_groups', model.get('split_bn_groups', 1)):
        auto_keys.append('model.split_bn_groups')
    lr = lr_cfg.get('lr')
    lr_auto = _is_auto('optim_wrapper.optimizer.lr', lr)
    warm_auto = [h for h in warm if _is_auto(
        'DenseCLHook.start_iters (custom_hooks)', h.get('start_iters', 1000))]
    needs_n = 'model.queue_len' in auto_keys or bool(warm_auto)

    rows = []
    if dataset_size is not None:
        _check_count('dataset_size', dataset_size, 1)
        n, n_source = int(dataset_size), 'given'
    elif needs_n:
        try:
            n, n_source = count_dataset(cfg), 'counted'
        except Exception as err:  # noqa: BLE001 (re-raised, named)
            needing = [k for k in auto_keys if k == 'model.queue_len'] + \
                ['DenseCLHook.start_iters'] * bool(warm_auto)
            raise ValueError(
                f"{' and '.join(needing)}='auto' needs the data set size, "
                f'but train_dataloader.dataset could not be indexed: '
                f'{type(err).__name__}: {err}') from err
        if n < 1:
            raise ValueError(f"'auto' values need a data set, but "
                             f'train_dataloader.dataset has {n} items')
    else:
        n, n_source = None, 'not counted (no rule needs it)'
    rows.append(_row('data set size', n, n_source))
    rows.append(_row('world size', world_size, world_source))
    rows.append(_row('total batch', total, 'derived',
                     f'{batch} per process x {world_size}'))

    # the queue
    if 'model.queue_len' in auto_keys:
        model.queue_len = auto_queue_len(n, total)
        rows.append(_row('model.queue_len', model.queue_len, AUTO,
                         'largest power of 2 <= n/4, raised to the total '
                         'batch while <= n/2, at most 65536'))
    else:
        _check_count('model.queue_len', model.get('queue_len'), 1)
        rows.append(_row('model.queue_len', model.queue_len, 'explicit'))
    if n is not None:
        rows[-1]['own_key_share'] = round(own_key_share(model.queue_len, n),
                                          4)

    # split BN
    if 'model.split_bn_groups' in auto_keys:
        model.split_bn_groups = auto_split_bn_groups(batch, world_size)
        rows.append(_row('model.split_bn_groups', model.split_bn_groups,
                         AUTO, '2 in one process, 1 (off) under DDP'))
    else:
        rows.append(_kept('model.split_bn_groups', model,
                          'split_bn_groups', 1, 1))

    # the lr
    rows.append(_resolve_lr(cfg, lr_cfg, lr, lr_auto, total))

    # the lambda warm-up
    max_iters = _max_iters(cfg, n, total)
    for h in warm:
        if h in warm_auto:
            if max_iters is None:
                raise ValueError(
                    "DenseCLHook.start_iters='auto' needs the run's length: "
                    'train_cfg.max_iters, or max_epochs and the data set')
            h['start_iters'] = auto_warmup_iters(n, max_iters)
            rows.append(_row('DenseCLHook.start_iters', h['start_iters'],
                             AUTO, f'a tenth of the run below {LARGE_DATA:,} '
                             f'images, else 0'))
        else:
            rows.append(_kept('DenseCLHook.start_iters', h, 'start_iters',
                              1000, 0, where=' (custom_hooks)'))

    # the views and the dense grid
    size = crop_size(loader)
    if size is not None:
        grid = dense_grid(size, model.get('backbone'))
        rows.append(_row('view size (RandomResizedCrop)', size, 'explicit',
                         f'C5 grid {grid}x{grid}' if grid else
                         'C5 grid: measured by the sanity hook'))

    cfg.custom_hooks = hooks + [dict(type=HOOK_TYPE, rows=rows)]
    return copy.deepcopy(rows)


def _resolve_lr(cfg, lr_cfg: dict, lr: Any, lr_auto: bool,
                total: int) -> dict:
    key = 'optim_wrapper.optimizer.lr'
    scale = cfg.get('auto_scale_lr')
    rule = (scale or {}).get('rule', 'linear')
    if rule not in LR_RULES:
        raise ValueError(f'auto_scale_lr.rule must be one of {LR_RULES}, got '
                         f'{rule!r}')
    if lr_auto:
        if not scale or 'base_lr' not in scale \
                or 'base_batch_size' not in scale:
            raise ValueError(
                f"{key}='auto' needs auto_scale_lr = dict(base_lr=..., "
                f"base_batch_size=..., rule='linear' or 'sqrt')")
        base_lr, base_bs = scale['base_lr'], scale['base_batch_size']
        if not isinstance(base_lr, (int, float)) or base_lr <= 0:
            raise ValueError(f'auto_scale_lr.base_lr must be a positive '
                             f'number, got {base_lr!r}')
        _check_count('auto_scale_lr.base_batch_size', base_bs, 1)
        value = scaled_lr(base_lr, base_bs, total, rule)
        if rule == 'linear':
            # MMEngine's own auto_scale_lr does it when the Runner starts
            lr_cfg['lr'] = base_lr
            scale['enable'] = True
        else:
            lr_cfg['lr'] = value
            scale['enable'] = False
        return _row(key, value, AUTO, f'{base_lr:g} at {base_bs}, {rule} '
                    f'rule' + (' (MMEngine auto_scale_lr)'
                               if rule == 'linear' else ''))
    if lr is None:
        return _row(key, None, 'explicit', 'no lr in the optimizer')
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
        raise ValueError(f"{key} must be a positive number or 'auto', got "
                         f'{lr!r}')
    if scale and scale.get('enable', False):
        base_bs = scale.get('base_batch_size')
        _check_count('auto_scale_lr.base_batch_size', base_bs, 1)
        value = scaled_lr(lr, base_bs, total, rule)
        if rule == 'sqrt':  # MMEngine would scale linearly
            lr_cfg['lr'] = value
            scale['enable'] = False
        return _row(key, value, 'explicit, scaled',
                    f'{lr:g} at {base_bs}, {rule} rule')
    return _row(key, lr, 'explicit')


def format_table(rows: List[dict]) -> str:
    """The rows as a plain-text table (what the run's log shows)."""
    lines = [('value', 'key', 'source', 'rule')]
    for r in rows:
        value = r['value']
        if isinstance(value, float):
            value = f'{value:.4g}'
        rule = r.get('rule', '')
        if 'own_key_share' in r:
            rule = (rule + '; ' if rule else '') + \
                f"own-key share {100 * r['own_key_share']:.1f}%"
        lines.append((str(value), r['key'], r['source'], rule))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    out = ['Resolved values:']
    for line in lines:
        out.append('  ' + '  '.join(c.ljust(w) for c, w in
                                    zip(line[:3], widths)) + '  ' + line[3])
    return '\n'.join(line.rstrip() for line in out)


def save_rows(rows: List[dict], work_dir: str) -> str:
    """Write ``rows`` to ``<work_dir>/resolved_values.json``; returns the
    path."""
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, RESOLVED_FILE)
    with open(path, 'w') as f:
        json.dump(dict(rows=rows, table=format_table(rows)), f, indent=1)
    return path


#: the queue length of a model built to read features from a random init
#: (the queue takes no part in a forward pass outside training)
INFERENCE_QUEUE = 16


def checkpoint_queue_len(checkpoint: str) -> Optional[int]:
    """The queue length ``K`` a checkpoint was trained with (its ``queue``
    buffer, ``(D, K)``), or None when it holds no queue."""
    import torch
    try:
        ckpt = torch.load(checkpoint, map_location='cpu', mmap=True,
                          weights_only=False)
    except RuntimeError:  # not a zip-format file: no mmap
        ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    for key in ('queue', 'module.queue'):
        value = state.get(key)
        if hasattr(value, 'shape') and len(value.shape) == 2:
            return int(value.shape[1])
    return None


def resolve_inference_model(model_cfg: dict,
                            checkpoint: Optional[str] = None) -> dict:
    """``'auto'`` model values for a model built to read features, not to
    train (:func:`densecl_plugin.apis.inference.build_model`); in place.

    ``queue_len='auto'`` becomes the checkpoint's queue length, so its
    queues load (:data:`INFERENCE_QUEUE` without one: the queue takes no
    part in a forward pass); ``split_bn_groups='auto'`` becomes 1 (split BN
    applies in training only).

    Args:
        model_cfg (dict): the ``model`` config; changed in place.
        checkpoint (str, optional): the checkpoint to be loaded. Defaults
            to None.

    Returns:
        dict: ``model_cfg``.
    """
    if _is_auto('model.queue_len', model_cfg.get('queue_len')):
        K = None
        if checkpoint and osp.isfile(checkpoint):
            K = checkpoint_queue_len(checkpoint)
        model_cfg['queue_len'] = K or INFERENCE_QUEUE
    if _is_auto('model.split_bn_groups', model_cfg.get('split_bn_groups')):
        model_cfg['split_bn_groups'] = 1
    return model_cfg
