"""Trains the tiny MLM of replica_batches.py on torch (CPU) and saves the
per-step losses and final weights to an .npz. test_torch_ddp.py starts it
as one whole-batch process and as the two processes of a DDP job:

    KERAS_BACKEND=torch python torch_ddp_run.py one.npz
    KERAS_BACKEND=torch python torch_ddp_run.py rank0.npz --port 29500 --rank 0 --world-size 2
    KERAS_BACKEND=torch python torch_ddp_run.py rank1.npz --port 29500 --rank 1 --world-size 2

Without --port: Keras' own `train_on_batch` on the whole batches. With it:
the process joins a gloo job on localhost and trains its rows of every
batch with `ddp_train_step`.
"""

import argparse

import numpy as np
import replica_batches as data


def train(args):
    import keras
    import torch

    torch.set_num_threads(1)  # the same reduction order in every process
    keras.utils.set_random_seed(0)
    model = data.tiny_mlm()
    start = data.start_weights(model)
    model.set_weights(start)
    if args.port is None:
        losses = [float(model.train_on_batch(x, y)[0]) for x, y in data.batches()]
    else:
        from nlp4keras.pretraining.torch_ddp import ddp_model, ddp_train_step

        torch.distributed.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{args.port}",
            rank=args.rank, world_size=args.world_size,
        )  # fmt: skip
        replicated = ddp_model(model)
        rows = data.batches(args.rank, args.world_size)
        losses = [ddp_train_step(replicated, x, y) for x, y in rows]
        # DDP's reducer must go before its process group: freed after it, it can hang
        del replicated
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    result = {"losses": np.array(losses)}
    for index, (weight, first) in enumerate(zip(model.weights, start)):
        result[f"w{index}"] = keras.ops.convert_to_numpy(weight.value)
        result[f"moved{index}"] = np.abs(result[f"w{index}"] - first).max()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--port", type=int)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world-size", type=int, default=1)
    args = parser.parse_args()
    np.savez(args.out, **train(args))


if __name__ == "__main__":
    main()
