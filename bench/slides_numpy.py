"""The slides' MNIST procedure in plain numpy: the baseline for one-example-per-step training.

It does what the slides' DNN class does, operation for operation: no biases, weights
N(0, 1) * sqrt(1/fan_out), inputs x/255 * 0.99 + 0.01, targets 0.01 / 0.99, activations and their
derivatives written with np.exp as the slides write them, the output error
2 (z3 - y) / 10 * s (1 - s), outer-product weight changes, and W <- W - lr * change, one example at
a time in the stored order. Used by bench/grid_speed.py and by the tests as an independent
reference for the `seed_exact` recipe.
"""

import numpy as np


def activation(z: np.ndarray, name: str) -> np.ndarray:
    """The slides' formulas (softmax shifted by its max)."""
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))
    if name == "relu":
        return np.maximum(0.0, z)
    if name == "softmax":
        e = np.exp(z - z.max())
        return e / e.sum()
    raise ValueError(f"the slides define sigmoid, tanh, relu and softmax, not {name!r}")


def derivative(z: np.ndarray, name: str) -> np.ndarray:
    """d activation / dz as the slides write it; for softmax, only the Jacobian's diagonal."""
    if name == "sigmoid":
        return np.exp(-z) / (np.exp(-z) + 1) ** 2
    if name == "tanh":
        return 1 - (np.exp(z) - np.exp(-z)) ** 2 / (np.exp(z) + np.exp(-z)) ** 2
    if name == "relu":
        return (z > 0) * 1.0
    if name == "softmax":
        s = activation(z, "softmax")
        return s * (1 - s)
    raise ValueError(name)


class SlideNet:
    """784-128-64-10 without biases; weights W[l] are [fan_out, fan_in] as in the slides."""

    def __init__(self, sizes=(784, 128, 64, 10), seed: int = 0):
        rng = np.random.default_rng(seed)
        self.weights = [
            rng.standard_normal((n_out, n_in)) * np.sqrt(1.0 / n_out)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        ]

    def forward(self, a0: np.ndarray, name: str) -> tuple[list, list]:
        """Pre-activations z[l] and activations a[l] (a[0] is the input); z[-1] is the output."""
        zs, acts = [], [a0]
        for i, w in enumerate(self.weights):
            zs.append(w @ acts[-1])
            last = i == len(self.weights) - 1
            acts.append(activation(zs[-1], "softmax" if last else name))
        return zs, acts

    def changes(self, a0: np.ndarray, y: np.ndarray, name: str) -> list[np.ndarray]:
        """The slides' weight changes for one example (their update rule, not a true gradient)."""
        zs, acts = self.forward(a0, name)
        output = zs[-1]  # the slides' forward pass returns z3, not the softmax
        error = 2 * (output - y) / output.shape[0] * derivative(zs[-1], "softmax")
        changes = [np.outer(error, acts[-2])]
        for layer in range(len(self.weights) - 2, -1, -1):
            error = (self.weights[layer + 1].T @ error) * derivative(zs[layer], name)
            changes.insert(0, np.outer(error, acts[layer]))
        return changes

    def train_step(self, image_u8: np.ndarray, label: int, name: str, lr: float) -> None:
        """One example: scale, forward, backward, W <- W - lr * change."""
        a0 = image_u8.reshape(-1) / 255.0 * 0.99 + 0.01
        y = np.zeros(10) + 0.01
        y[label] = 0.99
        for w, change in zip(self.weights, self.changes(a0, y, name), strict=True):
            w -= lr * change

    def accuracy(self, images_u8: np.ndarray, labels: np.ndarray, name: str) -> float:
        """Fraction of `images` whose arg-max output is the label."""
        a0 = images_u8.reshape(len(images_u8), -1).T / 255.0 * 0.99 + 0.01
        for i, w in enumerate(self.weights):
            z = w @ a0
            a0 = z if i == len(self.weights) - 1 else activation(z, name)
        return float((a0.argmax(0) == labels).mean())
