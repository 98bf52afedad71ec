"""`nlp4keras migrate`: each rewrite rule on a small snippet (exact text before
and after), what is left to a person (with line numbers), formatting kept,
idempotency, and the command itself (--diff, --write, exit codes)."""

import os
import subprocess
import sys
import textwrap

import keras
import pytest

from nlp4keras.migrate import REVIEWED_MARK, migrate_source, package
from nlp4keras.migrate.api import K_TO_OPS
from nlp4keras.migrate.imports import KERAS_MOVES

pytestmark = pytest.mark.backend_free  # source rewriting: one lane (lanes.py)

# What nlp4keras provides, pinned so the rule tests do not follow the package
# as it grows (the real package is read in the `package` tests below).
PINNED_K = frozenset(
    {"sum", "mean", "cast", "floatx", "int_shape", "function", "eval", "set_value", "zeros_like"}
    | {"random_binomial", "random_normal", "dropout"}
)
PINNED_K_UNSUPPORTED = {
    "gradients": "symbolic gradients do not exist",
    "get_session": "TF1 sessions do not exist",
    "batch_dot": "use keras.ops.einsum",
}
PINNED_MISSING = {("snippets", "uniout"), ("snippets", "open"), ("snippets", "no_such_thing")}


@pytest.fixture
def pinned(monkeypatch):
    real_has_name = package.has_name
    monkeypatch.setattr(package, "k_functions", lambda: PINNED_K | set(PINNED_K_UNSUPPORTED))
    monkeypatch.setattr(package, "k_unsupported", lambda: PINNED_K_UNSUPPORTED)
    monkeypatch.setattr(
        package,
        "has_name",
        lambda module, name: (module, name) not in PINNED_MISSING and real_has_name(module, name),
    )


def dedent(text):
    return textwrap.dedent(text).lstrip("\n")


def migrate(text):
    new_text, report = migrate_source(dedent(text))
    return new_text, report


def issues_of(report):
    return [(issue.line, issue.reason) for issue in report.issues]


def report_only(text, issues):
    """A case migrate leaves as it is, only reporting `issues`."""
    return text, text, issues


# (before, after, [(line, reason) of what needs a person])
CASES = {
    # ------------------------------------------------------------ imports
    "from-import": (
        "from bert4keras.models import build_transformer_model  # the model\n",
        "from nlp4keras.models import build_transformer_model  # the model\n",
        [],
    ),
    "parenthesized import keeps its layout": (
        """
        from bert4keras.snippets import (
            sequence_padding,  # pads
            DataGenerator,
        )
        """,
        """
        from nlp4keras.snippets import (
            sequence_padding,  # pads
            DataGenerator,
        )
        """,
        [],
    ),
    "plain import and its uses": (
        """
        import bert4keras.snippets
        x = bert4keras.snippets.sequence_padding([[1], [2, 3]])
        """,
        """
        import nlp4keras.snippets
        x = nlp4keras.snippets.sequence_padding([[1], [2, 3]])
        """,
        [],
    ),
    "import as": (
        "import bert4keras.tokenizers as tok\nt = tok.Tokenizer\n",
        "import nlp4keras.tokenizers as tok\nt = tok.Tokenizer\n",
        [],
    ),
    "keras.backend as K": (
        "from keras import backend as K\nimport keras.backend as KB\n",
        "from nlp4keras.backend import K\nfrom nlp4keras.backend import K as KB\n",
        [],
    ),
    "tensorflow.keras imports": (
        "from tensorflow.keras.layers import Dense\nfrom tensorflow import keras\n",
        "from keras.layers import Dense\nimport keras\n",
        [],
    ),
    "Keras 2 module moved": (
        "from keras.engine.topology import Layer\nfrom keras.layers.core import Dense, Lambda\n",
        "from keras.layers import Layer\nfrom keras.layers import Dense, Lambda\n",
        [],
    ),
    "Keras 2 module with names elsewhere": (
        "from keras.engine import Network\n",
        "from keras.engine import Network\n",
        [(1, "not in Keras 3")],
    ),
    "multi_gpu_model": (
        "from keras.utils import multi_gpu_model\nm = multi_gpu_model(model, gpus=2)\n",
        "from keras.utils import multi_gpu_model\nm = multi_gpu_model(model, gpus=2)\n",
        [(1, "multi_gpu_model"), (2, "multi_gpu_model")],
    ),
    "name nlp4keras lacks": (
        "from bert4keras.snippets import sequence_padding, no_such_thing\n",
        "from nlp4keras.snippets import sequence_padding, no_such_thing\n",
        [(1, "not in nlp4keras")],
    ),
    "module nlp4keras lacks": (
        "from bert4keras.no_such_module import x\n",
        "from nlp4keras.no_such_module import x\n",
        [(1, "not in nlp4keras")],
    ),
    "uniout and open are dropped": (
        """
        from bert4keras.snippets import sequence_padding, open, DataGenerator
        from bert4keras.snippets import uniout  # prints Chinese

        lines = open('data.txt', encoding='utf-8').readlines()
        """,
        """
        from nlp4keras.snippets import sequence_padding, DataGenerator

        lines = open('data.txt', encoding='utf-8').readlines()
        """,
        [],
    ),
    "bert4keras' open(indexable=) is kept": (
        """
        from bert4keras.snippets import open
        f = open('data.txt', indexable=True)
        """,
        """
        from nlp4keras.snippets import open
        f = open('data.txt', indexable=True)
        """,
        [(1, "not in nlp4keras")],
    ),
    # ------------------------------------------------------------- paths
    "weights file names": (
        """
        model.save_weights('best_model.weights')
        model.load_weights("./best_model.weights", skip_mismatch=True)
        """,
        """
        model.save_weights('best_model.weights.h5')
        model.load_weights("./best_model.weights.h5", skip_mismatch=True)
        """,
        [],
    ),
    "legacy .h5 weights: renamed when saved here": (
        """
        model.save_weights('m.h5')
        model.load_weights('m.h5')
        model.load_weights('pretrained.h5')
        model.save_weights(filepath='ckpt/model')
        """,
        """
        model.save_weights('m.weights.h5')
        model.load_weights('m.weights.h5')
        model.load_weights('pretrained.h5')
        model.save_weights(filepath='ckpt/model.weights.h5')
        """,
        [],
    ),
    "raw string path": (
        "model.save_weights(r'C:\\runs\\m.weights')\n",
        "model.save_weights(r'C:\\runs\\m.weights.h5')\n",
        [],
    ),
    "model file names": (
        """
        model.save('test.model')
        encoder = keras.models.load_model('test.model')
        model.save('m.h5')
        train_model.save('final.keras')
        """,
        """
        model.save('test.model.keras')
        encoder = keras.models.load_model('test.model.keras')
        model.save('m.h5')
        train_model.save('final.keras')
        """,
        [],
    ),
    "save on things that are not models": (
        "np.save('x', a)\ntokenizer.save('vocab')\nimage.save('a.png')\n",
        "np.save('x', a)\ntokenizer.save('vocab')\nimage.save('a.png')\n",
        [],
    ),
    "a model named by its factory": (
        "net = build_transformer_model(config)\nnet.save('net')\n",
        "net = build_transformer_model(config)\nnet.save('net.keras')\n",
        [],
    ),
    "ModelCheckpoint": (
        """
        a = ModelCheckpoint('best.weights', save_weights_only=True)
        b = keras.callbacks.ModelCheckpoint('best')
        c = ModelCheckpoint('x', save_weights_only=flag)
        """,
        """
        a = ModelCheckpoint('best.weights.h5', save_weights_only=True)
        b = keras.callbacks.ModelCheckpoint('best.keras')
        c = ModelCheckpoint('x', save_weights_only=flag)
        """,
        [(3, "file name")],
    ),
    "computed paths are reported, not guessed": (
        """
        model.save_weights(f'{folder}/best.weights')
        model.save_weights(f'{folder}/best.weights.h5')
        model.save_weights(folder + '/best.weights.h5')
        model.save_weights(self.savename)
        model.save('a' '.model')
        """,
        """
        model.save_weights(f'{folder}/best.weights')
        model.save_weights(f'{folder}/best.weights.h5')
        model.save_weights(folder + '/best.weights.h5')
        model.save_weights(self.savename)
        model.save('a' '.model')
        """,
        [(1, "file name"), (4, "file name"), (5, "file name")],
    ),
    "a weights name kept in a variable is renamed where it is bound": (
        """
        path = 'best.weights'
        model.save_weights(path)
        """,
        """
        path = 'best.weights.h5'
        model.save_weights(path)
        """,
        [],
    ),
    "load_model of a SavedModel folder": (
        "m = keras.models.load_model('saved_model_dir')\n",
        "m = keras.models.load_model('saved_model_dir')\n",
        [(1, "file name")],
    ),
    "load_model imported from Keras": (
        "from keras.models import load_model\nm = load_model('x')\n",
        "from keras.models import load_model\nm = load_model('x')\n",
        [(2, "file name")],
    ),
    "a load_model not from Keras is left alone": (
        "def load_model(path):\n    return path\n\n\nm = load_model('x')\n",
        "def load_model(path):\n    return path\n\n\nm = load_model('x')\n",
        [],
    ),
    "load_weights by_name": (
        "model.load_weights('m.weights.h5', by_name=True)\n",
        "model.load_weights('m.weights.h5', by_name=True)\n",
        [(1, "load_weights(by_name=)")],
    ),
    "save_format": (
        "model.save_weights('m.weights.h5', save_format='h5')\n",
        "model.save_weights('m.weights.h5', save_format='h5')\n",
        [(1, "save_format")],
    ),
    # ------------------------------------------------------ fit_generator
    "fit_generator & co.": (
        """
        model.fit_generator(generator=train.forfit(), steps_per_epoch=10, epochs=2)
        y = model.predict_generator(gen, steps=3)
        score = model.evaluate_generator(gen)
        """,
        """
        model.fit(x=train.forfit(), steps_per_epoch=10, epochs=2)
        y = model.predict(gen, steps=3)
        score = model.evaluate(gen)
        """,
        [],
    ),
    "fit's workers": (
        "model.fit_generator(gen, workers=4, use_multiprocessing=True)\n",
        "model.fit(gen, workers=4, use_multiprocessing=True)\n",
        [(1, "fit arguments")],
    ),
    # -------------------------------------------------------- optimizers
    "lr keyword of optimizers": (
        """
        from bert4keras.optimizers import Adam, extend_with_piecewise_linear_lr
        AdamLR = extend_with_piecewise_linear_lr(Adam, name='AdamLR')
        opt = AdamLR(lr=1e-4, lr_schedule={1000: 1})
        sgd = keras.optimizers.SGD(lr=0.1)
        plain = Adam(lr=2e-5)
        other = schedule(lr=1)
        """,
        """
        from nlp4keras.optimizers import Adam, extend_with_piecewise_linear_lr
        AdamLR = extend_with_piecewise_linear_lr(Adam, name='AdamLR')
        opt = AdamLR(learning_rate=1e-4, lr_schedule={1000: 1})
        sgd = keras.optimizers.SGD(learning_rate=0.1)
        plain = Adam(learning_rate=2e-5)
        other = schedule(lr=1)
        """,
        [],
    ),
    "optimizer decay": (
        "opt = keras.optimizers.SGD(learning_rate=0.1, decay=1e-6)\n",
        "opt = keras.optimizers.SGD(learning_rate=0.1, decay=1e-6)\n",
        [(1, "optimizer")],
    ),
    "optimizer.lr": (
        """
        from keras.optimizers import Adam
        opt = Adam(1e-3)
        K.set_value(self.model.optimizer.lr, 1e-4)
        print(opt.lr, schedule.lr)
        """,
        """
        from keras.optimizers import Adam
        opt = Adam(1e-3)
        K.set_value(self.model.optimizer.learning_rate, 1e-4)
        print(opt.learning_rate, schedule.lr)
        """,
        [],
    ),
    # ----------------------------------------------------------- TF_KERAS
    "TF_KERAS is removed": (
        """
        import os

        os.environ['TF_KERAS'] = '1'  # use tf.keras

        import json
        """,
        """
        import os

        import json
        """,
        [],
    ),
    "TF_KERAS through environ and setdefault": (
        """
        from os import environ
        environ["TF_KERAS"] = "1"
        os.environ.setdefault('TF_KERAS', '1')
        x = 1
        """,
        """
        from os import environ
        x = 1
        """,
        [],
    ),
    "TF_KERAS alone in a block": (
        "if use_tf:\n    os.environ['TF_KERAS'] = '1'\n",
        "if use_tf:\n    os.environ['TF_KERAS'] = '1'\n",
        [(2, "TF_KERAS")],
    ),
    # ----------------------------------------------------------- tf.keras
    "tf.keras becomes keras": (
        """
        import tensorflow as tf
        layer = tf.keras.layers.Dense(2)
        """,
        """
        import tensorflow as tf
        import keras
        layer = keras.layers.Dense(2)
        """,
        [],
    ),
    "tf.keras when keras is imported": (
        "import keras\nimport tensorflow as tf\nx = tf.keras.ops.ones(2)\n",
        "import keras\nimport tensorflow as tf\nx = keras.ops.ones(2)\n",
        [],
    ),
    "tf.keras when the name keras is taken": (
        "import tensorflow as tf\nkeras = 3\nx = tf.keras.layers.Dense(keras)\n",
        "import tensorflow as tf\nkeras = 3\nx = tf.keras.layers.Dense(keras)\n",
        [(3, "tf.keras")],
    ),
    # ------------------------------------------------------------------ K
    "K functions nlp4keras keeps": (
        "from bert4keras.backend import keras, K\ny = K.sum(K.cast(x, K.floatx()))\n",
        "from nlp4keras.backend import keras, K\ny = K.sum(K.cast(x, K.floatx()))\n",
        [],
    ),
    "K functions to keras.ops": (
        """
        from bert4keras.backend import keras, K
        y = K.softsign(x) + K.reverse(x, 1)
        shape = K.get_variable_shape(w)
        """,
        """
        from nlp4keras.backend import keras, K
        y = keras.ops.softsign(x) + keras.ops.flip(x, 1)
        shape = K.int_shape(w)
        """,
        [],
    ),
    "K functions a person must replace": (
        """
        from bert4keras.backend import K
        sess = K.get_session()
        z = K.batch_dot(x, y, axes=1)
        w = K.no_such_function(x)
        s = K.softsign(x)
        f = K.function([a], [b], updates=ups)
        g = K.function([a], [b])
        """,
        """
        from nlp4keras.backend import K
        sess = K.get_session()
        z = K.batch_dot(x, y, axes=1)
        w = K.no_such_function(x)
        s = K.softsign(x)
        f = K.function([a], [b], updates=ups)
        g = K.function([a], [b])
        """,
        [
            (2, "K.get_session"),
            (3, "K.batch_dot"),
            (4, "K function missing"),
            (5, "K function missing"),
            (6, "K.function(updates=)"),
        ],
    ),
    # ------------------------------------------------------ for a person
    "gradient penalty in a loss": (
        """
        from bert4keras.backend import K
        def loss_with_gradient_penalty(y_true, y_pred):
            loss = K.mean(y_pred)
            return loss + K.sum(K.gradients(loss, [embeddings])[0] ** 2)
        """,
        """
        from nlp4keras.backend import K
        def loss_with_gradient_penalty(y_true, y_pred):
            loss = K.mean(y_pred)
            return loss + K.sum(K.gradients(loss, [embeddings])[0] ** 2)
        """,
        [(4, "K.gradients")],
    ),
    "train_function surgery": (
        """
        import keras.backend as K
        if model.train_function is None:
            model._make_train_function()
        grads = K.gradients(model.total_loss, [embeddings])
        model.train_function = train_function
        """,
        """
        from nlp4keras.backend import K
        if model.train_function is None:
            model._make_train_function()
        grads = K.gradients(model.total_loss, [embeddings])
        model.train_function = train_function
        """,
        [
            (2, "train_function"),
            (3, "train_function"),
            (4, "K.gradients"),
            (4, "model.total_loss"),
            (5, "train_function"),
        ],
    ),
    "an unseeded random op in a layer's call (JAX)": report_only(
        """
        from nlp4keras.backend import K
        class Choice(Layer):
            def call(self, inputs):
                mask = K.random_binomial(shape=[1], p=0.5)
                kept = K.dropout(inputs, 0.1, seed=self.seed_generator)
                return mask * inputs
        noise = K.random_normal(shape=[3])
        """,
        [(4, "random op in a layer")],
    ),
    "forfit() kept for next() (a Dataset on TensorFlow)": report_only(
        """
        data = gen.forfit()
        batch = next(data)
        model.fit(gen.forfit(), steps_per_epoch=len(gen))
        """,
        [(1, "forfit() and next()")],
    ),
    "TF1 sessions and tf.distribute": (
        """
        import tensorflow as tf
        config = tf.ConfigProto()
        sess = tf.compat.v1.Session(config=config)
        strategy = tf.distribute.MirroredStrategy()
        dataset = tf.data.Dataset.range(3)
        """,
        """
        import tensorflow as tf
        config = tf.ConfigProto()
        sess = tf.compat.v1.Session(config=config)
        strategy = tf.distribute.MirroredStrategy()
        dataset = tf.data.Dataset.range(3)
        """,
        [(2, "TF1 session"), (3, "tf.compat.v1"), (4, "tf.distribute")],
    ),
    "TF1 through tensorflow.compat.v1": (
        "import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\ng = tf.gradients(y, x)\n",
        "import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\ng = tf.gradients(y, x)\n",
        [(1, "tf.compat.v1"), (3, "tf.gradients")],
    ),
    "a line a person has checked": (
        f"model.save_weights(self.savename)  # {REVIEWED_MARK}\n",
        f"model.save_weights(self.savename)  # {REVIEWED_MARK}\n",
        [],
    ),
}


@pytest.mark.usefixtures("pinned")
@pytest.mark.parametrize("name", CASES)
def test_rule(name):
    before, after, expected_issues = CASES[name]
    new_text, report = migrate(before)
    assert new_text == dedent(after)
    assert issues_of(report) == expected_issues
    assert bool(report.changes) == (dedent(before) != dedent(after))


@pytest.mark.usefixtures("pinned")
@pytest.mark.parametrize("name", CASES)
def test_migrating_twice_changes_nothing_more(name):
    once, _ = migrate(CASES[name][0])
    twice, report = migrate_source(once)
    assert twice == once
    assert report.changes == []


@pytest.mark.usefixtures("pinned")
def test_report_lines_and_numbers():
    text = """
        import os
        from bert4keras.backend import keras, K

        os.environ['TF_KERAS'] = '1'
        model.save_weights('best.weights')

        def fgm(model):
            grads = K.gradients(model.total_loss, [w])
            model.train_function = f
            old = model.train_function
    """
    _, report = migrate(text)
    lines = report.lines("task_x.py")
    assert lines[:3] == [
        "task_x.py:2: import bert4keras.backend -> nlp4keras.backend",
        "task_x.py:4: removed os.environ['TF_KERAS'] = '1' (Keras 3 only: TF_KERAS means nothing)",
        "task_x.py:5: save_weights path 'best.weights' -> 'best.weights.h5'",
    ]
    person = lines[3:]
    assert [line.split(": needs a person: ")[0] for line in person] == [
        "task_x.py:8",
        "task_x.py:8",
        "task_x.py:9",
        "task_x.py:10",
    ]
    assert person[0].startswith("task_x.py:8: needs a person: K.gradients(...) — symbolic")
    assert "nlp4keras.training.adversarial_training(model, method='fgm'" in person[0]
    # A hint said once is referred to by its line afterwards.
    assert person[3] == "task_x.py:10: needs a person: model.train_function — as at line 9"
    assert report.person_lines() == [8, 9, 10]


def test_formatting_comments_and_unicode_are_kept(pinned):
    text = (
        "# -*- coding: utf-8 -*-\r\n"
        "# 通过积分梯度给输入排序\r\n"
        "from   bert4keras.models import (build_transformer_model ,  # 模型\r\n"
        "    Transformer)\r\n"
        "x = {'a':1,   'b' : 2}   # odd spacing stays\r\n"
        "text = u'这是一本很好看的书'; model.save_weights( 'best.weights' )  # 保存\r\n"
    )
    new_text, report = migrate_source(text)
    assert new_text == (
        text.replace("bert4keras.models", "nlp4keras.models").replace(
            "'best.weights'", "'best.weights.h5'"
        )
    )
    assert [c.line for c in report.changes] == [3, 6]


def test_package_knowledge_read_from_the_source():
    assert package.has_module("snippets") and not package.has_module("no_such_module")
    assert package.has_name("models", "build_transformer_model")
    assert package.has_name("tokenizers", "Tokenizer")
    assert package.has_name("backend", "K")  # nlp4keras.backend exports keras2_backend as K
    assert not package.has_name("snippets", "surely_not_a_name")
    assert "gradients" in package.k_unsupported()
    assert "sum" in package.k_functions()
    assert "nlp4keras.losses" in package.modules_defining("multilabel_categorical_crossentropy")


def test_keras_rewrites_name_what_keras_3_has():
    import importlib

    for old, (target, names) in KERAS_MOVES.items():
        module = importlib.import_module(target)
        for name in names or ():
            assert hasattr(module, name), f"{old} -> {target}.{name}"
    for new in K_TO_OPS.values():
        assert hasattr(keras.ops, new)


def test_not_python_raises_syntax_error():
    with pytest.raises(SyntaxError):
        migrate_source("print 'python 2'\n")


# ------------------------------------------------------------ the command
def run_cli(*args, cwd):
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "nlp4keras", "migrate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


CLEAN_AFTER_MIGRATION = dedent(
    """
    from bert4keras.models import build_transformer_model
    model = build_transformer_model(config)
    model.save_weights('best_model.weights')  # best
    """
)
NEEDS_A_PERSON = dedent(
    """
    from bert4keras.backend import K
    grads = K.gradients(loss, [w])
    """
)


def test_cli_diff_write_and_exit_codes(tmp_path):
    script = tmp_path / "task_a.py"
    script.write_text(CLEAN_AFTER_MIGRATION, encoding="utf-8")
    person = tmp_path / "task_b.py"
    person.write_text(NEEDS_A_PERSON, encoding="utf-8")

    # --diff: a unified diff on stdout, the report on stderr, nothing written.
    result = run_cli("--diff", "task_a.py", "task_b.py", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "--- a/task_a.py\n+++ b/task_a.py\n" in result.stdout
    assert "-from bert4keras.models import build_transformer_model\n" in result.stdout
    assert "+model.save_weights('best_model.weights.h5')  # best\n" in result.stdout
    assert "task_a.py:3: save_weights path 'best_model.weights' -> " in result.stderr
    assert "task_b.py:2: needs a person: K.gradients(...)" in result.stderr
    assert script.read_text(encoding="utf-8") == CLEAN_AFTER_MIGRATION

    # --write: in place, no backup files; then nothing is left to do.
    result = run_cli("--write", "task_a.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert script.read_text(encoding="utf-8") == migrate_source(CLEAN_AFTER_MIGRATION)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task_a.py", "task_b.py"]
    assert "1 file(s): 1 changed (2 change(s)), 0 with 0 line(s)" in result.stdout

    result = run_cli(str(tmp_path), cwd=tmp_path)  # a folder: its .py files
    assert result.returncode == 1
    assert "task_a.py: nothing to change" in result.stdout
    assert "2 file(s): 1 to change" in result.stdout


def test_cli_bad_files_exit_2_and_the_others_are_done(tmp_path):
    (tmp_path / "notes.txt").write_text("not python\n", encoding="utf-8")
    (tmp_path / "old.py").write_text("print 'python 2'\n", encoding="utf-8")
    (tmp_path / "good.py").write_text(CLEAN_AFTER_MIGRATION, encoding="utf-8")
    result = run_cli("notes.txt", "missing.py", "old.py", "good.py", "--write", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: notes.txt: not a Python file" in result.stderr
    assert "error: missing.py: no such file or folder" in result.stderr
    assert "error: old.py: does not parse as Python 3 (line 1: " in result.stderr
    assert "3 error(s)" in result.stdout
    assert "nlp4keras.models" in (tmp_path / "good.py").read_text(encoding="utf-8")


def test_cli_keeps_encoding_and_line_endings(tmp_path):
    script = tmp_path / "latin.py"
    text = "# -*- coding: latin-1 -*-\r\nfrom bert4keras.models import Transformer  # é\r\n"
    script.write_bytes(text.encode("latin-1"))
    result = run_cli("--write", "latin.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = text.replace("bert4keras", "nlp4keras").encode("latin-1")
    assert script.read_bytes() == expected


def test_cli_usage_errors_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nlp4keras"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "migrate" in result.stderr
