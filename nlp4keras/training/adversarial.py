"""Adversarial training (FGM) and gradient penalty on the token embeddings
(kexue.fm/archives/7234), as a functional model whose `fit` does the extra work.

FGM: g = dL/dE for the embedding matrix E, delta = epsilon * g / ||g|| (one
norm over the whole matrix; delta = 0 when g is not finite, e.g. an fp16
overflow). The update uses grad L(E) + grad L(E + delta) (the usual FGM), or
grad L(E + delta) alone with clean_loss=False, which is what bert4keras'
`adversarial_training` did. E itself is never left perturbed: JAX evaluates
L(E + delta) on a copy (stateless), torch restores a saved copy of E before
the optimizer step.

Gradient penalty: L + 0.5 * epsilon * ||dL/de||^2 where e is the *output* of
the embedding layer (one row per token position, repeated tokens counted
separately). bert4keras' `task_iflytek_gradient_penalty.py` squared
`K.gradients(loss, [embeddings])[0].values`: the rows of TF's sparse gradient
of the lookup, i.e. this same per-position gradient, not the gradient of the
matrix (which would add up repeated tokens first).

The logged `loss` is always the plain loss of the unperturbed model.
JAX: `compute_loss_and_updates` returns the adversarial objective, so Keras'
jitted stateless `train_step` (optimizer, loss scaling, metrics) is untouched.
torch and TensorFlow: `train_step` is overridden (two backward passes for
FGM, double backpropagation for the penalty; TensorFlow through nested
gradient tapes inside Keras' compiled step). `tf.recompute_grad` has no
second derivatives, so on TensorFlow a recomputed model runs its blocks
plainly in gradient-penalty steps (same result, activations stored).
"""

import contextlib

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.layers import MultiHeadAttention
from nlp4keras.layers.base import walk_layers
from nlp4keras.messages import did_you_mean
from nlp4keras.recompute import recompute_suspended
from nlp4keras.training.layer_gradients import output_gradient

METHODS = ("fgm", "gradient_penalty")
SUPPORTED_BACKENDS = ("jax", "torch", "tensorflow")


class AdversarialModel(keras.Model):
    """A functional model trained with FGM or a gradient penalty.

    `AdversarialModel(inputs, outputs, method='fgm', epsilon=1.0,
    embedding_name='Embedding-Token', clean_loss=True)`; everything else
    (compile, fit, evaluate, predict) is keras.Model. Under mixed_float16 the
    loss scaling of `compile(auto_scale_loss=True)` applies to both terms.
    Saving: save the weights, or keep the plain model it was made from.
    """

    def __init__(
        self,
        inputs,
        outputs,
        method="fgm",
        epsilon=1.0,
        embedding_name="Embedding-Token",
        clean_loss=True,
        **kwargs,
    ):
        who = "AdversarialModel"
        check_backend(who)
        if not isinstance(method, str) or method not in METHODS:
            hint = did_you_mean(method, METHODS) if isinstance(method, str) else ""
            if method == "vat":
                hint = " For virtual adversarial training use VirtualAdversarialModel."
            raise validation.InvalidValue(
                f"{who}: unknown method {method!r}.{hint} Valid methods: {', '.join(METHODS)}",
                "method",
            )
        epsilon = validation.real(epsilon, "epsilon", who, above=0)
        clean_loss = validation.boolean(clean_loss, "clean_loss", who)
        embedding_name = validation.string(embedding_name, "embedding_name", who)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.method = method
        self.epsilon = epsilon
        self.clean_loss = clean_loss
        self.embedding_name = embedding_name
        self._embedding_layer()  # fails early on a wrong name
        if method == "fgm" and self._embedding_index() is None:
            raise ValueError(
                f"FGM perturbs the matrix of {embedding_name!r}, which must be a trainable "
                "weight of the model"
            )

    # ------------------------------------------------------------- helpers
    def _embedding_layer(self):
        layers = {layer.name: layer for layer in walk_layers(self)}
        names = list(layers)
        if self.embedding_name not in names:
            candidates = [name for name, layer in layers.items() if hasattr(layer, "embeddings")]
            raise ValueError(
                f"no layer named {self.embedding_name!r}."
                f"{did_you_mean(self.embedding_name, names)} "
                f"Layers with an embedding matrix: {', '.join(candidates) or 'none'}"
            )
        layer = layers[self.embedding_name]
        if not hasattr(layer, "embeddings"):
            raise ValueError(f"layer {self.embedding_name!r} has no `embeddings` matrix")
        return layer

    def _embedding_index(self):
        """Position of the embedding matrix in `trainable_variables` (or None)."""
        matrix = self._embedding_layer().embeddings
        for index, variable in enumerate(self.trainable_variables):
            if variable is matrix:
                return index
        return None

    def _fgm_delta(self, gradient):
        gradient = ops.cast(gradient, "float32")
        norm = ops.sqrt(ops.sum(ops.square(gradient)))
        delta = self.epsilon * gradient / (norm + 1e-8)
        return ops.where(ops.isfinite(norm), delta, ops.zeros_like(delta))

    # ----------------------------------------------------------------- JAX
    def compute_loss_and_updates(
        self,
        trainable_variables,
        non_trainable_variables,
        metrics_variables,
        x,
        y,
        sample_weight,
        training=False,
        optimizer_variables=None,
    ):
        """JAX only: (objective, aux) with aux's unscaled loss the clean one."""
        parent = super().compute_loss_and_updates

        def loss_at(trainable, non_trainable):
            return parent(
                trainable,
                non_trainable,
                metrics_variables,
                x,
                y,
                sample_weight,
                training=training,
                optimizer_variables=optimizer_variables,
            )

        if not training:
            return loss_at(trainable_variables, non_trainable_variables)
        if self.method == "fgm":
            return self._jax_fgm(loss_at, trainable_variables, non_trainable_variables)
        return self._jax_penalty(
            loss_at, trainable_variables, non_trainable_variables, optimizer_variables
        )

    def _jax_fgm(self, loss_at, trainable, non_trainable):
        import jax

        index = self._embedding_index()

        def with_matrix(matrix):
            return trainable[:index] + [matrix] + trainable[index + 1 :]

        def clean(matrix):
            return loss_at(with_matrix(matrix), non_trainable)

        (loss, aux), gradient = jax.value_and_grad(clean, has_aux=True)(trainable[index])
        delta = jax.lax.stop_gradient(self._fgm_delta(gradient))
        matrix = trainable[index]
        adv_loss, adv_aux = loss_at(with_matrix(matrix + ops.cast(delta, matrix.dtype)), aux[2])
        objective = loss + adv_loss if self.clean_loss else adv_loss
        unscaled, y_pred, _, metrics = aux
        return objective, (unscaled, y_pred, adv_aux[2], metrics)

    def _jax_penalty(self, loss_at, trainable, non_trainable, optimizer_variables):
        with _explicit_attention(self):
            loss, aux, gradient = output_gradient(
                self._embedding_layer(), lambda: loss_at(trainable, non_trainable)
            )
        # `loss` may be scaled (LossScaleOptimizer): the penalty uses the
        # gradient of the unscaled loss, then is scaled like the loss.
        scale = self._loss_scale(optimizer_variables)
        penalty = 0.5 * self.epsilon * ops.sum(ops.square(gradient)) / scale
        return loss + penalty, aux

    def _loss_scale(self, optimizer_variables=None):
        """The factor `optimizer.scale_loss` applies (1 without loss scaling)."""
        if self.optimizer is None:
            return 1.0
        if optimizer_variables is None:
            return self.optimizer.scale_loss(1.0)
        mapping = list(zip(self.optimizer.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping):
            return self.optimizer.scale_loss(1.0)

    # ------------------------------------------------- torch and TensorFlow
    def train_step(self, *args, **kwargs):
        backend = keras.backend.backend()
        if backend == "jax":
            return super().train_step(*args, **kwargs)
        (data,) = args
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        step = getattr(self, f"_{backend}_{self.method}")
        loss, y_pred = step(x, y, sample_weight)
        batch_size = ops.shape(next(i for i in keras.tree.flatten(x) if i is not None))[0]
        self._loss_tracker.update_state(loss, sample_weight=batch_size)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _plain_loss(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        return loss, y_pred

    def _penalty(self, gradients):
        """0.5 eps ||g||^2 for the gradients of the *scaled* loss (unscaled here)."""
        squares = sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g in gradients)
        scale = self._loss_scale()
        return 0.5 * self.epsilon * squares / (scale * scale)

    def _torch_fgm(self, x, y, sample_weight):
        import torch

        matrix = self._embedding_layer().embeddings
        variables = self.trainable_variables
        self.zero_grad()
        loss, y_pred = self._plain_loss(x, y, sample_weight)
        self.optimizer.scale_loss(loss).backward()
        delta = self._fgm_delta(matrix.value.grad.detach())
        if not self.clean_loss:
            self.zero_grad()
        with torch.no_grad():
            saved = matrix.value.detach().clone()
            matrix.value.add_(delta.to(saved.dtype))
        try:
            adv_loss, _ = self._plain_loss(x, y, sample_weight)
            self.optimizer.scale_loss(adv_loss).backward()  # adds to .grad
        finally:
            with torch.no_grad():
                matrix.value.copy_(saved)
        self._torch_apply(variables)
        return loss, y_pred

    def _penalised(self, x, y, sample_weight, create_graph=False):
        """(loss, y_pred, penalty), the penalty differentiable."""

        def run():
            loss, y_pred = self._plain_loss(x, y, sample_weight)
            return self.optimizer.scale_loss(loss), (loss, y_pred)

        layer = self._embedding_layer()
        _, (loss, y_pred), gradient = output_gradient(layer, run, create_graph=create_graph)
        return loss, y_pred, self._penalty([gradient])

    def _torch_gradient_penalty(self, x, y, sample_weight):
        self.zero_grad()
        # Backward passes stay inside: recomputed blocks rerun their forward
        # then, and must take the same (explicit) attention path.
        with _explicit_attention(self):
            loss, y_pred, penalty = self._penalised(x, y, sample_weight, create_graph=True)
            self.optimizer.scale_loss(loss + penalty).backward()
        self._torch_apply(self.trainable_variables)
        return loss, y_pred

    def _torch_apply(self, variables):
        import torch

        gradients = [v.value.grad for v in variables]
        with torch.no_grad():
            self.optimizer.apply(gradients, variables)

    def _tensorflow_fgm(self, x, y, sample_weight):
        import tensorflow as tf

        matrix = self._embedding_layer().embeddings
        variables = self.trainable_variables
        values = [v.value for v in variables]
        with tf.GradientTape() as tape:
            loss, y_pred = self._plain_loss(x, y, sample_weight)
            scaled = self.optimizer.scale_loss(loss)
        clean = _dense(tape.gradient(scaled, values))
        delta = self._fgm_delta(clean[self._embedding_index()])
        # Stateful ops keep their program order inside the compiled step.
        saved = tf.identity(matrix.value)
        matrix.assign(saved + tf.cast(delta, saved.dtype))
        with tf.GradientTape() as tape:
            adv_loss, _ = self._plain_loss(x, y, sample_weight)
            scaled = self.optimizer.scale_loss(adv_loss)
        gradients = _dense(tape.gradient(scaled, values))
        matrix.assign(saved)
        if self.clean_loss:
            gradients = [_add(a, c) for a, c in zip(gradients, clean)]
        self.optimizer.apply(gradients, variables)
        return loss, y_pred

    def _tensorflow_gradient_penalty(self, x, y, sample_weight):
        import tensorflow as tf

        variables = self.trainable_variables
        with tf.GradientTape() as outer:
            # The inner gradient is taken under this tape (double backprop).
            # tf.recompute_grad has no second derivatives: blocks run plainly.
            with _explicit_attention(self), recompute_suspended():
                loss, y_pred, penalty = self._penalised(x, y, sample_weight)
            total = self.optimizer.scale_loss(loss + penalty)
        gradients = outer.gradient(total, [v.value for v in variables])
        self.optimizer.apply(_dense(gradients), variables)
        return loss, y_pred


def _dense(gradients):
    """TensorFlow gradients with IndexedSlices (embedding lookups) made dense."""
    import tensorflow as tf

    return [None if g is None else tf.convert_to_tensor(g) for g in gradients]


def _add(a, b):
    return b if a is None else a if b is None else a + b


def check_backend(who):
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(
            f"{who} supports the {' and '.join(SUPPORTED_BACKENDS)} backends, not {backend!r}"
        )


def adversarial_training(model, method="fgm", epsilon=1.0, embedding_name="Embedding-Token", **kw):
    """An AdversarialModel sharing `model`'s layers and weights; compiled like
    `model` when `model` is compiled (bert4keras added adversarial training to
    a compiled model), else compile it yourself."""
    inputs, outputs = functional_parts(model, "adversarial_training")
    adversarial = AdversarialModel(
        inputs, outputs, method=method, epsilon=epsilon, embedding_name=embedding_name, **kw
    )
    return compiled_like(adversarial, model)


def compiled_like(new_model, model):
    """`new_model`, compiled with the arguments `model` was compiled with (the
    same optimizer object, losses and metrics), when `model` is compiled."""
    # Keras keeps the compile() arguments as given in `_compile_config`; the
    # public get_compile_config() serialises them (bound-method losses fail).
    arguments = getattr(getattr(model, "_compile_config", None), "config", None)
    if getattr(model, "compiled", False) and arguments is not None:
        new_model.compile(**arguments)
    return new_model


def functional_parts(model, who):
    """(inputs, outputs) of a functional keras.Model, a single output unwrapped."""
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        raise validation.InvalidType(
            f"{who}: `model` must be a functional keras.Model (with inputs and "
            f"outputs), got {model!r}",
            "model",
        )
    outputs = model.outputs if len(model.outputs) > 1 else model.outputs[0]
    return model.inputs, outputs


@contextlib.contextmanager
def _explicit_attention(model):
    """While active, attention layers skip the fused kernels, whose second
    derivatives may be missing (torch's CPU flash kernel, cuDNN on JAX)."""
    layers = [layer for layer in walk_layers(model) if isinstance(layer, MultiHeadAttention)]
    for layer in layers:
        layer.explicit_attention = True
    try:
        yield
    finally:
        for layer in layers:
            layer.explicit_attention = False
