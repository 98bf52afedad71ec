"""What the report tells a person: why a line cannot be rewritten by rule,
and what to use instead."""

from nlp4keras.migrate import package

TRAINING = "nlp4keras.training"
ADVERSARIAL = (
    f"`model = {TRAINING}.adversarial_training(model, method='fgm', epsilon=...)` "
    "(an AdversarialModel with the script's epsilon, compiled like the model it wraps)"
)
GRADIENT_PENALTY = (
    f"`model = {TRAINING}.adversarial_training(model, method='gradient_penalty', epsilon=...)` "
    "with the plain loss"
)
INPUT_GRADIENTS = f"{TRAINING}.input_gradients (saliency, integrated gradients)"
VAT = f"{TRAINING}.virtual_adversarial_training"

# --------------------------------------------------- symbolic gradients
_GRADIENTS = "symbolic gradients do not exist in Keras 3"
GRADIENTS_IN_LOSS = f"{_GRADIENTS}; a gradient penalty in the loss: use {GRADIENT_PENALTY}"
GRADIENTS_IN_LAYER = f"{_GRADIENTS}; gradients of an output by an input: use {INPUT_GRADIENTS}"
RANDOM_IN_LAYER = (
    "a random op without a seed in a layer's call: JAX traces the training step and refuses it; "
    "make `self.seed_generator = keras.random.SeedGenerator()` in __init__ and pass "
    "`seed=self.seed_generator`"
)
FORFIT_NEXT = (
    "on TensorFlow forfit() is a tf.data.Dataset (fit needs its variable shapes): to call "
    "next() on it, wrap it in iter() (works on every backend)"
)
GRADIENTS_IN_TRAIN_FUNCTION = (
    f"{_GRADIENTS}; adversarial training (FGM): use {ADVERSARIAL}; virtual adversarial "
    f"training: {VAT}"
)
GRADIENTS = (
    f"{_GRADIENTS}; adversarial training / gradient penalty: "
    f"{TRAINING}.adversarial_training, input gradients: {INPUT_GRADIENTS}, VAT: {VAT}; "
    "else override Model.train_step"
)

# ------------------------------------------------------------ internals
TRAIN_FUNCTION = (
    "Keras 2 internals: Keras 3 builds its own train function (it takes a data iterator, "
    f"not a batch), so this surgery breaks fit; adversarial training: {ADVERSARIAL}; VAT: "
    f"{VAT}; anything else: override Model.train_step"
)
TOTAL_LOSS = (
    "model.total_loss is a Keras 2 graph tensor; Keras 3 has none (losses are computed in "
    f"train_step); adversarial training: {ADVERSARIAL}"
)
SESSION = (
    "TF1 sessions do not exist in Keras 3: delete the session setup (GPU memory growth: "
    "tf.config.experimental.set_memory_growth, TensorFlow backend only)"
)
TF_COMPAT_V1 = (
    "TF1 graph-mode API: Keras 3 has no graph or session to use it in; write it with "
    "keras.ops (any backend) or TF2 eager code (TensorFlow backend only)"
)
TF_CONTRIB = "tf.contrib is gone in TensorFlow 2: use keras.ops or a maintained package"
TF_DISTRIBUTE = (
    "a tf.distribute strategy (set up for TF1 Keras with TF_KERAS) works only with "
    "KERAS_BACKEND=tensorflow: build and compile the model inside strategy.scope(); with JAX "
    "use keras.distribution.set_distribution(keras.distribution.DataParallel())"
)
MULTI_GPU_MODEL = (
    "multi_gpu_model is gone: with JAX use keras.distribution.set_distribution("
    "keras.distribution.DataParallel()); with TensorFlow a tf.distribute.MirroredStrategy "
    "scope around building and compiling the model"
)
TF_KERAS_ATTRIBUTE = "with Keras 3 write keras.X (import keras): it runs on every backend"
PRIVATE_TF_KERAS = "tensorflow.python.keras is TensorFlow's private Keras 2: import from keras"
SPLIT_BACKEND_IMPORT = (
    "Keras 3's keras.backend has no Keras 2 functions: import K on its own line, "
    "`from nlp4keras.backend import K`"
)
SPLIT_TF_KERAS_IMPORT = "import keras on its own line (`import keras`) instead of from tensorflow"
TF_KERAS_SWITCH = (
    "TF_KERAS means nothing to nlp4keras (Keras 3 only): delete it (not rewritten here: "
    "it is not a statement of its own line, or the only one in its block)"
)

# ---------------------------------------------------------- fit & co.
FIT_WORKERS = (
    "Keras 3's fit/evaluate/predict take no workers, use_multiprocessing or "
    "max_queue_size: give them to a keras.utils.PyDataset, or drop them"
)
OPTIMIZER_DECAY = (
    "Keras 3 optimizers take no decay=: use a keras.optimizers.schedules schedule as "
    "learning_rate, or nlp4keras.optimizers.extend_with_piecewise_linear_lr"
)
OPTIMIZER_BOTH_LR = "both lr= and learning_rate=: keep learning_rate= only"
BY_NAME = (
    "Keras 3's load_weights has no by_name: load into the same architecture, or use "
    "skip_mismatch=True"
)
SAVE_FORMAT = "Keras 3's save/save_weights take no save_format: the file name's ending decides"
GENERATOR_KEYWORD = "both generator= and x=: keep x= only"

# ----------------------------------------------------------- K calls
K_FUNCTIONS = {
    "get_session": SESSION,
    "set_session": SESSION,
    "rnn": "use keras.layers.RNN or keras.ops.scan",
    "batch_dot": "use keras.ops.einsum (e.g. 'bij,bjk->bik') or keras.ops.matmul",
    "get_graph": "Keras 3 has no global graph",
    "set_learning_phase": (
        "Keras 3 has no global learning phase: pass training=True/False to the call"
    ),
    "placeholder": "use keras.Input(shape=...)",
    "tf": "K.tf was TensorFlow itself: use keras.ops, or import tensorflow (TensorFlow only)",
    "hard_sigmoid": "Keras 3's keras.ops.hard_sigmoid has another slope (relu6(x + 3) / 6)",
    "repeat": "Keras 2's K.repeat(x, n) is keras.ops.repeat(keras.ops.expand_dims(x, 1), n, 1)",
    "print_tensor": "print eagerly instead (compile(run_eagerly=True)) or use a callback",
}
K_FUNCTION_UPDATES = (
    "K.function(..., updates=...) ran a training step by hand; Keras 3 has no updates: "
    f"override Model.train_step, or use {TRAINING}.adversarial_training"
)


K_MISSING = (
    "not in nlp4keras' K (the Keras 2 backend functions it keeps): use the keras.ops equivalent"
)


# ------------------------------------------------------- paths
def weights_path(known=""):
    return f"Keras 3 needs a file name ending in .weights.h5: check the path{known}"


def model_path(known=""):
    return f"Keras 3 needs a file name ending in .keras (or legacy .h5): check the path{known}"


LOAD_MODEL_PATH = (
    "Keras 3 reads .keras or .h5 files; a TF SavedModel folder loads as "
    "keras.layers.TFSMLayer (TensorFlow backend), else save it again as .keras"
)


DIRECTORY_PATH = "a folder: a TF SavedModel is model.export(path) in Keras 3; else name a file"

# ------------------------------------------------------------- imports
GONE_LAYERS = {
    "CuDNNLSTM": "gone: keras.layers.LSTM uses cuDNN when it can",
    "CuDNNGRU": "gone: keras.layers.GRU uses cuDNN when it can",
}
GONE_MODULES = {
    "keras.preprocessing.text": "gone in Keras 3: use the nlp4keras tokenizers",
}

# bert4keras names a script can stop importing when nlp4keras lacks them.
DROPPABLE_NAMES = {
    "uniout": "a Python 2 printing helper",
    "open": "Python 3's built-in open does the same",
}
# bert4keras names nlp4keras does not provide, and why (shown only while missing).
MISSING_NAME_HINTS = {
    "uniout": "a Python 2 printing helper: delete it from the import",
    "open": "bert4keras' open(..., indexable=True): use the built-in open and index the lines",
    "search_layer": "Keras 3 keeps no graph of layers to search: use model.get_layer(name)",
    "is_tf_keras": "nlp4keras is Keras 3 only: there is no tf.keras switch",
    "get_available_gpus": "use keras.distribution.list_devices('gpu')",
}


def missing_module(module):
    return f"there is no module {module}"


def missing_name(module, name):
    where = f"{package.PACKAGE}.{module}" if module else package.PACKAGE
    text = f"{where} has no `{name}`"
    if name in MISSING_NAME_HINTS:
        return f"{text}: {MISSING_NAME_HINTS[name]}"
    elsewhere = package.modules_defining(name)
    if elsewhere:
        return f"{text}: import it from {' or '.join(elsewhere)}"
    return f"{text} (not in nlp4keras yet): write it with keras.ops, or drop it"


def moved_module(module, target, allowed):
    names = ", ".join(sorted(allowed))
    return f"{module} is gone in Keras 3: {names} are in {target}; find the others in keras.*"
