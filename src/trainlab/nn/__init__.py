"""Model definitions (torch.nn modules): the MLP, the fast CIFAR CNN, autoencoders, the
energy network and AlexNet (for features).

    from trainlab.nn import MLP
"""

from trainlab.nn.alexnet import AlexNet
from trainlab.nn.autoencoder import build_autoencoder
from trainlab.nn.cnn import FastCNN
from trainlab.nn.energy import EnergyRegressor
from trainlab.nn.mlp import MLP

__all__ = ["AlexNet", "EnergyRegressor", "FastCNN", "MLP", "build_autoencoder"]
