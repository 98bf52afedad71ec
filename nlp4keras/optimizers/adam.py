"""bert4keras' `Adam`: Adam with epsilon 1e-6 and a `bias_correction` switch.

At step t (t = 1 on the first update) with gradient g:

    m_t = beta_1 m_{t-1} + (1 - beta_1) g
    v_t = beta_2 v_{t-1} + (1 - beta_2) g^2
    with bias_correction:  m_t /= 1 - beta_1^t,  v_t /= 1 - beta_2^t  (for the update only)
    w   = w - learning_rate * m_t / (sqrt(v_t) + epsilon)

This is the textbook form (epsilon added to the corrected sqrt(v)), as
bert4keras' tf.keras Adam; `keras.optimizers.Adam` adds epsilon to the
uncorrected sqrt(v), which differs while 1 - beta_2^t is small, and has no
switch to turn the correction off (BERT's original AdamWeightDecay had none).
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import serializable
from nlp4keras.optimizers.wrapper_base import dense_gradient, learning_rate_argument


@serializable
class Adam(keras.optimizers.Optimizer):
    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        bias_correction=True,
        **kwargs,
    ):
        who = "Adam"
        learning_rate = learning_rate_argument(learning_rate, who)
        beta_1 = validation.real(beta_1, "beta_1", who, minimum=0, below=1)
        beta_2 = validation.real(beta_2, "beta_2", who, minimum=0, below=1)
        epsilon = validation.real(epsilon, "epsilon", who, minimum=0)
        bias_correction = validation.boolean(bias_correction, "bias_correction", who)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.bias_correction = bias_correction

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        grad = dense_gradient(gradient, dtype)
        m, v = self._momentums[index], self._velocities[index]
        self.assign(m, self.beta_1 * m + (1.0 - self.beta_1) * grad)
        self.assign(v, self.beta_2 * v + (1.0 - self.beta_2) * ops.square(grad))
        m_hat, v_hat = m, v
        if self.bias_correction:
            step = ops.cast(self.iterations + 1, dtype)
            m_hat = m / (1.0 - ops.power(ops.cast(self.beta_1, dtype), step))
            v_hat = v / (1.0 - ops.power(ops.cast(self.beta_2, dtype), step))
        update = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        self.assign_sub(variable, ops.cast(learning_rate, dtype) * update)

    def get_config(self):
        config = super().get_config()
        config.update(
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            bias_correction=self.bias_correction,
        )
        return config
