"""mg.draw_graph, mg.draw_backward, mg.to_dot: the graph they read and the sweep they step through.

The drawings themselves are checked for what they contain (one box per tensor, one panel per step,
titles in words); the numbers they show come from ``trace`` and ``backward_frames``, which are
checked against hand-derived values and against ``mg.grad``.
"""

import re

import numpy as np
import pytest
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

import minigen as mg
from minigen.graph import backward_frames, layout, trace


def scalar(value, name):
    return mg.Tensor(value, requires_grad=True, dtype="float64", name=name)


def reused():
    """y = (a + a) * b + a at a = 2, b = 3: dy/da = 2b + 1 = 7, dy/db = 2a = 4."""
    a, b = scalar(2.0, "a"), scalar(3.0, "b")
    return a, b, (a + a) * b + a


# --------------------------------------------------------------------------------------------------
# trace
# --------------------------------------------------------------------------------------------------

def test_trace_lists_every_tensor_after_its_inputs_and_every_use():
    a, b, y = reused()
    graph = trace(y)
    assert [n.kind for n in graph.nodes].count("op") == 3
    assert graph.nodes[graph.root].tensor is y and graph.root == len(graph.nodes) - 1
    ia, ib = graph.node(a).index, graph.node(b).index
    for node in graph.nodes:
        assert all(i < node.index for i in node.inputs)       # topological order
    first_add = graph.nodes[graph.node(y).inputs[0]].inputs[0]
    assert graph.nodes[first_add].inputs == [ia, ia]            # a + a: a is used twice by one op
    assert graph.uses(ia) == 3 and graph.uses(ib) == 1
    assert len(graph.edges) == 6
    assert {(n.op, n.tag) for n in graph.nodes if n.kind == "op"} == {
        ("add", " #1"), ("add", " #2"), ("mul", "")}


def test_trace_marks_parameters_leaves_and_constants_and_takes_names_from_a_module():
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Dense(3, 4, activation="tanh"), mg.nn.Dense(4, 1))
    x = mg.Tensor(np.ones((5, 3), dtype=np.float32), name="x")
    t = mg.Tensor(np.zeros((5, 1), dtype=np.float32))
    graph = trace(mg.losses.mse(model(x), t), names=model)
    kinds = {n.name: n.kind for n in graph.nodes if n.kind != "op"}
    assert kinds["0.weight"] == kinds["1.bias"] == "parameter"
    assert kinds["x"] == "constant"
    assert graph.node(model[0].weight).shape == (3, 4)
    assert graph.node(t).kind == "constant" and graph.node(t).title.startswith("const")


def test_trace_refuses_a_freed_graph_and_says_how_to_keep_it():
    a, b, y = reused()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        mg.draw_graph(y)


def test_a_tensor_without_a_graph_is_one_node():
    graph = trace(mg.Tensor([1.0, 2.0]))
    assert len(graph.nodes) == 1 and graph.edges == [] and graph.nodes[0].kind == "constant"
    with pytest.raises(ValueError, match="does not require grad"):
        backward_frames(mg.Tensor(1.0))


# --------------------------------------------------------------------------------------------------
# backward_frames: the sweep
# --------------------------------------------------------------------------------------------------

def test_frames_follow_reverse_topological_order_and_accumulate_at_the_reused_leaf():
    a, b, y = reused()
    graph, frames = backward_frames(y)
    ia = graph.node(a).index
    order = [f.node for f in frames]
    assert order[0] == graph.root and order[-1] == ia and len(frames) == 5
    for k, frame in enumerate(frames):                 # a node goes after every consumer
        for src, dst, _ in graph.edges:
            if src == frame.node:
                assert dst in order[:k]
    # a's partial sums: 1 from the last add, then 3 + 3 from a + a; all three uses reported
    partial = [f.grads[ia].item() for f in frames if ia in f.grads]
    assert partial[0] == 1.0 and partial[-1] == 7.0
    assert [f.arrived.get(ia, 0) for f in frames] == [1, 1, 1, 3, 3]
    a_plus_a = frames[3]
    assert [(src, slot, g.item()) for src, slot, g in a_plus_a.sent] == [(ia, 0, 3.0), (ia, 1, 3.0)]
    assert frames[-1].grad.item() == 7.0
    assert graph.nodes[frames[2].node].name == "b" and frames[2].grad.item() == 4.0
    text = a_plus_a.describe(graph)
    assert "2 of 3 arrived" in text and "3 of 3 arrived" in text
    assert "accumulates into .grad" in frames[-1].describe(graph)


def test_the_sweep_gives_the_engines_gradients_and_touches_no_grad():
    mg.manual_seed(1)
    model = mg.nn.Sequential(mg.nn.Dense(3, 5, activation="relu"), mg.nn.Dense(5, 2))
    x = mg.Tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    h = model(x)
    loss = (h * h).sum() + (h[:, 0] * 0.5).mean()     # h used three times
    graph, frames = backward_frames(loss)
    params = model.parameters()
    assert all(p.grad is None for p in params)
    final = frames[-1].grads
    expected = mg.grad(loss, params, retain_graph=True)
    for p, g in zip(params, expected):
        np.testing.assert_allclose(final[graph.node(p).index].numpy(), g.numpy(), rtol=1e-5,
                                   atol=1e-6)
    loss.backward()                                    # the graph was kept
    np.testing.assert_allclose(params[0].grad.numpy(), expected[0].numpy(), rtol=1e-6)


def test_broadcast_gradients_are_summed_to_the_input_shape():
    w = mg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    c = mg.Tensor(0.5, requires_grad=True, dtype="float64")
    out = w * c                                        # c broadcast over (2, 3)
    graph, frames = backward_frames(out, grad=mg.ones_like(out))
    final = frames[-1].grads
    assert final[graph.node(c).index].shape == ()
    assert final[graph.node(c).index].item() == pytest.approx(15.0)   # sum of w
    np.testing.assert_allclose(final[graph.node(w).index].numpy(), np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"pass grad="):
        backward_frames(out)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        backward_frames(out, grad=mg.ones(3))


# --------------------------------------------------------------------------------------------------
# to_dot and the figures
# --------------------------------------------------------------------------------------------------

def test_to_dot_has_a_box_per_tensor_and_an_arrow_per_use():
    a, b, y = reused()
    dot = mg.to_dot(y, show="both")
    assert dot.startswith("digraph minigen {") and dot.rstrip().endswith("}")
    boxes = re.findall(r"^  n(\d+) \[label=\"([^\"]*)\"", dot, flags=re.M)
    arrows = re.findall(r"^  n(\d+) -> n(\d+)", dot, flags=re.M)
    assert len(boxes) == 5 and len(arrows) == 6
    number = {label.split("\\n")[0]: n for n, label in boxes}
    a_label = dict(boxes)[number["a"]]
    assert "leaf scalar" in a_label and "value 2" in a_label and "grad 7" in a_label
    assert arrows.count((number["a"], number["add #1"])) == 2


def test_layout_puts_inputs_left_of_their_ops_and_boxes_apart():
    a, b, y = reused()
    graph = trace(y)
    pos, waypoints = layout(graph)
    for src, dst, _ in graph.edges:
        assert pos[src][0] < pos[dst][0]
    points = list(pos.values()) + [p for via in waypoints for p in via]
    assert len(set(points)) == len(points)             # no two boxes or waypoints on one spot
    long_edge = [via for (src, dst, _), via in zip(graph.edges, waypoints)
                 if pos[dst][0] - pos[src][0] > 1]
    assert long_edge and all(len(v) == 2 for v in long_edge)   # a -> final add crosses 2 columns


def test_draw_graph_draws_a_box_per_tensor_and_an_arrow_per_use():
    a, b, y = reused()
    for show in ("value", "grad", "both", "shape"):
        figure = mg.draw_graph(y, show=show)
        (ax,) = figure.axes
        boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
        arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        assert len(boxes) == 5 and len(arrows) == 6
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "add #2" in texts and "leaf scalar" in texts
    with pytest.raises(ValueError, match="show must be"):
        mg.draw_graph(y, show="values")
    figure.canvas.draw()                               # renders without a display


def test_draw_backward_has_a_panel_per_step_with_the_gradient_sent():
    a, b, y = reused()
    figure = mg.draw_backward(y)
    assert len(figure.axes) == 5
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles[0].startswith("step 1") and "accumulates" in titles[-1]
    red = [t.get_text() for t in figure.axes[3].texts if t.get_color() == "#c0392b"]
    assert red == ["3", "3"]                           # a + a sends a gradient along both arrows
    assert len(mg.draw_backward(y, steps=[0, 4]).axes) == 2
    figure.canvas.draw()


def test_graphs_too_big_to_read_are_refused_with_the_way_out():
    x = mg.Tensor(1.0, requires_grad=True)
    for _ in range(120):
        x = x * 1.0
    with pytest.raises(ValueError, match="smaller part"):
        mg.draw_graph(x)
    y = mg.Tensor(1.0, requires_grad=True)
    for _ in range(40):
        y = y * 1.0
    with pytest.raises(ValueError, match="steps="):
        mg.draw_backward(y)


def test_the_sweep_runs_on_every_backend(backend):
    """The same sweep on NumPy, array-api-strict (which refuses what would break on a GPU) and
    CuPy where there is one: gradients as mg.grad's, and a figure drawn from host copies."""
    w = mg.Tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True, name="w")
    x = mg.Tensor([[1.0, 2.0]])
    h = mg.tanh(x @ w)
    loss = (h * h).sum() + h.mean()
    graph, frames = backward_frames(loss)
    (expected,) = mg.grad(loss, [w], retain_graph=True)
    got = frames[-1].grads[graph.node(w).index]
    assert got.device == w.device
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)
    assert len(mg.draw_backward(loss).axes) == len(frames)
    assert "w" in mg.to_dot(loss, show="both")


def test_animate_backward_has_a_frame_per_step_and_saves_a_gif(tmp_path):
    a, b, y = reused()
    animation = mg.graph.animate_backward(y, interval=100)
    path = tmp_path / "sweep.gif"
    animation.save(path, writer="pillow")
    from PIL import Image                                 # Pillow comes with matplotlib

    with Image.open(path) as gif:
        assert gif.n_frames == 5
    title = animation._fig.axes[0].get_title(loc="left")   # the last frame drawn
    assert title.startswith("step 5") and "accumulates" in title
