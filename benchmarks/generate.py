"""Generation benchmark: greedy decoding tokens/s, nlp4keras (cached
`CachedGenerator` and bert4keras-style uncached `AutoRegressiveDecoder`, on
JAX and torch) against transformers' `generate`.

Usage (from the repo root, after `make assets`):

    python benchmarks/generate.py [--rounds 2] [--new-tokens 64] [--models smollm2,gpt2,unilm,t5]
        [--batch 1,8]

Models: the real SmolLM2-135M-Instruct GGUF (Llama, 30 layers, hidden 576;
both sides load the same file, dequantised to float32) and a random
GPT-2-small-shaped model (12 layers, hidden 768, vocab 50257), saved once with
`save_pretrained` under benchmarks/out/generate_gpt2/ and loaded on both sides.
And a UniLM seq2seq case: a random BERT-base-shaped model (12 layers, 768,
the Chinese vocab size 21128) with application='unilm', the prompt as the
source (segment 0) and the new tokens segment 1; transformers has no UniLM,
so it is compared with the uncached decoding of bert4keras' seq2seq examples
(`vs uncached`). And a T5 case: a random T5-small-shaped model (6 + 6
layers, 512, ReLU, tied head, vocab 32128) saved with `save_pretrained` under
benchmarks/out/generate_t5/, the prompt as the source, decoding from the
start id 0 (HF: `generate(decoder_start_token_id=0)`; uncached: bert4keras'
mT5 example, the decoder rerun on [context, output so far]).

Batch 1 and 8 (the same 32-token prompt of random ids, fixed seed, in every
row), 64 new tokens, no end token (every run generates all of them), float32.

- hf: `generate(do_sample=False, min_new_tokens=n, max_new_tokens=n)`, SDPA
  attention and its KV cache.
- jax-cached / torch-cached: `nlp4keras.generation.CachedGenerator.generate`:
  the prompt once, then one token per step against per-layer K/V caches.
- jax / torch (uncached, batch 1 only: bert4keras' API decodes one input): a
  subclass of `AutoRegressiveDecoder` whose predict is
  `self.last_token(model).predict(prompt + output so far)`, `beam_search(topk=1)`:
  bert4keras' way, the whole prefix recomputed at each step.

One worker subprocess per (model, impl, round), the impls rotated between
rounds. Each worker loads the model, runs the whole generation once untimed
(JAX compiles each bucketed length there), then times one generation with
time.perf_counter. Also checks that every impl generated the same tokens.
Prints a markdown table; writes benchmarks/out/generate.json.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

sys.path.append(HERE)  # last: benchmarks/tokenize.py must not shadow the standard library
from bench_common import ROOT, cpu_name, git_state, order_for_round, versions  # noqa: E402

SMOLLM2 = os.path.join(ROOT, ".assets", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GPT2_FOLDER = os.path.join(ROOT, "benchmarks", "out", "generate_gpt2")
T5_FOLDER = os.path.join(ROOT, "benchmarks", "out", "generate_t5")
#: a random T5-small-shaped model (HF `T5Config`; t5.1.0: ReLU, tied head)
T5_CONFIG = dict(
    vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
    feed_forward_proj="relu", tie_word_embeddings=True,
)  # fmt: skip
IMPLS = ["hf", "jax-cached", "torch-cached", "jax", "torch"]
PROMPT_LENGTH = 32
UNILM_CONFIG = dict(
    vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512, initializer_range=0.3,
)  # fmt: skip


def prompt_ids(vocab):
    import numpy as np

    return [int(i) for i in np.random.default_rng(0).integers(10, vocab, PROMPT_LENGTH)]


def make_gpt2():
    if os.path.isfile(os.path.join(GPT2_FOLDER, "config.json")):
        return
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(GPT2_FOLDER)


def make_t5():
    if os.path.isfile(os.path.join(T5_FOLDER, "config.json")):
        return
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    T5ForConditionalGeneration(T5Config(**T5_CONFIG)).save_pretrained(T5_FOLDER)


def hf_generator(model_name, new_tokens):
    import torch

    if model_name == "smollm2":
        from transformers import LlamaForCausalLM

        folder, name = os.path.split(SMOLLM2)
        model = LlamaForCausalLM.from_pretrained(folder, gguf_file=name, attn_implementation="sdpa")
    elif model_name == "t5":
        from transformers import T5ForConditionalGeneration

        model = T5ForConditionalGeneration.from_pretrained(T5_FOLDER, attn_implementation="sdpa")
    else:
        from transformers import GPT2LMHeadModel

        model = GPT2LMHeadModel.from_pretrained(GPT2_FOLDER, attn_implementation="sdpa")
    model = model.eval()  # float32 (the GGUF file is dequantised to float32)
    # a T5 decodes from the start id 0: its output is [0] + the new tokens
    skip = (lambda prompt: 1) if model_name == "t5" else len

    def generate(prompt, batch):
        with torch.no_grad():
            output = model.generate(
                torch.tensor([prompt] * batch),
                do_sample=False,
                min_new_tokens=new_tokens,
                max_new_tokens=new_tokens,
                pad_token_id=0,
                decoder_start_token_id=0,
            )
        return [int(i) for i in output[0, skip(prompt) :]]

    return generate, model.config.vocab_size


def nlp4keras_generator(model_name, new_tokens, cached):
    import numpy as np

    from nlp4keras.generation import CachedGenerator
    from nlp4keras.models import build_transformer_model
    from nlp4keras.snippets import AutoRegressiveDecoder

    new_segment = 0
    if model_name == "smollm2":
        transformer = build_transformer_model(
            checkpoint_path=SMOLLM2, model="llama", return_keras_model=False
        )
    elif model_name == "unilm":
        import keras

        keras.utils.set_random_seed(0)
        transformer = build_transformer_model(
            **UNILM_CONFIG, application="unilm", return_keras_model=False
        )
        new_segment = 1
    elif model_name == "t5":
        transformer = build_transformer_model(
            T5_FOLDER, T5_FOLDER, model="t5", cross_position_bias=False,
            return_keras_model=False,
        )  # fmt: skip
    else:
        transformer = build_transformer_model(
            GPT2_FOLDER, GPT2_FOLDER, model="gpt2", return_keras_model=False
        )
    model = transformer.decoder if model_name == "t5" else transformer.model
    if cached:
        generator = CachedGenerator(transformer)

        def generate(prompt, batch):
            return generator.generate([prompt] * batch, new_tokens)[0]

        return generate, transformer.vocab_size

    class Greedy(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            token_ids = np.concatenate([inputs[0], output_ids], 1)
            if len(inputs) == 1:
                return self.last_token(model).predict(token_ids)
            new_segments = np.full_like(output_ids, new_segment)  # bert4keras' seq2seq predict
            segment_ids = np.concatenate([inputs[1], new_segments], 1)
            return self.last_token(model).predict([token_ids, segment_ids])

    class Seq2Seq(AutoRegressiveDecoder):  # bert4keras' mT5 example
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            return self.last_token(model).predict([inputs[0], output_ids])

    if model_name == "t5":
        decoder = Seq2Seq(start_id=0, end_id=None, maxlen=new_tokens)

        def generate(prompt, batch):
            context = transformer.encoder.predict_on_batch(np.array([prompt]))[0]
            return [int(i) for i in decoder.beam_search([context], topk=1)][1:]

        return generate, transformer.vocab_size

    decoder = Greedy(start_id=None, end_id=None, maxlen=new_tokens)
    segments = model_name == "unilm"

    def generate(prompt, batch):
        inputs = [prompt, [0] * len(prompt)] if segments else [prompt]
        return [int(i) for i in decoder.beam_search(inputs, topk=1)]

    return generate, transformer.vocab_size


def worker(args):
    start = time.perf_counter()
    if args.impl == "hf":
        generate, vocab = hf_generator(args.model, args.new_tokens)
    else:
        backend, _, cached = args.impl.partition("-")
        os.environ["KERAS_BACKEND"] = backend
        generate, vocab = nlp4keras_generator(args.model, args.new_tokens, bool(cached))
    loaded = time.perf_counter() - start
    prompt = prompt_ids(vocab)
    start = time.perf_counter()
    generate(prompt, args.batch)  # untimed: JAX compiles its shapes here
    first = time.perf_counter() - start
    start = time.perf_counter()
    tokens = generate(prompt, args.batch)
    seconds = time.perf_counter() - start
    print(json.dumps(dict(load_s=loaded, first_s=first, seconds=seconds, tokens=tokens)))


def run_worker(model, impl, args):
    command = [sys.executable, __file__, "--worker", "--model", model, "--impl", impl]
    command += ["--new-tokens", str(args.new_tokens), "--batch", str(args.batch)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    env.setdefault("KERAS_HOME", os.path.join(ROOT, ".keras_home"))
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{model}/{impl} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def driver(args):
    models = args.models.split(",")
    if "gpt2" in models:
        make_gpt2()
    if "t5" in models:
        make_t5()
    results = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        for model in models:
            # uncached decoding takes one input (bert4keras' API); no HF UniLM
            impls = [i for i in IMPLS if (batch == 1 or "-" in i or i == "hf")]
            impls = [i for i in impls if not (model == "unilm" and i == "hf")]
            for index in range(args.rounds):
                for impl in order_for_round(impls, index):
                    args.batch = batch
                    sample = run_worker(model, impl, args)
                    key = f"{model} b{batch}"
                    results.setdefault(key, {}).setdefault(impl, []).append(sample)
                    print(f"{key} {impl} round {index}: {sample['seconds']:.2f} s", flush=True)
    rows = [
        "| model | impl | tokens/s (median) | vs hf | vs uncached b1, same backend "
        "| first run s (compile) | same tokens as reference |",
        "|---|---|---|---|---|---|---|",
    ]

    def rate(samples, batch):
        return batch * args.new_tokens / statistics.median(s["seconds"] for s in samples)

    for key, by_impl in results.items():
        model, batch = key.split(" b")[0], int(key.rsplit("b", 1)[1])
        uncached = results.get(f"{model} b1", {})
        reference = by_impl.get("hf") or uncached.get("jax")  # hf, else bert4keras' way
        for impl, samples in by_impl.items():
            ours = rate(samples, batch)
            versus = {"hf": "hf" in by_impl and ours / rate(by_impl["hf"], batch)}
            backend = impl.split("-")[0]
            versus["uncached"] = backend in uncached and ours / rate(uncached[backend], 1)
            shown = {k: f"{v:.2f}x" if v else "-" for k, v in versus.items()}
            first = statistics.median(s["first_s"] for s in samples)
            same = reference is not None and all(
                s["tokens"] == reference[0]["tokens"] for s in samples
            )
            rows.append(
                f"| {key} | {impl} | {ours:.1f} | {shown['hf']} | {shown['uncached']} "
                f"| {first:.1f} | {same} |"
            )
    table = "\n".join(rows)
    print(table)
    os.makedirs(os.path.join(ROOT, "benchmarks", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "out", "generate.json"), "w") as f:
        environment = dict(versions=versions(), git=git_state(), cpu=cpu_name())
        json.dump(dict(environment=environment, args=vars(args), results=results), f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--models", default="smollm2,gpt2,unilm,t5")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    args = parser.parse_args()
    worker(args) if args.worker else driver(args)


if __name__ == "__main__":
    main()
