"""The network diagram of a worked solution (TikZ in LaTeX, Mermaid in Markdown), as data.

`build_diagram(quantities, parameters, loss, names)` lays out the quantities of a spec (name ->
an object with `name`, `kind`, `shape`, `uses`, `tree`, like `graph.Quantity`): a pre-activation
used only by its activation becomes one neuron with it, a definition Σ w·x + b gives weighted
arrows (biases written next to the neuron in TikZ), columns by longest path from the data.
"""
from __future__ import annotations

from . import expr as ex
from . import printer as pr
from .handout import Diagram, Edge, Node


def _constant(tree) -> bool:
    return not ex.names_in(tree)


def _linear(tree, params: set):
    """[(source, weight)] of a definition Σ w·x + b (weight or source may be None), or None."""
    out = []

    def term(node):
        while True:   # a loop, not recursion, along long chains (c1*c2*…*x, a + b + …)
            if isinstance(node, ex.Neg):
                node = node.operand
                continue
            if isinstance(node, ex.Num):
                return True
            if isinstance(node, ex.Name):
                out.append((None, node.id) if node.id in params else (node.id, None))
                return True
            if isinstance(node, ex.Bin) and node.op in "*@":
                a, b = node.left, node.right
                if _constant(a):
                    node = b
                    continue
                if _constant(b):
                    node = a
                    continue
                if isinstance(a, ex.Name) and isinstance(b, ex.Name):
                    pa, pb = a.id in params, b.id in params
                    if pa != pb:
                        out.append((b.id, a.id) if pa else (a.id, b.id))
                        return True
                return False
            if isinstance(node, ex.Bin) and node.op in "+-":
                first, rest = ex.spine(node)
                return all(term(t) for t in [first] + [t for _, t in rest])
            return False

    return out if term(tree) else None


def build_diagram(quantities: dict, parameters, loss: str, names: dict) -> Diagram:
    params = set(parameters)
    forward = [q for q in quantities.values() if q.kind == "forward"]
    users: dict = {}
    for q in forward:
        for u in q.uses:
            users.setdefault(u, []).append(q.name)
    absorbed = {}           # pre-activation -> activation
    for q in forward:
        t = q.tree
        if isinstance(t, ex.Call) and t.fn in ex.ELEMENTWISE_FUNCTIONS and isinstance(t.args[0], ex.Name):
            pre = t.args[0].id
            pq = quantities[pre]
            if pq.kind == "forward" and users.get(pre) == [q.name] and _linear(pq.tree, params) is not None:
                absorbed[pre] = q.name
    neurons = {v: k for k, v in absorbed.items()}
    nodes: dict = {}        # name -> kind
    edges: list = []        # (src, dst, weight or None, kind)
    for q in forward:
        if q.name in absorbed:
            continue
        kind = "loss" if q.name == loss else "neuron" if q.name in neurons else "op"
        nodes[q.name] = kind
        tree = quantities[neurons[q.name]].tree if q.name in neurons else q.tree
        lin = _linear(tree, params)
        if lin is not None:
            for src, w in lin:
                if src is not None:
                    edges.append((src, q.name, w, "weight" if w else "plain"))
                elif w is not None:
                    edges.append((w, q.name, None, "bias"))
        else:
            for u in q.uses:
                edges.append((u, q.name, None, "param" if u in params else "plain"))
    seen = set()
    edges = [e for e in edges if not (e[:2] in seen or seen.add(e[:2]))]
    for src, _, _, kind in edges:
        if src not in nodes:
            nodes[src] = "param" if src in params else "data"
    # a parameter that is only ever added (a bias) is written next to its neurons in TikZ: "+ b1"
    for n, kind in list(nodes.items()):
        if kind == "param" and all(k == "bias" for s_, _, _, k in edges if s_ == n):
            nodes[n] = "bias"
    biases: dict = {}
    for s_, d, _, k in edges:
        if k == "bias" and nodes[s_] == "bias":
            biases.setdefault(d, []).append(s_)
    # layers: forward nodes by longest path; sources one column before their first consumer
    layer: dict = {}
    for q in forward:
        if q.name not in nodes:
            continue
        srcs = [s_ for s_, d, _, _ in edges if d == q.name and quantities[s_].kind == "forward"]
        layer[q.name] = 1 + max((layer[s_] for s_ in srcs), default=0)
    for name in nodes:
        if name not in layer:
            cons = [layer[d] for s_, d, _, _ in edges if s_ == name and d in layer]
            layer[name] = max(0, min(cons) - 1) if cons else 0
    ncols = max(layer.values()) + 1
    # a column: its forward nodes and the data they weigh (inputs) spread out; targets and other
    # parameters below them (bias nodes are not drawn in TikZ: they get no place of their own)
    weighted_src = {s_ for s_, _, w, _ in edges if w}
    extra = {n for n, kind in nodes.items() if kind == "param" or (kind == "data" and n not in weighted_src)}
    order = list(quantities)
    columns = [sorted([n for n in nodes if layer[n] == c and nodes[n] != "bias"],
                      key=lambda n: (n in extra, order.index(n))) for c in range(ncols)]
    mains = [[n for n in col if n not in extra] or col for col in columns]
    tallest = max(len(m) for m in mains)
    ys: dict = {}
    for col, main in zip(columns, mains):
        rest = [n for n in col if n not in main]
        step = min(2.0, (tallest - 1) / (len(main) - 1)) if len(main) > 1 else 0.0
        for r, n in enumerate(main):
            ys[n] = (len(main) - 1) * step / 2 - r * step
        low = min((ys[n] for n in main), default=0)
        for r, n in enumerate(rest):
            ys[n] = low - 1 - r
    for n in nodes:          # bias nodes (drawn by Mermaid only): below their column
        if n not in ys:
            ys[n] = min(ys.values()) - 1
    top = max(v for n, v in ys.items() if nodes[n] != "bias")
    bottom = min(v for n, v in ys.items() if nodes[n] != "bias")

    # column spacing: room for the widest node of two neighbouring columns and a weight label
    def node_cm(n):
        q = quantities[n]
        return 0.19 * pr.width(names[n]) + (0.75 if q.shape else 0) + 0.5

    def label_cm(c):
        ws = [0.16 * pr.width(names[w]) for s_, d, w, _ in edges if w and layer[s_] == c]
        return max(ws, default=0) + 0.4

    need = max((max((node_cm(n) for n in columns[c]), default=1) / 2
                + max((node_cm(n) for n in columns[c + 1]), default=1) / 2
                + label_cm(c) for c in range(ncols - 1)), default=2.4)
    crowded = tallest > 1
    xscale = min(max(3.3 if crowded else 2.6, need), 15.0 / max(1, ncols - 1))
    yscale = min(1.5, 13.0 / max(1.0, top - bottom))
    font = "small" if yscale >= 0.9 else "scriptsize"
    ids = {n: f"n{i}" for i, n in enumerate(sorted(nodes, key=order.index))}
    out_nodes = []
    for n, kind in nodes.items():
        q = quantities[n]
        note = f"{q.shape[0]}×{q.shape[1]}" if q.shape else ""
        bias = " ".join(f"+ {names[x]}" for x in biases.get(n, ()))
        out_nodes.append(Node(ids[n], n, names[n], kind, float(layer[n]), round(ys[n], 3), note, bias))
    weighted = sum(1 for e in edges if e[2])
    labels = weighted <= 24
    out_edges = tuple(Edge(ids[s], ids[d], w or "", names[w] if w else "", kind) for s, d, w, kind in edges)
    pairs = tuple((names[p], names[a]) for p, a in absorbed.items())
    return Diagram(tuple(sorted(out_nodes, key=lambda x: int(x.id[1:]))), out_edges, round(xscale, 2),
                   round(yscale, 2), font, labels, pairs, 0.28 if crowded else 0.5,
                   bool(biases), any(k == "param" for *_, k in edges))

