"""Resumable training checkpoints: a Keras callback over `tf.train.CheckpointManager`.

Unlike `keras.callbacks.BackupAndRestore` (weights file and metadata written separately, in
place, at epoch granularity), a checkpoint here is the whole training state in one TF
checkpoint (generator, EMA generator, discriminator, both optimizers' slots and step counters,
the trainer's step and epoch), and it only becomes the one resumed from when it is complete:
TF writes the data to temporary files, renames them, then atomically rewrites the `checkpoint`
index file. A SIGKILL at any moment leaves the previous checkpoint in force.

Progress is never thrown away by a damaged directory: the checkpoints resumed from are the
complete `ckpt-N` files on disk (index and every data shard), newest first, whatever the
`checkpoint` state file says; an unparsable, empty or stale state file is set aside and rebuilt
from them. A checkpoint is never written over: when a run resumes from an older checkpoint (the
newest was unreadable), its saves are numbered after the highest `ckpt-N` on disk instead of by
step (the step is stored inside the checkpoint either way).
"""

import os
import re
import time
import uuid

import keras
import tensorflow as tf

from keras_esrgan._compat import set_initial_epoch

# The name the trainer's step variable is saved under (`model.iterations`); the name of the
# first releases, so their checkpoints resume.
STEP_KEY = "iterations"

_INDEX = re.compile(r"^ckpt-(\d+)\.index$")
_ANY = re.compile(r"^ckpt-(\d+)\.(index|data-\d+-of-\d+)$")
_SHARD = re.compile(r"^ckpt-(\d+)\.data-(\d+)-of-(\d+)$")


def checkpoints_on_disk(directory):
    """The complete `ckpt-N` checkpoints in `directory`, oldest first, as `[(N, prefix)]`.

    Complete: the `.index` file and every `.data-K-of-M` shard it needs are there.

    Example:
    >>> path = tf.train.Checkpoint(step=tf.Variable(1)).write("ckpts/ckpt-7")
    >>> checkpoints_on_disk("ckpts")
    [(7, 'ckpts/ckpt-7')]
    """
    try:
        names = tf.io.gfile.listdir(directory)
    except tf.errors.NotFoundError:
        return []
    shards = {}
    for name in names:
        match = _SHARD.match(name)
        if match:
            number, k, total = map(int, match.groups())
            shards.setdefault((number, total), set()).add(k)
    found = []
    for name in names:
        match = _INDEX.match(name)
        if not match:
            continue
        number = int(match.group(1))
        if any(have == set(range(total)) for (n, total), have in shards.items() if n == number):
            found.append((number, os.path.join(directory, f"ckpt-{number}")))
    return sorted(found)


def _highest_number(directory):
    """The highest N of any `ckpt-N.*` file, complete or not (-1 if none)."""
    try:
        names = tf.io.gfile.listdir(directory)
    except tf.errors.NotFoundError:
        return -1
    return max((int(m.group(1)) for m in map(_ANY.match, names) if m), default=-1)


def _read_state(directory):
    """`tf.train.get_checkpoint_state`, or None if the file is missing or unreadable."""
    try:
        return tf.train.get_checkpoint_state(directory)
    except (ValueError, tf.errors.OpError):  # an empty file raises ValueError
        return None


def _write_state(directory, names):
    """Write the `checkpoint` state file listing `names` (oldest first), atomically."""
    text = f'model_checkpoint_path: "{names[-1]}"\n'
    text += "".join(f'all_model_checkpoint_paths: "{name}"\n' for name in names)
    tmp = os.path.join(directory, f".checkpoint.tmp-{uuid.uuid4().hex[:12]}")
    with tf.io.gfile.GFile(tmp, "w") as fh:
        fh.write(text)
    tf.io.gfile.rename(tmp, os.path.join(directory, "checkpoint"), overwrite=True)


def _describe_generator(shapes):
    """An RRDBNet's architecture read off the shapes of its flat weight list (kernels HWIO)."""
    n = len(shapes)
    if n < 12 or (n - 12) % 30 or any(len(shapes[i]) != 4 for i in (0, 2, n - 2)):
        return f"{n} generator variables (not an RRDBNet)"
    first, grow, last = shapes[0], shapes[2], shapes[n - 2]
    return (
        f"RRDBNet(num_feat={first[3]}, num_block={(n - 12) // 30}, num_grow_ch={grow[3]}, "
        f"{first[2]} input channels to conv_first, num_out_ch={last[3]})"
    )


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _task_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return getattr(resolver, "task_id", 0) or 0


class TrainingCheckpoint(keras.callbacks.Callback):
    """Save the training state periodically and resume from it when `fit` starts again.

    Works with `PSNRTrainer` and `ESRGAN` (anything with `checkpoint_objects()` and an
    `iterations` step variable, which is saved with them). On `fit`, if `directory` holds a checkpoint, it is restored
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

    def saved_step(self):
        """The training step of the checkpoint `fit` would resume from, or None when there is none.

        That is the newest complete, readable `ckpt-N` in `directory`, whatever the `checkpoint`
        state file says (a kill between the data files and that file leaves it one checkpoint
        behind, or not written at all). Needs no model: it can be asked before training.

        Example:
        >>> TrainingCheckpoint("runs/nothing/ckpt").saved_step() is None
        True
        >>> trainer = keras_esrgan.PSNRTrainer(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
        >>> trainer.compile()
        >>> lr, hr = np.zeros((2, 8, 8, 3), "float32"), np.zeros((2, 32, 32, 3), "float32")
        >>> ckpt = TrainingCheckpoint("runs/x/psnr/ckpt", verbose=0)
        >>> _ = trainer.fit(lr, hr, batch_size=2, epochs=3, verbose=0, callbacks=[ckpt])
        >>> ckpt.saved_step()
        3
        """
        for _, prefix in reversed(checkpoints_on_disk(self.directory)):
            step = tf.Variable(-1, dtype=tf.int64)
            try:
                tf.train.Checkpoint(**{STEP_KEY: step}).read(prefix).expect_partial()
            except (tf.errors.OpError, ValueError, AssertionError):
                continue  # unreadable: _restore falls back to the previous one too
            if int(step.numpy()) >= 0:
                return int(step.numpy())
        return None

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
        self._objects = model.checkpoint_objects()
        self._checkpoint = tf.train.Checkpoint(
            epoch=self._epoch, **{STEP_KEY: _tf_variable(model.iterations)}, **self._objects
        )
        if self._is_chief:
            self._repair_state()
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
        set_initial_epoch(model, initial_epoch or None)

    def _repair_state(self):
        """Make the `checkpoint` state file list the complete checkpoints on disk.

        TF's CheckpointManager sees no checkpoint at all when the state file does not parse
        (training would restart at step 0 and write over ckpt-N files of the same names) and
        raises a bare ValueError when it is empty. An unreadable file is kept beside, renamed.
        """
        on_disk = checkpoints_on_disk(self.directory)
        state_path = os.path.join(self.directory, "checkpoint")
        state = _read_state(self.directory)
        if state is None and tf.io.gfile.exists(state_path):
            aside = f"{state_path}.unreadable-{int(time.time())}"
            tf.io.gfile.rename(state_path, aside, overwrite=True)
            self._print(f"the state file {state_path} is unreadable; kept as {aside}")
        if not on_disk:
            return
        newest = on_disk[-1][1]
        listed = state.model_checkpoint_path if state is not None else None
        if listed is None or os.path.basename(listed) != os.path.basename(newest):
            _write_state(self.directory, [f"ckpt-{n}" for n, _ in on_disk])
            if state is None or listed is not None:
                self._print(f"rebuilt {state_path} from the checkpoints on disk (newest {newest})")

    def _check_fits(self, path):
        """Raise a clear ValueError if the checkpoint's model weights are not this model's."""
        saved = dict(tf.train.list_variables(path))
        for key in ("generator", "ema_generator", "discriminator"):
            variables = self._objects.get(key)
            if variables is None:
                continue
            ours = [tuple(v.shape) for v in variables]
            theirs, i = [], 0
            while f"{key}/{i}/.ATTRIBUTES/VARIABLE_VALUE" in saved:
                theirs.append(tuple(saved[f"{key}/{i}/.ATTRIBUTES/VARIABLE_VALUE"]))
                i += 1
            if ours == theirs or not theirs:
                continue
            if key == "discriminator":
                diff = next((j for j, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
                detail = (
                    f"its discriminator has {len(theirs)} variables (#{diff}: "
                    f"{theirs[diff] if diff < len(theirs) else '-'}) where this model's "
                    f"{type(self.model.discriminator).__name__} has {len(ours)} "
                    f"(#{diff}: {ours[diff] if diff < len(ours) else '-'})"
                )
            else:
                config = ", ".join(f"{k}={v}" for k, v in self.model.generator.config.items())
                detail = f"its {key} is {_describe_generator(theirs)}, this model's is RRDBNet({config})"
            raise ValueError(
                f"TrainingCheckpoint: {path} is of another architecture: {detail}. Use another "
                "directory, or build the model the checkpoint was saved from."
            )

    def _restore(self):
        """Restore the newest readable checkpoint on disk; returns its path (None if none)."""
        # Newest first; an unreadable checkpoint (e.g. damaged data files) falls back to the
        # previous one rather than failing the run.
        candidates = [path for _, path in reversed(checkpoints_on_disk(self.directory))]
        for path in candidates:
            try:
                self._check_fits(path)
                status = self._checkpoint.restore(path)
            except (tf.errors.OpError, IndexError) as err:
                # A damaged file (disk trouble; TF itself never leaves a partial checkpoint).
                self._print(f"cannot read {path} ({type(err).__name__}: {err}); trying an older one")
                continue
            except ValueError as err:
                if str(err).startswith("TrainingCheckpoint:"):
                    raise
                raise ValueError(
                    f"TrainingCheckpoint: {path} does not fit this model ({err}); use another directory"
                ) from None
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
            # Named by step unless that name (or a later one) is already on disk, e.g. after
            # resuming from an older checkpoint: then after the highest, never over a file.
            highest = _highest_number(self.directory)
            number = step if step > highest else highest + 1
            path = self._manager.save(checkpoint_number=number)
            note = "" if number == step else f" (step {step}; ckpt-{highest} is on disk already)"
            self._print(f"saved {path}{note}")
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
        set_initial_epoch(self.model, None)
