"""Deep learning from scratch in NumPy: a fully connected network, hand-written ops with their
backward passes (checked against torch), gradient descent and Adam on 1-D landscapes.

    from trainlab.scratch import NeuralNetwork
    net = NeuralNetwork([784, 64, 10], activation="relu").fit(x, y)
"""

from trainlab.scratch import ops
from trainlab.scratch.network import NeuralNetwork
from trainlab.scratch.optim import adam, gradient_descent

__all__ = ["NeuralNetwork", "adam", "gradient_descent", "ops"]
