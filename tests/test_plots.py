"""Figures are built without pyplot (no global backend change, no open figures) and saved
atomically."""

import sys

import matplotlib
import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from minigen import plots


def _all_figures():
    rng = np.random.default_rng(0)
    images = mg.Tensor(rng.uniform(size=(64, 784)))
    points = mg.Tensor(rng.standard_normal((100, 2)))
    history = [{"epoch": i + 1, "loss": 1.0 / (i + 1), "kl": 0.1, "seconds": 0.2} for i in range(5)]
    return {
        "loss": plots.loss_curves(history),
        "samples_2d": plots.samples_2d(points, points * 2.0),
        "comparison": plots.comparison_2d([("a", points), ("b", points)], data=points),
        "grid": plots.image_grid(images, title="samples"),
        "recon": plots.reconstructions(images, images),
        "recon_2d": plots.reconstructions_2d(points, points * 0.9),
        "latent": plots.latent_space(points, mg.Tensor(rng.integers(0, 10, 100))),
        "decoded_images": plots.decoded_latent_grid(images[:49], 7),
        "decoded_points": plots.decoded_latent_grid(points[:49], 7),
    }


def test_every_figure_saves_a_png_without_touching_pyplot(tmp_path):
    backend_before = matplotlib.get_backend()
    figures = _all_figures()
    for name, figure in figures.items():
        assert isinstance(figure, Figure)
        path = plots.save(figure, tmp_path / f"{name}.png")
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend_before
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or not pyplot.get_fignums()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in figures)


def test_loss_curves_plot_every_loss_but_not_time():
    history = [{"epoch": 1, "d_loss": 1.0, "g_loss": 2.0, "seconds": 3.0},
               {"epoch": 2, "d_loss": 0.5, "g_loss": 1.5, "seconds": 3.0}]
    ax = plots.loss_curves(history).axes[0]
    assert sorted(line.get_label() for line in ax.get_lines()) == ["d_loss", "g_loss"]


def test_image_grid_places_each_image():
    images = np.zeros((4, 784))
    images[2] = 1.0
    figure = plots.image_grid(mg.Tensor(images), rows=2, cols=2)
    shown = [ax.get_images()[0].get_array() for ax in figure.axes]
    assert float(shown[2].mean()) == 1.0 and float(shown[0].mean()) == 0.0


def test_loss_curves_switch_to_a_log_scale_for_losses_of_very_different_sizes():
    far = [{"epoch": 1, "decoder": 90.0, "prior": 0.5}, {"epoch": 2, "decoder": 60.0, "prior": 0.4}]
    near = [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}]
    assert plots.loss_curves(far).axes[0].get_yscale() == "log"
    assert plots.loss_curves(near).axes[0].get_yscale() == "linear"
