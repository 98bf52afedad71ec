"""Virtual adversarial training (VAT; Miyato et al., arXiv 1704.03976) on the
output of the token embedding layer, as a functional model whose `fit` adds
the VAT loss (kexue.fm/archives/7466).

For a batch x with embedding output e and clean prediction p = p(y|e)
(computed by the training forward pass, then held constant):

    d   = xi * unit(n),  n ~ N(0, I)           (shaped like e)
    g   = d KL(p || p(y|e + d)) / d d           (power iteration, repeated
    d   = xi * unit(g)                           `power_iterations` times)
    r   = epsilon * unit(g)                     (constant: no gradient flows)
    VAT = KL(p || p(y|e + r))
    objective = supervised loss + vat_weight * VAT

unit() divides by one L2 norm per example (over positions and features), so
every example gets a perturbation of norm epsilon; 0 where the gradient is 0
or not finite. KL is summed over the last axis of the output (a categorical
distribution: probabilities, or logits with from_logits=True) and averaged
over the rest; probabilities are clipped to [keras epsilon, 1] as Keras'
`kl_divergence` does.

Defaults epsilon=1, xi=10, one power iteration are those of bert4keras'
`task_sentiment_virtual_adversarial_training.py`. That script perturbs the
embedding *matrix*, with a single norm over the whole matrix (so per batch
rather than per example); here the perturbation is per position on the
embedding output and normalised per example, as in the paper's text model.

The VAT term needs no labels, and unlabeled data enter `fit` in two ways:
- `fit(x)` with no targets (or batches `(x,)`): the step minimises the VAT
  term alone (plus any model `add_loss` terms) and logs only `loss` and
  `vat_loss` (compiled metrics need targets). bert4keras' example does this with a second
  model, sharing the layers, that trains on unlabeled batches.
  On TensorFlow, a model compiled with metrics needs a labeled batch before any
  unlabeled one (or a model that only ever sees unlabeled batches, as bert4keras');
  otherwise the first labeled batch raises an error saying so.
- mixed batches: give unlabeled rows any label and sample weight 0; the
  supervised loss ignores them (Keras still divides by the whole batch size
  under its default reduction), the VAT term uses every row unweighted.

Logs: `loss` is the objective, `vat_loss` the VAT term (0 in `evaluate`,
which computes the plain loss only). The power iteration is not loss-scaled
under mixed_float16 (the direction is normalised; an overflow gives r = 0).
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.training.adversarial import check_backend, compiled_like, functional_parts
from nlp4keras.training.intermediates import find_layer
from nlp4keras.training.layer_gradients import output_gradient, shifted_output, unit_per_example


class VirtualAdversarialModel(keras.Model):
    """A functional model trained with virtual adversarial training.

    `VirtualAdversarialModel(inputs, outputs, epsilon=1.0, xi=10.0,
    power_iterations=1, vat_weight=1.0, embedding_name='Embedding-Token',
    from_logits=False, seed=None)`; see the module docstring for the
    method and for unlabeled data. `embedding_name` may name any layer run
    once per forward pass with a float output. `seed` seeds the random
    start of the power iteration. Everything else is keras.Model; save the
    weights, or keep the plain model it was made from.
    """

    def __init__(
        self,
        inputs,
        outputs,
        epsilon=1.0,
        xi=10.0,
        power_iterations=1,
        vat_weight=1.0,
        embedding_name="Embedding-Token",
        from_logits=False,
        seed=None,
        **kwargs,
    ):
        who = "VirtualAdversarialModel"
        check_backend(who)
        epsilon = validation.real(epsilon, "epsilon", who, above=0)
        xi = validation.real(xi, "xi", who, above=0)
        power_iterations = validation.integer(power_iterations, "power_iterations", who, minimum=1)
        vat_weight = validation.real(vat_weight, "vat_weight", who, above=0)
        embedding_name = validation.string(embedding_name, "embedding_name", who)
        from_logits = validation.boolean(from_logits, "from_logits", who)
        seed = validation.optional_integer(seed, "seed", who, minimum=0)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        if len(self.outputs) != 1:
            raise ValueError(
                f"{who}: the KL divergence needs one output (a distribution over its last "
                f"axis); this model has {len(self.outputs)}"
            )
        find_layer(self, embedding_name)  # fails early on a wrong name
        self.epsilon = epsilon
        self.xi = xi
        self.power_iterations = power_iterations
        self.vat_weight = vat_weight
        self.embedding_name = embedding_name
        self.from_logits = from_logits
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.vat_tracker = keras.metrics.Mean(name="vat_loss")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Supervised loss (none without targets) + vat_weight * VAT in training."""
        if y is None:
            loss = sum((ops.sum(ops.cast(extra, "float32")) for extra in self.losses), 0.0)
            loss = ops.convert_to_tensor(loss, "float32")
        else:
            loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if not training:
            return loss
        vat = self.vat_loss(x, y_pred)
        self.vat_tracker.update_state(vat)
        return loss + self.vat_weight * vat

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None:  # unlabeled batch: only the losses are logged (the compiled
            # metrics may not even be built yet, when the first batch is unlabeled)
            self._unlabeled_first = getattr(self, "_unlabeled_first", True)
            wanted = ("loss", "vat_loss")
            return {m.name: m.result() for m in self.metrics if m.name in wanted}
        compiled = getattr(self, "_compile_metrics", None)
        if (
            keras.backend.backend() == "tensorflow"
            and getattr(self, "_unlabeled_first", False)
            and compiled is not None
            and not compiled.built
        ):
            raise ValueError(
                "VirtualAdversarialModel on TensorFlow: a labeled batch after unlabeled ones "
                "needs the compiled metrics, which TensorFlow cannot create in a step already "
                "traced: give a labeled batch first, or compile without metrics"
            )
        self._unlabeled_first = getattr(self, "_unlabeled_first", False)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def vat_loss(self, x, y_pred):
        """KL(p || p(x + r_adv)) for the clean prediction y_pred (a training pass)."""
        layer = find_layer(self, self.embedding_name)
        target = ops.stop_gradient(y_pred)
        run = self._kl_run(x, target)

        def random_start(out):
            noise = keras.random.normal(ops.shape(out), seed=self.noise_seed, dtype="float32")
            return out + ops.cast(self.xi * unit_per_example(noise), out.dtype)

        transform = random_start
        for _ in range(self.power_iterations):
            _, updated, gradient = output_gradient(layer, run, transform)
            self._keep_state(updated)
            direction = ops.stop_gradient(unit_per_example(gradient))

            def transform(out, step=self.xi * direction):
                return out + ops.cast(step, out.dtype)

        shift = self.epsilon * direction
        with shifted_output(layer, lambda out: out + ops.cast(shift, out.dtype)):
            perturbed = self(x, training=True)
        return self.kl_divergence(target, perturbed)

    def kl_divergence(self, target, prediction):
        """KL(target || prediction) over the last axis, averaged, in float32."""
        p = ops.cast(target, "float32")
        q = ops.cast(prediction, "float32")
        if self.from_logits:
            log_p = ops.log_softmax(p, axis=-1)
            log_q = ops.log_softmax(q, axis=-1)
            p = ops.exp(log_p)
        else:
            tiny = keras.config.epsilon()
            p = ops.clip(p, tiny, 1.0)
            log_p = ops.log(p)
            log_q = ops.log(ops.clip(q, tiny, 1.0))
        return ops.mean(ops.sum(p * (log_p - log_q), axis=-1))

    def _kl_run(self, x, target):
        """The forward pass of the power iteration: () -> (KL, state updates).

        JAX differentiates it inside the train step's stateless scope, so it
        runs statelessly and returns the updated non-trainable state (seeds)."""
        if keras.backend.backend() != "jax":
            return lambda: (self.kl_divergence(target, self(x, training=True)), None)

        def run():
            trainable = [v.value for v in self.trainable_variables]
            non_trainable = [v.value for v in self.non_trainable_variables]
            y_pred, updated = self.stateless_call(trainable, non_trainable, x, training=True)
            return self.kl_divergence(target, y_pred), updated

        return run

    def _keep_state(self, updated):
        if updated is not None:
            for variable, value in zip(self.non_trainable_variables, updated, strict=True):
                variable.assign(value)


def virtual_adversarial_training(
    model,
    epsilon=1.0,
    xi=10.0,
    power_iterations=1,
    vat_weight=1.0,
    embedding_name="Embedding-Token",
    **kwargs,
):
    """A VirtualAdversarialModel sharing `model`'s layers and weights; compiled
    like `model` when `model` is compiled, else compile it yourself."""
    inputs, outputs = functional_parts(model, "virtual_adversarial_training")
    vat_model = VirtualAdversarialModel(
        inputs,
        outputs,
        epsilon=epsilon,
        xi=xi,
        power_iterations=power_iterations,
        vat_weight=vat_weight,
        embedding_name=embedding_name,
        **kwargs,
    )
    return compiled_like(vat_model, model)
