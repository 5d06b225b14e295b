"""Claims files: TOML read and validated into `Claim`s — the quantity claimed, and the claim:
numbers (`value`), a formula (`expr`) or LaTeX (`latex`) — bound to their problem (a spec path
relative to the file, or a built-in id).  Bad input is a `DeriveError` naming the file and the
claim."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import expr as ex
from . import texcheck
from .errors import DeriveError, LimitError
from .files import STDIO, is_file, lexists, read_input
from .latexparse import parse_latex, unparse
from .quantity import derivative_pairs, make_query
from .solve import Problem, load
from .spec import builtin_ids, problems_dir
from .verdicts import parse_stated
MAX_CLAIMS = 2000
MAX_CLAIMS_BYTES = 1_000_000
CLAIM_KEYS = {"of", "value", "expr", "latex", "note", "note_zh"}


# ---------------------------------------------------------------- claims
@dataclass
class Claim:
    index: int                  # 1-based, file order
    of: str
    kind: str                   # value | expr | latex
    raw: object                 # as written
    note: str
    where: str                  # 'claim[3] (of = "dE/dw5")'
    of_tree: object = None
    query: object = None        # Query of `of`, or None with of_error
    of_error: str | None = None
    shape: tuple = ()
    stated: tuple | None = None  # Stated per entry, row-major (value claims)
    tree: object = None         # formula claims
    reading: str | None = None  # the formula in the expression language
    formula_query: object = None
    formula_error: str | None = None
    constant: bool = False
    const_sig: int | None = None
    note_zh: str = ""           # the note in Chinese, for Chinese errata (optional)

    @property
    def is_value(self) -> bool:
        return self.kind == "value" or self.constant

    def claimed_display(self):
        if self.kind == "value":
            return nest([s.text for s in self.stated], self.shape, self.flat)
        return str(self.raw)

    @property
    def flat(self) -> bool:
        return isinstance(self.raw, list) and not any(isinstance(r, list) for r in self.raw)


@dataclass
class ClaimsFile:
    path: str
    problem: Problem
    claims: list
    demonstration: bool = False     # claims written for the example, not taken from a source document
    source_title: str = ""          # the source document's title as it gives it ([source] title)
    source_author: str = ""         # its author, when the document names one ([source] author)


def nest(items: list, shape: tuple, flat: bool = True):
    if shape == ():
        return items[0]
    r, c = shape
    if c == 1 and flat:
        return list(items)
    return [list(items[i * c:(i + 1) * c]) for i in range(r)]


def _resolve_spec(spec_ref, claims_path: Path, display: str, known: Problem | None = None) -> Problem:
    if not isinstance(spec_ref, str) or not spec_ref.strip():
        raise DeriveError("required: spec = \"a spec path or a built-in id\"", file=display, key="spec")
    if spec_ref.strip() == "-":
        raise DeriveError("spec cannot be standard input (-): give a spec path or a built-in id",
                          file=display, key="spec")
    candidate = claims_path.parent / spec_ref
    try:
        if is_file(candidate):
            return load(str(candidate))
        if spec_ref in builtin_ids():
            if known is not None and known.spec.id == spec_ref:
                return known        # the built-in problem already loaded (derive build)
            return load(spec_ref)
    except DeriveError as e:
        raise e.located(file=display, key="spec") from None
    raise DeriveError(f"no such spec file {str(candidate)!r} and no built-in problem {spec_ref!r}",
                      file=display, key="spec")


def _unknown_names(tree, graph) -> list[str]:
    """Unknown names of a quantity tree; `dE/dw9` (read as a division) reports w9."""
    out: list[str] = []

    def known(n):
        return n in graph.quantities

    stack = [tree]   # preorder, left to right, without recursion (a sum may have 1 000 terms)
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Bin) and node.op == "/" and isinstance(node.left, ex.Name) \
                and isinstance(node.right, ex.Name) and node.left.id.startswith("d") \
                and node.right.id.startswith("d") and not (known(node.left.id) and known(node.right.id)):
            for n in (node.left.id[1:], node.right.id[1:]):
                if not known(n) and n not in out:
                    out.append(n)
            if out:
                continue
        if isinstance(node, ex.Name):
            if not known(node.id) and node.id not in out:
                out.append(node.id)
        elif isinstance(node, ex.AtStep):
            if not known(node.name) and node.name not in out:
                out.append(node.name)
        elif isinstance(node, ex.Deriv):
            for n in (node.of, node.wrt):
                if not known(n) and n not in out:
                    out.append(n)
        else:
            stack.extend(reversed(ex.children(node)))
    return out


def nodes(tree):
    """Every node of a tree, without recursion."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(ex.children(node))


def max_step(tree) -> int:
    return max((n.step for n in nodes(tree) if isinstance(n, (ex.AtStep, ex.Deriv))), default=0)


def _literal_sig(tree) -> int | None:
    """Most significant digits among the non-integer decimal literals of a tree (None if none)."""
    return max((parse_stated(n.text).sig for n in nodes(tree)
                if isinstance(n, ex.Num) and n.value.denominator != 1 and "." in n.text), default=None)


def load_claims(path, known: Problem | None = None) -> ClaimsFile:
    """Read and validate a claims file (`-`: standard input); DeriveError (file, claim) for anything
    wrong.  `known`: a built-in problem already loaded, used when the file names it."""
    p = Path(path)
    display = str(path)
    builtin = problems_dir() / f"{path}.claims.toml"
    if str(path) == STDIO:
        p, display = Path("."), "<stdin>"       # a spec path in it is relative to the working directory
        display, text = read_input(STDIO, limit=MAX_CLAIMS_BYTES, display=display, stdin=True)
    else:
        if "/" not in str(path) and not lexists(p) and is_file(builtin):
            # a built-in problem id: its transcribed claims (derive check house-price)
            p, display = Path(str(builtin)), f"{path} (built-in claims)"
        display, text = read_input(p, limit=MAX_CLAIMS_BYTES, display=display)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeriveError(f"not valid TOML: {e}", file=display) from None
    for k in doc:
        if k not in ("spec", "claim", "demonstration", "source"):
            raise DeriveError("unknown key (allowed: spec, claim, demonstration, source)", file=display, key=k)
    demonstration = doc.get("demonstration", False)
    if not isinstance(demonstration, bool):
        raise DeriveError("expected true or false", file=display, key="demonstration")
    title, author = _source(doc.get("source", {}), display)
    problem = _resolve_spec(doc.get("spec"), p, display, known)
    raw_claims = doc.get("claim", [])
    if not isinstance(raw_claims, list) or not all(isinstance(c, dict) for c in raw_claims):
        raise DeriveError("expected [[claim]] tables", file=display, key="claim")
    if not raw_claims:
        raise DeriveError("no [[claim]] in the file", file=display)
    if len(raw_claims) > MAX_CLAIMS:
        raise LimitError(f"more than {MAX_CLAIMS} claims", file=display)
    claims = [_make_claim(i, c, problem, display) for i, c in enumerate(raw_claims, 1)]
    return ClaimsFile(display, problem, claims, demonstration, title, author)


SOURCE_KEYS = ("title", "author")
MAX_SOURCE_CHARS = 200


def _source(table, display: str) -> tuple[str, str]:
    """([source] title, author): the source document's title and author, as the errata cite them;
    one line of text each, at most MAX_SOURCE_CHARS characters."""
    if not isinstance(table, dict):
        raise DeriveError("expected a [source] table with title and author", file=display, key="source")
    out = []
    for k in table:
        if k not in SOURCE_KEYS:
            raise DeriveError(f"unknown key {k!r} (allowed: {', '.join(SOURCE_KEYS)})", file=display, key=f"source.{k}")
    for k in SOURCE_KEYS:
        v = table.get(k, "")
        if not isinstance(v, str) or len(v) > MAX_SOURCE_CHARS or any(ord(ch) < 32 for ch in v):
            raise DeriveError(f"expected one line of text (at most {MAX_SOURCE_CHARS} characters)",
                              file=display, key=f"source.{k}")
        out.append(v.strip())
    return out[0], out[1]


def _make_claim(index: int, c: dict, problem: Problem, display: str) -> Claim:
    graph = problem.graph
    of = c.get("of")
    shown = of if not isinstance(of, str) or len(of) <= 60 else of[:59] + "…"   # a message stays readable
    where = f'claim[{index}]' + (f' (of = "{shown}")' if isinstance(of, str) else "")

    def fail(what):
        return DeriveError(what, file=display, key=where)

    for k in c:
        if k not in CLAIM_KEYS:
            raise fail(f"unknown key {k!r} (allowed: {', '.join(sorted(CLAIM_KEYS))})")
    if not isinstance(of, str) or not of.strip():
        raise fail("required: of = \"the quantity claimed\" (NAME, dA/dB, NAME@k or an expression)")
    given = [k for k in ("value", "expr", "latex") if k in c]
    if len(given) != 1:
        raise fail("a claim needs exactly one of value, expr, latex"
                   + (f" (it has {', '.join(given)})" if given else ""))
    kind = given[0]
    notes = {}
    for key in ("note", "note_zh"):
        notes[key] = c.get(key, "")
        if not isinstance(notes[key], str):
            raise fail(f"{key} must be a string")
        try:
            texcheck.check_text(notes[key])
        except DeriveError as e:
            raise fail(f"{key}: {e.what}") from None
    claim = Claim(index, of.strip(), kind, c[kind], notes["note"], where, note_zh=notes["note_zh"])

    # the quantity
    try:
        claim.of_tree = ex.parse_quantity(claim.of, lambda n: n in graph.quantities)
    except DeriveError as e:
        raise fail(f"cannot read of: {e.what}" + (f" (column {e.column})" if e.column else "")) from None
    unknown = _unknown_names(claim.of_tree, graph)
    if unknown:
        raise fail(f"unknown name {unknown[0]!r}")
    try:
        claim.query = make_query(claim.of, graph)
        claim.shape = claim.query.shape
    except LimitError as e:
        raise fail(e.what) from None
    except DeriveError as e:
        claim.of_error = e.what

    if kind == "value":
        if problem.is_symbolic:
            raise fail("this spec is symbolic (it has no numbers): only expr and latex claims can be checked")
        claim.stated = _stated_entries(claim, fail)
    else:
        text = c[kind]
        if not isinstance(text, str) or not text.strip():
            raise fail(f"{kind} must be a non-empty string")
        try:
            if kind == "expr":
                claim.tree = ex.parse_quantity(text, lambda n: n in graph.quantities)
            else:
                claim.tree = parse_latex(text, problem.spec, graph)
        except LimitError as e:
            raise fail(f"{kind}: {e.what}") from None
        except DeriveError as e:
            col = f" (column {e.column})" if e.column else ""
            raise fail(f"cannot read {kind}: {e.what}{col}") from None
        unknown = _unknown_names(claim.tree, graph)
        if unknown:
            raise fail(f"unknown name {unknown[0]!r} in {kind}")
        claim.reading = text.strip() if kind == "expr" else unparse(claim.tree)
        claim.constant = not ex.names_in(claim.tree)
        if claim.constant:
            claim.const_sig = _literal_sig(claim.tree)
        try:
            claim.formula_query = make_query(claim.reading, graph)
        except LimitError as e:
            raise fail(f"{kind}: {e.what}") from None
        except DeriveError as e:
            claim.formula_error = e.what
    return claim


def _stated_entries(claim: Claim, fail) -> tuple:
    raw = claim.raw
    if claim.of_error is not None:
        items = raw if isinstance(raw, list) else [raw]
        flat = [x for r in items for x in (r if isinstance(r, list) else [r])]
        try:
            return tuple(parse_stated(x) for x in flat)
        except DeriveError as e:
            raise fail(f"value: {e.what}") from None
    shape = claim.shape
    try:
        if not isinstance(raw, list):
            if shape != ():
                raise fail(f"value: {claim.of} is a {shape[0]}×{shape[1]} matrix; give a list of rows")
            return (parse_stated(raw),)
        if shape == ():
            raise fail("value: a list was given but the quantity is a scalar")
        r, c = shape
        if raw and all(isinstance(x, list) for x in raw):
            if len(raw) != r or any(len(row) != c for row in raw):
                got = f"{len(raw)}×{len(raw[0]) if raw and raw[0] else 0}"
                raise fail(f"value: {got} given, but {claim.of} is {r}×{c}")
            return tuple(parse_stated(x) for row in raw for x in row)
        if any(isinstance(x, list) for x in raw):
            raise fail("value: mixes numbers and lists; a matrix is a list of rows")
        if (c == 1 and len(raw) == r) or (r == 1 and len(raw) == c):
            return tuple(parse_stated(x) for x in raw)
        raise fail(f"value: {len(raw)} numbers given, but {claim.of} is {r}×{c}")
    except DeriveError as e:
        if e.key:
            raise
        raise fail(f"value: {e.what}") from None


def claim_keys(claim: Claim, graph) -> list:
    """What a claimed value overrides in a recomputation: ('value', entry, k) / ('deriv', a, b, k)."""
    t = claim.of_tree
    if isinstance(t, ex.Name):
        return [("value", e, 0) for e in graph.quantities[t.id].entries]
    if isinstance(t, ex.AtStep):
        return [("value", e, t.step) for e in graph.quantities[t.name].entries]
    if isinstance(t, ex.Deriv):
        try:
            pairs = derivative_pairs(graph, graph.quantities[t.of], graph.quantities[t.wrt], "")
        except DeriveError:
            return []
        return [("deriv", a, b, t.step) for a, b in pairs]
    return []
