"""Resumable training checkpoints: a Keras callback over `tf.train.CheckpointManager`.

Unlike `keras.callbacks.BackupAndRestore` (weights file and metadata written separately, in
place, at epoch granularity), a checkpoint here is the whole training state in one TF
checkpoint (generator, EMA generator, discriminator, both optimizers' slots and step counters,
the trainer's step and epoch), and it only becomes the one resumed from when it is complete:
TF writes the data to temporary files, renames them, then atomically rewrites the `checkpoint`
index file. A SIGKILL at any moment leaves the previous checkpoint in force.
"""

import os

import keras
import tensorflow as tf


def _task_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return getattr(resolver, "task_id", 0) or 0


class TrainingCheckpoint(keras.callbacks.Callback):
    """Save the training state periodically and resume from it when `fit` starts again.

    Works with `PSNRTrainer` and `ESRGAN` (anything with `checkpoint_objects()` and an
    `iterations` step variable). On `fit`, if `directory` holds a checkpoint, it is restored
    (weights, EMA, optimizer state, step) and training continues from the epoch it was in;
    `fit(epochs=E, steps_per_epoch=S)` then stops after E * S steps in total, as an
    uninterrupted run would. `epochs` therefore counts from the start of training, as
    Keras' `initial_epoch` does.

    Under `MultiWorkerMirroredStrategy` every worker saves (as tf.distribute requires), but
    only the chief writes to `directory`; the others write to a scratch directory that is
    deleted at once. All workers restore from `directory`, which must be shared.

    Args:
        directory: str, where checkpoints go (`ckpt-<step>.index`/`.data-*`, `checkpoint`).
        save_freq: `"epoch"` (end of each epoch) or an int: every that many steps, and at the
            end of training. A resume after a mid-epoch save re-runs that epoch's remaining
            steps (epoch boundaries then fall `step % S` steps later; the step count and
            learning-rate schedule are exact).
        max_to_keep: int, how many recent checkpoints to keep.
        verbose: 0 or 1: print a line when resuming and when saving.

    Example (`gan.fit(ds.repeat(), steps_per_epoch=5000, epochs=80, callbacks=[ckpt])` for ESRGAN):
    >>> def run(epochs):
    ...     trainer = keras_esrgan.PSNRTrainer(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
    ...     trainer.compile()
    ...     lr, hr = np.zeros((2, 8, 8, 3), "float32"), np.zeros((2, 32, 32, 3), "float32")
    ...     ckpt = TrainingCheckpoint("runs/esrgan/ckpt", save_freq=2, verbose=0)
    ...     trainer.fit(lr, hr, batch_size=1, epochs=epochs, verbose=0, callbacks=[ckpt])
    ...     return int(trainer.iterations.numpy())
    >>> run(epochs=2)          # killed? run the same lines again: it resumes at the last saved step
    4
    >>> run(epochs=3)          # 4 steps restored, 2 more
    6
    """

    def __init__(self, directory, save_freq="epoch", max_to_keep=3, verbose=1):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"TrainingCheckpoint: save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        if int(max_to_keep) < 1:
            raise ValueError(f"TrainingCheckpoint: max_to_keep must be >= 1, got {max_to_keep!r}")
        self.directory = os.fspath(directory)
        self.save_freq = save_freq
        self.max_to_keep = int(max_to_keep)
        self.verbose = verbose
        self._epoch = None
        self._checkpoint = None

    def _step(self):
        return int(self.model.iterations.numpy())

    def _print(self, message):
        if self.verbose:
            print(f"TrainingCheckpoint: {message}", flush=True)

    def on_train_begin(self, logs=None):
        model = self.model
        if not hasattr(model, "checkpoint_objects") or not hasattr(model, "iterations"):
            raise TypeError(
                f"TrainingCheckpoint works with PSNRTrainer and ESRGAN, not {type(model).__name__}"
            )
        strategy = model.distribute_strategy
        self._is_chief = strategy.extended.should_checkpoint
        if self._epoch is None:
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self._checkpoint = tf.train.Checkpoint(epoch=self._epoch, **model.checkpoint_objects())
        self._manager = tf.train.CheckpointManager(self._checkpoint, self.directory, self.max_to_keep)
        restored = self._restore()
        self._last_saved = self._step()
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        self._total_steps = epochs * steps if epochs and steps else None
        # With a known epoch length the step decides (a save at the last batch of an epoch
        # precedes on_epoch_end); otherwise the epoch counter saved with it.
        initial_epoch = self._last_saved // steps if steps else int(self._epoch.numpy())
        if self._total_steps and self._last_saved >= self._total_steps:
            self._print(f"step {self._last_saved} already reaches epochs x steps = {self._total_steps}")
            initial_epoch = epochs
        if restored:
            self._print(f"resumed from {restored} at step {self._last_saved}, epoch {initial_epoch + 1}")
        model._initial_epoch = initial_epoch or None

    def _restore(self):
        """Restore the newest readable checkpoint; returns its path (None if there is none)."""
        # Newest first; an unreadable checkpoint (e.g. damaged data files) falls back to the
        # previous one rather than failing the run.
        candidates = list(reversed(self._manager.checkpoints))
        for path in candidates:
            try:
                status = self._checkpoint.restore(path)
            except (tf.errors.OpError, IndexError) as err:
                # A damaged file (disk trouble; TF itself never leaves a partial checkpoint).
                self._print(f"cannot read {path} ({type(err).__name__}: {err}); trying an older one")
                continue
            try:
                status.assert_existing_objects_matched()
            except AssertionError as err:
                raise ValueError(
                    f"TrainingCheckpoint: {path} does not fit this model (another architecture or "
                    f"trainer?); use another directory. ({err})"
                ) from None
            return path
        if candidates:
            raise OSError(f"TrainingCheckpoint: no readable checkpoint in {self.directory}")
        return None

    def _save(self):
        step = self._step()
        if self._is_chief:
            path = self._manager.save(checkpoint_number=step)
            self._print(f"saved {path}")
        else:
            scratch = os.path.join(self.directory, f".worker-{_task_id(self.model.distribute_strategy)}")
            self._checkpoint.write(os.path.join(scratch, "ckpt"))
            tf.io.gfile.rmtree(scratch)
        self._last_saved = step

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if self._total_steps and step >= self._total_steps:
            self.model.stop_training = True
        if isinstance(self.save_freq, int) and step % self.save_freq == 0 and step != self._last_saved:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        self._epoch.assign(epoch + 1)
        if self.save_freq == "epoch":
            self._save()

    def on_train_end(self, logs=None):
        if self._step() != self._last_saved:
            self._save()
        self.model._initial_epoch = None
