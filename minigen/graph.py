"""Seeing the graph: the computation behind a tensor, and the backward sweep through it, as figures.

Every tensor made by an op that had an input requiring a gradient remembers that op (``t.creator``),
which remembers its inputs.  Following those links from a result back to the leaves gives the graph
that ``backward`` walks.  This module draws it:

* :func:`trace` collects the graph behind a tensor: one :class:`Node` per tensor, each made by an op
  (``"op"``), or a leaf that requires a gradient (``"leaf"``, or ``"parameter"`` for an
  ``nn.Parameter``), or a constant (``"constant"``: a tensor that needs no gradient, like a target).
* :func:`draw_graph` draws it as a matplotlib figure with its own layered layout (inputs on the
  left, the result on the right), so it needs no Graphviz; :func:`to_dot` writes the same graph as
  Graphviz text for those who have it.
* :func:`backward_frames` runs the chain rule through the graph in reverse topological order, one
  node at a time, recording what each step sends where; :func:`draw_backward` draws one panel per
  step, and :func:`animate_backward` makes the steps the frames of an animation.  A tensor used
  twice (``a + a``, or ``a`` feeding two ops) receives one gradient per use and adds them up, and
  nothing is passed on from it until every use has reported: that is why the sweep goes in reverse
  topological order.

The sweep calls each op's own ``backward`` (under ``no_grad``) and sums broadcast gradients down to
the input's shape with ``mg.sum_to``, as the engine does; it touches no ``.grad``, and tests check
that it ends with the gradients ``mg.grad`` computes.  It needs the graph, so draw before calling
``backward()`` (or call that with ``retain_graph=True``).
"""

import math
from dataclasses import dataclass, field

from . import backend as B
from . import functions as F
from .autograd import Tensor, _topological_order, no_grad
from .nn.module import Module, Parameter

__all__ = ["Node", "Graph", "Frame", "trace", "to_dot", "draw_graph", "backward_frames",
           "draw_backward", "animate_backward"]

MAX_NODES = 200           # larger graphs do not fit a readable figure: draw a smaller part
MAX_PANELS = 36           # draw_backward: one panel per step

_FREED = ("the graph behind this tensor was freed by an earlier backward(); draw it before calling "
          "backward, or call backward(retain_graph=True)")


# --------------------------------------------------------------------------------------------------
# The graph as data
# --------------------------------------------------------------------------------------------------

@dataclass
class Node:
    """One tensor of the graph.

    ``index``: position in ``Graph.nodes`` (inputs come before the ops that use them); ``kind``:
    "op", "leaf", "parameter" or "constant"; ``op``: the name of the op that made it ("add",
    "matmul"...) or None; ``name``: the tensor's name (``Tensor(..., name=)``, or a Module's
    parameter name); ``inputs``: the indices of the op's inputs, in argument order (``a + a``
    lists ``a`` twice).
    """

    index: int
    tensor: Tensor
    kind: str
    op: str = None
    name: str = None
    inputs: list = field(default_factory=list)
    tag: str = ""             # "#2" when another unnamed node has the same op (or kind)

    @property
    def shape(self):
        return self.tensor.shape

    @property
    def requires_grad(self):
        return self.tensor.requires_grad

    @property
    def title(self):
        """The first line of the node's label: its name, or what it is."""
        if self.kind == "op":
            return self.op + self.tag if self.name is None else f"{self.name} = {self.op}"
        return self.what + self.tag if self.name is None else self.name

    @property
    def what(self):
        return {"op": "op", "leaf": "leaf", "parameter": "param", "constant": "const"}[self.kind]

    @property
    def short(self):
        """The node in a word or two, for sentences: its name, or its op (or kind) and tag."""
        if self.name is not None:
            return self.name
        return (self.op if self.kind == "op" else self.kind) + self.tag


@dataclass
class Graph:
    """The graph behind ``root``: ``nodes`` in topological order (the root last) and ``edges`` as
    (input index, consumer index, argument position) triples, one per use."""

    root: int
    nodes: list
    edges: list

    def node(self, tensor):
        """The node of ``tensor`` (KeyError when it is not in the graph)."""
        for node in self.nodes:
            if node.tensor is tensor:
                return node
        raise KeyError("this tensor is not part of the graph")

    def uses(self, index):
        """How many times node ``index`` is an input (the gradients it will receive)."""
        return sum(1 for src, dst, _ in self.edges
                   if src == index and self.nodes[dst].requires_grad)


def _names(names):
    """``names`` (a Module, a {name: tensor} dict, or None) as {id(tensor): name}."""
    if names is None:
        return {}
    if isinstance(names, Module):
        names = dict(names.named_parameters())
    if not isinstance(names, dict):
        raise TypeError("names: pass a Module or a {name: tensor} dict, "
                        f"not {type(names).__name__}")
    return {id(t): name for name, t in names.items()}


def trace(tensor, names=None):
    """The :class:`Graph` behind ``tensor``.  ``names`` labels tensors: a Module (its parameter
    names) or a ``{name: tensor}`` dict; a tensor's own ``name`` is used otherwise."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"trace: expected a Tensor, got {type(tensor).__name__}")
    labels = _names(names)
    try:         # autograd's topological sort (consumers first), turned round: inputs first
        order = _topological_order([tensor], every_tensor=True)[::-1]
    except RuntimeError:                          # the graph was freed by a backward
        raise RuntimeError(f"trace: {_FREED}") from None
    if len(order) > MAX_NODES:
        raise ValueError(f"trace: the graph has {len(order)} tensors, more than a readable figure "
                         f"holds ({MAX_NODES}); draw a smaller part (an intermediate result)")
    index = {id(t): i for i, t in enumerate(order)}
    nodes, edges = [], []
    for i, t in enumerate(order):
        f = t.creator
        if f is not None:
            kind = "op"
        elif isinstance(t, Parameter):
            kind = "parameter"
        else:
            kind = "leaf" if t.requires_grad else "constant"
        node = Node(i, t, kind, op=f.name if f is not None else None,
                    name=labels.get(id(t), t.name))
        if f is not None:
            node.inputs = [index[id(x)] for x in f.inputs]
            edges.extend((src, i, slot) for slot, src in enumerate(node.inputs))
        nodes.append(node)
    _tag_duplicates(nodes)
    return Graph(len(nodes) - 1, nodes, edges)


def _tag_duplicates(nodes):
    """Number the unnamed nodes that would otherwise read the same ("add #1", "add #2")."""
    groups = {}
    for node in nodes:
        if node.name is None:
            groups.setdefault(node.op or node.kind, []).append(node)
    for group in groups.values():
        if len(group) > 1:
            for k, node in enumerate(group, 1):
                node.tag = f" #{k}"


# --------------------------------------------------------------------------------------------------
# The backward sweep, one node at a time
# --------------------------------------------------------------------------------------------------

@dataclass
class Frame:
    """One step of the backward sweep.

    ``node``: the index of the node whose gradient is complete and is now passed on; ``grad``: that
    gradient (dL/d node, a Tensor); ``sent``: (input index, argument position, gradient) for each
    input that receives a part of it; ``grads``: every node's gradient so far after this step
    ({index: Tensor}, the partial sums of nodes still waiting); ``arrived``: {index: how many of its
    uses have reported}.
    """

    step: int
    node: int
    grad: Tensor
    sent: list
    grads: dict
    arrived: dict

    def describe(self, graph):
        """One line in words: what this step does."""
        node = graph.nodes[self.node]
        head = f"step {self.step + 1}: dL/d {node.short} = {_summary(self.grad)}"
        if node.kind != "op":
            return head + " is final: it accumulates into .grad"
        parts, count = [], {}
        for src, _, _ in self.sent:             # arrivals before this step, then one by one
            count[src] = count.get(src, self.arrived[src]) - 1
        for src, slot, g in self.sent:
            count[src] += 1
            total = graph.uses(src)
            extra = f" ({count[src]} of {total} arrived)" if total > 1 else ""
            parts.append(f"{_summary(g)} to {graph.nodes[src].short}{extra}")
        return head + "; " + node.op + ".backward sends " + ("; ".join(parts) or "nothing")


def _seed_grad(root, grad):
    t = root.tensor
    if grad is None:
        if t.size != 1:
            raise ValueError(f"backward_frames: the output has shape {t.shape}; pass grad= a "
                             "tensor of that shape, or reduce the output to one number first "
                             "(.sum())")
        return Tensor._wrap(B.namespace(t.data).ones_like(t.data))
    g = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=t.dtype)
    if g.shape != t.shape:
        raise ValueError(f"backward_frames: grad has shape {g.shape} but the output has shape "
                         f"{t.shape}")
    return g.detach()


def backward_frames(tensor, grad=None, names=None):
    """Run the chain rule through the graph behind ``tensor`` and return (graph, frames): one
    :class:`Frame` per node that receives a gradient, in the order backward visits them.

    ``grad`` is dL/d tensor (needed when ``tensor`` has more than one element).  No ``.grad`` is
    changed and the graph is kept, so the same tensor can be drawn again or differentiated after.
    """
    graph = trace(tensor, names)
    root = graph.nodes[graph.root]
    if not root.requires_grad:
        raise ValueError("backward_frames: this tensor does not require grad, so no gradient "
                         "flows; create its inputs with requires_grad=True (or use nn.Parameter)")
    grads = {graph.root: _seed_grad(root, grad)}
    arrived = {graph.root: 0}
    frames = []
    with no_grad():
        for node in reversed(graph.nodes):      # consumers before the tensors they use
            if node.index not in grads:
                continue                        # a constant, or a tensor off every path
            g = grads[node.index]
            sent = []
            if node.kind == "op":
                f = node.tensor.creator
                gxs = f.backward(g)
                if not isinstance(gxs, (tuple, list)):
                    gxs = (gxs,)
                for slot, (src, gx) in enumerate(zip(node.inputs, gxs)):
                    x = graph.nodes[src]
                    if gx is None or not x.requires_grad:
                        continue
                    if gx.shape != x.shape:     # undo broadcasting, as the engine does
                        gx = F.sum_to(gx, x.shape)
                    grads[src] = grads[src] + gx if src in grads else gx
                    arrived[src] = arrived.get(src, 0) + 1
                    sent.append((src, slot, gx))
            frames.append(Frame(len(frames), node.index, g, sent, dict(grads), dict(arrived)))
    return graph, frames


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------

def _host_values(t):
    return t.numpy().astype("float64").ravel().tolist()


def _summary(t, small=3):
    """A tensor in a few characters: its values when it has at most ``small``, else its 2-norm."""
    values = _host_values(t)
    if len(values) == 1:
        return f"{values[0]:.4g}"
    if len(values) <= small:
        return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"
    return f"norm {math.sqrt(sum(v * v for v in values)):.4g}"


def _label(node, show, grads=None):
    """The lines of a node's box: title; shape (after "param", "leaf" or "const" for a named
    non-op); then the value and the gradient, as ``show`` asks."""
    shape = "x".join(str(d) for d in node.shape) if node.shape else "scalar"
    if node.kind != "op" and node.name is not None:
        shape = f"{node.what} {shape}"
    lines = [node.title, shape]
    if show in ("value", "both"):
        lines.append("value " + _summary(node.tensor))
    if show in ("grad", "both") and grads is not None and node.index in grads:
        lines.append("grad " + _summary(grads[node.index]))
    return lines


def _grads_for(graph, tensor, show, grad):
    if show not in ("value", "grad", "both", "shape"):
        raise ValueError(f"show must be 'value', 'grad', 'both' or 'shape', not {show!r}")
    if show in ("grad", "both"):
        _, frames = backward_frames(tensor, grad)
        return frames[-1].grads if frames else {}
    return None


def to_dot(tensor, show="value", names=None, grad=None):
    """The graph behind ``tensor`` as Graphviz text (``dot -Tpng``): one box per tensor, labelled
    as in :func:`draw_graph`, an arrow per use; leaves and parameters filled in colour, constants
    grey."""
    graph = trace(tensor, names)
    grads = _grads_for(graph, tensor, show, grad)
    fill = {"op": "white", "leaf": "lightblue", "parameter": "palegreen", "constant": "lightgrey"}
    lines = ["digraph minigen {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", '
             'fontname="Helvetica", fontsize=10];']
    for node in graph.nodes:
        label = "\\n".join(line.replace('"', '\\"') for line in _label(node, show, grads))
        width = ", penwidth=2" if node.index == graph.root else ""
        lines.append(f'  n{node.index} [label="{label}", fillcolor={fill[node.kind]}{width}];')
    for src, dst, slot in graph.edges:
        lines.append(f'  n{src} -> n{dst} [label="{slot}"];' if len(graph.nodes[dst].inputs) > 1
                     else f"  n{src} -> n{dst};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Layout: layers from left to right, order within a layer by the mean position of the neighbours
# --------------------------------------------------------------------------------------------------

def layout(graph):
    """Where each box goes: ``(pos, waypoints)``.

    ``pos[i]`` is node i's (column, row): an op one column right of its rightmost input, a leaf or a
    constant one column left of its first consumer.  An edge that spans several columns gets a
    waypoint in each column it crosses (``waypoints[e]`` for edge e), which takes a row there like a
    box, so that it never runs through one.  Rows are ordered by a few sweeps that move each box (or
    waypoint) to the mean row of its neighbours, which keeps edges short and crossings few (the
    layered drawing of Sugiyama et al., 1981, in its simplest form).
    """
    column = {}
    for node in graph.nodes:                      # topological order: inputs placed first
        column[node.index] = (1 + max((column[i] for i in node.inputs), default=-1)
                              if node.kind == "op" else 0)
    consumers = {node.index: [] for node in graph.nodes}
    for src, dst, _ in graph.edges:
        consumers[src].append(dst)
    for node in graph.nodes:                      # pull each leaf next to its first use
        if node.kind != "op" and consumers[node.index]:
            column[node.index] = min(column[c] for c in consumers[node.index]) - 1
    low = min(column.values())
    column = {i: c - low for i, c in column.items()}

    neighbours = {i: [] for i in column}
    chains = []
    for e, (src, dst, _) in enumerate(graph.edges):
        chain = [src] + [("via", e, c) for c in range(column[src] + 1, column[dst])] + [dst]
        for c, point in enumerate(chain[1:-1], column[src] + 1):
            column[point] = c
            neighbours[point] = []
        for u, v in zip(chain, chain[1:]):
            neighbours[u].append(v)
            neighbours[v].append(u)
        chains.append(chain[1:-1])

    layers = {}
    for key in column:                             # nodes in topological order, then waypoints
        layers.setdefault(column[key], []).append(key)
    row = {key: r for members in layers.values() for r, key in enumerate(members)}
    for _ in range(6):
        for c in sorted(layers):
            members = layers[c]
            mean = {k: sum(row[j] for j in neighbours[k]) / len(neighbours[k]) if neighbours[k]
                    else row[k] for k in members}
            members.sort(key=lambda k: (mean[k], row[k]))
            for r, k in enumerate(members):
                row[k] = r
    tallest = max(len(m) for m in layers.values())

    def place(key):                                # each column centred vertically
        return column[key], row[key] + (tallest - len(layers[column[key]])) / 2

    pos = {node.index: place(node.index) for node in graph.nodes}
    return pos, [[place(point) for point in chain] for chain in chains]


# --------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------

_FILL = {"op": "#ffffff", "leaf": "#cfe3f7", "parameter": "#d4f0d0", "constant": "#e6e6e6"}
_BOX_W, _BOX_H = 0.7, 0.72             # in layout units (a column is 1 wide, a row 1 high)
_COL_IN, _ROW_IN = 2.2, 0.95           # inches per column and per row


def _figure(columns, rows, panels=1, ncols=1):
    from matplotlib.figure import Figure

    nrows = math.ceil(panels / ncols)
    width = ncols * max(columns * _COL_IN, 2.6)
    height = nrows * (rows * _ROW_IN + 0.6)
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = [figure.add_subplot(nrows, ncols, k + 1) for k in range(panels)]
    for ax in axes:
        _clear(ax, columns, rows)
    return figure, axes


def _clear(ax, columns, rows):
    """An empty panel in layout units: one unit per column and per row, row 0 at the top."""
    ax.clear()
    ax.set_xlim(-0.5, columns - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_axis_off()


def _grid(pos, waypoints):
    points = list(pos.values()) + [p for via in waypoints for p in via]
    columns = 1 + max(x for x, _ in points)
    rows = 1 + max(y for _, y in points)
    return int(round(columns)), int(math.ceil(rows))


def _routes(graph, pos, waypoints):
    """Each edge as a list of points: out of its source's right side, through its waypoints, into
    its consumer's left side.  Edges between the same two nodes (``a + a``) run side by side, a
    little apart, so that both are seen."""
    count, seen, routes = {}, {}, []
    for src, dst, _ in graph.edges:
        count[(src, dst)] = count.get((src, dst), 0) + 1
    for (src, dst, _), via in zip(graph.edges, waypoints):
        n, k = count[(src, dst)], seen.get((src, dst), 0)
        seen[(src, dst)] = k + 1
        shift = 0.0 if n == 1 else 0.24 * (k - (n - 1) / 2)
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        routes.append([(x0 + _BOX_W / 2, y0 + shift)] + [(x, y + shift) for x, y in via]
                      + [(x1 - _BOX_W / 2, y1 + shift)])
    return routes


def _spline(points, Path):
    """A smooth path through ``points``: between two points a cubic curve that leaves and arrives
    horizontally (like Graphviz's splines)."""
    vertices, codes = [points[0]], [Path.MOVETO]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        half = (x1 - x0) / 2
        vertices += [(x0 + half, y0), (x1 - half, y1), (x1, y1)]
        codes += [Path.CURVE4] * 3
    return Path(vertices, codes)


def _midpoint(points):
    """A point halfway along a route (for the label of the gradient it carries)."""
    if len(points) % 2 == 1:
        return points[len(points) // 2]
    (x0, y0), (x1, y1) = points[len(points) // 2 - 1], points[len(points) // 2]
    return (x0 + x1) / 2, (y0 + y1) / 2


def _draw(ax, graph, pos, waypoints, show, grads=None, highlight=None, sent=None, done=(),
          arrived=None):
    """Draw the graph on ``ax``.  In a backward frame: ``highlight`` is the current node, ``sent``
    the gradients it passes on, ``done`` the nodes already processed."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    sending = {(src, slot): g for src, slot, g in (sent or [])}
    for (src, dst, slot), points in zip(graph.edges, _routes(graph, pos, waypoints)):
        if highlight == dst and (src, slot) in sending:   # the gradient flows right to left
            ax.add_patch(FancyArrowPatch(path=_spline(points[::-1], Path),
                                         arrowstyle="-|>", mutation_scale=14, color="#c0392b",
                                         linewidth=2.2, zorder=3))
            x, y = _midpoint(points)
            side = 1 if points[0][1] > pos[src][1] else -1    # the lower of a pair: below it
            ax.text(x, y + 0.14 * side, _summary(sending[(src, slot)]), ha="center", va="center",
                    fontsize=7.5, color="#c0392b", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none",
                              alpha=0.9))
        else:
            ax.add_patch(FancyArrowPatch(path=_spline(points, Path), arrowstyle="-|>",
                                         mutation_scale=11, color="#7f7f7f", linewidth=1.0,
                                         zorder=1))
    for node in graph.nodes:
        x, y = pos[node.index]
        edge, width = "#333333", 1.0
        face = _FILL[node.kind]
        if highlight is not None:
            if node.index == highlight:
                face, edge, width = "#f9c74f", "#c0392b", 2.2
            elif node.index in done:
                face = "#b7e4c7"
            elif grads is not None and node.index in grads:
                face = "#fff3b0"
        if node.index == graph.root and highlight is None:
            width = 2.2
        ax.add_patch(FancyBboxPatch((x - _BOX_W / 2, y - _BOX_H / 2), _BOX_W, _BOX_H,
                                    boxstyle="round,pad=0,rounding_size=0.08", facecolor=face,
                                    edgecolor=edge, linewidth=width, zorder=2))
        lines = _label(node, show, grads)
        if arrived is not None and node.index in arrived and graph.uses(node.index) > 1:
            lines[-1] += f" ({arrived[node.index]}/{graph.uses(node.index)})"
        size = 8.5 if len(lines[0]) <= 20 else max(6.0, 8.5 * 20 / len(lines[0]))  # long names
        ax.text(x, y - _BOX_H / 2 + 0.1, lines[0], ha="center", va="top", fontsize=size,
                fontweight="bold", zorder=4, clip_on=False)
        ax.text(x, y - _BOX_H / 2 + 0.31, "\n".join(lines[1:]), ha="center", va="top",
                fontsize=7.5, zorder=4, linespacing=1.25, clip_on=False)


def draw_graph(tensor, show="value", names=None, grad=None):
    """The computation graph behind ``tensor`` as a matplotlib Figure (no Graphviz needed).

    One box per tensor, inputs on the left and ``tensor`` (bold frame) on the right; each box shows
    the op that made the tensor (or "leaf", "param", "const"), its shape, and by ``show``:

    * ``"value"`` (default): the value (the values of tensors of up to 4 elements, else the 2-norm),
    * ``"grad"``: dL/d(tensor) for every tensor that gets one, computed by :func:`backward_frames`
      without touching any ``.grad`` (``grad`` is dL/d tensor when it has more than one element),
    * ``"both"``, or ``"shape"`` for the shapes alone.

    Leaves that require a gradient are blue, ``nn.Parameter`` green, constants grey.  ``names``: a
    Module or a ``{name: tensor}`` dict, to label parameters and inputs.  Save the figure with
    ``mg.plots.save(figure, "graph.png")`` or show it as a notebook cell's value.
    """
    graph = trace(tensor, names)
    grads = _grads_for(graph, tensor, show, grad)
    pos, waypoints = layout(graph)
    columns, rows = _grid(pos, waypoints)
    figure, (ax,) = _figure(columns, rows)
    _draw(ax, graph, pos, waypoints, show, grads)
    return figure


def draw_backward(tensor, grad=None, names=None, ncols=None, steps=None):
    """The backward sweep through the graph behind ``tensor``, one panel per step.

    Each panel shows the node whose gradient is complete (orange, red frame) sending its parts to
    its inputs along red arrows (labelled with what is sent), the nodes already done (green), and
    those still waiting with the partial sum of what has arrived (yellow, with "k/n" when a tensor
    is used n times: ``a + a`` sends two gradients to ``a``, which adds them).  The title says the
    step in words.
    ``steps``: the step numbers to draw (from 0), all by default; at most 36 panels.
    """
    graph, every = backward_frames(tensor, grad, names)
    frames = every if steps is None else [every[k] for k in steps]
    if len(frames) > MAX_PANELS:
        raise ValueError(f"draw_backward: {len(frames)} steps do not fit one figure (at most "
                         f"{MAX_PANELS}); choose some with steps=[...] (step numbers from 0)")
    pos, waypoints = layout(graph)
    columns, rows = _grid(pos, waypoints)
    if ncols is None:
        ncols = max(1, min(len(frames), int(11 // max(columns * _COL_IN, 2.6)) or 1))
    figure, axes = _figure(columns, rows, panels=len(frames), ncols=ncols)
    for ax, frame in zip(axes, frames):
        done = {f.node for f in every[:frame.step]}
        _draw(ax, graph, pos, waypoints, "grad", frame.grads, highlight=frame.node, sent=frame.sent,
              done=done, arrived=frame.arrived)
        ax.set_title(_wrap(frame.describe(graph), columns * _COL_IN), fontsize=8.5, loc="left")
    return figure


def animate_backward(tensor, grad=None, names=None, interval=1200):
    """The same sweep as :func:`draw_backward`, as an animation: one frame per step, one figure.

    Returns a ``matplotlib.animation.FuncAnimation``.  In a notebook show it with
    ``IPython.display.HTML(animation.to_jshtml())``; save it with
    ``animation.save("sweep.gif", writer="pillow")`` (Pillow comes with matplotlib: nothing else
    to install).  ``interval``: milliseconds per frame.  Keep a reference to the animation while it
    is shown (matplotlib stops an animation that is garbage-collected).
    """
    from matplotlib.animation import FuncAnimation

    graph, frames = backward_frames(tensor, grad, names)
    pos, waypoints = layout(graph)
    columns, rows = _grid(pos, waypoints)
    figure, (ax,) = _figure(columns, rows)

    def show(k):
        frame = frames[k]
        _clear(ax, columns, rows)
        _draw(ax, graph, pos, waypoints, "grad", frame.grads, highlight=frame.node,
              sent=frame.sent, done={f.node for f in frames[:k]}, arrived=frame.arrived)
        ax.set_title(_wrap(frame.describe(graph), columns * _COL_IN), fontsize=8.5, loc="left")
        return []

    return FuncAnimation(figure, show, frames=len(frames), interval=interval, repeat=True)


def _wrap(text, inches):
    """Break ``text`` into lines that fit ``inches`` at the title's font size."""
    width = max(30, int(inches * 13))
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)
