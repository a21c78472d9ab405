"""Many small MLP classifiers trained at once as stacked models, and each one alone as the reference.

    results = train_trials(specs, x_train, y_train, epochs=5,
                           evals={"val": (x_val, y_val), "test": (x_test, y_test)})
    results = train_per_trial(specs, data, x_pool, y_pool, epochs=10)

``specs`` are :class:`TrialSpec` (width, activation, optimizer, lr, batch size, seed);
``data`` are :class:`TrialData` (a trial's own rows, sampler and loss). Every trial
comes back as a :class:`TrialResult` (status, seconds, history, metrics, the trained
``MLP``, its stack's time and size), in the order given. ``train_alone`` trains one
trial with ``loop.fit``: what every stacked trial equals (up to float rounding).

Modules: ``spec`` (what a trial is), ``shared_batches`` (``StackedMLP``: trials on the
same batches, one wide layer), ``own_batches`` (``PerTrialStack``: trials on their own
rows and losses), ``train`` (the entry points and the one epoch loop), ``logits``
(scoring many trained models at once).
"""

from trainlab.train.stack.logits import logits_many
from trainlab.train.stack.own_batches import PerTrialStack
from trainlab.train.stack.shared_batches import StackedMLP
from trainlab.train.stack.spec import (
    TrialData,
    TrialResult,
    TrialSpec,
    init_solo,
    init_trial,
    trial_flops,
    trial_loss,
)
from trainlab.train.stack.train import train_alone, train_per_trial, train_stack, train_trials

__all__ = ["PerTrialStack", "StackedMLP", "TrialData", "TrialResult",
           "TrialSpec", "init_solo", "init_trial", "logits_many", "train_alone", "train_per_trial", "train_stack",
           "train_trials", "trial_flops", "trial_loss"]
