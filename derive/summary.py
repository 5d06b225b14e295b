"""The solve summary: what `derive solve` prints, from the engine's `Numbers`.

Takes a `Spec` and `engine.Numbers`; gives `Shaped` values (a number, a flat list for a column
vector, or rows) and the JSON object of `derive solve --json`.  No SymPy: `derive solve` on a
large network never builds the per-scalar graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .rounding import fraction_text as rounding_fraction_text
from .spec import Spec


@dataclass(frozen=True)
class Shaped:
    """Numbers in a quantity's shape: a scalar, a flat list (column vector) or rows."""
    shape: tuple
    values: tuple           # Number per entry, row-major
    flat: bool = False

    @property
    def text(self) -> str:
        """Plain text: a number, [a, b] for a flat list, [[a, b], [c, d]] for rows."""
        nested = self.nested()
        if isinstance(nested, str):
            return nested
        if not isinstance(nested[0], list):
            return "[" + ", ".join(nested) + "]"
        return "[" + ", ".join("[" + ", ".join(r) + "]" for r in nested) + "]"

    @property
    def shown_exactly(self) -> bool:
        return all(v.shown_exactly for v in self.values)

    def nested(self):
        texts = [v.text for v in self.values]
        if self.shape == ():
            return texts[0]
        r, c = self.shape
        if self.flat and c == 1:
            return texts
        return [texts[i * c:(i + 1) * c] for i in range(r)]


def written_flat(spec: Spec, name: str) -> bool:
    """n×1 values are flat lists, except inputs the spec itself wrote as rows of one."""
    for table in (spec.data, spec.parameters):
        if name in table:
            return table[name].flat_list
    return True


def shaped(spec: Spec, shape: tuple, name: str, values: tuple) -> Shaped:
    flat = shape != () and shape[1] == 1 and written_flat(spec, name)
    return Shaped(shape, tuple(values), flat)


def numeric_json(spec: Spec, shapes: dict, numbers) -> dict:
    """The object `derive solve --json` prints for a numeric spec (see README)."""
    def j(name, values):
        return shaped(spec, shapes[name], name, values).nested()
    return {
        "title": spec.title,
        "digits": numbers.digits,
        "forward": {n: j(n, v) for n, v in numbers.forward.items()},
        "loss": numbers.history[0].text,
        "gradients": {p: j(p, v) for p, v in numbers.gradients.items()},
        "updated": {p: j(p, v) for p, v in numbers.updated.items()},
        "loss_after": numbers.history[-1].text,
        "history": [n.text for n in numbers.history],
    }


def fraction_text(q: Fraction | None) -> str:
    """A spec constant as written: a short decimal, else p/q (`rounding.fraction_text`); None
    (symbolic) is 'eta'."""
    return "eta" if q is None else rounding_fraction_text(q)
