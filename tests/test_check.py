"""derive check: verdicts, diagnoses, errors, CLI and errata.

Every verdict of every built-in claims file is asserted against an INDEPENDENT model of the
network written here with SymPy (each forward quantity composed by hand from the seeds' networks;
a derivative dA/dB by sympy.diff of A composed with B cut out as a fresh symbol; numbers by
evalf at 80 digits) — never against numbers typed from the documents, and never through derive's
graph, calculus or numeric stages.  Claimed formulas are read with derive's parsers (tested in
test_latexparse.py) and evaluated by this file's own evaluator.  Mistake diagnoses are verified by
recomputing the mistake in the independent model (σ' at the pre-activation, a halved or doubled
value, η·g as the new weight, …).  The synthetic Mazur-style claims are generated here from the
independent model with each mistake applied, written to a claims file and checked.
"""
from __future__ import annotations

import json
import random
import re
import tomllib
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest
import sympy as sp

from derive import expr as ex
from derive.check import check_file, load_claims
from derive.errata import write_errata
from derive.errors import DeriveError
from derive.latexparse import parse_latex
from derive.spec import load as load_spec

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "derive" / "problems"


# ---------------------------------------------------------------- independent models
class S(sp.Function):
    """σ with σ' = σ(1 − σ)."""

    def fdiff(self, argindex=1):
        return S(self.args[0]) * (1 - S(self.args[0]))


class SPre(sp.Function):
    """σ with the seeds' mistake: σ'(u) taken as u(1 − u)."""

    def fdiff(self, argindex=1):
        u = self.args[0]
        return u * (1 - u)


class Undefined(Exception):
    pass


def R(x) -> sp.Rational:
    return sp.Rational(str(x))


def numeric(expr) -> Fraction:
    """A SymPy number (σ's written out) as a Fraction, 80 significant digits."""
    e = expr.replace(lambda a: isinstance(a, (S, SPre)), lambda a: 1 / (1 + sp.exp(-a.args[0])))
    v = sp.N(e, 80)
    if v.is_Rational:
        return Fraction(int(v.p), int(v.q))
    return Fraction(str(v))


class Model:
    """A network coded by hand: inputs (name → scalar or nested list, or None if symbolic) and
    rules (name, function(env, sig) → SymPy expression or Matrix) in order."""

    def __init__(self, inputs: dict, rules: list, loss: str, lr, update: list, terms=None):
        self.inputs = inputs
        self.rules = rules
        self.loss = loss
        self.lr = None if lr is None else R(lr)
        self.update = update
        self.terms = terms or {}
        self.syms = {}
        self.given = {}
        for name, v in inputs.items():
            if isinstance(v, list) or (isinstance(v, tuple)):
                rows = v if isinstance(v[0], list) else [[x] for x in v]
                m = sp.Matrix(len(rows), len(rows[0]),
                              lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))
                self.syms[name] = m
                for i, row in enumerate(rows):
                    for j, x in enumerate(row):
                        if x is not None:
                            self.given[m[i, j]] = R(x)
            else:
                s = sp.Symbol(name, real=True)
                self.syms[name] = s
                if v is not None:
                    self.given[s] = R(v)
        self._cache = {}

    @property
    def symbolic(self) -> bool:
        return not self.given

    def compose(self, cut=None, sig=S):
        key = (cut, sig)
        if key not in self._cache:
            env = dict(self.syms)
            fresh = None
            for name, rule in self.rules:
                if name == cut:
                    shape = _shape(rule(env, sig))
                    fresh = _fresh(f"cut_{name}", shape)
                    env[name] = fresh
                else:
                    env[name] = rule(env, sig)
            self._cache[key] = (env, fresh)
        return self._cache[key]

    def names(self):
        return list(self.syms) + [n for n, _ in self.rules]

    def expr(self, name, sig=S):
        return self.compose(sig=sig)[0][name]

    def deriv(self, a: str, b: str, sig=S):
        """dA/dB through the network (B cut out as a fresh symbol), composed in the inputs."""
        if b in self.syms:
            A, bsym, full_b = self.expr(a, sig), self.syms[b], None
        else:
            env, fresh = self.compose(cut=b, sig=sig)
            A, bsym = env[a], fresh
            full_b = self.expr(b, sig)
        sa, sb = _shape(A), _shape(bsym)
        if sa == () and sb == ():
            d = sp.diff(A, bsym)
        elif sa == ():
            d = bsym.applyfunc(lambda x: sp.diff(A, x))
        elif sb == ():
            d = A.applyfunc(lambda x: sp.diff(x, bsym))
        elif sa == sb:
            flat_a, flat_b = list(A), list(bsym)
            for i, x in enumerate(flat_a):
                if any(sp.diff(x, flat_b[j]) != 0 for j in range(len(flat_b)) if j != i):
                    raise Undefined(f"d{a}/d{b} is a full Jacobian")
            d = sp.Matrix(sa[0], sa[1], [sp.diff(x, y) for x, y in zip(flat_a, flat_b)])
        else:
            raise Undefined(f"d{a}/d{b} is a Jacobian of two matrices")
        if full_b is not None:
            pairs = zip(list(bsym), list(full_b)) if sb else [(bsym, full_b)]
            d = _xreplace(d, dict(pairs))
        return d

    def point(self, randomized=(), rng=None) -> dict:
        """Values of every input symbol: the given ones, random for `randomized` (and symbolic)."""
        out = {}
        for s in self.all_input_symbols():
            if s in randomized or s not in self.given:
                out[s] = sp.Rational(rng.randint(150, 850), 1000) * (1 if rng.random() < 0.6 else -1)
            else:
                out[s] = self.given[s]
        return out

    def all_input_symbols(self):
        out = []
        for v in self.syms.values():
            out += list(v) if isinstance(v, sp.MatrixBase) else [v]
        return out

    def lr_at(self, point):
        return self.lr if self.lr is not None else point.get("lr", sp.Rational(1, 10))

    def step1(self, point, sig=S, rule=None):
        """Input values after one gradient step (optionally a different update rule)."""
        new = dict(point)
        lr = self.lr_at(point)
        for p in self.update:
            g = _xreplace(self.deriv(self.loss, p, sig), point)
            ps = self.syms[p]
            pairs = zip(list(ps), list(g)) if isinstance(ps, sp.MatrixBase) else [(ps, g)]
            for s, gv in pairs:
                new[s] = (rule or (lambda p_, lr_, g_: p_ - lr_ * g_))(point[s], lr, gv)
        return new


def _fresh(name, shape):
    if shape == ():
        return sp.Symbol(name, real=True)
    return sp.Matrix(shape[0], shape[1], lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))


def _shape(v):
    return tuple(v.shape) if isinstance(v, sp.MatrixBase) else ()


def _xreplace(v, subs):
    if isinstance(v, sp.MatrixBase):
        return v.applyfunc(lambda x: x.xreplace(subs))
    return v.xreplace(subs)


def _ew(f):
    return lambda v: v.applyfunc(f) if isinstance(v, sp.MatrixBase) else f(v)


def house_price():
    r = [
        ("z_h1", lambda e, s: e["w1"] * e["x1"] + e["b1"] + e["w4"] * e["x2"] + e["b4"]),
        ("h1", lambda e, s: s(e["z_h1"])),
        ("z_h2", lambda e, s: e["w2"] * e["x1"] + e["b2"] + e["w5"] * e["x2"] + e["b5"]),
        ("h2", lambda e, s: s(e["z_h2"])),
        ("z_h3", lambda e, s: e["w3"] * e["x1"] + e["b3"] + e["w6"] * e["x2"] + e["b6"]),
        ("h3", lambda e, s: s(e["z_h3"])),
        ("z", lambda e, s: e["w7"] * e["h1"] + e["w8"] * e["h2"] + e["w9"] * e["h3"]),
        ("y_hat", lambda e, s: s(e["z"])),
        ("L", lambda e, s: (e["y"] - e["y_hat"]) ** 2),
    ]
    terms = {f"z_h{k}": (lambda k: lambda e: [e[f"w{k}"] * e["x1"], e[f"b{k}"], e[f"w{k + 3}"] * e["x2"],
                                              e[f"b{k + 3}"]])(k) for k in (1, 2, 3)}
    inputs = dict(x1=120, x2=1, y=300000, w1="0.2", w2="0.3", w3="0.4", w4="0.5", w5="0.6", w6="0.7",
                  w7="0.1", w8="0.2", w9="0.3", b1=0, b2=0, b3=0, b4=0, b5=0, b6=0)
    params = [f"w{i}" for i in range(1, 10)] + [f"b{i}" for i in range(1, 7)]
    return Model(inputs, r, "L", "0.001", params, terms)


def alice():
    r = [
        ("sum_h1", lambda e, s: e["w1"] * e["x1"] + e["w2"] * e["x2"] + e["b1"]),
        ("h1", lambda e, s: s(e["sum_h1"])),
        ("sum_h2", lambda e, s: e["w3"] * e["x1"] + e["w4"] * e["x2"] + e["b2"]),
        ("h2", lambda e, s: s(e["sum_h2"])),
        ("sum_o1", lambda e, s: e["w5"] * e["h1"] + e["w6"] * e["h2"] + e["b3"]),
        ("o1", lambda e, s: s(e["sum_o1"])),
        ("y_pred", lambda e, s: e["o1"]),
        ("L", lambda e, s: (e["y_true"] - e["y_pred"]) ** 2),
    ]
    inputs = dict(x1=-2, x2=-1, y_true=1, w1=1, w2=1, w3=1, w4=1, w5=1, w6=1, b1=0, b2=0, b3=0)
    params = ["w1", "w2", "w3", "w4", "w5", "w6", "b1", "b2", "b3"]
    return Model(inputs, r, "L", "0.1", params)


# a 2-2-2 sigmoid network with shared biases (two-two-two, and the synthetic Mazur file)
TWO_TWO_TWO_RULES = [
    ("net_h1", lambda e, s: e["w1"] * e["i1"] + e["w2"] * e["i2"] + e["b1"]),
    ("out_h1", lambda e, s: s(e["net_h1"])),
    ("net_h2", lambda e, s: e["w3"] * e["i1"] + e["w4"] * e["i2"] + e["b1"]),
    ("out_h2", lambda e, s: s(e["net_h2"])),
    ("net_o1", lambda e, s: e["w5"] * e["out_h1"] + e["w6"] * e["out_h2"] + e["b2"]),
    ("out_o1", lambda e, s: s(e["net_o1"])),
    ("net_o2", lambda e, s: e["w7"] * e["out_h1"] + e["w8"] * e["out_h2"] + e["b2"]),
    ("out_o2", lambda e, s: s(e["net_o2"])),
    ("E_o1", lambda e, s: sp.Rational(1, 2) * (e["target_o1"] - e["out_o1"]) ** 2),
    ("E_o2", lambda e, s: sp.Rational(1, 2) * (e["target_o2"] - e["out_o2"]) ** 2),
    ("E_total", lambda e, s: e["E_o1"] + e["E_o2"]),
]


def two_two_two():
    r = TWO_TWO_TWO_RULES
    inputs = dict(i1="0.02", i2="0.04", target_o1="0.5", target_o2="0.9", w1="0.25", w2="0.25", w3="0.15",
                  w4="0.20", w5="0.30", w6="0.35", w7="0.40", w8="0.35", b1="0.4", b2="0.7")
    return Model(inputs, r, "E_total", "0.1", [f"w{i}" for i in range(1, 9)])


def matrix_linear():
    r = [
        ("hidden", lambda e, s: e["input_param"] * e["w1"]),
        ("pred", lambda e, s: e["hidden"] * e["w2"]),
        ("grad_pred", lambda e, s: e["pred"] - e["output"]),
        ("E", lambda e, s: sp.Rational(1, 2) * sum(x ** 2 for x in e["grad_pred"])),
    ]
    inputs = dict(input_param=[[2, 0, 3], [0, 1, 0]], output=[[50, 71], [1, 3]],
                  w1=[[2, 3], [0, 1], [1, 3]], w2=[[1, 2], [3, 4]])
    return Model(inputs, r, "E", "0.002", ["w1", "w2"])


def linear_2x():
    r = [
        ("h", lambda e, s: 2 * (e["W_hidden"] * e["x"])),
        ("y_m", lambda e, s: e["W_output"] * e["h"]),
        ("E", lambda e, s: sp.Rational(1, 2) * sum(x ** 2 for x in (e["y_t"] - e["y_m"]))),
    ]
    inputs = dict(x=[2, 3], y_t=[2, 3], W_hidden=[[1, 2], [2, 3], [1, 1], [3, 1]],
                  W_output=[[1, 1, 1, 1], [1, 0, 0, 1]])
    return Model(inputs, r, "E", "0.01", ["W_hidden", "W_output"])


def sigmoid_2_4_2():
    r = [
        ("z_hidden", lambda e, s: e["W_hidden"] * e["x"] + e["b_hidden"]),
        ("a_hidden", lambda e, s: e["z_hidden"].applyfunc(s)),
        ("z_output", lambda e, s: e["W_output"] * e["a_hidden"] + e["b_output"]),
        ("y", lambda e, s: e["z_output"].applyfunc(s)),
        ("E", lambda e, s: sp.Rational(1, 2) * sum(x ** 2 for x in (e["y_t"] - e["y"]))),
    ]
    inputs = dict(x=[2, 3], y_t=[2, 3], W_hidden=[[1, 2], [2, 3], [1, 1], [3, 1]],
                  b_hidden=["0.2"] * 4, W_output=[[1, 1, 1, 1], [1, 0, 0, 1]], b_output=["0.2"] * 2)
    return Model(inputs, r, "E", "0.01", ["W_hidden", "b_hidden", "W_output", "b_output"])


def one_two_one():
    r = [
        ("z1", lambda e, s: e["w1"] * e["x"] + e["b1"]),
        ("a1", lambda e, s: s(e["z1"])),
        ("z2", lambda e, s: e["w2"] * e["x"] + e["b2"]),
        ("a2", lambda e, s: s(e["z2"])),
        ("z_out", lambda e, s: e["v1"] * e["a1"] + e["v2"] * e["a2"] + e["c"]),
        ("a_out", lambda e, s: s(e["z_out"])),
        ("L", lambda e, s: sp.Rational(1, 2) * (e["a_out"] - e["y"]) ** 2),
    ]
    inputs = {n: None for n in ("x", "y", "w1", "b1", "w2", "b2", "v1", "v2", "c")}
    return Model(inputs, r, "L", None, ["w1", "b1", "w2", "b2", "v1", "v2", "c"])


MODELS = {"house-price": house_price, "alice": alice, "two-two-two": two_two_two,
          "matrix-linear": matrix_linear, "linear-2x": linear_2x, "sigmoid-2-4-2": sigmoid_2_4_2,
          "one-two-one": one_two_one}


# ---------------------------------------------------------------- evaluating claims independently
class Evaluator:
    """Values of quantity trees in a Model at a point (dict symbol → Rational)."""

    def __init__(self, model: Model, point: dict, sig=S, rule=None):
        self.m, self.point, self.sig, self.rule = model, point, sig, rule
        self._step1 = None

    def value(self, name, step=0):
        if step == 0:
            if name in self.m.syms:
                return _xreplace(self.m.syms[name], self.point)
            return _xreplace(self.m.expr(name, self.sig), self.point)
        if self._step1 is None:
            self._step1 = self.m.step1(self.point, self.sig, self.rule)
        sym = self.m.syms.get(name)
        if sym is not None:
            return _xreplace(sym, self._step1)
        return _xreplace(self.m.expr(name, S), self._step1)

    def ev(self, node):
        if isinstance(node, ex.Num):
            return sp.Rational(node.value.numerator, node.value.denominator)
        if isinstance(node, ex.Name):
            return self.value(node.id)
        if isinstance(node, ex.AtStep):
            return self.value(node.name, node.step)
        if isinstance(node, ex.Deriv):
            return _xreplace(self.m.deriv(node.of, node.wrt, self.sig), self.point)
        if isinstance(node, ex.Neg):
            return -self.ev(node.operand)
        if isinstance(node, ex.Bin):
            a, b = self.ev(node.left), self.ev(node.right)
            ma, mb = isinstance(a, sp.MatrixBase), isinstance(b, sp.MatrixBase)
            if node.op == "@":
                if not (ma and mb) or a.shape[1] != b.shape[0]:
                    raise Undefined("matrix product of incompatible shapes")
                return a * b
            if node.op == "^":
                return a.applyfunc(lambda x: x ** b) if ma else a ** b
            f = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
                 "/": lambda x, y: x / y}[node.op]
            if ma and mb:
                if a.shape != b.shape:
                    raise Undefined("elementwise operation on different shapes")
                return sp.Matrix(a.shape[0], a.shape[1], [f(x, y) for x, y in zip(a, b)])
            if ma:
                return a.applyfunc(lambda x: f(x, b))
            if mb:
                return b.applyfunc(lambda y: f(a, y))
            return f(a, b)
        if isinstance(node, ex.Call):
            v = self.ev(node.args[0])
            fn = node.fn
            if fn == "sigmoid":
                return _ew(S)(v)
            if fn in ("exp", "log", "sqrt", "tanh"):
                return _ew(getattr(sp, fn))(v)
            if fn == "transpose":
                return v.T if isinstance(v, sp.MatrixBase) else v
            if fn == "sum":
                return sum(v) if isinstance(v, sp.MatrixBase) else v
            if fn == "norm2":
                rows = v.tolist()
                with mpmath.workdps(80):
                    m = mpmath.matrix([[mpmath.mpf(str(sp.N(x, 90))) for x in r] for r in rows])
                    return sp.Float(str(max(mpmath.svd_r(m, compute_uv=False))), 80)
            if fn == "frobenius":
                return sp.sqrt(sum(x ** 2 for x in v))
        raise AssertionError(node)

    def flat(self, node) -> list:
        v = self.ev(node)
        return [numeric(x) for x in (list(v) if isinstance(v, sp.MatrixBase) else [v])]


def referenced_symbols(model: Model, tree) -> set:
    out = set()
    for n in ex.names_in(tree):
        v = model.syms.get(n)
        if v is None:
            v = model.expr(n)
        out |= set().union(*[x.free_symbols for x in (list(v) if isinstance(v, sp.MatrixBase) else [v])])
    if _has_step(tree):
        out |= set(model.all_input_symbols())
    return out


def _has_step(t) -> bool:
    if isinstance(t, ex.AtStep):
        return True
    if isinstance(t, ex.Neg):
        return _has_step(t.operand)
    if isinstance(t, ex.Bin):
        return _has_step(t.left) or _has_step(t.right)
    if isinstance(t, ex.Call):
        return any(_has_step(a) for a in t.args)
    return False


# ---------------------------------------------------------------- stated numbers, read here
def quantum(text: str) -> tuple[Fraction, int]:
    """(value of the last stated digit, significant digits) of a claimed number, read here."""
    t = text.strip()
    m = re.fullmatch(r"-?(\d*)(?:\.(\d*))?", t)
    assert m, t
    ip, fp = m.group(1), m.group(2)
    if fp is not None:
        return Fraction(1, 10 ** len(fp)), max(1, len((ip + fp).lstrip("0")))
    core = ip.lstrip("0")
    zeros = len(core) - len(core.rstrip("0")) if core else 0
    return Fraction(10) ** zeros, max(1, len(core.rstrip("0")))


def rounds_to(c: Fraction, t: Fraction, q: Fraction) -> bool:
    return abs(c - t) <= q / 2


def cut(t: Fraction, q: Fraction) -> Fraction:
    k = int(abs(t) / q)
    return (k if t >= 0 else -k) * q


def reproduces(c: Fraction, alt: Fraction, q: Fraction, n: int) -> bool:
    return rounds_to(c, alt, q) or c == cut(alt, q) or (n >= 6 and abs(c - alt) <= 3 * q / 2)


def flat_strings(v) -> list[str]:
    if isinstance(v, list):
        return [x for row in v for x in (row if isinstance(row, list) else [row])]
    return [v]


def close(a: Fraction, b: Fraction, rel=Fraction(1, 10 ** 40)) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), Fraction(1, 10 ** 60))


def literal_digits(text: str) -> int | None:
    ns = [quantum(m)[1] for m in re.findall(r"\d+\.\d+", text)]
    return max(ns) if ns else None


# ---------------------------------------------------------------- the built-in claims files
def _parse_formula(claim: dict, spec, graph):
    if "expr" in claim:
        return ex.parse_quantity(claim["expr"], lambda n: n in graph.quantities)
    return parse_latex(claim["latex"], spec, graph)


def _points(model: Model, tree, k=4):
    refs = referenced_symbols(model, tree)
    out = []
    for i in range(k):
        rng = random.Random(f"independent|{i}")
        p = model.point(refs, rng)
        if model.lr is None:
            p["lr"] = sp.Rational(rng.randint(1, 9), 10)
        out.append(p)
    return out


@pytest.mark.parametrize("pid", sorted(MODELS))
def test_every_builtin_claim_against_an_independent_model(pid):
    from derive.graph import build
    model = MODELS[pid]()
    path = PROBLEMS / f"{pid}.claims.toml"
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    spec = load_spec(doc["spec"])
    graph = build(spec)
    cf, results = check_file(str(path))
    assert len(results) == len(doc["claim"])
    given = Evaluator(model, model.given)
    by_index = {r.claim.index: r for r in results}
    for i, (raw, r) in enumerate(zip(doc["claim"], results), 1):
        of = ex.parse_quantity(raw["of"], lambda n: n in graph.quantities)
        where = f"{pid} claim[{i}] {raw['of']}"
        if "value" in raw or ("expr" in raw and not ex.names_in(_parse_formula(raw, spec, graph))):
            _check_value_claim(model, given, raw, r, of, spec, graph, by_index, where)
        else:
            _check_formula_claim(model, raw, r, of, spec, graph, where)


def _check_value_claim(model, given, raw, r, of, spec, graph, by_index, where):
    T = given.flat(of)
    if "value" in raw:
        texts = flat_strings(raw["value"])
        stated = [(Fraction(Decimal(t)), *quantum(t)) for t in texts]
    else:                         # a constant expression: an exact claim
        tree = _parse_formula(raw, spec, graph)
        vals = given.flat(tree)
        n = literal_digits(raw["expr"])
        if all(close(v, t) for v, t in zip(vals, T)):
            assert r.verdict == "correct", where
            return
        assert r.verdict != "correct", where
        if r.verdict == "rounding":
            assert n is not None and n >= 2, where
            assert all(abs(v - t) <= 5 * Fraction(10) ** (1 - n) * abs(t) for v, t in zip(vals, T)), where
        else:
            assert r.verdict == "wrong", where
            _check_diagnosis(model, given, raw, r, of, T, [(v, Fraction(0), 99) for v in vals], by_index, where)
        return
    assert len(stated) == len(T), where
    correct = [rounds_to(c, t, q) for (c, q, n), t in zip(stated, T)]
    # the true value to the claim's digits, as the checker prints it
    for text, (c, q, n), t in zip(flat_strings(r.true), stated, T):
        shown = Fraction(Decimal(text))
        if t != 0 and abs(t) < q:
            assert abs(shown - t) <= abs(t) * Fraction(10) ** (1 - n), where
        else:
            assert rounds_to(shown, t, q) and shown % q == 0, where
    if all(correct):
        assert r.verdict == "correct", where
        return
    assert r.verdict != "correct", where
    for ok, (c, q, n), t, v in zip(correct, stated, T, r.entries or (r.verdict,)):
        if ok:
            continue
        if v == "truncated":
            assert c == cut(t, q) and not rounds_to(c, t, q), where
        elif v == "rounding":
            assert (n >= 6 and abs(c - t) <= 3 * q / 2) or abs(c - t) <= 5 * Fraction(10) ** (1 - n) * abs(t), where
        else:
            assert v == "wrong", where
            assert c != cut(t, q) and not (n >= 6 and abs(c - t) <= 3 * q / 2), where
    if r.verdict == "wrong":
        _check_diagnosis(model, given, raw, r, of, T, stated, by_index, where)


def _check_diagnosis(model, given, raw, r, of, T, stated, by_index, where):
    wrong = [i for i, ((c, q, n), t) in enumerate(zip(stated, T))
             if not rounds_to(c, t, q) and c != cut(t, q) and not (n >= 6 and abs(c - t) <= 3 * q / 2)] \
        if stated[0][1] else list(range(len(T)))

    def explained(alt):
        for i in wrong:
            c, q, n = stated[i]
            if q == 0:
                if not close(alt[i], c, Fraction(1, 10 ** 20)):
                    return False
            elif not reproduces(c, alt[i], q, n):
                return False
        return True

    d = r.diagnosis
    if d == "factor-2":
        assert explained([2 * t for t in T]) or explained([t / 2 for t in T]), where
    elif d == "sign-flip":
        flipped = explained([-t for t in T])
        if not flipped and isinstance(of, ex.Name) and of.id in model.terms:
            terms = [numeric(x.xreplace(model.given)) for x in model.terms[of.id](model.compose()[0])]
            flipped = any(explained([T[0] - 2 * x]) for x in terms)
        assert flipped, where
    elif d == "used-preactivation":
        alt = Evaluator(model, model.given, sig=SPre).flat(of)
        assert explained(alt), where
    elif d == "missing-activation-derivative":
        # the only activation that can be dropped here is linear-2x's f(u) = 2u: half the gradient
        alt = T if not isinstance(of, ex.AtStep) else None
        if isinstance(of, ex.AtStep):
            p = model.syms[of.name]
            g = given.flat(ex.Deriv(model.loss, of.name))
            alt = [numeric(x) - Fraction(model.lr.p, model.lr.q) * gi / 2
                   for x, gi in zip(list(_xreplace(p, model.given)), g)]
            assert explained(alt), where
        else:
            assert explained([t / 2 for t in T]), where
    elif d == "update-missing-weight":
        assert isinstance(of, ex.AtStep), where
        g = given.flat(ex.Deriv(model.loss, of.name))
        lr = Fraction(model.lr.p, model.lr.q)
        assert explained([lr * x for x in g]) or explained([-lr * x for x in g]), where
    elif d == "carried-forward":
        assert r.carries, where
        for k in r.carries:
            assert k < r.claim.index and by_index[k].verdict != "correct", where
    elif d == "arithmetic":
        assert not explained([2 * t for t in T]) and not explained([t / 2 for t in T]), where
        assert not explained([-t for t in T]), where
    else:
        raise AssertionError(f"{where}: unexpected diagnosis {d}")


def _check_formula_claim(model, raw, r, of, spec, graph, where):
    tree = _parse_formula(raw, spec, graph)
    equal = True
    for p in ([] if model.symbolic else [dict(model.given)]) + _points(model, tree):
        ev = Evaluator(model, p)
        try:
            f, t = ev.flat(tree), ev.flat(of)
        except (Undefined, sp.ShapeError):
            equal = False
            break
        if len(f) == 1 and len(t) > 1:
            f = f * len(t)
        if len(f) != len(t) or not all(close(a, b, Fraction(1, 10 ** 30)) for a, b in zip(f, t)):
            equal = False
            break
    assert r.verdict == ("correct" if equal else "wrong"), where
    if r.diagnosis == "used-preactivation":
        for p in _points(model, tree):
            f = Evaluator(model, p).flat(tree)
            alt = Evaluator(model, p, sig=SPre).flat(of)
            assert all(close(a, b, Fraction(1, 10 ** 30)) for a, b in zip(f, alt)), where
    elif r.diagnosis == "update-missing-weight":
        for p in _points(model, tree):
            ev = Evaluator(model, p, rule=lambda p_, lr_, g_: lr_ * g_)
            assert all(close(a, b, Fraction(1, 10 ** 30)) for a, b in zip(Evaluator(model, p).flat(tree),
                                                                          ev.flat(of))), where
    elif r.diagnosis == "missing-activation-derivative":
        for p in _points(model, tree):
            ev = Evaluator(model, p)
            f = ev.flat(tree)
            if isinstance(of, ex.AtStep):
                half = Evaluator(model, p, rule=lambda p_, lr_, g_: p_ - lr_ * g_ / 2).flat(of)
            else:
                half = [x / 2 for x in ev.flat(of)]
            assert all(close(a, b, Fraction(1, 10 ** 30)) for a, b in zip(f, half)), where
    elif r.diagnosis is not None:
        raise AssertionError(f"{where}: diagnosis {r.diagnosis} not verified here")


# ---------------------------------------------------------------- the issue's examples
def _result(pid, of, kind=None, value=None, contains=None):
    _cf, results = check_file(str(PROBLEMS / f"{pid}.claims.toml"))
    for r in results:
        if r.claim.of == of and (kind is None or r.claim.kind == kind) and \
                (value is None or r.claimed == value) and (contains is None or contains in str(r.claim.raw)):
            return r
    raise AssertionError(f"no claim {of} in {pid}")


def test_issue_examples():
    m = alice()
    g = Evaluator(m, m.given)
    true = g.flat(ex.Deriv("L", "w1"))[0]
    # Victor Zhou: 0.0214 is −0.952 · 0.249 · −0.0904 rounded, the true value rounds to 0.0215
    assert not rounds_to(Fraction("0.0214"), true, Fraction(1, 10000))
    assert rounds_to(Fraction("0.0214"), Fraction("-0.952") * Fraction("0.249") * Fraction("-0.0904"),
                     Fraction(1, 10000))
    assert _result("alice", "dL/dw1", "value", "0.0214").verdict == "rounding"
    # 003: E_o1 halved twice
    r = _result("two-two-two", "E_o1", "value", "0.01545028")
    assert (r.verdict, r.diagnosis) == ("wrong", "factor-2")
    # 000: z(1 − z)·w7 for dŷ/dh1
    r = _result("house-price", "dy_hat/dh1", "latex", contains="(1 - (w_7 h_1")
    assert (r.verdict, r.diagnosis) == ("wrong", "used-preactivation")
    # 004: pred restated with 54
    r = _result("matrix-linear", "pred", "value", [["54", "74"], ["3", "4"]])
    assert (r.verdict, r.diagnosis) == ("wrong", "arithmetic")
    # 0.9998 for σ(9.2) = 0.99989897…: truncated
    r = _result("sigmoid-2-4-2", "sigmoid(9.2)", "value", "0.9998")
    assert r.verdict == "truncated"


# ---------------------------------------------------------------- synthetic: every verdict and diagnosis
MAZUR_SPEC = """
title = "Mazur 2-2-2"
[data]
i1 = 0.05
i2 = 0.10
target_o1 = 0.01
target_o2 = 0.99
[parameters]
w1 = 0.15
w2 = 0.20
w3 = 0.25
w4 = 0.30
w5 = 0.40
w6 = 0.45
w7 = 0.50
w8 = 0.55
b1 = 0.35
b2 = 0.60
[forward]
net_h1 = "w1*i1 + w2*i2 + b1"
out_h1 = "sigmoid(net_h1)"
net_h2 = "w3*i1 + w4*i2 + b1"
out_h2 = "sigmoid(net_h2)"
net_o1 = "w5*out_h1 + w6*out_h2 + b2"
out_o1 = "sigmoid(net_o1)"
net_o2 = "w7*out_h1 + w8*out_h2 + b2"
out_o2 = "sigmoid(net_o2)"
E_o1 = "1/2*(target_o1 - out_o1)^2"
E_o2 = "1/2*(target_o2 - out_o2)^2"
E_total = "E_o1 + E_o2"
[train]
learning_rate = 0.5
update = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"]
[latex]
net_o1 = "net_{o_1}"
out_o1 = "out_{o_1}"
E_total = "E_{total}"
"""


def mazur_model():
    r = TWO_TWO_TWO_RULES
    inputs = dict(i1="0.05", i2="0.10", target_o1="0.01", target_o2="0.99", w1="0.15", w2="0.20",
                  w3="0.25", w4="0.30", w5="0.40", w6="0.45", w7="0.50", w8="0.55", b1="0.35", b2="0.60")
    return Model(inputs, r, "E_total", "0.5", [f"w{i}" for i in range(1, 9)])


def dec(x: Fraction, places: int, mode="round") -> str:
    """x written with `places` decimals, rounded half away from zero (or cut off)."""
    q = Fraction(1, 10 ** places)
    k = abs(x) / q
    n = int(k) + (1 if mode == "round" and k - int(k) >= Fraction(1, 2) else 0)
    s = f"{n:0{places + 1}d}"
    text = s[:-places] + "." + s[-places:]
    return ("-" if x < 0 and n else "") + text


def sig_round(x: Fraction, n: int) -> Fraction:
    if x == 0:
        return x
    e = len(str(int(abs(x)))) - 1 if abs(x) >= 1 else -len(str(int(1 / abs(x))))
    while abs(x) >= Fraction(10) ** (e + 1):
        e += 1
    while abs(x) < Fraction(10) ** e:
        e -= 1
    q = Fraction(10) ** (e - n + 1)
    return (int(abs(x) / q + Fraction(1, 2))) * q * (1 if x > 0 else -1)


def sig_str(x: Fraction, n: int) -> str:
    """x (already rounded to n significant digits) written with exactly n significant digits."""
    e = 0
    while abs(x) >= Fraction(10) ** (e + 1):
        e += 1
    while abs(x) < Fraction(10) ** e:
        e -= 1
    return dec(x, max(0, n - 1 - e))


def hand_dw5(n: int) -> Fraction:
    """∂E/∂w5 of the Mazur net worked by hand at n significant digits."""
    r = lambda x: sig_round(x, n)  # noqa: E731
    with mpmath.workdps(60):
        sig = lambda x: Fraction(str(1 / (1 + mpmath.exp(-mpmath.mpf(x.numerator) / x.denominator))))  # noqa: E731
        i1, i2 = Fraction("0.05"), Fraction("0.10")
        out_h1 = r(sig(r(Fraction("0.15") * i1 + Fraction("0.20") * i2 + Fraction("0.35"))))
        out_h2 = r(sig(r(Fraction("0.25") * i1 + Fraction("0.30") * i2 + Fraction("0.35"))))
        out_o1 = r(sig(r(Fraction("0.40") * out_h1 + Fraction("0.45") * out_h2 + Fraction("0.60"))))
    return r(out_o1 - Fraction("0.01")) * r(out_o1 * (1 - out_o1)) * out_h1


def mazur_claims() -> tuple[str, dict]:
    """A claims file with one claim per verdict and diagnosis, each value computed here from the
    independent model with the mistake applied; returns (TOML text, {index: expected})."""
    m = mazur_model()
    g = Evaluator(m, m.given)
    v = lambda text: g.flat(ex.parse_quantity(text, lambda n: n in m.names()))[0]  # noqa: E731
    out_o1, out_o2, net_o1 = v("out_o1"), v("out_o2"), v("net_o1")
    out_h1, out_h2 = v("out_h1"), v("out_h2")
    t1, t2 = Fraction("0.01"), Fraction("0.99")
    w = {f"w{i}": Fraction(x) for i, x in zip(range(1, 9), ("0.15", "0.20", "0.25", "0.30", "0.40", "0.45",
                                                             "0.50", "0.55"))}
    lr = Fraction(1, 2)
    d_o1 = (out_o1 - t1) * out_o1 * (1 - out_o1)          # δ of o1, by hand
    d_o2 = (out_o2 - t2) * out_o2 * (1 - out_o2)
    g5, g6, g7 = d_o1 * out_h1, d_o1 * out_h2, d_o2 * out_h1
    dh1 = (d_o1 * w["w5"] + d_o2 * w["w7"]) * out_h1 * (1 - out_h1)
    g1 = dh1 * Fraction("0.05")
    claims, expect = [], {}

    def add(of, expected, **kw):
        claims.append((of, kw))
        expect[len(claims)] = expected

    # correct, to 8 decimals; off by one unit in the 9th digit (rounding); cut off (truncated)
    add("out_o1", ("correct", None), value=dec(out_o1, 8))
    add("out_o1", ("rounding", None), value=dec(out_o1 + Fraction(1, 10 ** 9), 9))
    # e^(−net_h1) with net_h1 = 0.3775 exact: no rounding of intermediates can change it
    e1 = v("exp(-net_h1)")
    places = next(p for p in (4, 5) if dec(e1, p) != dec(e1, p, "cut"))
    add("exp(-net_h1)", ("truncated", None), value=dec(e1, places, "cut"))
    # rounding: a hand calculation at n significant digits (every forward value and every local
    # derivative rounded as soon as it is computed), the chain multiplied, the result rounded
    for n in (3, 4, 5):
        alt = sig_round(hand_dw5(n), n)
        if alt != sig_round(g5, n):
            break
    else:
        raise AssertionError("no digit count shows a rounding effect")
    add("dE_total/dw5", ("rounding", None), value=sig_str(alt, n))
    # mistakes
    add("dout_o1/dnet_o1", ("wrong", "used-preactivation"), value=dec(net_o1 * (1 - net_o1), 9))
    add("dE_total/dw6", ("wrong", "missing-activation-derivative"), value=dec((out_o1 - t1) * out_h2, 9))
    add("dE_total/dout_o1", ("wrong", "sign-flip"), value=dec(t1 - out_o1, 9))
    add("E_o1", ("wrong", "factor-2"), value=dec((t1 - out_o1) ** 2, 9))
    add("w5@1", ("wrong", "update-sign"), value=dec(w["w5"] + lr * g5, 9))
    add("w6@1", ("wrong", "update-missing-weight"), value=dec(lr * g6, 9))
    add("dE_total/dw1", ("correct", None), value=dec(g1, 12))     # δ_h1·i1, by hand
    add("dE_total/dw1", ("wrong", "dropped-path"),
        value=dec(d_o1 * w["w5"] * out_h1 * (1 - out_h1) * Fraction("0.05"), 12))
    w5n, w7n = w["w5"] - lr * g5, w["w7"] - lr * g7
    add("dE_total/dw1", ("wrong", "used-updated-weights"),
        value=dec((d_o1 * w5n + d_o2 * w7n) * out_h1 * (1 - out_h1) * Fraction("0.05"), 12))
    add("E_o1", ("wrong", "factor-2"), value=dec((t1 - out_o1) ** 2, 9))      # an author's slip …
    e_o2 = Fraction(1, 2) * (t2 - out_o2) ** 2
    add("E_total", ("wrong", "carried-forward"), value=dec((t1 - out_o1) ** 2 + e_o2, 9))  # … carried on
    add("out_h1", ("wrong", "arithmetic"), value="0.12345")
    # formulas
    add("dout_o1/dnet_o1", ("correct", None), expr="out_o1*(1 - out_o1)")
    add("dout_o1/dnet_o1", ("correct", None), latex=r"\sigma(net_{o_1})(1-\sigma(net_{o_1}))")
    add("dout_o1/dnet_o1", ("wrong", "used-preactivation"), expr="net_o1*(1 - net_o1)")
    add("dE_total/dout_o1", ("wrong", "sign-flip"), expr="target_o1 - out_o1")
    add("E_o1", ("wrong", "factor-2"), expr="(target_o1 - out_o1)^2")
    add("w5@1", ("wrong", "update-sign"), latex=r"w_5 + \eta \frac{\partial E_{total}}{\partial w_5}")
    add("w5@1", ("wrong", "update-missing-weight"), expr="0.5*dE_total/dw5")
    add("dE_total/dout_h1", ("wrong", "dropped-path"), expr="dE_total/dnet_o1 * w5")
    add("dE_total/dw5", ("correct", None), latex=r"(out_{o_1} - target_o1) \cdot out_{o_1}(1 - out_{o_1}) \cdot out_h1")
    # constant expressions: exact
    add("net_h1", ("correct", None), expr="0.15*0.05 + 0.2*0.1 + 0.35")
    add("net_h1", ("wrong", "sign-flip"), expr="0.15*0.05 - 0.2*0.1 + 0.35")
    # a matrix-free claim of an expression quantity
    add("w5*out_h1", ("correct", None), value=dec(w["w5"] * out_h1, 10))
    lines = ['spec = "mazur.toml"', ""]
    for of, kw in claims:
        lines.append("[[claim]]")
        lines.append(f'of = "{of}"')
        for k, val in kw.items():
            lines.append(f"{k} = '{val}'" if k == "latex" else f'{k} = "{val}"')
        lines.append("")
    return "\n".join(lines), expect


def test_synthetic_claims_exercise_every_verdict_and_diagnosis(tmp_path):
    text, expect = mazur_claims()
    (tmp_path / "mazur.toml").write_text(MAZUR_SPEC, encoding="utf-8")
    path = tmp_path / "claims.toml"
    path.write_text(text, encoding="utf-8")
    _cf, results = check_file(str(path))
    got = {r.claim.index: (r.verdict, r.diagnosis) for r in results}
    assert got == expect
    seen_verdicts = {v for v, _ in expect.values()}
    seen_diagnoses = {d for _, d in expect.values() if d}
    assert seen_verdicts == {"correct", "rounding", "truncated", "wrong"}
    assert seen_diagnoses == {"used-preactivation", "missing-activation-derivative", "sign-flip", "factor-2",
                              "update-sign", "update-missing-weight", "dropped-path",
                              "used-updated-weights", "carried-forward", "arithmetic"}
    carried = next(r for r in results if r.diagnosis == "carried-forward")
    slip = next(r for r in results if r.claim.index == carried.claim.index - 1)
    assert carried.carries == (slip.claim.index,)


# ---------------------------------------------------------------- bad input: exit 2, one line naming the claim
BAD = [
    ('spec = "two-two-two"\n[[claim]\nof = "x"\n', r"^derive: .*claims\.toml: not valid TOML"),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nvalue = "0.7"\n[[claim]]\nof = "E_total"\n'
     'value = "1"\n[[claim]]\nof = "dE_total/dw9"\nvalue = "1"\n',
     r'claims\.toml: claim\[3\] \(of = "dE_total/dw9"\): unknown name \'w9\'$'),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o9"\nvalue = "1"\n',
     r'claim\[1\] \(of = "out_o9"\): unknown name \'out_o9\''),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nnote = "no value"\n',
     r'claim\[1\] \(of = "out_o1"\): a claim needs exactly one of value, expr, latex'),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nvalue = "1"\nexpr = "out_o1"\n',
     r"claim\[1\].*exactly one of value, expr, latex"),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nlatex = \'\\sigma(net_{o1}\'\n',
     r'claim\[1\] \(of = "out_o1"\): cannot read latex'),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nlatex = \'\\input{/etc/passwd}\'\n',
     r"claim\[1\].*unsupported LaTeX command \\input"),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nexpr = "__import__(\'os\')"\n', r"claim\[1\].*cannot read expr"),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nexpr = "out_o1 + w99"\n', r"claim\[1\].*unknown name 'w99'"),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nvalue = "abc"\n', r"claim\[1\].*value: 'abc' is not a number"),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nvalue = ["1", "2"]\n', r"claim\[1\].*value: a list"),
    ('spec = "no-such-problem"\n[[claim]]\nof = "x"\nvalue = "1"\n', r"spec: no such spec file"),
    ('spec = "two-two-two"\n[[claim]]\nof = "out_o1"\nvalue = "1"\ncolour = "red"\n', r"claim\[1\].*unknown key 'colour'"),
    ('spec = "one-two-one"\n[[claim]]\nof = "a1"\nvalue = "0.5"\n', r"claim\[1\].*symbolic"),
    ('spec = "two-two-two"\n', r"no \[\[claim\]\]"),
]


@pytest.mark.parametrize("text,pattern", BAD)
def test_bad_claims_files_exit_2_with_one_line(tmp_path, cli, text, pattern):
    p = tmp_path / "claims.toml"
    p.write_text(text, encoding="utf-8")
    proc = cli("check", p)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_unknown_name_message_is_exactly_as_documented(tmp_path):
    p = tmp_path / "claims.toml"
    p.write_text('spec = "two-two-two"\n[[claim]]\nof = "dE/dw9"\nvalue = "1"\n', encoding="utf-8")
    with pytest.raises(DeriveError) as e:
        load_claims(str(p))
    assert e.value.line() == f'{p}: claim[1] (of = "dE/dw9"): unknown name \'E\''


# ---------------------------------------------------------------- command line
def test_cli_json_and_exit_codes(tmp_path, cli):
    proc = cli("check", PROBLEMS / "two-two-two.claims.toml", "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert set(data["summary"]) == {"correct", "rounding", "truncated", "wrong"}
    assert sum(data["summary"].values()) == len(data["claims"])
    for c in data["claims"]:
        assert {"of", "claimed", "true", "verdict", "diagnosis", "message"} <= set(c)
    assert [c["index"] for c in data["claims"]] == list(range(1, len(data["claims"]) + 1))
    proc = cli("check", PROBLEMS / "one-two-one.claims.toml")
    assert proc.returncode == 0
    assert "6 claims: 6 correct" in proc.stdout.strip().splitlines()[-1]


def test_cli_text_table_summary_and_formats(tmp_path, cli):
    proc = cli("check", PROBLEMS / "alice.claims.toml", "--digits", "6")
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith(f"{len(tomllib.loads((PROBLEMS / 'alice.claims.toml').read_text())['claim'])} claims:")
    assert "true (6 digits)" in proc.stdout
    zh = cli("check", PROBLEMS / "alice.claims.toml", "--lang", "zh")
    assert "共" in zh.stdout.strip().splitlines()[-1]
    out = tmp_path / "report.md"
    proc = cli("check", PROBLEMS / "house-price.claims.toml", "--format", "md", "-o", out)
    assert proc.returncode == 1 and out.read_text(encoding="utf-8").startswith("# Errata")
    assert '<a id="claim-13"></a>' in out.read_text(encoding="utf-8")
    proc = cli("check", PROBLEMS / "house-price.claims.toml", "--format", "tex")
    assert proc.stdout.lstrip().startswith("\\documentclass") and "\\end{document}" in proc.stdout


def test_spec_path_relative_to_the_claims_file(tmp_path, cli):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mazur.toml").write_text(MAZUR_SPEC, encoding="utf-8")
    (tmp_path / "sub" / "c.toml").write_text('spec = "mazur.toml"\n[[claim]]\nof = "net_h1"\nvalue = "0.3775"\n',
                                             encoding="utf-8")
    proc = cli("check", "sub/c.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- errata
def test_write_errata_is_complete_deterministic_and_atomic(tmp_path, built):
    first = sorted(write_errata(tmp_path / "a"))
    # deterministic: the same bytes as the errata of `derive build` (the session's build, another process)
    second = sorted(str(built / "errata" / Path(p).name) for p in first)
    ids = sorted(p.name[:-len(".claims.toml")] for p in PROBLEMS.glob("*.claims.toml"))
    assert [Path(p).name for p in first] == sorted(f"{i}.{lang}{f}" for i in ids for f in ("md", "tex")
                                                   for lang in ("", "zh."))
    for a, b in zip(first, second):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    leftovers = [p for p in (tmp_path / "a" / "errata").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    md = (tmp_path / "a" / "errata" / "house-price.md").read_text(encoding="utf-8")
    tex = (tmp_path / "a" / "errata" / "house-price.tex").read_text(encoding="utf-8")
    _cf, results = check_file(str(PROBLEMS / "house-price.claims.toml"))
    for r in results:
        if r.verdict != "correct":
            assert f'<a id="claim-{r.claim.index}"></a>' in md
            assert f"\\label{{claim-{r.claim.index}}}" in tex
    assert "\\begin{aligned}" in md and "\\begin{align*}" in tex
    # user text is escaped in LaTeX: the notes' underscores and '#' never reach TeX raw
    assert "dh1/dw1" not in tex or "\\_" in tex
