"""A multilayer perceptron in NumPy alone, with a scikit-learn style interface.

    net = NeuralNetwork([64, 32, 10], activation="tanh", learning_rate=0.1)
    net.fit(X_train, y_train, X_val, y_val).score(X_test, y_test)
    net.result.status    # "done" or "diverged", as every trainlab trainer reports it

Hidden layers use one activation (relu, sigmoid, tanh, identity); the output layer is
softmax with the mean cross-entropy loss; training is plain minibatch SGD over a
seeded permutation each epoch. Everything is float32 and vectorised over the batch:
one matrix product per layer and direction. ``forward`` and ``backward`` are public
so that tests can compare every activation and gradient with PyTorch. ``fit(snapshot=slot)``
continues a stopped training from its last epoch boundary (:mod:`trainlab.train.snapshots`).
"""

from __future__ import annotations

import math
import time
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, Sequence

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from trainlab.errors import ConfigError, DataError
from trainlab.nn.activations import activation_name
from trainlab.scratch.activations import ACTIVATIONS, get_activation, log_softmax
from trainlab.scratch.init import INITS, init_weights
from trainlab.train.result import StopTraining, TrainResult, loss_status
from trainlab.train.snapshots import SnapshotSlot, resume_training, training_snapshot

FORMAT = "trainlab.scratch.NeuralNetwork/1"
DTYPE = np.float32
_EVAL_CHUNK = 8192  # rows per forward pass when predicting, to bound memory
_HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")
_ARCHITECTURE_KEYS = ("layer_sizes", "activation", "learning_rate", "weight_init", "batch_size", "num_epochs", "seed")
# Minibatch-sized matrix products run faster on one BLAS thread: handing a 64x784 @
# 784x256 product to a second thread costs more than it saves, and on a busy 2-core
# machine OpenBLAS's spinning threads made an MNIST epoch 3-50x slower (measured
# 0.9 s with one thread against 2.5-47 s with two). Training and prediction pin it.
_BLAS_THREADS = 1


class NeuralNetwork:
    """Fully connected classifier: ``layer_sizes = [n_inputs, hidden..., n_classes]``.

    After :meth:`fit`, ``result`` is a :class:`~trainlab.train.result.TrainResult`: status,
    training seconds and one record per epoch (epoch, train_loss, train_acc and, with
    validation data, val_loss, val_acc); ``history`` shows the same records Keras-style.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        learning_rate: float = 0.1,
        weight_init: str = "he",
        batch_size: int = 64,
        num_epochs: int = 10,
        seed: int = 0,
    ):
        sizes = list(layer_sizes)
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in sizes):
            raise ValueError(
                f"layer_sizes={sizes!r} must list at least two positive integers "
                "(inputs, [hidden ...], classes)"
            )
        if sizes[-1] < 2:
            raise ValueError(f"layer_sizes ends in {sizes[-1]}; a softmax output needs >= 2 classes")
        get_activation(activation)  # raises ConfigError for an unknown name
        if weight_init not in INITS:
            raise ValueError(f"weight_init={weight_init!r} is not one of {', '.join(INITS)}")
        if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(f"learning_rate={learning_rate!r} must be a finite number > 0")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
            raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1")
        if not (isinstance(num_epochs, (int, np.integer)) and num_epochs >= 0):
            raise ValueError(f"num_epochs={num_epochs!r} must be an integer >= 0")
        self.layer_sizes = [int(s) for s in sizes]
        self.activation = activation_name(activation)  # networks saved as "linear" load as "identity"
        self.learning_rate = float(learning_rate)
        self.weight_init = weight_init
        self.batch_size = int(batch_size)
        self.num_epochs = int(num_epochs)
        self.seed = int(seed)
        self.reset()

    def reset(self) -> "NeuralNetwork":
        """Draw fresh weights from ``seed`` and clear the result (``fit`` starts here)."""
        rng = np.random.default_rng(self.seed)
        self.weights, self.biases = init_weights(self.weight_init, self.layer_sizes, rng, DTYPE)
        self.result = TrainResult(status="done", seconds=0.0, history=[])
        return self

    @property
    def history(self) -> dict[str, list[float]]:
        """``result.history`` Keras-style: ``{"train_loss": [per epoch], "train_acc": ..., "val_*": ...}``."""
        return {k: [r[k] for r in self.result.history if k in r] for k in _HISTORY_KEYS}

    @property
    def diverged(self) -> bool:
        """Whether the last :meth:`fit` stopped at a non-finite loss."""
        return self.result.status == "diverged"

    # -- forward and backward ------------------------------------------------
    def _forward(self, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Activations of the input and hidden layers, and the output logits."""
        act = ACTIVATIONS[self.activation].forward
        acts = [X]
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            acts.append(act(acts[-1] @ W + b))
        logits = acts[-1] @ self.weights[-1] + self.biases[-1]
        return acts, logits

    def forward(self, X: np.ndarray) -> list[np.ndarray]:
        """``[X, hidden_1, ..., hidden_k, softmax probabilities]`` for a batch ``X``."""
        acts, logits = self._forward(self._check_X(X))
        return acts + [np.exp(log_softmax(logits))]

    def backward(self, activations: list[np.ndarray], y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Gradients ``[(dW, db), ...]`` of the mean cross-entropy, one pair per layer.

        ``activations`` is what :meth:`forward` returned for the same batch.
        """
        slope = ACTIVATIONS[self.activation].slope
        probs = activations[-1]
        n = probs.shape[0]
        # Softmax and cross-entropy together: dL/dlogits = (p - onehot(y)) / n.
        delta = probs.copy()
        delta[np.arange(n), y] -= 1
        delta /= n
        grads: list[tuple[np.ndarray, np.ndarray]] = []
        for layer in range(len(self.weights) - 1, -1, -1):
            a_in = activations[layer]
            grads.append((a_in.T @ delta, delta.sum(axis=0)))
            if layer > 0:
                delta = (delta @ self.weights[layer].T) * slope(a_in)
        return grads[::-1]

    def step(self, X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One SGD update on a batch; returns (mean loss, number correct) before the update."""
        acts, logits = self._forward(X)
        logp = log_softmax(logits)
        rows = np.arange(len(y))
        loss = -float(logp[rows, y].mean())
        correct = int((logits.argmax(axis=1) == y).sum())
        grads = self.backward(acts + [np.exp(logp)], y)
        for W, b, (dW, db) in zip(self.weights, self.biases, grads):
            dW *= self.learning_rate  # in place: the same float32 product as lr * dW, without a temporary
            db *= self.learning_rate
            W -= dW
            b -= db
        return loss, correct

    # -- training ------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        progress: str | None = None,
        snapshot: SnapshotSlot | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> "NeuralNetwork":
        """Train from a fresh initialisation for ``num_epochs`` epochs; returns self.

        ``result`` then holds the :class:`TrainResult`: ``train_loss``/``train_acc``
        per epoch are averages over the epoch's minibatches (as Keras and scikit-learn
        report them); ``val_*`` are measured on the whole validation set after each
        epoch (not counted in ``result.seconds``). A non-finite loss stops training
        with status ``diverged``. ``progress`` labels the epoch progress bar (stderr,
        shown only on a terminal). ``on_epoch(record)`` sees each epoch's record once it is
        measured (not those a snapshot restored); it may raise
        :class:`~trainlab.train.result.StopTraining` to end training there with status ``pruned``
        (a tune giving up on this network), and any other exception ends the fit with it.

        With a ``snapshot`` slot, training continues from the slot's last epoch boundary (a
        finished one gives its weights and result at once) and saves there, weights, the batch
        order's generator, history and seconds, whenever the slot says it is due: the continued
        fit ends with the same bits as an uninterrupted one.
        """
        X, y = self._check_Xy(X, y, "X", "y")
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_val, y_val = self._check_Xy(X_val, y_val, "X_val", "y_val")
        self.reset()
        # Overflow is not an error here: a non-finite loss ends training with ``diverged``.
        with threadpool_limits(_BLAS_THREADS, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
            self.result = self._train(X, y, X_val, y_val, progress, snapshot, on_epoch)
        return self

    def _train(self, X, y, X_val, y_val, progress: str | None, snapshot: SnapshotSlot | None,
               on_epoch: Callable[[dict[str, float]], None] | None) -> TrainResult:
        rng = np.random.default_rng([self.seed, 1])  # batch order; independent of the init draw
        n = len(X)
        history: list[dict[str, float]] = []
        seconds, status, first = 0.0, "done", 1
        resumed = resume_training(snapshot, modules={"network": self}, generators=(rng,))
        if resumed is not None:
            state, finished = resumed
            history, seconds, status = state["history"], state["seconds"], state["status"]
            if finished:
                return TrainResult(status=status, seconds=seconds, history=history)
            first = len(history) + 1

        def save(finished: bool) -> None:
            if snapshot is not None and (finished or snapshot.due()):
                snapshot.save(training_snapshot(finished=finished, modules={"network": self}, generators=(rng,),
                                                history=history, seconds=seconds, status=status))

        epochs = tqdm(range(first, self.num_epochs + 1), desc=progress or "epochs", disable=None, leave=False)
        for epoch in epochs:
            tick = time.perf_counter()
            order = rng.permutation(n)
            total_loss, total_correct = 0.0, 0
            for start in range(0, n, self.batch_size):
                # A gather per batch, not one of the whole set per epoch: a fresh (n, d) copy each
                # epoch page-faults its memory in (0.3-3 s for 48000 MNIST images, measured; a batch
                # fits in cache and its buffer is reused), and the batches hold the same rows.
                rows = order[start : start + self.batch_size]
                xb, yb = X[rows], y[rows]
                loss, correct = self.step(xb, yb)
                total_loss += loss * len(yb)
                total_correct += correct
            seconds += time.perf_counter() - tick
            record = {"epoch": epoch, "train_loss": total_loss / n, "train_acc": total_correct / n}
            if X_val is not None:
                record["val_loss"], record["val_acc"] = self._loss_and_accuracy(X_val, y_val)
            history.append(record)
            epochs.set_postfix(loss=f"{total_loss / n:.4f}", refresh=False)
            status = loss_status(total_loss)
            if status == "diverged":
                break
            if on_epoch is not None:
                try:
                    on_epoch(record)
                except StopTraining:
                    status = "pruned"
                    break
            if epoch < self.num_epochs:
                save(finished=False)
        save(finished=True)
        return TrainResult(status=status, seconds=seconds, history=history)

    # -- prediction ------------------------------------------------------------
    def _log_proba(self, X: np.ndarray) -> np.ndarray:
        with threadpool_limits(_BLAS_THREADS, user_api="blas"):
            parts = [log_softmax(self._forward(X[i : i + _EVAL_CHUNK])[1]) for i in range(0, len(X), _EVAL_CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, self.layer_sizes[-1]), DTYPE)

    def _loss_and_accuracy(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on ``(X, y)``, from one forward pass."""
        logp = self._log_proba(X)
        return -float(logp[np.arange(len(y)), y].mean()), float((logp.argmax(axis=1) == y).mean())

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``."""
        return np.exp(self._log_proba(self._check_X(X)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return self._log_proba(self._check_X(X)).argmax(axis=1)

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Accuracy on ``(X, y)``."""
        X, y = self._check_Xy(X, y, "X", "y")
        return self._loss_and_accuracy(X, y)[1]

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy on ``(X, y)``."""
        X, y = self._check_Xy(X, y, "X", "y")
        return self._loss_and_accuracy(X, y)[0]

    def hidden_features(self, X: np.ndarray) -> np.ndarray:
        """Activations of the last hidden layer (the input itself if there is none)."""
        X = self._check_X(X)
        with threadpool_limits(_BLAS_THREADS, user_api="blas"):
            parts = [self._forward(X[i : i + _EVAL_CHUNK])[0][-1] for i in range(0, len(X), _EVAL_CHUNK)]
        return np.concatenate(parts)

    # -- input checks ----------------------------------------------------------
    def _check_X(self, X: np.ndarray, name: str = "X") -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (samples, features); got shape {X.shape}")
        if X.shape[1] != self.layer_sizes[0]:
            raise ValueError(
                f"{name} has {X.shape[1]} features but layer_sizes[0] is {self.layer_sizes[0]}"
            )
        return np.ascontiguousarray(X, dtype=DTYPE)

    def _check_Xy(self, X: np.ndarray, y: np.ndarray, xname: str, yname: str) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X, xname)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"{yname} must be 1-D with one label per row of {xname}: shapes {X.shape} and {y.shape}")
        if len(y) == 0:
            raise ValueError(f"{xname} and {yname} are empty")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.mod(y, 1) == 0):
                raise ValueError(f"{yname} must hold integer class labels")
            y = y.astype(np.int64)
        n_classes = self.layer_sizes[-1]
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(
                f"{yname} holds labels {int(y.min())}..{int(y.max())} but layer_sizes[-1]={n_classes} "
                f"allows 0..{n_classes - 1}"
            )
        return X, y.astype(np.int64, copy=False)

    # -- persistence -------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        """The constructor's arguments as plain values: with :meth:`state_dict`, all it takes to rebuild."""
        return {"layer_sizes": list(self.layer_sizes), "activation": self.activation,
                "learning_rate": self.learning_rate, "weight_init": self.weight_init,
                "batch_size": self.batch_size, "num_epochs": self.num_epochs, "seed": self.seed}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights as ``{"W0": (n_in, n_1), "b0": (n_1,), "W1": ...}`` float32 arrays (copies)."""
        state: dict[str, np.ndarray] = {}
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            state[f"W{i}"], state[f"b{i}"] = W.copy(), b.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put ``state`` (what :meth:`state_dict` returned) into this network's weights, after checking
        that it holds exactly this network's weights and shapes. Non-finite weights load too: a
        training snapshot of a network that diverged holds them (:meth:`from_state_dict` refuses them)."""
        arrays = _weight_arrays(state, self.layer_sizes)
        self.weights = [arrays[f"W{i}"].astype(DTYPE) for i in range(len(self.layer_sizes) - 1)]
        self.biases = [arrays[f"b{i}"].astype(DTYPE) for i in range(len(self.layer_sizes) - 1)]

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], architecture: Mapping[str, Any]) -> "NeuralNetwork":
        """A network with ``state``'s weights, after checking them against ``architecture``.

        ``state`` maps ``W<i>``/``b<i>`` to arrays (or CPU tensors); ``architecture`` is what
        :meth:`architecture` returned. Everything is checked before a network is built, so a
        description that asks for more than the weights hold allocates nothing: unknown keys,
        the activation name, layer sizes that the weight shapes do not match, missing or extra
        weights, and non-finite values are one-line DataErrors.
        """
        unknown = sorted(set(architecture) - set(_ARCHITECTURE_KEYS))
        if unknown or "layer_sizes" not in architecture:
            raise DataError(f"a NeuralNetwork description needs layer_sizes and takes only "
                            f"{', '.join(_ARCHITECTURE_KEYS)}; got {', '.join(map(str, architecture))}")
        sizes = architecture["layer_sizes"]
        if not (isinstance(sizes, (list, tuple)) and len(sizes) >= 2
                and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes)):
            raise DataError(f"layer_sizes={sizes!r} must list at least two positive integers")
        activation = activation_name(str(architecture.get("activation", "relu")))
        if activation not in ACTIVATIONS:
            raise DataError(f"activation={activation!r} is not one of {', '.join(ACTIVATIONS)}")
        arrays = _weight_arrays(state, sizes)
        for key, array in arrays.items():
            if not np.isfinite(array).all():
                raise DataError(f"{key} is not finite (a network that diverged is not saved)")
        try:
            net = cls(sizes, **{k: v for k, v in architecture.items() if k != "layer_sizes"})
        except (ValueError, ConfigError) as exc:
            raise DataError(f"the NeuralNetwork description is invalid: {exc}") from None
        net.weights = [arrays[f"W{i}"].astype(DTYPE) for i in range(len(sizes) - 1)]
        net.biases = [arrays[f"b{i}"].astype(DTYPE) for i in range(len(sizes) - 1)]
        return net

    def save(self, path: str | Path | BinaryIO) -> str | Path | BinaryIO:
        """Write one ``.npz`` file (no pickle): :meth:`state_dict`, :meth:`architecture` and the result.

        For a network outside a run folder; runs save theirs with ``trainlab.checkpoints.save_checkpoint``.
        ``path`` is a file name (used as given, no ``.npz`` appended) or a binary file object.
        """
        arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT),
                                         "status": np.array(self.result.status),
                                         "seconds": np.array(self.result.seconds)}
        arrays.update({k: np.array(v, dtype=np.int64 if k == "layer_sizes" else None)
                       for k, v in self.architecture().items()})
        arrays.update(self.state_dict())
        for key in _HISTORY_KEYS:
            arrays[f"history_{key}"] = np.array(self.history[key], dtype=np.float64)
        if hasattr(path, "write"):
            np.savez(path, **arrays)
            return path
        path = Path(path)
        with open(path, "wb") as fh:  # a file handle keeps numpy from appending ".npz"
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "NeuralNetwork":
        """Read a network written by :meth:`save`; ValueError for any other file."""
        path = Path(path)
        not_saved = f"{path} is not a saved NeuralNetwork"
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{not_saved} (.npz from NeuralNetwork.save)") from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{not_saved} (.npz from NeuralNetwork.save)")
        with data:
            try:
                if str(data["format"]) != FORMAT:
                    raise KeyError("format")
                architecture = {k: data[k].item() for k in _ARCHITECTURE_KEYS if k != "layer_sizes"}
                architecture["layer_sizes"] = [int(s) for s in data["layer_sizes"]]
                net = cls.from_state_dict({k: data[k] for k in data.files if k[:1] in "Wb" and k[1:].isdigit()},
                                          architecture)
                columns = {k: data[f"history_{k}"].tolist() for k in _HISTORY_KEYS}
                records = [{"epoch": e + 1, **{k: v[e] for k, v in columns.items() if v}}
                           for e in range(len(columns["train_loss"]))]
                if "status" in data.files:
                    status, seconds = str(data["status"]), float(data["seconds"])
                else:  # written before the TrainResult: a diverged flag and no time
                    status, seconds = ("diverged" if bool(data["diverged"]) else "done"), float("nan")
                net.result = TrainResult(status=status, seconds=seconds, history=records)
            except (KeyError, ValueError, IndexError, DataError) as exc:
                detail = f": {exc}" if isinstance(exc, DataError) else ""
                raise ValueError(f"{not_saved} (missing or malformed entries; expected a file written by "
                                 f"NeuralNetwork.save){detail}") from None
        return net

    def __repr__(self) -> str:
        return (
            f"NeuralNetwork(layer_sizes={self.layer_sizes}, activation={self.activation!r}, "
            f"learning_rate={self.learning_rate}, weight_init={self.weight_init!r}, "
            f"batch_size={self.batch_size}, num_epochs={self.num_epochs}, seed={self.seed})"
        )


def _weight_arrays(state: Mapping[str, Any], sizes: Sequence[int]) -> dict[str, np.ndarray]:
    """``state``'s ``W<i>``/``b<i>`` as floating-point arrays, after checking that they are exactly
    the weights of a network of ``layer_sizes`` ``sizes`` (one-line DataErrors)."""
    expected = {}
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        expected[f"W{i}"], expected[f"b{i}"] = (n_in, n_out), (n_out,)
    if set(state) != set(expected):
        raise DataError(f"the weights hold {', '.join(sorted(state))}; layer_sizes={list(sizes)} "
                        f"needs {', '.join(expected)}")
    arrays = {k: np.asarray(v) for k, v in state.items()}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise DataError(f"{key} has shape {arrays[key].shape}; layer_sizes={list(sizes)} needs {shape}")
        if not np.issubdtype(arrays[key].dtype, np.floating):
            raise DataError(f"{key} is not floating point")
    return arrays
