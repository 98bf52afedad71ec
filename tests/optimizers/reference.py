"""Independent float64 numpy re-implementations for the optimizer tests: Keras'
Adam and SGD, the wrappers' formulas, and a driver feeding fixed gradients to
a Keras optimizer through `optimizer.apply`."""

import keras
import numpy as np

SHAPES = {"dense/kernel": (3, 4), "dense/bias": (4,), "Embedding-Token/embeddings": (6, 4)}


# The learning rate the wrapper tests use.
LR = 0.05


class Adam:
    """keras.optimizers.Adam: m, v moments, step size lr sqrt(1 - b2^t) / (1 - b1^t)."""

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.m, self.v = {}, {}

    def step(self, key, w, g, lr, t):
        """New weight after update number t (1-based)."""
        b1, b2 = self.beta_1, self.beta_2
        self.m[key] = b1 * self.m.get(key, 0.0) + (1 - b1) * g
        self.v[key] = b2 * self.v.get(key, 0.0) + (1 - b2) * g**2
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        return w - alpha * self.m[key] / (np.sqrt(self.v[key]) + self.epsilon)


class SGD:
    """keras.optimizers.SGD: velocity = momentum * velocity - lr g; w += velocity."""

    def __init__(self, momentum=0.0):
        self.momentum, self.velocity = momentum, {}

    def step(self, key, w, g, lr, t):
        if not self.momentum:
            return w - lr * g
        self.velocity[key] = self.momentum * self.velocity.get(key, 0.0) - lr * g
        return w + self.velocity[key]


def weight_decay(old, new, lr, rate):
    return new - lr * rate * old


def layer_adaptation(old, new, lr):
    delta = new - old
    w_norm, u_norm = np.linalg.norm(old), np.linalg.norm(delta / max(lr, 1e-7))
    ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
    return old + delta * ratio


def lazy(old, new, g):
    touched = np.any(g != 0, axis=-1, keepdims=True)
    return np.where(touched, new, old)


def piecewise_linear(t, schedule):
    points = sorted(schedule.items())
    if points[0][0] != 0:
        points.insert(0, (0, 0.0))
    steps, values = zip(*points)
    return float(np.interp(t, steps, values))


def initial_params(seed=0):
    rng = np.random.default_rng(seed)
    params = {path: rng.normal(size=shape) for path, shape in SHAPES.items()}
    params["dense/bias"][:] = 0.0  # a zero-norm variable (layer adaptation's edge case)
    return params


def gradient_steps(steps, seed=1, zero_rows=((1, 4), (0, 2, 4), (4, 5))):
    """Per-step gradients; embedding rows listed in zero_rows[t] get zero gradient."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        grads = {path: rng.normal(size=shape) for path, shape in SHAPES.items()}
        grads["Embedding-Token/embeddings"][list(zero_rows[t % len(zero_rows)])] = 0.0
        out.append(grads)
    return out


def make_variables(params):
    variables = {}
    for path, value in params.items():
        scope, name = path.split("/")
        with keras.name_scope(scope):
            variables[path] = keras.Variable(value.astype("float32"), name=name)
    return variables


def apply_steps(optimizer, variables, steps, trace=None):
    """Feed each step's gradients to `optimizer.apply` (calling trace(variables) after each)."""
    order = list(variables)
    for grads in steps:
        optimizer.apply(
            [keras.ops.convert_to_tensor(grads[p].astype("float32")) for p in order],
            [variables[p] for p in order],
        )
        if trace is not None:
            trace(variables)


def run_keras(optimizer, params, steps, trace=None):
    """`apply_steps` on fresh variables; returns their final float64 values."""
    variables = make_variables(params)
    apply_steps(optimizer, variables, steps, trace)
    return numpy_values(variables)


def numpy_values(variables):
    return {p: keras.ops.convert_to_numpy(v).astype("float64") for p, v in variables.items()}


def run_numpy(base, params, steps, lr, rewrite=None, lr_of_step=None):
    """The base update, then `rewrite(path, old, new, g, lr)` per variable."""
    params = {p: v.astype("float32").astype("float64") for p, v in params.items()}
    for t, grads in enumerate(steps):
        step_lr = lr * (lr_of_step(t) if lr_of_step else 1.0)
        for path in params:
            g = grads[path].astype("float32").astype("float64")
            old = params[path]
            new = base.step(path, old, g, step_lr, t + 1)
            params[path] = rewrite(path, old, new, g, step_lr) if rewrite else new
    return params


def assert_params_close(actual, expected, rtol=1e-5, atol=1e-6):
    assert actual.keys() == expected.keys()
    for path in actual:
        np.testing.assert_allclose(actual[path], expected[path], rtol=rtol, atol=atol, err_msg=path)


# Keras base optimizers and their numpy twins, for tests run on both (the
# `base` fixture in tests/optimizers/conftest.py).
BASES = {
    "adam": (keras.optimizers.Adam, dict(), lambda: Adam()),
    "sgd": (keras.optimizers.SGD, dict(momentum=0.9), lambda: SGD(momentum=0.9)),
}
