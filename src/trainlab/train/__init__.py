"""Training core: device-resident data, fit/evaluate, metrics, many small models trained as one stack.

    from trainlab.train import fit, evaluate, make_optimizer
"""

from trainlab.train.loop import evaluate, fit, make_optimizer
from trainlab.train.result import StackResult, TrainResult

__all__ = ["StackResult", "TrainResult", "evaluate", "fit", "make_optimizer"]
