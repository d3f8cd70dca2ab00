# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Make every ``runner.save_checkpoint`` atomic on a local disk."""
import functools
import os.path as osp

from mmengine.hooks import Hook

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.checkpoint_integrity import (atomic_save,
                                                       remove_stale_tmp)


@HOOKS.register_module()
class AtomicSaveHook(Hook):
    """Checkpoints written to a temporary file, fsync'ed, then renamed.

    MMEngine 0.10.7 writes ``iter_N.pth`` in place, so a kill mid-save
    leaves a truncated file under a real name. In ``before_run`` this hook
    wraps ``runner.save_checkpoint`` (the one door through which
    ``CheckpointHook`` -- periodic, ``save_last``, ``save_best`` -- and any
    other caller write): the checkpoint is saved as
    ``.tmp-<pid>-iter_N.pth`` in the same folder, fsync'ed and
    ``os.replace`` d onto ``iter_N.pth`` (see
    :func:`~densecl_plugin.utils.checkpoint_integrity.atomic_save`).
    Everything else of ``CheckpointHook`` is untouched: ``max_keep_ckpts``,
    ``last_checkpoint`` (written after the rename, so it only ever names a
    whole file), ``save_best``, ``out_dir``. Remote ``out_dir`` s
    (``s3://`` ...) are saved as before.

    It is a separate hook rather than a ``CheckpointHook`` subclass so that
    configs that set ``default_hooks.checkpoint.type='CheckpointHook'`` keep
    the atomic save.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        """Remove the temporary files of saves that were killed (pid dead)
        from the work dir, then wrap ``runner.save_checkpoint`` once."""
        remove_stale_tmp(runner.work_dir)
        original = runner.save_checkpoint
        if getattr(original, '_densecl_atomic', False):
            return

        @functools.wraps(original)
        def save_checkpoint(out_dir, filename, *args, **kwargs):
            if '://' in str(out_dir) or '://' in str(filename):
                return original(out_dir, filename, *args, **kwargs)
            path = osp.join(out_dir, filename)

            def save(tmp):
                original(osp.dirname(tmp), osp.basename(tmp), *args,
                         **kwargs)

            atomic_save(save, path)

        save_checkpoint._densecl_atomic = True
        runner.save_checkpoint = save_checkpoint
