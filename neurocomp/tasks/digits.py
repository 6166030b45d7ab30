"""Position-invariant digit classification with an HMAX-style S1 -> C1 hierarchy (Leibo & Poggio).

Data: scikit-learn's 8x8 digits (1797 images, intensities 0..16; the optional ``digits``
extra), each pasted at a random offset into a ``canvas x canvas`` image, so a digit appears
at any of ``(canvas - 7)**2`` positions. A pixel of intensity ``p`` fires with probability
``rate * p / 16`` per step (Bernoulli, seeded), for ``steps`` steps.

Network (:func:`network`), image layout ``(X, Y, C)`` row-major as :mod:`neurocomp.graph.conv`:

* ``img``: the canvas, a SpikeInput of ``canvas**2`` neurons;
* ``s1``: LIF, a convolution with ``2 K`` kernels of ``k x k``: the first ``K`` principal
  components of the (centred) training patches, learned with Oja's rule
  (:func:`oja_kernels`: Sanger's deflation, one unit after another), each as an ON and an
  OFF kernel (``+c``, ``-c``: spikes carry no sign);
* ``c1``: LIF, a pooling of each S1 channel over ``pool x pool`` windows (a spiking max:
  a C1 neuron fires when any S1 neuron of its window does), which is where position
  invariance comes from;
* ``out``: 10 leaky integrators, dense from C1; the class is the readout with the largest
  potential at the end. Its weights are fitted in float (ridge regression on C1 spike counts,
  :func:`fit_readout`) and deployed as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NeurocompError, Problem
from ..graph import LI, LIF, Network, Population, Projection, SpikeInput, conv_projection, pool_projection
from ..rules.oja import oja_dw

NAME = "digits-shifted"


class MissingDependency(NeurocompError):
    kind = "dependency"


@dataclass(frozen=True)
class Config:
    """Task and network hyperparameters (times in steps of 1 ms)."""

    canvas: int = 12
    steps: int = 60
    rate: float = 0.5  # spike probability per step of a full-intensity pixel
    kernel: int = 3
    n_components: int = 6
    pool: int = 4
    pool_stride: int = 3
    s1_threshold: float = 0.6
    c1_threshold: float = 1.5
    n_train: int = 1200
    n_test: int = 597
    train_shifts: int = 3  # random positions per training image
    ridge: float = 30.0
    oja_patches: int = 3000  # training patches Oja's rule sees (from the first 300 training images)
    oja_epochs: int = 3
    oja_lr: float = 0.01


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images [n, 8, 8] float in 0..16, labels [n])`` from scikit-learn."""
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError:
        raise MissingDependency(
            [Problem("task digits-shifted", "needs scikit-learn: pip install 'neurocomp[digits]'")]
        ) from None
    d = sk_load()
    return d.images.astype(np.float64), d.target.astype(np.int64)


def shift(images: np.ndarray, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """Each 8x8 image pasted at a uniformly random offset into a ``canvas x canvas`` zero image."""
    n, h, w = images.shape
    out = np.zeros((n, canvas, canvas))
    ox, oy = rng.integers(0, canvas - h + 1, n), rng.integers(0, canvas - w + 1, n)
    for i in range(n):
        out[i, ox[i] : ox[i] + h, oy[i] : oy[i] + w] = images[i]
    return out


def encode(images: np.ndarray, steps: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli spikes ``[steps, n, X*Y]`` (uint8), pixel ``(x, y)`` at neuron ``x*Y + y``."""
    p = rate * images.reshape(len(images), -1) / 16.0
    return (rng.random((steps, *p.shape)) < p).astype(np.uint8)


def patches(images: np.ndarray, k: int) -> np.ndarray:
    """Every ``k x k`` patch of every image with any ink, centred (its mean removed): ``[m, k*k]``."""
    n, X, Y = images.shape
    idx = [(x, y) for x in range(X - k + 1) for y in range(Y - k + 1)]
    p = np.stack([images[:, x : x + k, y : y + k].reshape(n, -1) for x, y in idx], axis=1).reshape(-1, k * k)
    p = p[p.sum(axis=1) > 0] / 16.0
    return p - p.mean(axis=1, keepdims=True)


def oja_kernels(x: np.ndarray, n: int, epochs: int, lr: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors ``[n, d]``, the leading principal components of ``x`` ``[m, d]``:
    unit ``i`` learns with Oja's rule (:func:`~neurocomp.rules.oja.oja_dw`) on the input
    with the components of units ``< i`` removed (Sanger's deflation)."""
    w = rng.normal(0, 0.1, (n, x.shape[1]))
    for i in range(n):
        for epoch in range(epochs):
            step = lr / (1 + epoch)
            for xk in x[rng.permutation(len(x))]:
                r = xk - (w[:i] @ xk) @ w[:i]  # the residual after the earlier components
                w[i : i + 1] += oja_dw(w[i : i + 1], r, w[i : i + 1] @ r, step)
    return w


def kernels_of(components: np.ndarray, k: int) -> np.ndarray:
    """ON and OFF kernels ``[2 K, k, k, 1]`` (Lava's layout) of ``K`` components."""
    c = components.reshape(-1, k, k)[:, ::-1, ::-1]  # the convolution flips its kernel: un-flip it
    return np.concatenate([c, -c])[..., None]


def network(cfg: Config, kernels: np.ndarray, readout: np.ndarray | None = None) -> Network:
    """The S1 -> C1 -> readout network (``readout`` ``[10, C1]``; zeros when ``None``)."""
    X = cfg.canvas
    s1_shape = (X - cfg.kernel + 1, X - cfg.kernel + 1, len(kernels))
    c1_n = ((s1_shape[0] - cfg.pool) // cfg.pool_stride + 1) ** 2 * s1_shape[2]
    pops = [
        Population("img", X * X, SpikeInput()),
        Population("s1", int(np.prod(s1_shape)), LIF(tau_mem_ms=10.0, tau_syn_ms=None, v_th=cfg.s1_threshold)),
        Population("c1", c1_n, LIF(tau_mem_ms=5.0, tau_syn_ms=None, v_th=cfg.c1_threshold)),
        Population("out", 10, LI(tau_mem_ms=1000.0)),
    ]
    net = Network(pops, name="digits_hmax")
    net.add_projection(conv_projection("img", "s1", kernels, (X, X, 1), name="S1"))
    net.add_projection(pool_projection("s1", "c1", s1_shape, cfg.pool, cfg.pool_stride, name="C1"))
    w = np.zeros((10, c1_n)) if readout is None else readout
    net.add_projection(Projection("c1", "out", w, name="readout"))
    return net


def fit_readout(counts: np.ndarray, labels: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge regression of one-hot targets on C1 spike counts (no intercept: the chip's
    readout has no per-class bias here): ``[10, C1]``."""
    y = np.eye(10)[labels]
    a = counts.T @ counts + ridge * np.eye(counts.shape[1])
    return np.linalg.solve(a, counts.T @ y).T


@dataclass
class Data:
    train_x: np.ndarray  # [steps, n, pixels] spikes
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    train_images: np.ndarray  # [n, canvas, canvas]


def make_data(cfg: Config, seed: int = 0) -> Data:
    """Shifted, spike-encoded training and test digits (disjoint images, seeded)."""
    images, labels = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    tr, te = order[: cfg.n_train], order[cfg.n_train : cfg.n_train + cfg.n_test]
    tr = np.tile(tr, cfg.train_shifts)
    train_img, test_img = shift(images[tr], cfg.canvas, rng), shift(images[te], cfg.canvas, rng)
    return Data(
        encode(train_img, cfg.steps, cfg.rate, rng),
        labels[tr],
        encode(test_img, cfg.steps, cfg.rate, rng),
        labels[te],
        train_img,
    )


def classify(record: dict[str, np.ndarray]) -> np.ndarray:
    """The class of each trial: the readout with the largest potential at the last step
    (with tau_mem 1 s it has leaked 6% over 60 steps: nearly the weighted spike count)."""
    return np.argmax(record["out/v"][-1], axis=-1)


def train(cfg: Config, data: Data, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The S1 kernels (Oja's rule on training patches) and the readout weights (ridge on the
    C1 spike counts of the training digits, run in the float64 reference simulator)."""
    from ..reference.simulator import Reference

    rng = np.random.default_rng(seed + 1)
    p = patches(data.train_images[:300], cfg.kernel)
    sample = p[rng.permutation(len(p))[: cfg.oja_patches]]
    comps = oja_kernels(sample, cfg.n_components, cfg.oja_epochs, cfg.oja_lr, rng)
    kernels = kernels_of(comps, cfg.kernel)
    ref = Reference(network(cfg, kernels), batch=len(data.train_y))
    counts = ref.run(cfg.steps, inputs={"img": data.train_x}, record=["spikes"])["c1/spikes"].sum(axis=0)
    return kernels, fit_readout(counts.astype(np.float64), data.train_y, cfg.ridge)


def evaluate(net: Network, cfg: Config, data: Data, profile: str | None = None) -> float:
    """Test accuracy in the float64 reference simulator (``profile`` None) or compiled for
    ``profile`` and run in the emulator."""
    import io

    from ..compiler import compile as nc_compile
    from ..emulator import Emulator
    from ..reference.simulator import Reference

    n = len(data.test_y)
    if profile is None:
        sim = Reference(net, batch=n)
    else:
        sim = Emulator(nc_compile(net, profile, out=io.StringIO()), batch=n)
    rec = sim.run(cfg.steps, inputs={"img": data.test_x}, record=["v"])
    return float(np.mean(classify(rec) == data.test_y))
