"""AdaX (Li et al. 2020, arXiv 2004.09740; kexue.fm/archives/7387).

Adam with an exponentially *growing* long-term memory of squared gradients.
At step t (t = 1 on the first update) with gradient g:

    m_t = beta_1 m_{t-1} + (1 - beta_1) g          (no bias correction on m)
    v_t = (1 + beta_2) v_{t-1} + beta_2 g^2
    v^_t = v_t / ((1 + beta_2)^t - 1)
    w   = w - learning_rate * m_t / (sqrt(v^_t) + epsilon)

Defaults: beta_1=0.9 and beta_2=1e-4 as in the paper; epsilon=1e-6 and
learning_rate=1e-3 as in the blog's Keras implementation (the paper's own
code uses epsilon=1e-12). m is not bias-corrected, as in both.

Numerics: v_t grows like (1 + beta_2)^t, which passes float32's range after
about 9e5 steps (beta_2=1e-4). The optimizer therefore stores v^_t itself,
updated by the equivalent recursion

    v^_t = rho_t v^_{t-1} + (1 - rho_t) g^2,   rho_t = 1 - beta_2 / c_t,
    c_t = (1 + beta_2)^t - 1 = expm1(t log1p(beta_2))

which stays bounded, and computes c_t without the cancellation of
(1 + beta_2)^t - 1 in float32. Standard Keras optimizer arguments
(weight_decay, clipnorm, global_clipnorm, use_ema, ...) pass through **kwargs.
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import serializable
from nlp4keras.optimizers.wrapper_base import dense_gradient, learning_rate_argument


@serializable
class AdaX(keras.optimizers.Optimizer):
    """AdaX; the formulas and defaults are in the module docstring."""

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=1e-4, epsilon=1e-6, **kwargs):
        who = "AdaX"
        learning_rate = learning_rate_argument(learning_rate, who)
        beta_1 = validation.real(beta_1, "beta_1", who, minimum=0, below=1)
        beta_2 = validation.real(beta_2, "beta_2", who, above=0)
        epsilon = validation.real(epsilon, "epsilon", who, minimum=0)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # The velocity holds the bias-corrected v^_t (see the module docstring).
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        grad = dense_gradient(gradient, dtype)
        m, v = self._momentums[index], self._velocities[index]

        step = ops.cast(self.iterations + 1, dtype)
        memory = ops.expm1(step * ops.log1p(ops.cast(self.beta_2, dtype)))  # c_t
        keep = 1.0 - self.beta_2 / memory  # rho_t; 0 at t = 1

        m_t = self.beta_1 * m + (1.0 - self.beta_1) * grad
        v_t = keep * v + (1.0 - keep) * ops.square(grad)
        self.assign(m, m_t)
        self.assign(v, v_t)
        self.assign_sub(variable, lr * m_t / (ops.sqrt(v_t) + self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
