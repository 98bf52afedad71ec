"""Pretraining. Data: raw text files tokenised once into memory-mapped shards
(`build_shards`, `open_shards`), and examples read from them for MLM with
whole-word masking, GPT-style packed LM and UniLM, masked and split anew
each epoch, deterministic for a seed (`PretrainingDataset` for Keras fit).
Training: `pretraining_model(kind, ...)` (loss and accuracy over labelled
tokens, AdamW / LAMB with warm-up, decay and gradient accumulation) and
`pretrain(model, dataset, out_dir, steps)` (checkpoints, exact resume, CSV
log, loss-curve PNG).

    vocab = PretrainingVocab("vocab.txt")
    build_shards(["corpus.txt"], vocab.path, "shards/")  # jieba words
    examples = MlmExamples(open_shards("shards/", vocab.vocab_size), vocab, maxlen=128)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0), ...)
    model.fit(PretrainingDataset(examples, batch_size=32), epochs=3)
    # or: checkpoints, resume, log and plot
    model = pretraining_model("mlm", "bert_config.json")
    pretrain(model, PretrainingDataset(examples, batch_size=32), "run/", steps=10_000)
"""

from nlp4keras.pretraining.corpus import heldout_score, jieba_words, read_documents
from nlp4keras.pretraining.dataset import PretrainingDataset
from nlp4keras.pretraining.distributed import (
    check_sharding,
    data_parallel,
    initialize_multi_process,
    layout_map,
    model_parallel,
)
from nlp4keras.pretraining.examples import (
    LmExamples,
    MlmExamples,
    UnilmExamples,
    document_chunks,
)
from nlp4keras.pretraining.masking import example_rng, whole_word_mask
from nlp4keras.pretraining.models import (
    KINDS,
    MaskedAccuracy,
    lr_schedule,
    masked_crossentropy,
    pretraining_model,
    pretraining_optimizer,
)
from nlp4keras.pretraining.shards import (
    Shard,
    ShardError,
    build_shards,
    open_shards,
    write_shard,
)
from nlp4keras.pretraining.trainer import last_checkpoint, plot_loss, pretrain, read_log
from nlp4keras.pretraining.vocab import IGNORED_LABEL, PretrainingVocab

__all__ = [
    "IGNORED_LABEL",
    "KINDS",
    "LmExamples",
    "MaskedAccuracy",
    "MlmExamples",
    "PretrainingDataset",
    "PretrainingVocab",
    "Shard",
    "ShardError",
    "UnilmExamples",
    "build_shards",
    "check_sharding",
    "data_parallel",
    "document_chunks",
    "example_rng",
    "heldout_score",
    "initialize_multi_process",
    "jieba_words",
    "last_checkpoint",
    "layout_map",
    "lr_schedule",
    "masked_crossentropy",
    "model_parallel",
    "open_shards",
    "plot_loss",
    "pretrain",
    "pretraining_model",
    "pretraining_optimizer",
    "read_log",
    "read_documents",
    "whole_word_mask",
    "write_shard",
]
