"""`pretrain`: a step-counted training loop over a `PretrainingDataset`, with
Keras' progress bar, a CSV log of every step, a PNG of the loss curve, and
checkpoints every `save_every` steps and when it stops (end or Ctrl-C) from
which `resume=True` continues exactly.

    model = pretraining_model("mlm", "bert_config.json", optimizer_options=dict(
        learning_rate=1e-4, warmup_steps=1000, total_steps=100_000))
    pretrain(model, PretrainingDataset(examples, batch_size=32), "run/", steps=100_000,
             save_every=1000)            # Ctrl-C saves a checkpoint, then stops
    pretrain(new_model, dataset, "run/", steps=100_000, resume=True)

Step s (0-based) trains on batch s % n of epoch first_epoch + s // n (n =
len(dataset)), read directly from the dataset rather than through `fit`, so
the data position is the step count alone; a checkpoint holds every model
variable (dropout seed states included), every optimizer variable (moments,
step counters, gradient accumulators, loss scale), torch's global random
state on torch (unseeded dropout draws from it) and the step, so the
resumed run makes the same updates on the same batches as an uninterrupted
one. Out folder: checkpoints/step-<k>/, log.csv (step, epoch, loss,
accuracy, lr: the loss and accuracy of that step's batch, the lr it
updated with), loss.png, model.weights.h5 (the final weights).
"""

import contextlib
import csv
import json
import os
import shutil
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from nlp4keras import validation
from nlp4keras.pretraining.dataset import PretrainingDataset
from nlp4keras.pretraining.models import model_max_predictions

CHECKPOINTS, LOG, PLOT, FINAL_WEIGHTS = "checkpoints", "log.csv", "loss.png", "model.weights.h5"
LOG_COLUMNS = ("step", "epoch", "loss", "accuracy", "lr")
STATE, MODEL_VARIABLES, OPTIMIZER_VARIABLES = "state.json", "model.npz", "optimizer.npz"
TORCH_RNG = "torch_rng.npz"


def pretrain(model, dataset, out_dir, steps, save_every=1000, resume=False, keep_checkpoints=3,
             verbose=1, callbacks=(), plot=True):  # fmt: skip
    """Train `model` (compiled, e.g. by `pretraining_model`) for `steps`
    batches of `dataset` in all, writing to `out_dir` (see the module
    docstring). resume=True continues from the last checkpoint in out_dir
    (the model must be built as before, the dataset must have the same batch
    size and length); without it, out_dir must hold no checkpoint.
    keep_checkpoints: how many of the latest checkpoints stay (None: all).
    callbacks: functions called as `f(step, row)` after each step (row: the
    CSV row as a dict). Returns the whole log so far (`read_log(out_dir)`)."""
    who = "pretrain"
    validation.instance(model, "model", keras.Model, who)
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"{who}: compile the model first (or build it with pretraining_model)")
    validation.instance(dataset, "dataset", PretrainingDataset, who)
    _check_max_predictions(model, dataset, who)
    validation.instance(out_dir, "out_dir", (str, os.PathLike), who, what="a folder path")
    steps = validation.integer(steps, "steps", who, minimum=1)
    save_every = validation.integer(save_every, "save_every", who, minimum=1)
    resume = validation.boolean(resume, "resume", who)
    if keep_checkpoints is not None:
        keep_checkpoints = validation.integer(keep_checkpoints, "keep_checkpoints", who, minimum=1)
    for callback in callbacks:
        validation.callable_or_none(callback, "callbacks[...]", who)
    out_dir = os.fspath(out_dir)
    position = {"first_epoch": dataset.epoch, "batch_size": dataset.batch_size,
                "batches_per_epoch": len(dataset)}  # fmt: skip

    start = 0
    if resume:
        folder = last_checkpoint(out_dir)
        if folder is None:
            raise FileNotFoundError(f"{who}: resume=True but {out_dir} holds no checkpoint")
        start, position = _restore(model, folder, position, who)
        if start > steps:
            raise ValueError(f"{who}: the checkpoint {folder} is at step {start} > steps={steps}")
    elif last_checkpoint(out_dir) is not None:
        raise FileExistsError(
            f"{who}: {out_dir} already holds checkpoints; pass resume=True or use a new folder"
        )
    os.makedirs(out_dir, exist_ok=True)
    log = _open_log(os.path.join(out_dir, LOG), start)
    progbar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=LOG_COLUMNS[1:])
    if start:
        progbar.update(start)  # a resumed run's bar starts where the last one stopped
    step, saved = start, None
    try:
        with _deferred_interrupt() as interrupted, ThreadPoolExecutor(1) as reader:
            # the next batch is read while the current step trains
            upcoming = reader.submit(_batch, dataset, position, start) if start < steps else None
            while step < steps:
                inputs, labels = upcoming.result()
                if step + 1 < steps:
                    upcoming = reader.submit(_batch, dataset, position, step + 1)
                lr = current_learning_rate(model.optimizer)
                logs = model.train_on_batch(inputs, labels, return_dict=True)
                step += 1
                row = {"step": step, "epoch": position["first_epoch"] + (step - 1) // len(dataset),
                       "loss": float(logs["loss"]), "accuracy": float(logs.get("accuracy", np.nan)),
                       "lr": lr}  # fmt: skip
                log.writerow(row)
                progbar.update(step, [(k, row[k]) for k in LOG_COLUMNS[2:]])
                for callback in callbacks:
                    callback(step, row)
                if step % save_every == 0 or step == steps or interrupted():
                    saved = _save(model, out_dir, step, position, keep_checkpoints)
                if interrupted():
                    raise KeyboardInterrupt(f"{who}: stopped at step {step}, saved in {saved}")
    finally:
        log.close()
        if plot and step > start:
            plot_loss(out_dir)
    model.save_weights(os.path.join(out_dir, FINAL_WEIGHTS))
    return read_log(out_dir)


def _check_max_predictions(model, dataset, who):
    """The model's head runs at the positions the examples give, or at all."""
    given = getattr(dataset.examples, "max_predictions", None)
    taken = model_max_predictions(model)
    if given != taken:
        raise ValueError(
            f"{who}: the examples have max_predictions={given}, the model {taken}: pass the "
            "same max_predictions to MlmExamples and pretraining_model"
        )


def _batch(dataset, position, step):
    """(inputs, labels) of `step`: batch step % n of epoch first_epoch + step // n."""
    epoch, index = divmod(step, position["batches_per_epoch"])
    epoch += position["first_epoch"]
    return dataset.epoch_batch(epoch, index)  # this process' rows of it


def current_learning_rate(optimizer):
    """The learning rate of the next update: the base rate times the
    optimizer's schedule (`extend_with_piecewise_linear_lr`) where it has one."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # under loss scaling
    lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    if hasattr(optimizer, "schedule_multiplier"):
        lr *= float(keras.ops.convert_to_numpy(optimizer.schedule_multiplier()))
    return lr


@contextlib.contextmanager
def _deferred_interrupt():
    """Inside: the first Ctrl-C (SIGINT) only sets a flag, read by the
    yielded function, so the loop stops after the step it is in (a second
    one interrupts at once). Outside the main thread: no flag, no handler."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    caught = []

    def handler(signum, frame):
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(caught)
    finally:
        signal.signal(signal.SIGINT, previous)


# ----------------------------------------------------------------- checkpoints


def checkpoint_folder(out_dir, step):
    return os.path.join(os.fspath(out_dir), CHECKPOINTS, f"step-{step:09d}")


def last_checkpoint(out_dir):
    """The folder of the latest complete checkpoint in `out_dir`, or None."""
    root = os.path.join(os.fspath(out_dir), CHECKPOINTS)
    if not os.path.isdir(root):
        return None
    names = sorted(n for n in os.listdir(root) if n.startswith("step-") and "." not in n)
    done = [n for n in names if os.path.isfile(os.path.join(root, n, STATE))]
    return os.path.join(root, done[-1]) if done else None


def _values(variables):
    return {f"{i:06d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(variables)}


def _save(model, out_dir, step, position, keep):
    """Write checkpoint `step` (into a temporary folder, renamed when complete)."""
    folder = checkpoint_folder(out_dir, step)
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    np.savez(os.path.join(partial, MODEL_VARIABLES), **_values(model.variables))
    np.savez(os.path.join(partial, OPTIMIZER_VARIABLES), **_values(model.optimizer.variables))
    if keras.backend.backend() == "torch":
        np.savez(os.path.join(partial, TORCH_RNG), **_torch_rng_states())
    with open(os.path.join(partial, STATE), "w", encoding="utf-8") as file:
        json.dump({"step": step, **position}, file, indent=1)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    if keep is not None:
        root = os.path.dirname(folder)
        old = sorted(n for n in os.listdir(root) if n.startswith("step-") and "." not in n)
        for name in old[:-keep]:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return folder


# Keras' Dropout without a seed draws from torch's global generator on torch
# (elsewhere from seed-state variables, which are model variables).
def _torch_rng_states():
    import torch

    states = {"cpu": torch.random.get_rng_state().numpy()}
    if torch.cuda.is_available():
        cuda = torch.cuda.get_rng_state_all()
        states.update({f"cuda{i:03d}": state.numpy() for i, state in enumerate(cuda)})
    return states


def _set_torch_rng_states(path):
    import torch

    with np.load(path) as stored:
        torch.random.set_rng_state(torch.from_numpy(stored["cpu"]))
        cuda = sorted(key for key in stored.files if key.startswith("cuda"))
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([torch.from_numpy(stored[key]) for key in cuda])


def _assign(variables, path, what, who):
    with np.load(path) as stored:
        values = [stored[key] for key in sorted(stored.files)]
    if len(values) != len(variables):
        raise ValueError(
            f"{who}: {path} holds {len(values)} {what} variables, the model has "
            f"{len(variables)}: build the model as for the run that saved it"
        )
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"{who}: {path}: {what} variable {variable.path} has shape "
                f"{tuple(variable.shape)}, the checkpoint {value.shape}"
            )
        variable.assign(value)


def _restore(model, folder, position, who):
    """Load checkpoint `folder` into `model`; its step and data position."""
    with open(os.path.join(folder, STATE), encoding="utf-8") as file:
        state = json.load(file)
    for key in ("batch_size", "batches_per_epoch"):
        if state[key] != position[key]:
            raise ValueError(
                f"{who}: the dataset has {key}={position[key]}, the run in {folder} had "
                f"{state[key]}: resume with the same data"
            )
    _assign(model.variables, os.path.join(folder, MODEL_VARIABLES), "model", who)
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    _assign(optimizer.variables, os.path.join(folder, OPTIMIZER_VARIABLES), "optimizer", who)
    if keras.backend.backend() == "torch" and os.path.isfile(os.path.join(folder, TORCH_RNG)):
        _set_torch_rng_states(os.path.join(folder, TORCH_RNG))
    position = {key: state[key] for key in position}
    return state["step"], position


# ------------------------------------------------------------------- log, plot


class _Log:
    def __init__(self, path, rows):
        self.file = open(path, "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, LOG_COLUMNS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.file.flush()

    def writerow(self, row):
        self.writer.writerow(row)
        self.file.flush()

    def close(self):
        self.file.close()


def _open_log(path, start):
    """The CSV log, keeping the rows of steps up to `start` (a resumed run
    drops the steps logged after its checkpoint: they are trained again)."""
    rows = []
    if start and os.path.isfile(path):
        with open(path, newline="", encoding="utf-8") as file:
            rows = [row for row in csv.DictReader(file) if int(row["step"]) <= start]
    return _Log(path, rows)


def read_log(out_dir):
    """log.csv of `out_dir` as {column: numpy array}."""
    with open(os.path.join(os.fspath(out_dir), LOG), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return {
        column: np.array([float(row[column]) for row in rows], np.int64 if i < 2 else np.float64)
        for i, column in enumerate(LOG_COLUMNS)
    }


def plot_loss(out_dir):
    """Draw the loss of every logged step to `out_dir`/loss.png (matplotlib,
    without pyplot: no global backend or figure state is touched)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plotting the loss needs matplotlib: pip install 'nlp4keras[pretraining]' "
            "(or pass plot=False)"
        ) from error
    log = read_log(out_dir)
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(log["step"], log["loss"], linewidth=1)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (labelled tokens)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path = os.path.join(os.fspath(out_dir), PLOT)
    figure.savefig(path)
    return path
