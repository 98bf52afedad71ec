"""The port check: bert4keras' own 32 examples, run on nlp4keras.

Each vendored example (bert4keras_examples/, unmodified) is copied into a temporary folder with
a tiny Google-format BERT and tiny data in its file format (example_data.py), then

- `import`: only `bert4keras` -> `nlp4keras` in its import lines, or
- `migrate`: that plus what `nlp4keras migrate --write` does,

and then the exact replacements of its row in EXAMPLES: what a user changes to point it at their
files, plus 1 epoch and small batches. It runs as `python script.py` in that folder, on the
current Keras backend, and must exit 0 and print the scores/losses it prints.

EXAMPLES gives each example's expected status: IMPORT, MIGRATE, BY_HAND (after migrate, the
edits a person makes, in the row's `by_hand`: the nlp4keras call for what the script
hand-writes with TF1 graph surgery), or waits(feature, issue, error). Waiting examples run too,
as strict xfails: they are listed in every run, the run must still fail with `error` (so the
reason stays true), and the test turns red the day one passes: then update its row (MIGRATE,
or IMPORT). A MIGRATE example's import-only run is a strict xfail too (with
NLP4KERAS_PORTS_FULL=1), so an example that no longer needs migrate is noticed.
"""

import os
import re

import keras
import pytest
from ports import example_data as data
from ports.port_spec import BY_HAND, IMPORT, MIGRATE, Data, Example, Skip, TinyModel, Waits, waits
from ports.script_edits import TableOutOfDate, change_imports
from ports.script_run import run_script
from ports.workspace import EXAMPLE_NAMES, prepare_workspace, vendored_text

from nlp4keras.migrate import migrate_source

BACKEND = keras.backend.backend()
TIMEOUT = 300  # seconds per script run
# NLP4KERAS_PORTS_FULL=1 also runs the import-only variant of MIGRATE examples.
FULL = os.environ.get("NLP4KERAS_PORTS_FULL") == "1"

# Where the missing pieces are tracked.
GENERATION = "the generation issue"
PERSON = "needs a person: `nlp4keras migrate` reports it"
OUTSIDE = "outside nlp4keras: this machine cannot install or download it"

# The checkpoints' folders in the scripts -> the tiny model.
BERT = ("/root/kg/bert/chinese_L-12_H-768_A-12/", "tiny_bert/")
BERT_WWM = ("/root/kg/bert/chinese_wwm_L-12_H-768_A-12/", "tiny_bert/")
ROBERTA_WWM = ("/root/kg/bert/chinese_roberta_wwm_ext_L-12_H-768_A-12/", "tiny_bert/")
SIMBERT = ("/root/kg/bert/chinese_simbert_L-12_H-768_A-12/", "tiny_bert/")
UNCASED = ("/root/kg/bert/uncased_L-12_H-768_A-12/", "tiny_bert/")
UER = ("/root/kg/bert/uer/mixed_corpus_bert_base_model/", "tiny_bert/")
NEZHA_GPT = "/root/kg/bert/chinese_nezha_gpt_L-12_H-768_A-12/"
# The random split the QA/CWS scripts save one folder up: kept in the workspace.
RANDOM_ORDER = ("'../random_order.json'", "'random_order.json'")
# Decoders stop at 16 new tokens (an untrained tiny model never emits [SEP]).
DECODE_16 = ("_token_end_id, maxlen=64)", "_token_end_id, maxlen=16)")
TITLE_16 = ("_token_end_id, maxlen=32)", "_token_end_id, maxlen=16)")
# The 12-layer models' last block -> the tiny model's.
LAST_LAYER = ("bert_layers = 12", "bert_layers = 2")

# bert4keras ships sentiment.zip / lcqmc.zip next to its examples: the scripts read them from
# datasets/ relative to where they run, so the data goes there (no replacement).
SENTIMENT = Data(data.sentiment, "datasets/sentiment")
LCQMC = Data(data.lcqmc, "datasets/lcqmc")
IFLYTEK = Data(data.iflytek, "data/iflytek")
IFLYTEK_PATH = ("/root/CLUE-master/baselines/CLUEdataset/iflytek/", "data/iflytek/")
IFLYTEK_CLASSES = ("num_classes = 119", "num_classes = 2")  # the tiny data's 2 labels


def iflytek(status, epochs, *more, by_hand=(), on=(), prints=(r"val_acc: [\d.]+, best_val_acc",)):
    """A row of the iflytek classification examples (same data, model and batch size)."""
    return Example(
        status,
        on=on,
        replacements=(
            BERT,
            IFLYTEK_PATH,
            IFLYTEK_CLASSES,
            ("batch_size = 32", "batch_size = 8"),
            (f"epochs={epochs},", "epochs=1,"),
            *more,
        ),
        by_hand=by_hand,
        data=(IFLYTEK,),
        prints=(FIT_LOSS, *prints),
    )


# The person's edit: the nlp4keras call replaces the script's hand-written TF1 version (its
# now unused definition may stay).
TRAINING = "import nlp4keras.training\n"
QA = Data(data.webqa_sogouqa, "data/qa_datasets")
QA_PATH = ("/root/qa_datasets/", "data/qa_datasets/")
DUIE = Data(data.duie, "data/duie")
DUIE_PATH = ("/root/kg/datasets/", "data/duie/")
THUCNEWS = Data(data.thucnews, "data/THUCNews")
THUCNEWS_PATH = ("/root/thuctc/THUCNews/", "data/THUCNews/")
CSL = Data(data.csl, "data/csl")
CSL_PATH = ("/root/csl/", "data/csl/")

# The web-serving example's harness: in a thread, one request once the server listens, the
# answer printed, then the server stopped (web.start() returns).
SERVE_ONCE = (
    "    web.start()\n",
    "    import json, threading, time, urllib.parse, urllib.request\n"
    "    def ask_once():\n"
    "        while web.port == 0:\n"
    "            time.sleep(0.05)\n"
    "        query = urllib.parse.urlencode({'text': u'苹果多少钱一斤', 'n': 4, 'k': 2})\n"
    "        url = 'http://127.0.0.1:%d/gen_synonyms?%s' % (web.port, query)\n"
    "        print('answer:', json.loads(urllib.request.urlopen(url, timeout=240).read()))\n"
    "        web.stop()\n"
    "    threading.Thread(target=ask_once).start()\n"
    "    web.start()\n",
)

# Printed by Keras' fit at the end of each epoch.
FIT_LOSS = r"loss: \d"

EXAMPLES = {
    # ------------------------------------------------------------------ basic_*
    "basic_extract_features": Example(
        MIGRATE,  # model.save('test.model'): Keras 3 needs '.keras'
        replacements=(BERT,),
        prints=(r"(?s)===== reloading and predicting =====.*\[\[\[",),
    ),
    "basic_gibbs_sampling_via_mlm": Example(
        IMPORT,
        replacements=(
            BERT,
            ("steps = 10000", "steps = 8"),
            ("converged_steps = 1000", "converged_steps = 4"),
        ),
        prints=("部分随机采样结果",),
    ),
    "basic_language_model_cpm_lm": Example(
        IMPORT,
        replacements=(("/root/kg/bert/CPM_LM_2.6B_TF/", "tiny_gpt2/"),),
        data=(Data(data.cpm_sentencepiece_model, "tiny_gpt2/chinese_vocab.model"),),
        # The stand-in SentencePiece model's 1001 pieces; CPM's 1024 positions (the
        # English stand-in cuts Chinese prompts into more pieces than CPM's vocab would).
        model=TinyModel(
            "tiny_gpt2",
            "gpt2",
            "config.json",
            "model.ckpt",
            sizes=(("vocab_size", 1001), ("max_position_embeddings", 1024)),
        ),
        # each prompt and its continuation (the English stand-in drops the Chinese characters)
        prints=(r"dog\s+cat\s+pig", r"211cm"),
    ),
    "basic_language_model_gpt2_ml": Example(
        IMPORT,
        replacements=(
            ("/root/kg/bert/gpt2_ml/", "tiny_gpt2_ml/"),
            ("maxlen=256", "maxlen=16"),
            ("minlen=128", "minlen=4"),
        ),
        model=TinyModel("tiny_gpt2_ml", "gpt2_ml", "config.json", "model.ckpt-100000"),
        prints=(r"\['今天天气不错.",),  # the prompt and (at least minlen) sampled tokens
    ),
    "basic_language_model_nezha_gen_gpt": Example(
        IMPORT,
        replacements=(
            (NEZHA_GPT + "config.json", "tiny_bert/bert_config.json"),
            (NEZHA_GPT + "gpt.ckpt", "tiny_bert/bert_model.ckpt"),
            (NEZHA_GPT + "vocab.txt", "tiny_bert/vocab.txt"),
            ("maxlen=256", "maxlen=16"),
            ("minlen=128", "minlen=4"),
        ),
        prints=(r"\['今天天气不错.",),
    ),
    "basic_make_uncased_model_cased": Example(
        IMPORT,
        replacements=(BERT,),
        prints=(r"\['\[CLS\]', 'Welcome', 'to', ", r"\[\[\["),
    ),
    "basic_masked_language_model": Example(IMPORT, replacements=(BERT,)),
    "basic_simple_web_serving_simbert": Example(
        IMPORT,
        # The script serves until killed: the harness asks it once, prints the answer, stops it.
        replacements=(SIMBERT, ("WebServing(port=8864)", "WebServing(port=0)"), SERVE_ONCE),
        prints=(r"answer: \{'code': 0, 'desc': 'succeeded', 'data': \[",),
    ),
    # ------------------------------------------------------------------ task_*
    "task_conditional_language_model": Example(
        MIGRATE,  # save_weights names (.weights.h5); it samples with topp=5 (warned, as topp=1)
        replacements=(
            BERT,
            ("maxlen = 128", "maxlen = 16"),
            ("batch_size = 32", "batch_size = 8"),
            ("epochs = 20", "epochs = 1"),
        ),
        data=(SENTIMENT,),
        prints=(FIT_LOSS, "正面采样"),
    ),
    "task_iflytek_adversarial_training": iflytek(
        BY_HAND,
        50,
        by_hand=(
            (
                "adversarial_training(model, 'Embedding-Token', 0.5)",
                TRAINING + "model = nlp4keras.training.adversarial_training(model, epsilon=0.5)",
            ),
        ),
    ),
    "task_iflytek_bert_of_theseus": iflytek(
        MIGRATE,  # weights names, also those handed to its Evaluator (.weights.h5)
        5,
        ("epochs=10,", "epochs=1,"),
        ("num_hidden_layers=3,", "num_hidden_layers=1,"),  # half the tiny model's 2
        on=(("jax", BY_HAND),),
        # JAX traces the step: a layer's random op needs the layer's own seed generator
        by_hand=(
            (
                "        self.supports_masking = True\n",
                "        self.supports_masking = True\n"
                "        self.seed_generator = keras.random.SeedGenerator()\n",
            ),
            ("p=0.5)", "p=0.5, seed=self.seed_generator)"),
        ),
    ),
    "task_iflytek_gradient_penalty": iflytek(
        BY_HAND,
        50,
        by_hand=(
            (
                "model.compile(\n    loss=loss_with_gradient_penalty,",
                TRAINING
                + "model = nlp4keras.training.adversarial_training(\n"
                + "    model, method='gradient_penalty', epsilon=1\n)\n"
                + "model.compile(\n    loss=sparse_categorical_crossentropy,",
            ),
        ),
    ),
    "task_iflytek_multigpu": iflytek(
        waits(
            "tf.data and tf.distribute on this backend: DataGenerator.to_dataset and "
            "MirroredStrategy are TensorFlow-only (migrate reports the strategy)",
            PERSON,
            "needs the TensorFlow backend",
        ),
        10,
        on=(("tensorflow", MIGRATE),),  # TF_KERAS and the strategy need no change there
        prints=(),
    ),
    "task_image_caption": Example(
        waits(
            "opencv-python (cv2) and MobileNetV2's ImageNet weights (a download)",
            OUTSIDE,
            "No module named 'cv2'",
        ),
        replacements=(
            UNCASED,
            ("/root/caption/coco/", "data/coco/"),
            ("maxlen = 64", "maxlen = 16"),
            ("batch_size = 32", "batch_size = 8"),
            ("steps_per_epoch = 1000", "steps_per_epoch = 1"),
            ("epochs = 10000", "epochs = 1"),
        ),
        data=(Data(data.coco_captions, "data/coco"),),
        prints=(FIT_LOSS, "predict:"),
    ),
    "task_language_model": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            ROBERTA_WWM,
            ("/root/金庸/", "data/novels/"),
            ("maxlen = 256", "maxlen = 32"),
            ("batch_size = 16", "batch_size = 8"),
            ("steps_per_epoch = 1000", "steps_per_epoch = 1"),
            ("epochs = 10000", "epochs = 1"),
        ),
        data=(Data(data.novels_gbk, "data/novels"),),
        prints=(FIT_LOSS, "结果: "),
    ),
    "task_language_model_chinese_chess": Example(
        MIGRATE,  # save_weights names (.weights.h5). cchess: a stand-in (example_data)
        replacements=(
            ROBERTA_WWM,
            ("/root/qipu.json", "data/qipu.json"),
            ("batch_size = 16", "batch_size = 8"),
            ("steps_per_epoch = 1000", "steps_per_epoch = 1"),
            ("epochs = 10000", "epochs = 1"),
        ),
        data=(
            Data(data.chess_games, "data/qipu.json"),
            Data(data.cchess_stand_in, "cchess.py"),
        ),
        prints=(FIT_LOSS,),
    ),
    "task_question_answer_generation_by_seq2seq": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT,
            QA_PATH,
            RANDOM_ORDER,
            ("batch_size = 32", "batch_size = 8"),
            ("epochs = 100", "epochs = 1"),
            ("steps_per_epoch=1000,", "steps_per_epoch=1,"),
        ),
        data=(QA,),
        prints=(FIT_LOSS,),
    ),
    "task_reading_comprehension_by_mlm": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT,
            QA_PATH,
            RANDOM_ORDER,
            ("batch_size = 32", "batch_size = 8"),
            ("epochs = 10", "epochs = 1"),
        ),
        data=(QA,),
        prints=(FIT_LOSS,),
    ),
    "task_reading_comprehension_by_seq2seq": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT,
            QA_PATH,
            RANDOM_ORDER,
            ("batch_size = 32", "batch_size = 8"),
            ("epochs = 8", "epochs = 1"),
        ),
        data=(QA,),
        prints=(FIT_LOSS,),
    ),
    "task_relation_extraction": Example(
        MIGRATE,  # save_weights names (.weights.h5); get_output_at is on nlp4keras layers
        replacements=(
            BERT,
            DUIE_PATH,
            ("batch_size = 64", "batch_size = 8"),
            ("epochs=20,", "epochs=1,"),
        ),
        data=(DUIE,),
        prints=(FIT_LOSS, r"f1: [\d.]+, precision: [\d.]+, recall: [\d.]+, best f1"),
    ),
    "task_relation_extraction_gplinker": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT,
            DUIE_PATH,
            ("batch_size = 64", "batch_size = 8"),
            ("epochs=20,", "epochs=1,"),
        ),
        data=(DUIE,),
        prints=(FIT_LOSS, r"f1: [\d.]+, precision: [\d.]+, recall: [\d.]+, best f1"),
    ),
    "task_sentence_similarity_lcqmc": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(BERT_WWM, ("batch_size = 64", "batch_size = 8"), ("epochs=20,", "epochs=1,")),
        data=(LCQMC,),
        prints=(FIT_LOSS, r"val_acc: [\d.]+, best_val_acc: [\d.]+, test_acc", r"final test acc"),
    ),
    "task_sentiment_albert": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            ("/root/kg/bert/albert_small_zh_google/", "tiny_albert/"),
            ("batch_size = 32", "batch_size = 8"),
            ("epochs=10,", "epochs=1,"),
        ),
        data=(SENTIMENT,),
        prints=(FIT_LOSS, r"final test acc"),
        model=TinyModel("tiny_albert", "albert", "albert_config.json", "albert_model.ckpt"),
    ),
    "task_sentiment_integrated_gradients": Example(
        # Runs after task_sentiment_albert (it loads that script's best_model.weights).
        waits(
            "a person: it calls model.predict on nested Python lists (Keras 3 wants arrays) "
            "and K.gradients in a layer (ported to nlp4keras.training.integrated_gradients; "
            "migrate reports it)",
            PERSON,
            "Unrecognized data type",
        ),
        data=(SENTIMENT,),
        model=TinyModel("tiny_albert", "albert", "albert_config.json", "albert_model.ckpt"),
        companions=("task_sentiment_albert",),
    ),
    "task_sentiment_virtual_adversarial_training": Example(
        BY_HAND,
        by_hand=(
            (
                "virtual_adversarial_training(model_vat, 'Embedding-Token')",
                TRAINING + "model_vat = nlp4keras.training.virtual_adversarial_training(model_vat)",
            ),
            # forfit() is a tf.data.Dataset on TensorFlow: iter() makes next() work everywhere
            (
                "self.data = data_generator(unlabeled_data, batch_size).forfit()",
                "self.data = iter(data_generator(unlabeled_data, batch_size).forfit())",
            ),
            # unlabeled batches: no (dummy) labels, the VAT term alone; on JAX the shared
            # weights live in fit's state during an epoch: a callback syncs them first
            (
                "model_vat.train_on_batch(dx, dy)",
                "if hasattr(self.model, 'jax_state_sync'):\n"
                "                self.model.jax_state_sync()\n"
                "            model_vat.train_on_batch(dx)",
            ),
        ),
        replacements=(
            BERT,
            ("batch_size = 32", "batch_size = 8"),
            ("train_frac = 0.01", "train_frac = 0.5"),  # 1% of 8 samples is none
            ("steps_per_epoch=30,", "steps_per_epoch=1,"),
            ("epochs=100,", "epochs=1,"),
        ),
        data=(SENTIMENT,),
        prints=(FIT_LOSS, r"val_acc: [\d.]+, best_val_acc: [\d.]+, test_acc"),
    ),
    "task_seq2seq_ape210k_math_word_problem": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            UER,
            ("/root/ape210k/", "data/ape210k/"),
            ("batch_size = 32", "batch_size = 8"),
            ("epochs = 100", "epochs = 1"),
            DECODE_16,
        ),
        data=(Data(data.ape210k, "data/ape210k"),),
        prints=(FIT_LOSS,),
    ),
    "task_seq2seq_autotitle": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT_WWM,
            THUCNEWS_PATH,
            ("batch_size = 16", "batch_size = 8"),
            ("steps_per_epoch = 1000", "steps_per_epoch = 1"),
            ("epochs = 10000", "epochs = 1"),
            TITLE_16,
        ),
        data=(THUCNEWS,),
        prints=(FIT_LOSS, "生成标题:"),
    ),
    "task_seq2seq_autotitle_csl": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT_WWM,
            CSL_PATH,
            ("batch_size = 16", "batch_size = 8"),
            ("epochs = 20", "epochs = 1"),
            TITLE_16,
        ),
        data=(CSL,),
        prints=(FIT_LOSS,),
    ),
    "task_seq2seq_autotitle_csl_mt5": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            ("/root/kg/bert/mt5/mt5_base/", "tiny_mt5/"),
            ("/root/kg/bert/mt5/", "data/mt5/"),
            CSL_PATH,
            ("batch_size = 16", "batch_size = 8"),
            ("epochs = 40", "epochs = 1"),
        ),
        data=(
            CSL,
            Data(data.sentencepiece_model, "data/mt5/sentencepiece_cn.model"),
            Data(data.keep_tokens_json, "data/mt5/sentencepiece_cn_keep_tokens.json"),
        ),
        # bert4keras' mT5 config: the gated GELU as a hidden_act list; the stand-in
        # SentencePiece model's 1000 pieces (keep_tokens keeps them all)
        model=TinyModel(
            "tiny_mt5",
            "mt5.1.1",
            "mt5_base_config.json",
            "model.ckpt-1000000",
            sizes=(("vocab_size", 1000), ("hidden_act", ("gelu", "linear"))),
        ),
        prints=(FIT_LOSS,),
    ),
    "task_seq2seq_autotitle_multigpu": Example(
        waits(
            "tf.data and tf.distribute on this backend: DataGenerator.to_dataset and "
            "MirroredStrategy are TensorFlow-only (migrate reports the strategy)",
            PERSON,
            "needs the TensorFlow backend",
        ),
        on=(("tensorflow", MIGRATE),),  # TF_KERAS and the strategy need no change there
        replacements=(
            BERT_WWM,
            THUCNEWS_PATH,
            ("batch_size = 64", "batch_size = 8"),
            ("steps_per_epoch = 1000", "steps_per_epoch = 1"),
            ("epochs = 10000", "epochs = 1"),
            TITLE_16,
        ),
        data=(THUCNEWS,),
        prints=(FIT_LOSS, "生成标题:"),
    ),
    "task_sequence_labeling_cws_crf": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT,
            ("/root/icwb2-data/training/", "data/icwb2/"),
            RANDOM_ORDER,
            LAST_LAYER,
            ("batch_size = 32", "batch_size = 8"),
            ("epochs = 10", "epochs = 1"),
        ),
        data=(Data(data.pku_segmented, "data/icwb2/pku_training.utf8"),),
        prints=(FIT_LOSS, r"acc: [\d.]+, best acc: [\d.]+"),
    ),
    "task_sequence_labeling_ner_crf": Example(
        MIGRATE,  # save_weights names (.weights.h5)
        replacements=(
            BERT,
            ("/root/ner/china-people-daily-ner-corpus/", "data/people_daily/"),
            LAST_LAYER,
            ("batch_size = 32", "batch_size = 8"),
            ("epochs = 10", "epochs = 1"),
        ),
        data=(Data(data.people_daily_ner, "data/people_daily"),),
        prints=(
            FIT_LOSS,
            r"valid:  f1: [\d.]+, precision: [\d.]+, recall: [\d.]+, best f1",
            r"test:  f1: [\d.]+",
        ),
    ),
}


class ScriptFailed(Exception):
    """The ported example did not run through (the expected failure of a strict xfail)."""


class StillWaiting(ScriptFailed):
    """A waiting example failed, showing the error its row names."""


def _cases():
    for name in sorted(EXAMPLES):
        example = EXAMPLES[name]
        status = example.status_on(BACKEND)
        for variant in example.variants(BACKEND):
            marks = []
            if isinstance(status, Skip):
                marks.append(pytest.mark.skip(reason=f"on {BACKEND}: {status.reason}"))
            elif isinstance(status, Waits):
                marks.append(
                    pytest.mark.xfail(strict=True, reason=status.reason(), raises=StillWaiting)
                )
            elif status == MIGRATE and variant == IMPORT and FULL:
                reason = "needs `nlp4keras migrate` (the import change alone fails)"
                marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=ScriptFailed))
            yield pytest.param(name, variant, marks=marks, id=f"{name}-{variant}")


def test_table_lists_every_vendored_example():
    assert len(EXAMPLE_NAMES) == 32
    assert sorted(EXAMPLES) == EXAMPLE_NAMES


@pytest.mark.spread
@pytest.mark.parametrize("name, variant", list(_cases()))
def test_example_runs(name, variant, tmp_path, tiny_bert, corpora):
    example = EXAMPLES[name]
    if example.status_on(BACKEND) == MIGRATE and variant == IMPORT and not FULL:
        _assert_migrate_needed(name)
        return
    try:
        prepare_workspace(tmp_path, name, variant, EXAMPLES, tiny_bert, corpora)
    except TableOutOfDate:
        raise
    except Exception as error:  # e.g. the tiny model of a family nlp4keras lacks
        _failed(name, example, f"setting up the workspace: {type(error).__name__}: {error}")
    for script in (*example.companions, name):
        run = run_script(tmp_path, f"{script}.py", TIMEOUT)
        if not run.ok:
            _failed(name, example, run.describe(), run.output)
    missing = [pattern for pattern in example.prints if not re.search(pattern, run.output)]
    assert not missing, f"{name} ran but did not print {missing}:\n{run.describe()}"


def _assert_migrate_needed(name):
    """Without NLP4KERAS_PORTS_FULL=1, a MIGRATE example's import-only variant is not run
    (it fails late, at the first save_weights, doubling the check's time): migrate must
    still rewrite more than its imports, or its status should be IMPORT."""
    text = change_imports(vendored_text(name))
    new_text, report = migrate_source(text)
    assert new_text != text, f"{name}: migrate changes nothing after the import change: IMPORT?"


def _failed(name, example, message, output=None):
    output = message if output is None else output
    status = example.status_on(BACKEND)
    if isinstance(status, Waits):
        if status.error and status.error not in output:
            raise AssertionError(
                f"{name} {status.reason()}, expected to fail showing {status.error!r}, but "
                f"failed differently (on {BACKEND}): update its row\n{message}"
            )
        raise StillWaiting(message)
    raise ScriptFailed(message)
