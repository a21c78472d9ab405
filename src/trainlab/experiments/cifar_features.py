"""NumPy network study, Q4.2-4.4: ImageNet AlexNet as a feature extractor for a CIFAR-10 subset.

The study passed its two-class CIFAR-10 subset through torchvision's
ImageNet-pretrained AlexNet, kept the 1000 outputs as features, trained a small
network on them for 100 epochs and reported 63.48 % test accuracy with a
confusion matrix. Here the same features (and AlexNet's 4096-wide penultimate
layer) go into a logistic regression and a small MLP head, side by side with
the raw pixels, their PCA and, given ``from_run=``, the penultimate features of
a trained ``cifar-cnn``. The AlexNet is written here with torchvision's
parameter names, so ``weights=`` takes torchvision's ImageNet file, loaded with
``weights_only=True``; without it a randomly initialised AlexNet stands in, and
the report says so.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.preprocessing import StandardScaler
from torch import nn

from trainlab.checkpoints import checkpoint_info, load_checkpoint
from trainlab.config import check, positive
from trainlab.device import global_seed, torch_generator
from trainlab.errors import DataError
from trainlab.experiments._cifar import CifarDataConfig, load_tensors
from trainlab.experiments._resume import Checkpointing
from trainlab.nn.alexnet import MIN_SIZE, AlexNet, extract_features, load_weights
from trainlab.nn.cnn import FastCNN
from trainlab.nn.mlp import MLP
from trainlab.runs import Run
from trainlab.train.loop import evaluate, fit, make_optimizer
from trainlab.train.snapshots import SnapshotSlot, pack, unpack

NAME = "cifar-features"
STUDY = "numpy"
QUESTION = "Q4.2-4.4"
SUMMARY = "AlexNet's 1000 outputs and 4096 features vs pixels, PCA and a cifar-cnn, under two heads"
RUNTIME = "~6 min"
QUICK = {"dataset": "digits", "classes": None, "image_size": 64, "head_epochs": 10, "pca_components": 10,
         "train_limit": 300}

STUDY_ACC = 63.48
EXTRACT_CHUNK = 16
"""Batches of AlexNet feature extraction between two chances to save a snapshot (when one is due)."""
PRINTOUT = """The study printed its AlexNet with 128 and 256 output channels in the second and third
convolutions (features.3, features.6). torchvision's AlexNet -- the one whose ImageNet weights
it loaded -- has 192 and 384 there (Krizhevsky's one-GPU variant: 64, 192, 384, 256, 256), and a
weights file fixes the shapes, so this AlexNet follows the weights file: 61,100,840 parameters."""


@dataclass
class Config(Checkpointing, CifarDataConfig):
    classes: Optional[List[int]] = field(default_factory=lambda: [0, 1])
    """Classes to keep (the study's airplane vs automobile: [0,1]); null for all ten."""
    weights: Optional[str] = None
    """torchvision's ImageNet AlexNet weights (alexnet-owt-7be5be79.pth) or any state_dict file of that shape."""
    image_size: int = 224
    """Images are resized to this size for AlexNet (ImageNet's 224; at least 63)."""
    from_run: Optional[str] = None
    """A cifar-cnn run folder on the same dataset: its network's penultimate features join the comparison."""
    pca_components: int = 100
    """Components of the pixel-PCA baseline."""
    head_hidden: int = 256
    """Hidden units of the MLP head (features -> hidden ReLU -> classes)."""
    head_epochs: int = 30
    """Epochs of the MLP head (the study trained its head for 100)."""
    head_lr: float = 1e-3
    """Adam learning rate of the MLP head."""
    batch_size: int = 128
    """Images per batch for feature extraction and the MLP head."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.classes is None or len(self.classes) >= 2, "classes needs at least two classes, or null for all")
        check(self.image_size >= MIN_SIZE, f"image_size must be >= {MIN_SIZE} for AlexNet (got {self.image_size})")
        for name in ("pca_components", "head_hidden", "head_epochs", "head_lr", "batch_size"):
            positive(name, getattr(self, name))


def run(cfg: Config, out: Run) -> None:
    device = out.device
    data = load_tensors(cfg, device, cfg.classes)
    (train_x, train_y), (test_x, test_y) = data.train, data.test
    out.text("data", data.describe() + ".", title="Data")
    cnn = _load_cnn(cfg.from_run, data, device) if cfg.from_run is not None else None

    # AlexNet: ImageNet weights if given, else a seeded random initialisation (said plainly in the report).
    with global_seed(cfg.seed):
        alexnet = AlexNet().to(device)
    if cfg.weights is not None:
        load_weights(alexnet, cfg.weights)
        digest = hashlib.sha256(Path(cfg.weights).expanduser().read_bytes()).hexdigest()[:16]
        source = f"ImageNet weights from {cfg.weights} (SHA-256 {digest}...), loaded with weights_only=True."
    else:
        source = ("**No pretrained weights were given** (`weights=FILE`): the AlexNet features below come from a "
                  f"randomly initialised AlexNet (torchvision's layer shapes and initialisation, seed {cfg.seed}), "
                  "so they are random-projection features, not ImageNet features. Give torchvision's "
                  "`alexnet-owt-7be5be79.pth` as `weights=` to repeat the study.")
    snapshots = out.snapshots(cfg.checkpoint_every)
    start = time.perf_counter()
    feats = _alexnet_features(alexnet, (train_x, test_x), cfg, snapshots.slot("alexnet"))
    extract_s = time.perf_counter() - start
    del alexnet
    out.text("alexnet", f"{source} Images resized to {cfg.image_size} x {cfg.image_size} (bilinear), grayscale "
             f"repeated to three channels, ImageNet mean/std; features of {len(train_y) + len(test_y)} images in "
             f"{extract_s:.1f} s on {device}.\n\n{PRINTOUT}", title="AlexNet features")

    # Baselines: raw pixels, their PCA, and a trained cifar-cnn's penultimate layer.
    pixels = [x.reshape(len(x), -1).float().div(255).cpu().numpy() for x in (train_x, test_x)]
    feats["pixels"] = pixels
    k = min(cfg.pca_components, *pixels[0].shape)
    pca = PCA(n_components=k, random_state=cfg.seed).fit(pixels[0])
    feats[f"pixels_pca{k}"] = [pca.transform(p) for p in pixels]
    if cnn is not None:
        with torch.inference_mode():
            feats["cifar_cnn"] = [torch.cat([cnn.features(b) for b in x.split(1024)]).float().cpu().numpy()
                                  for x in (train_x, test_x)]

    rows, confusion = [], None
    labels = (train_y.cpu().numpy(), test_y.cpu().numpy())
    for name, (tr, te) in feats.items():
        row, pred = _heads(name, tr, te, labels, cfg, device, len(data.class_names), snapshots)
        rows.append(row)
        if name == "alexnet_1000":
            confusion = confusion_matrix(labels[1], pred, labels=range(len(data.class_names)))
    out.table("features", rows, title="Test accuracy of two heads on each feature set",
              caption=f"Accuracy in percent. Features standardised on the training set; logistic regression "
                      f"(scikit-learn, L2, lbfgs); MLP head {cfg.head_hidden} ReLU units, Adam lr {cfg.head_lr}, "
                      f"{cfg.head_epochs} epochs, batch {cfg.batch_size}.")
    matrix = [{"true": data.class_names[i], **{f"pred_{data.class_names[j]}": int(v) for j, v in enumerate(r)}}
              for i, r in enumerate(confusion)]
    out.table("confusion", matrix, title="Confusion matrix: AlexNet's 1000 outputs, MLP head (rows: true class)")

    best = max(rows, key=lambda r: r["mlp_test_acc"])
    study_row = rows[0]
    out.text("reading", (
        f"The study's setup (AlexNet's 1000 outputs, a small network) gives {study_row['mlp_test_acc']:.1f} % here "
        f"({study_row['logreg_test_acc']:.1f} % with logistic regression) against the study's {STUDY_ACC} %"
        f"{'' if cfg.weights else ', but with random rather than ImageNet weights'}. The best feature set under "
        f"the MLP head is {best['features']} ({best['mlp_test_acc']:.1f} %). The study's confusion matrix came from "
        "`confusion_matrix(y_pred, y_true)`, so its rows were predictions; the one above has true classes as rows. "
        "Its log showed a loss near 6e-8 beside 63 % accuracy, which cannot describe the same predictions under "
        "cross-entropy."), title="What the numbers say")
    out.summary(headline="alexnet_1000_mlp_test_acc", pretrained=cfg.weights is not None,
                **{f"{r['features']}_mlp_test_acc": r["mlp_test_acc"] for r in rows},
                **{f"{r['features']}_logreg_test_acc": r["logreg_test_acc"] for r in rows}, extract_s=extract_s)


def _alexnet_features(alexnet: AlexNet, splits, cfg: Config, slot: SnapshotSlot) -> dict[str, list[np.ndarray]]:
    """AlexNet's 1000 outputs and 4096 penultimate features of each split's images, extracted
    in chunks of EXTRACT_CHUNK batches: a stopped run keeps the chunks it had (``slot``), and
    a finished extraction is all a resumed one needs."""
    saved = slot.load()
    chunks = unpack(saved)["chunks"] if saved is not None else [[] for _ in splits]
    if saved is None or not saved.finished:
        size = EXTRACT_CHUNK * cfg.batch_size  # whole batches: a chunk's features are the unchunked ones
        for done, images in zip(chunks, splits):
            for start in range(len(done) * size, len(images), size):
                hidden, logits = extract_features(alexnet, images[start : start + size], image_size=cfg.image_size,
                                                  batch_size=cfg.batch_size)
                done.append({"hidden": hidden.cpu(), "logits": logits.cpu()})
                if slot.due():
                    slot.save(pack(chunks=chunks))
        slot.save(pack(finished=True, chunks=chunks))
    return {key: [torch.cat([c[part] for c in done]).numpy() for done in chunks]
            for key, part in (("alexnet_1000", "logits"), ("alexnet_4096", "hidden"))}


def _heads(name: str, tr, te, labels, cfg: Config, device, n_classes: int, snapshots) -> tuple[dict, np.ndarray]:
    """Logistic regression and the MLP head on feature set ``name``: its table row and the head's
    test predictions. Both are kept in a finished snapshot, so a resumed run fits no set twice."""
    slot = snapshots.slot(f"heads_{name}")
    saved = slot.load()
    if saved is not None:
        done = unpack(saved)
        return done["row"], done["pred"]
    scaler = StandardScaler().fit(tr)
    tr, te = scaler.transform(tr).astype(np.float32), scaler.transform(te).astype(np.float32)
    logreg = LogisticRegression(max_iter=1000, random_state=cfg.seed).fit(tr, labels[0])
    mlp_train, mlp_test, pred = _mlp_head(tr, labels[0], te, labels[1], cfg, device, n_classes,
                                          snapshots.slot(f"mlp_{name}"))
    row = {"features": name, "dims": tr.shape[1], "logreg_train_acc": 100 * logreg.score(tr, labels[0]),
           "logreg_test_acc": 100 * logreg.score(te, labels[1]), "mlp_train_acc": mlp_train, "mlp_test_acc": mlp_test}
    slot.save(pack(finished=True, row=row, pred=pred))
    return row, pred


def _mlp_head(tr, y_tr, te, y_te, cfg: Config, device, n_classes: int, snapshot: SnapshotSlot):
    """Train features -> hidden ReLU -> classes with Adam; (train acc, test acc, test predictions)."""
    x_tr, x_te = torch.as_tensor(tr, device=device), torch.as_tensor(te, device=device)
    t_tr, t_te = torch.as_tensor(y_tr, device=device), torch.as_tensor(y_te, device=device)
    with global_seed(cfg.seed):
        head = MLP(x_tr.shape[1], cfg.head_hidden, n_classes, "relu").to(device)
    fit(head, x_tr, t_tr, optimizer=make_optimizer("adam", head.parameters(), cfg.head_lr),
        loss_fn=nn.CrossEntropyLoss(), epochs=cfg.head_epochs, batch_size=cfg.batch_size,
        generator=torch_generator(cfg.seed), progress=False, snapshot=snapshot)
    with torch.inference_mode():
        pred = head.eval()(x_te).argmax(1).cpu().numpy()
    return evaluate(head, x_tr, t_tr)["acc"], evaluate(head, x_te, t_te)["acc"], pred


def _load_cnn(folder: str, data, device) -> FastCNN:
    """The network a cifar-cnn run saved (its ``cnn`` checkpoint), checked against this run's data."""
    info = checkpoint_info(folder, "cnn")
    arch = info["architecture"]
    if arch.get("in_channels") != data.channels or arch.get("image_size") != data.image_size:
        raise DataError(f"from_run={folder} was trained on {info.get('dataset')} ({arch.get('in_channels')} "
                        f"channel(s), {arch.get('image_size')} px); this run uses {data.data.name}: "
                        "train cifar-cnn on the same dataset")
    try:
        model = FastCNN(data.channels, int(arch["num_classes"]),
                        [int(w) for w in arch["widths"]], image_size=data.image_size)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"from_run={folder}: checkpoint 'cnn' has a damaged architecture ({exc!r})") from None
    load_checkpoint(folder, "cnn", model)
    return model.to(device).eval()
