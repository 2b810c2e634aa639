"""Figures for training runs: loss curves, samples, reconstructions and the latent space.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot``, so minigen
never changes matplotlib's global backend or opens a window: save it with :func:`save` (atomic), or
show it in a notebook by leaving it as a cell's value.  Tensors are brought to the host with
``.numpy()`` first.
"""

import os

from matplotlib.figure import Figure

from .autograd import Tensor
from .io import atomic_write

__all__ = ["loss_curves", "samples_2d", "comparison_2d", "image_grid", "reconstructions",
           "reconstructions_2d", "latent_space", "decoded_latent_grid", "save"]

_SAMPLE_STYLE = dict(s=3, alpha=0.5, color="tab:orange", linewidths=0)
_DATA_STYLE = dict(s=3, alpha=0.3, color="tab:blue", linewidths=0)


def _host(x):
    return x.numpy() if isinstance(x, Tensor) else x


def save(figure, path, dpi=100):
    """Write ``figure`` to ``path`` (format from the suffix, default PNG), atomically
    (:func:`minigen.io.atomic_write`); returns ``path``."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_write(path) as f:
        figure.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


_NOT_LOSSES = ("epoch", "seconds", "lr")     # what a history record holds besides the losses


def loss_curves(history, title="training losses"):
    """One line per loss in ``history`` (a list of per-epoch dicts of numbers), against the
    epoch."""
    figure = Figure(figsize=(5, 3.2))
    ax = figure.subplots()
    keys = [k for k in history[0] if k not in _NOT_LOSSES] if history else []
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    for key in keys:
        ax.plot(epochs, [h[key] for h in history], marker="o" if len(history) < 30 else None,
                markersize=3, label=key)
    values = [h[k] for h in history for k in keys]
    if values and min(values) > 0 and max(values) / min(values) > 30:
        ax.set_yscale("log")     # losses of very different sizes (a VAE-GAN's): all stay readable
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean per batch)")
    ax.set_title(title)
    if keys:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def _scatter_2d(ax, samples, data=None, title=None, limit=None):
    if data is not None:
        d = _host(data)
        ax.scatter(d[:, 0], d[:, 1], label="data", **_DATA_STYLE)
    s = _host(samples)
    ax.scatter(s[:, 0], s[:, 1], label="samples", **_SAMPLE_STYLE)
    if limit is not None:
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize="medium")


def samples_2d(samples, data=None, title="samples", limit=None):
    """2-D samples (orange) over the training data (blue)."""
    figure = Figure(figsize=(4, 4))
    ax = figure.subplots()
    _scatter_2d(ax, samples, data, title, limit)
    ax.legend(loc="upper right", fontsize="small", markerscale=3)
    return figure


def comparison_2d(panels, data=None, limit=None):
    """Side-by-side 2-D scatter plots: ``panels`` is a list of (title, samples)."""
    figure = Figure(figsize=(3.2 * len(panels), 3.4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, samples) in zip(axes, panels):
        _scatter_2d(ax, samples, data, title, limit)
    return figure


def image_grid(images, rows=8, cols=8, side=28, title=None):
    """The first rows x cols images (each a flat vector of side*side pixels in [0, 1]) as one
    grid."""
    x = _host(images)[: rows * cols].reshape(-1, side, side)
    figure = Figure(figsize=(cols * 0.45, rows * 0.45 + (0.3 if title else 0)))
    axes = figure.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < len(x):
            ax.imshow(x[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    figure.subplots_adjust(wspace=0.05, hspace=0.05)
    if title:
        figure.suptitle(title, fontsize="medium")
    return figure


def reconstructions(originals, reconstructed, n=10, side=28):
    """Originals (top row) above their reconstructions (bottom row)."""
    top, bottom = _host(originals)[:n], _host(reconstructed)[:n]
    figure = Figure(figsize=(n * 0.6, 1.5))
    axes = figure.subplots(2, n, squeeze=False)
    for row, images in enumerate((top, bottom)):
        for i, ax in enumerate(axes[row]):
            ax.axis("off")
            if i < len(images):
                ax.imshow(images[i].reshape(side, side), cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")
    axes[0][0].set_title("original", fontsize="small", loc="left")
    axes[1][0].set_title("reconstruction", fontsize="small", loc="left")
    return figure


def reconstructions_2d(originals, reconstructed, limit=None):
    """2-D points (blue) and their reconstructions (orange), each pair joined by a grey line."""
    figure = Figure(figsize=(4, 4))
    ax = figure.subplots()
    a, b = _host(originals), _host(reconstructed)
    for p, q in zip(a[:300], b[:300]):
        ax.plot([p[0], q[0]], [p[1], q[1]], color="0.7", linewidth=0.5)
    _scatter_2d(ax, b[:300], a[:300], "reconstructions", limit)
    return figure


def latent_space(means, labels=None, title="latent means"):
    """Encoder means (the first two latent dimensions), coloured by label."""
    figure = Figure(figsize=(4.4, 4))
    ax = figure.subplots()
    m = _host(means)
    points = ax.scatter(m[:, 0], m[:, 1], c=None if labels is None else _host(labels), cmap="tab10",
                        s=4, alpha=0.7, linewidths=0)
    if labels is not None:
        figure.colorbar(points, ax=ax, label="label")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title, fontsize="medium")
    return figure


def decoded_latent_grid(decoded, steps, side=28, limit=3.0):
    """The decoder's output over a steps x steps grid of the 2-D latent plane [-limit, limit]^2.

    ``decoded`` holds steps*steps rows in row-major order (z2 from top to bottom, z1 left to right):
    images are tiled into one picture; 2-D data points are drawn as the grid they deform into.
    """
    d = _host(decoded)
    figure = Figure(figsize=(5, 5))
    ax = figure.subplots()
    if d.shape[1] == 2:
        mesh = d.reshape(steps, steps, 2)
        for i in range(steps):
            ax.plot(mesh[i, :, 0], mesh[i, :, 1], color="tab:blue", linewidth=0.6)
            ax.plot(mesh[:, i, 0], mesh[:, i, 1], color="tab:orange", linewidth=0.6)
        ax.set_aspect("equal")
        ax.set_title("decoded latent grid (blue: z1 varies, orange: z2 varies)", fontsize="small")
    else:
        tiles = d.reshape(steps, steps, side, side).transpose(0, 2, 1, 3).reshape(steps * side,
                                                                                 steps * side)
        ax.imshow(tiles, cmap="gray", vmin=0, vmax=1, extent=(-limit, limit, -limit, limit))
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
        ax.set_title("decoded latent plane", fontsize="medium")
    return figure


# --------------------------------------------------------------------------------------------------
# Images large enough to judge: one tiled picture, a few screen pixels per image pixel
# --------------------------------------------------------------------------------------------------

__all__ += ["image_mosaic", "interpolations"]


def image_mosaic(images, rows=8, cols=8, side=28, title=None, scale=3, gap=2, row_labels=None,
                 dpi=100):
    """The first rows x cols images (flat vectors of side * side pixels in [0, 1]) in one picture
    with ``scale`` screen pixels per image pixel when saved at ``dpi`` (3: an 84-pixel digit, big
    enough to see its strokes), ``gap`` image pixels of white between them, and optional
    ``row_labels`` at the left of the rows."""
    x = _host(images)[: rows * cols].reshape(-1, side, side)
    step = side + gap
    width, height = cols * step - gap, rows * step - gap
    inches_w, inches_h = width * scale / dpi, height * scale / dpi
    left = 1.1 if row_labels else 0.0
    top = 0.35 if title else 0.0
    figure = Figure(figsize=(inches_w + left, inches_h + top), dpi=dpi)
    ax = figure.add_axes((left / (inches_w + left), 0, inches_w / (inches_w + left),
                          inches_h / (inches_h + top)))
    for i, image in enumerate(x):
        r, c = divmod(i, cols)
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                  extent=(c * step, c * step + side, r * step + side, r * step))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_facecolor("white")
    ax.set_xticks([])
    ax.set_yticks([step * r + side / 2 for r in range(len(row_labels))] if row_labels else [])
    if row_labels:
        ax.set_yticklabels(row_labels, fontsize="small")
        ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize="medium")
    return figure


def interpolations(images, steps, side=28, title="latent interpolations", scale=3):
    """Rows of ``steps`` images each - the decodings along straight lines in the latent space -
    from ``images``, which holds the rows one after another."""
    rows = len(_host(images)) // steps
    return image_mosaic(images, rows=rows, cols=steps, side=side, title=title, scale=scale)
