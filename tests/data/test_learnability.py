"""Each set can be learned, with a small fixed model in plain scikit-learn or PyTorch and a
known outcome; and the sets that teach a concept show it (features for circle and xor, a
CNN beating a dense net on shapes, attention beating an RNN on recall, memory for marker).

The numbers printed with `-s` are the measured outcomes reported in docs/DATASETS.md.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from torch import nn

from server.config import Settings
from server.data.registry import DataRegistry
from server.spec.job import DatasetSpec


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> DataRegistry:
    path: Path = tmp_path_factory.mktemp("learn")
    return DataRegistry(path / "uploads", Settings(data_dir=path))


def load(reg: DataRegistry, name: str, **kw):
    return reg.load(DatasetSpec(name=name, **kw))


def flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def accuracy(model, ds) -> float:
    model.fit(flat(ds.x_train), ds.y_train)
    score = float(model.score(flat(ds.x_test), ds.y_test))
    print(f"{type(model).__name__}: {score:.3f}")
    return score


def r2(model, ds) -> float:
    model.fit(flat(ds.x_train), ds.y_train[:, 0])
    score = float(model.score(flat(ds.x_test), ds.y_test[:, 0]))
    print(f"{type(model).__name__} R^2: {score:.3f}")
    return score


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.mark.parametrize(("name", "minimum"), [
    ("breast_cancer", 0.95), ("iris", 0.9), ("wine", 0.93), ("gauss", 0.97),
])
def test_logistic_regression_on_linearly_separable_sets(reg, name, minimum) -> None:
    ds = load(reg, name, train_fraction=0.7)
    assert accuracy(LogisticRegression(max_iter=2000), ds) >= minimum


def test_blobs_softmax(reg) -> None:
    ds = load(reg, "blobs", params={"classes": 5})
    assert accuracy(LogisticRegression(max_iter=2000), ds) >= 0.95


@pytest.mark.parametrize(("name", "plain", "feature"), [
    ("circle", ["x1", "x2"], ["x1^2", "x2^2"]),
    ("xor", ["x1", "x2"], ["x1*x2"]),
])
def test_the_right_feature_makes_a_linear_model_enough(reg, name, plain, feature) -> None:
    without = accuracy(LogisticRegression(), load(reg, name, features=plain))
    with_feature = accuracy(LogisticRegression(), load(reg, name, features=feature))
    assert without < 0.75 and with_feature >= 0.97


@pytest.mark.parametrize(("name", "features", "minimum"), [
    ("moons", ["x1", "x2"], 0.95),
    ("spiral", ["x1", "x2", "sin(x1)", "sin(x2)"], 0.9),
])
def test_a_small_mlp_draws_curved_boundaries(reg, name, features, minimum) -> None:
    ds = load(reg, name, features=features)
    mlp = MLPClassifier((16, 16), activation="tanh", solver="lbfgs", max_iter=2000,
                        random_state=0)
    assert accuracy(mlp, ds) >= minimum


def test_digits_mlp(reg) -> None:
    ds = load(reg, "digits", train_fraction=0.7)
    mlp = MLPClassifier((64,), max_iter=300, random_state=0)
    assert accuracy(mlp, ds) >= 0.95


def test_regression_sets(reg) -> None:
    assert r2(LinearRegression(), load(reg, "plane")) > 0.99
    assert r2(KNeighborsRegressor(5), load(reg, "multi_gauss", params={"samples": 1000})) > 0.8
    assert r2(LinearRegression(), load(reg, "diabetes", train_fraction=0.7)) > 0.3
    line = load(reg, "line", params={"slope": -1.5, "intercept": 2.0, "noise": 0.5})
    fit = LinearRegression().fit(line.x_train, line.y_train[:, 0])
    assert abs(fit.coef_[0] + 1.5) < 0.1 and abs(fit.intercept_ - 2.0) < 0.3


def test_sine_forecast(reg) -> None:
    ds = load(reg, "sine", train_fraction=0.8)
    mlp = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=1000, random_state=0)
    assert r2(mlp, ds) > 0.95


# -- plain PyTorch: the comparisons the sets exist for -----------------------------------------

def train_torch(model: nn.Module, ds, epochs: int, lr: float = 1e-2, batch: int = 32) -> float:
    """Adam on cross-entropy; returns test accuracy."""
    torch.manual_seed(0)
    x, y = torch.as_tensor(ds.x_train), torch.as_tensor(ds.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)
        for i in range(0, len(x), batch):
            b = perm[i:i + batch]
            loss = nn.functional.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = model(torch.as_tensor(ds.x_test)).argmax(1)
    return float((pred == torch.as_tensor(ds.y_test)).float().mean())


def size(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_convolution_beats_a_dense_net_of_similar_size_on_shapes(reg, one_thread) -> None:
    ds = load(reg, "shapes", params={"samples": 1000}, train_fraction=0.6)
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (8, 8, 8)
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),  # (16, 1, 1)
        nn.Flatten(), nn.Linear(16, 4),
    )
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(256, 6), nn.ReLU(), nn.Linear(6, 4))
    assert abs(size(cnn) - size(mlp)) < 0.25 * size(mlp)
    cnn_acc, mlp_acc = train_torch(cnn, ds, 15, lr=3e-3), train_torch(mlp, ds, 15, lr=3e-3)
    print(f"shapes: cnn {cnn_acc:.3f} ({size(cnn)} params), mlp {mlp_acc:.3f} ({size(mlp)})")
    assert cnn_acc >= 0.9 and cnn_acc >= mlp_acc + 0.1


class AttentionNet(nn.Module):
    """Embedding, one self-attention layer with a residual, the last position, a dense layer."""

    def __init__(self, tokens: int, width: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(tokens, width)
        self.attention = nn.MultiheadAttention(width, 1, batch_first=True)
        self.out = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)  # (batch, time, width)
        h = h + self.attention(h, h, h, need_weights=False)[0]
        return self.out(h[:, -1])  # (batch, classes)


class RecurrentNet(nn.Module):
    def __init__(self, tokens: int, width: int, hidden: int, classes: int,
                 cell: type[nn.Module] = nn.RNN) -> None:
        super().__init__()
        self.embed = nn.Embedding(tokens, width)
        self.rnn = cell(width, hidden, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(self.embed(x))[0][:, -1])  # last step: (batch, classes)


@pytest.mark.slow
def test_attention_beats_an_rnn_of_equal_size_on_recall(reg, one_thread) -> None:
    ds = load(reg, "recall", params={"samples": 2000}, train_fraction=0.8)
    shape = reg.describe(DatasetSpec(name="recall"))
    tokens, classes = shape.input.tokens, shape.num_classes
    torch.manual_seed(0)
    attention = AttentionNet(tokens, 16, classes)
    rnn = RecurrentNet(tokens, 16, 24, classes)
    assert abs(size(attention) - size(rnn)) < 0.1 * size(rnn)
    att_acc, rnn_acc = train_torch(attention, ds, 20), train_torch(rnn, ds, 20)
    print(f"recall: attention {att_acc:.3f} ({size(attention)} params), "
          f"rnn {rnn_acc:.3f} ({size(rnn)})")
    assert att_acc >= 0.8 and att_acc >= rnn_acc + 0.25


class SequenceNet(nn.Module):
    def __init__(self, hidden: int, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cell(1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x)[0][:, -1])


@pytest.mark.slow
def test_marker_needs_memory(reg, one_thread) -> None:
    ds = load(reg, "marker", params={"length": 20}, train_fraction=0.7)
    # Without memory: the last five steps say nothing about the class.
    recent = LogisticRegression().fit(flat(ds.x_train[:, -5:]), ds.y_train)
    chance_like = float(recent.score(flat(ds.x_test[:, -5:]), ds.y_test))
    torch.manual_seed(0)
    rnn_acc = train_torch(SequenceNet(8, nn.RNN), ds, 20)  # value -> 8 -> 2
    print(f"marker: rnn {rnn_acc:.3f}, logistic on the last five steps {chance_like:.3f}")
    assert rnn_acc >= 0.9 and chance_like < 0.65
