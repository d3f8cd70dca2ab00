# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Momentum-contrast plumbing shared by MoCo v2 and DenseCL."""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import BaseModel
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from densecl_plugin.registry import MODELS
from densecl_plugin.utils.checks import check_bool, check_int
from ..utils.health import health_metrics, own_in_queue_share
from ..utils.key_encoder import (MomentumEncoder, batch_shuffle_ddp,
                                 batch_unshuffle_ddp, concat_all_gather,
                                 enqueue_)
from ..utils.split_bn import split_batchnorm

#: the default backbone of both algorithms: ResNet-50 C5 with plain BN that
#: trains (mmdet's ResNet defaults to ``norm_eval=True``, which would keep
#: every BN layer in eval mode under ``model.train()``), nothing frozen, the
#: torchvision ("pytorch") block layout, no zero-initialised residuals, and
#: mmdet's default initialisation written out (Kaiming fan_out for convs,
#: BN weight 1), as the anchors' pre-training backbones.
DEFAULT_BACKBONE = dict(
    type='mmdet.ResNet',
    depth=50,
    out_indices=(3, ),
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    frozen_stages=-1,
    style='pytorch',
    zero_init_residual=False)
#: the default head of both algorithms (the configs' temperature)
DEFAULT_HEAD = dict(type='ContrastiveHead', temperature=0.2)
#: the default data preprocessor (built from our scope)
DEFAULT_DATA_PREPROCESSOR = dict(type='SelfSupDataPreprocessor')


def frozen_batchnorms(module: nn.Module) -> Tuple[List[str], int]:
    """The BN layers of ``module`` that would not train under ``train()``.

    ``module`` is switched to train mode (which is where mmdet's and
    mmseg's ResNets put BN back into eval mode for ``norm_eval=True`` and
    freeze ``frozen_stages``), inspected, and returned to its former mode.

    Args:
        module (nn.Module): A backbone.

    Returns:
        tuple[list[str], int]: The names of the BN layers (any
        ``_BatchNorm``, SyncBN included) that stay in eval mode or whose
        affine parameters get no gradient, and the number of BN layers.
    """
    was_training = module.training
    module.train(True)
    bns = [(n, m) for n, m in module.named_modules()
           if isinstance(m, _BatchNorm)]
    frozen = [n for n, m in bns
              if not m.training or any(not p.requires_grad
                                       for p in m.parameters())]
    module.train(was_training)
    return frozen, len(bns)


def _sample_indices(data_samples: Optional[list],
                    training: bool) -> Optional[Tensor]:
    """The data-set index (``sample_idx``, set by MMEngine's
    ``BaseDataset`` and packed by ``PackSelfSupInputs``) of each sample,
    long ``(N,)``; None when any sample lacks it or not training."""
    if not training or not data_samples:
        return None
    idx = [getattr(s, 'metainfo', {}).get('sample_idx') for s in data_samples]
    if any(i is None for i in idx):
        return None
    return torch.tensor([int(i) for i in idx], dtype=torch.long)  # N


class BaseMomentumContrast(BaseModel):
    """Query encoder, momentum key encoder, queues and shuffle-BN key forward.

    Subclasses set :attr:`DEFAULT_NECK` and :attr:`QUEUES` and define
    :meth:`encode` (one encoder on a view: what the query and the key
    encoder compute), :meth:`loss` and :meth:`predict`; everything a
    momentum-contrast method shares lives here once:

    - the constructor arguments and their defaults (the paper's: ResNet-50
      C5, ``K = 65536``, ``D = 128``, ``m = 0.999``, ``T = 0.2``);
    - ``backbone``, ``neck``, ``head`` (built from our registry) and the key
      encoder ``encoder_k`` (a :class:`MomentumEncoder` of
      ``nn.Sequential(backbone, neck)``, paper convention for ``momentum``);
    - the queues named in :attr:`QUEUES` (each ``<name>`` of shape ``(D,
      K)``, L2-normalised random init, and ``<name>_ptr``), filled by
      :meth:`_dequeue_and_enqueue` with the keys of *all* ranks (one
      all-gather for all queues);
    - :meth:`key_forward`, the key path of one step (MoCo's ``no_grad``
      block): momentum update, batch shuffle across ranks, :meth:`encode`
      with the key encoder, unshuffle (one all-gather for all outputs);
    - :meth:`diagnostics`: the health metrics on the iterations they are
      due.

    **The contract with the engine.** The hooks of
    :mod:`densecl_plugin.engine.hooks` read and set only these attributes
    (on the model unwrapped from DDP):

    - :attr:`queue_len` (int, read): ``K``, the config's
      ``model.queue_len``;
    - :attr:`is_dense` (bool, read): whether the loss has a dense term
      (DenseCL); :attr:`loss_lambda` (float, read and set): its weight,
      0. where there is none (``DenseCLHook`` sets it per iteration);
      ``log_correspondence`` (bool, set; dense models only): also return
      ``corr_acc`` (``CorrespondenceHook``);
    - :attr:`health_interval` (int, read) and :attr:`health_due` (bool or
      None, set): ``HealthHook`` sets ``health_due`` before every training
      iteration from the runner's iteration; None (no hook, e.g. a model
      stepped by hand) lets the model count its own training steps.

    Args:
        backbone (dict, optional): Backbone config; its last output must be
            a 4-D map. Defaults to None (:data:`DEFAULT_BACKBONE`:
            ``dict(type='mmdet.ResNet', depth=50, out_indices=(3,),
            norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
            frozen_stages=-1, style='pytorch', zero_init_residual=False)``,
            BN trains).
        neck (dict, optional): Neck config; its ``out_channels`` must be
            ``feat_dim``. Defaults to None: the subclass's
            :attr:`DEFAULT_NECK` with ``out_channels=feat_dim``.
        head (dict, optional): Head config (a :class:`ContrastiveHead`).
            Defaults to None (:data:`DEFAULT_HEAD`: ``dict(type=
            'ContrastiveHead', temperature=0.2)``).
        queue_len (int): Queue length ``K``. Defaults to 65536.
        feat_dim (int): Embedding dimension ``D``. Defaults to 128.
        momentum (float): ``m`` in ``k <- m * k + (1 - m) * q`` (paper
            convention). Defaults to 0.999.
        data_preprocessor (dict | nn.Module, optional): Built from our scope
            when a dict. Defaults to :data:`DEFAULT_DATA_PREPROCESSOR`
            (``dict(type='SelfSupDataPreprocessor')``); None gives MMEngine's
            ``BaseDataPreprocessor``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
        channels_last (bool): Train in ``torch.channels_last`` memory format
            end to end: the 4-D weights (convolutions) of both encoders are
            stored channels-last, and so are the data preprocessor's batches
            (its ``channels_last`` is switched on). The same arithmetic in
            another memory order. Defaults to False.
        compile_backbone (bool | dict): ``torch.compile`` the query and the
            key backbone in place (``nn.Module.compile``, so parameter names
            and checkpoints are unchanged); a dict gives the arguments of
            ``torch.compile`` (e.g. ``dict(mode='max-autotune')``). Defaults
            to False.
        allow_frozen_bn (bool): Accept a backbone whose BN layers do not
            train under ``model.train()`` (``norm_eval=True``,
            ``frozen_stages >= 0`` or ``norm_cfg.requires_grad=False``).
            Every anchor pre-trains with train-mode BN, and shuffle BN only
            means something then, so such a backbone is refused unless this
            is True. Defaults to False.
        split_bn_groups (int): G: in training (``mode='loss'`` through
            :meth:`forward`, i.e. ``train_step``), every train-mode BN layer
            of both encoders normalises G contiguous groups of the batch
            separately, and the key batch is permuted across the groups
            before the key encoder (the shuffle of
            :func:`..utils.key_encoder.batch_shuffle_ddp`), so one process
            computes what G ranks with shuffle BN compute (MoCo's one-GPU
            ``SplitBatchNorm``). The batch must be divisible by G. Running
            statistics: the mean of the G groups' updates (see
            :mod:`..utils.split_bn`). No module is replaced: ``state_dict``
            keys, eval and inference are unchanged. Under DDP the groups
            split each rank's batch. 1 is off. Defaults to 1.
        health_interval (int): Every this many training iterations, the
            loss dict also holds the health metrics of
            :mod:`..utils.health` (``health_pos_cos``, ``health_neg_cos``,
            ``health_emb_std``, ``health_align``, ``health_uniform``,
            ``health_queue_fill``, and ``health_own_in_queue`` when the
            data samples carry ``sample_idx``: the share of queries whose
            own image has an older key in the queue, from a
            non-persistent index queue ``queue_idx``; DenseCL adds its
            unweighted InfoNCEs),
            computed without gradient from the step's ``q``, ``k`` and
            queue, so MMEngine logs them (log, ``scalars.json``,
            TensorBoard) without adding them to the loss. They are computed
            on the iterations ``i`` with ``(i + 1) % health_interval == 0``
            (the ones MMEngine's ``LoggerHook`` logs when its interval is a
            multiple): ``HealthHook`` says which (:attr:`health_due`, from
            ``runner.iter``); without it, ``i`` counts this model's
            training steps. The other iterations compute nothing. 0 is off.
            Defaults to 10.

    Raises:
        ValueError: on a non-positive ``queue_len``/``feat_dim``, a neck
            whose ``out_channels`` is not ``feat_dim``, no ``neck`` where the
            class has no :attr:`DEFAULT_NECK`, or a backbone with frozen BN
            layers (unless ``allow_frozen_bn``).
    """

    #: the neck built when ``neck`` is None, less its ``out_channels`` (which
    #: is ``feat_dim``); None: a neck must be given
    DEFAULT_NECK: Optional[dict] = None
    #: the queues ``(D, K)`` that ``__init__`` registers, in this order
    QUEUES: Tuple[str, ...] = ()
    #: whether the loss has a dense term (the engine contract)
    is_dense: bool = False
    #: the weight of the dense term; 0. without one (the engine contract)
    loss_lambda: float = 0.

    def __init__(self,
                 backbone: Optional[dict] = None,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 data_preprocessor: Optional[Union[
                     dict, nn.Module]] = DEFAULT_DATA_PREPROCESSOR,
                 init_cfg: Optional[dict] = None,
                 channels_last: bool = False,
                 compile_backbone: Union[bool, dict] = False,
                 allow_frozen_bn: bool = False,
                 split_bn_groups: int = 1,
                 health_interval: int = 10) -> None:
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(copy.deepcopy(data_preprocessor))
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        name = type(self).__name__
        for key, value in (('queue_len', queue_len), ('feat_dim', feat_dim)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'{name}: {key} must be a positive int, '
                                 f'got {value!r}')
        if neck is None:
            if self.DEFAULT_NECK is None:
                raise ValueError(f'{name}: a neck config is required')
            neck = dict(self.DEFAULT_NECK, out_channels=feat_dim)
        self.backbone = MODELS.build(copy.deepcopy(
            DEFAULT_BACKBONE if backbone is None else backbone))
        self._check_batchnorms(allow_frozen_bn)
        self.neck = MODELS.build(copy.deepcopy(neck))
        self.head = MODELS.build(copy.deepcopy(
            DEFAULT_HEAD if head is None else head))
        out_channels = getattr(self.neck, 'out_channels', feat_dim)
        if out_channels != feat_dim:
            raise ValueError(f'{name}: feat_dim={feat_dim} but the neck '
                             f'{type(self.neck).__name__} has out_channels='
                             f'{out_channels}; they must be equal')
        check_int(name, 'split_bn_groups', split_bn_groups, 1, ' (1 = off)')
        self.split_bn_groups = split_bn_groups
        check_int(name, 'health_interval', health_interval, 0, ' (0 = off)')
        self.health_interval = health_interval
        #: whether this training iteration computes the health metrics, set
        #: by ``HealthHook``; None: count this model's own training steps
        self.health_due: Optional[bool] = None
        self._health_steps = 0  # training steps seen (without HealthHook)
        self.K = queue_len
        self.D = feat_dim
        self.encoder_k = MomentumEncoder(
            nn.Sequential(self.backbone, self.neck), momentum)
        self.queue_names: List[str] = []
        self.set_speed_options(channels_last, compile_backbone)
        for queue_name in self.QUEUES:
            self._register_queue(queue_name)
        # the data-set index of each key in the queues (-1: none yet), for
        # health_own_in_queue; not persistent, so checkpoints and the
        # converters' layout are unchanged (after a resume it refills
        # within K keys; membership, not position, is what it is read for)
        self.register_buffer('queue_idx', torch.full((1, self.K), -1,
                                                     dtype=torch.long),
                             persistent=False)
        self.register_buffer('queue_idx_ptr',
                             torch.zeros(1, dtype=torch.long),
                             persistent=False)
        self._batch_idx: Optional[Tensor] = None  # N, set by forward

    @property
    def queue_len(self) -> int:
        """``K``, the length of every queue (the config's
        ``model.queue_len``)."""
        return self.K

    def _check_batchnorms(self, allow_frozen_bn: bool) -> None:
        """Refuse a backbone whose BN layers would not train (see the
        class's ``allow_frozen_bn``)."""
        name = type(self).__name__
        check_bool(name, 'allow_frozen_bn', allow_frozen_bn)
        frozen, total = frozen_batchnorms(self.backbone)
        if frozen and not allow_frozen_bn:
            cfg = {k: getattr(self.backbone, k) for k in
                   ('norm_eval', 'frozen_stages') if hasattr(self.backbone, k)}
            raise ValueError(
                f'{name}: {len(frozen)} of {total} BatchNorm layers of the '
                f'backbone {type(self.backbone).__name__} would not train '
                f'under model.train() (e.g. {", ".join(frozen[:3])}; backbone '
                f'has {cfg}). Pre-training needs train-mode BN: set '
                f'model.backbone.norm_eval=False (mmdet/mmseg ResNet default '
                f'to True), model.backbone.frozen_stages=-1 and '
                f'model.backbone.norm_cfg.requires_grad=True, or set '
                f'model.allow_frozen_bn=True to pre-train with frozen BN on '
                f'purpose.')

    def set_speed_options(self, channels_last: bool = False,
                          compile_backbone: Union[bool, dict] = False) -> None:
        """Apply ``channels_last`` and ``compile_backbone`` (see the class).

        Called by ``__init__``; call it on a built model to switch the
        options on later (switching them off again is not supported).

        Args:
            channels_last (bool): See the class. Defaults to False.
            compile_backbone (bool | dict): See the class. Defaults to False.
        """
        name = type(self).__name__
        check_bool(name, 'channels_last', channels_last)
        if not isinstance(compile_backbone, (bool, dict)):
            raise TypeError(f'{name}: compile_backbone must be a bool or a '
                            f'dict of torch.compile arguments, got '
                            f'{compile_backbone!r}')
        self.channels_last = getattr(self, 'channels_last',
                                     False) or channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)  # 4-D weights only
            if hasattr(self.data_preprocessor, 'channels_last'):
                self.data_preprocessor.channels_last = True
        if compile_backbone is not False:
            kwargs = {} if compile_backbone is True else dict(
                compile_backbone)
            self.backbone.compile(**kwargs)  # query backbone
            self.encoder_k.module[0].compile(**kwargs)  # key backbone

    def _register_queue(self, name: str) -> None:
        """Register the queue ``name`` ``(D, K)`` and its pointer."""
        queue = F.normalize(torch.randn(self.D, self.K), dim=0)  # DxK
        self.register_buffer(name, queue)
        self.register_buffer(f'{name}_ptr', torch.zeros(1, dtype=torch.long))
        self.queue_names.append(name)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, **keys: Tensor) -> None:
        """Enqueue the keys of all ranks, in rank order, into each queue.

        Args:
            **keys (Tensor): ``queue_name=keys`` with keys of shape
                ``(N, D)``; all are gathered in a single all-gather.
        """
        names = list(keys)
        packed = torch.cat([keys[n] for n in names], dim=1)  # Nx(D*len)
        packed = concat_all_gather(packed)  # (world*N)x(D*len)
        for name, k in zip(names, packed.split(self.D, dim=1)):
            enqueue_(getattr(self, name), getattr(self, f'{name}_ptr'), k)
        if self._batch_idx is not None:  # the keys' data-set indices
            idx = concat_all_gather(self._batch_idx.to(packed.device))
            enqueue_(self.queue_idx, self.queue_idx_ptr, idx[:, None])

    def _health_due(self) -> bool:
        """Whether this training step logs the health metrics (see the
        class's ``health_interval`` and :attr:`health_due`); call it once
        per step."""
        if not self.health_interval or not self.training:
            return False
        if self.health_due is not None:  # set by HealthHook
            return self.health_due
        self._health_steps += 1
        return self._health_steps % self.health_interval == 0

    @torch.no_grad()
    def _health(self, q: Tensor, k: Tensor,
                queue_name: str = 'queue') -> dict:
        """The health metrics of ``q``, ``k`` ``(N, D)`` and the queue
        ``queue_name`` as the loss used it (call before the enqueue).

        The real keys in the queue are counted from the key encoder's
        persistent update counter: ``min(K, (steps - 1) * N * world_size)``
        (this step's update is counted, its keys are not yet enqueued), so
        no buffer is added (``state_dict`` layout unchanged) and a resumed
        run counts on; exact while the batch size is constant.
        """
        world = dist.get_world_size()
        steps = int(self.encoder_k.steps)  # host read, health steps only
        num_real = max(0, steps - 1) * k.shape[0] * world
        out = health_metrics(q.detach(), k, getattr(self, queue_name),
                             num_real)
        if self._batch_idx is not None:
            out['health_own_in_queue'] = own_in_queue_share(
                self._batch_idx.to(q.device), self.queue_idx[0])
        return out

    @torch.no_grad()
    def diagnostics(self, q: Tensor, k: Tensor) -> dict:
        """What the step logs besides its losses: the health metrics of
        ``q``, ``k`` ``(N, D)`` and ``queue`` on the iterations they are due
        (call before the enqueue), else nothing."""
        return self._health(q, k) if self._health_due() else {}

    def encode(self, backbone: nn.Module, neck: nn.Module,
               im: Tensor) -> Tuple[Tensor, ...]:
        """One encoder (``backbone``, ``neck``) on a view ``im`` ``(N, 3, H,
        W)``: the query encoder in :meth:`loss`, the key encoder in
        :meth:`key_forward`; each output of shape ``(N, ...)``."""
        raise NotImplementedError

    @torch.no_grad()
    def key_forward(self, im_k: Tensor) -> List[Tensor]:
        """The key path of a step, without gradient: momentum update,
        shuffle BN, the key encoder's :meth:`encode`, unshuffle.

        Args:
            im_k (Tensor): Key view, shape ``(N, 3, H, W)``.

        Returns:
            list[Tensor]: :meth:`encode`'s outputs in the order of ``im_k``.
        """
        self.encoder_k.update(nn.Sequential(self.backbone, self.neck))
        im_k, idx_unshuffle = batch_shuffle_ddp(im_k)  # Nx3xHxW, shuffled
        outs = self.encode(*self.encoder_k.module, im_k)  # each Nx...
        return batch_unshuffle_ddp(outs, idx_unshuffle)

    @staticmethod
    def _views(inputs: Sequence[Tensor], who: str) -> List[Tensor]:
        """Check that ``inputs`` holds at least two ``(N, 3, H, W)`` views."""
        if (not isinstance(inputs, (list, tuple)) or len(inputs) < 2
                or not all(isinstance(v, Tensor) and v.dim() == 4
                           for v in inputs)
                or len({v.shape[0] for v in inputs}) != 1):
            got = ([tuple(v.shape) if isinstance(v, Tensor) else type(v)
                    for v in inputs] if isinstance(inputs, (list, tuple))
                   else type(inputs).__name__)
            raise ValueError(f'{who}.loss expects inputs as a list of >= 2 '
                             f'views, each (N, 3, H, W) with the same N, got '
                             f'{got}')
        return list(inputs)

    def _check_split_batch(self, inputs: Sequence[Tensor]) -> None:
        """Refuse a batch that ``split_bn_groups`` does not divide."""
        G = self.split_bn_groups
        views = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        N = views[0].shape[0] if views and isinstance(views[0], Tensor) \
            else None
        if N is not None and N % G:
            raise ValueError(
                f'{type(self).__name__}: model.split_bn_groups={G} needs a '
                f'batch divisible by it, got a batch of {N} samples; set '
                f'train_dataloader.batch_size to a multiple of {G} (and '
                f'drop_last=True) or change model.split_bn_groups')

    def extract_feat(self, inputs: Union[Tensor, Sequence[Tensor]]):
        """Backbone features of ``inputs`` (of its first view if a list)."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        return self.backbone(inputs)

    def forward(self,
                inputs: Union[Tensor, List[Tensor]],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """MMEngine's three modes.

        Args:
            inputs (Tensor | list[Tensor]): The views, each ``(N, 3, H, W)``
                (``'tensor'`` and ``'predict'`` use the first, or a tensor).
            data_samples (list, optional): Data samples. Defaults to None.
            mode (str): ``'tensor'`` (backbone features), ``'loss'`` (dict of
                losses) or ``'predict'``. Defaults to ``'tensor'``.
        """
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'loss':
            self._batch_idx = _sample_indices(data_samples, self.training)
            if self.split_bn_groups == 1 or not self.training:
                return self.loss(inputs, data_samples)
            self._check_split_batch(inputs)
            with split_batchnorm((self.backbone, self.neck, self.encoder_k),
                                 self.split_bn_groups):
                return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'{type(self).__name__}: invalid mode {mode!r}; '
                         f"expected 'tensor', 'loss' or 'predict'")
