"""Trains the tiny MLM of replica_batches.py with TensorFlow on one device and
under tf.distribute.MirroredStrategy over two logical CPU devices, and saves
each run's per-step losses and final weights to an .npz. test_tf_mirrored.py
runs it in a subprocess, since the logical devices must be set before
TensorFlow starts:

    KERAS_BACKEND=tensorflow python tf_mirrored_run.py out.npz

Runs: 'one' (no strategy, train_on_batch), 'mirrored' (train_on_batch) and
'mirrored_fit' (one epoch of `fit` over the same batches, shuffle off).
"""

import sys
import time

import numpy as np
import replica_batches as data

DEVICES = 2


def split_cpu(tf, devices):
    """`devices` logical CPUs out of the one physical CPU (before TF starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * devices
    )
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def built_model(keras):
    keras.utils.set_random_seed(0)
    model = data.tiny_mlm()
    start = data.start_weights(model)
    model.set_weights(start)
    return model, start


class BatchLosses:
    """Per-batch losses from fit's running mean (logs['loss'] after batch n is
    the mean of the first n + 1 batch losses)."""

    def __init__(self, keras):
        self.means = []
        outer = self

        class Recorder(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                outer.means.append(float(logs["loss"]))

        self.callback = Recorder()

    def losses(self):
        totals = np.arange(1, len(self.means) + 1) * np.array(self.means, "float64")
        return np.diff(totals, prepend=0.0)


def train(keras, model, run):
    if run == "mirrored_fit":
        steps = list(data.batches())
        x = [np.concatenate([b[0][i] for b in steps]) for i in range(2)]
        y = np.concatenate([b[1] for b in steps])
        recorder = BatchLosses(keras)
        model.fit(x, y, batch_size=data.BATCH, epochs=1, shuffle=False, verbose=0,
                  callbacks=[recorder.callback])  # fmt: skip
        return recorder.losses()
    return np.array([float(model.train_on_batch(x, y)[0]) for x, y in data.batches()])


def main():
    import tensorflow as tf

    devices = split_cpu(tf, DEVICES)
    import keras

    assert keras.backend.backend() == "tensorflow", keras.backend.backend()
    arrays = {}
    # One strategy for both mirrored runs: in TF 2.21 a second MirroredStrategy in a
    # process (CPU collectives) reuses collective instance keys, and the all-gather
    # of sparse embedding gradients then fails with a shape mismatch.
    mirrored = tf.distribute.MirroredStrategy(devices)
    for run in ("one", "mirrored", "mirrored_fit"):
        began = time.perf_counter()
        # the default strategy: one device
        strategy = tf.distribute.get_strategy() if run == "one" else mirrored
        with strategy.scope():
            model, start = built_model(keras)
        arrays[f"{run}.replicas"] = np.array(strategy.num_replicas_in_sync)
        arrays[f"{run}.losses"] = train(keras, model, run)
        for index, (weight, first) in enumerate(zip(model.weights, start)):
            arrays[f"{run}.w{index}"] = keras.ops.convert_to_numpy(weight.value)
            arrays[f"{run}.moved{index}"] = np.abs(arrays[f"{run}.w{index}"] - first).max()
        arrays[f"{run}.seconds"] = np.array(time.perf_counter() - began)
    np.savez(sys.argv[1], **arrays)


if __name__ == "__main__":
    main()
