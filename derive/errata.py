"""Errata: a checked claims file rendered for a reader (Markdown and LaTeX).

Takes the results of `derive.check` for one claims file; gives a document with a table of every
claim (what was claimed, the true value to the claim's digits, the verdict and the diagnosis) and,
for every claim that is not `correct`, a section with the explanation and — for `wrong` ones — the
corrected derivation: the definition or the chain rule in ∂-notation, each factor's formula, the
numbers, the value (formulas and numbers from `derive.printer` and the engine's correctly rounded
values).  Templates: `templates/errata/errata.md.j2` and `errata.tex.j2` (LaTeX delimiters
`\\BLOCK{…}`, `\\VAR{…}`, `\\#{…}`; StrictUndefined); prose in `templates/errata/strings.<lang>.toml`.
User text (notes, names, claimed numbers, the file name) is escaped (`derive.escape`); formulas
are re-printed from the parsed trees, never copied from the claims file.

Anchors, for links from the handouts: every claim's section is `claim-<index>` (Markdown
`<a id="claim-13"></a>`, LaTeX `\\label{claim-13}` and `\\hypertarget{claim-13}{}`), so a handout
links `errata/<id>.md#claim-13`.  `errata_documents` also gives the `ErrataStep`s (the claims that
are not correct) that `derive build` lists, with those links, at the end of each handout.

`write_errata(out_dir)` writes `<out_dir>/errata/<id>.md` and `.tex` (English) and `<id>.zh.md` and
`.zh.tex` (Chinese) for every built-in problem with a claims file, atomically (temporary file + os.replace) and deterministically (no dates; the
checker's random points are seeded).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from . import expr as ex
from . import printer as pr
from . import templating as tpl
from . import train
from .calculus import Calculus
from .check import Checker
from .claims import load_claims
from .formulas import chain_formula
from .report import summary, summary_line
from .verdicts import VERDICTS
from .errors import DeriveError
from .escape import CJK, md_code, md_text, tex_prose
from .files import write_atomic
from .matrixform import matrix_rules
from .spec import LANGS, builtin_ids, problems_dir


# ---------------------------------------------------------------- templates
def template_dir() -> Path:
    """templates/errata of a source checkout, else of the installed package."""
    return tpl.default_template_dir() / "errata"


def environment(fmt: str):
    """The sandboxed environment of the errata templates (templates/errata)."""
    return tpl.environment(fmt, [template_dir()], {"tex": tex_prose, "md": md_text, "code": md_code})


def strings(lang: str) -> dict:
    env = environment("md")
    try:
        return tpl.load_strings(env, f"strings.{lang}.toml")
    except DeriveError as e:
        raise DeriveError(f"cannot read the errata strings: {e.what}", file=e.file or str(template_dir())) from None


md_prose = md_text


# ---------------------------------------------------------------- LaTeX of claims and truths
class Tex:
    """LaTeX for one problem: display names, claim trees, numbers."""

    def __init__(self, problem, solution=None):
        self.problem = problem
        self.graph = problem.graph
        self.spec = problem.spec
        self.names = pr.display_names(self.spec, self.graph) if pr else {n: n for n in self.graph.quantities}
        self.loss = self.names[self.graph.loss]
        self.solution = solution

    def name(self, n: str, step: int = 0) -> str:
        d = self.names.get(n, n)
        return pr.with_step(d, step) if (pr and step) else d

    def deriv(self, of: str, wrt: str, step: int = 0) -> str:
        a, b = self.name(of), self.name(wrt, step)
        return pr.deriv(a, b) if pr else f"\\frac{{\\partial {a}}}{{\\partial {b}}}"

    def tree(self, node, prec: int = 0) -> str:
        """A claim's tree (Num, Name, Neg, Bin, Call, Deriv, AtStep) as LaTeX (`printer.ClaimPrinter`)."""
        return pr.ClaimPrinter({"names": self.names})._print(node, prec=prec)

    def sympy(self, expr, values=None) -> str:
        if pr:
            return pr.latex(pr.tidy(expr) if values is None else expr, self.names, values)
        return sp.latex(expr)

    def chain(self, node, values=None) -> str:
        """A chain formula (check.chain_formula) as a product in textbook order."""
        if isinstance(node, tuple) and node[0] == "prod":
            items = [it for it in node[1] if not (not isinstance(it, tuple) and it == 1)]
            if not items:
                return "1"
            parts = []
            for it in items:
                t = self.chain(it, values)
                if (isinstance(it, tuple) and it[0] == "sum" and len(it[1]) > 1) or \
                        (not isinstance(it, tuple) and pr and pr.needs_parens_in_product(it)):
                    t = f"\\left({t}\\right)"
                parts.append(t)
            return " \\cdot ".join(parts)
        if isinstance(node, tuple) and node[0] == "sum":
            return " + ".join(self.chain(t, values) for t in node[1])
        return self.sympy(node, values)

    def number(self, text: str, paren: bool = False) -> str:
        return pr.number(text, paren) if pr else text

    def shaped(self, nested) -> str:
        """A value as the checker shows it (a string or nested lists of strings) in LaTeX."""
        if isinstance(nested, str):
            return self.number(nested)
        rows = nested if nested and isinstance(nested[0], list) else [[x] for x in nested]
        cells = [[self.number(str(x)) for x in row] for row in rows]
        return pr.pmatrix(cells)


# ---------------------------------------------------------------- corrected derivations
def derivation(tex: Tex, checker: Checker, claim) -> list:
    """Display lines (LaTeX, for an aligned environment) of the true derivation of a claim's quantity."""
    problem, g = tex.problem, tex.graph
    tree = claim.of_tree
    sol = tex.solution
    digits = checker.digits
    try:
        answer = problem.eval(claim.of, digits=digits)[0]
    except DeriveError:
        answer = None
    if answer is None or answer.value is None:
        return []
    value = tex.shaped(answer.value.nested()) if answer.value.shape != () else \
        tex.number(answer.value.values[0].text)
    approx = "=" if all(v.is_exact for v in answer.value.values) else "\\approx"

    if isinstance(tree, ex.Name) and g.quantities[tree.id].kind == "forward":
        q = g.quantities[tree.id]
        lhs = tex.name(q.name)
        lines = [f"{lhs} &= {_tree_printer(tex).tex(q.tree)}"]
        if q.is_scalar and sol is not None:
            numeric = _tree_printer(tex, lambda n: _value_tex(tex, n)).tex(q.tree)
            lines.append(f"&= {numeric}")
        lines.append(f"&{approx} {value}")
        return lines

    if isinstance(tree, ex.Deriv) and tree.step == 0:
        A, B = g.quantities[tree.of], g.quantities[tree.wrt]
        lhs = tex.deriv(tree.of, tree.wrt)
        if A.is_scalar and B.is_scalar:
            a, b = A.entries[0], B.entries[0]
            calc = Calculus(g, a)
            ch = calc.chain(b)
            factors = [f for f in ch.factors]
            head_sym = [] if ch.head == a else [tex.deriv(tree.of, ch.head.quantity)]
            syms = head_sym + [tex.deriv(f.of.quantity, f.wrt.quantity) for f in factors]
            lines = [f"{lhs} &= " + (" \\cdot ".join(syms) if syms else "1")]
            formula = chain_formula(g, a, b)
            if formula is not None and len(factors) + len(head_sym) > 0:
                lines.append(f"&= {tex.chain(formula)}")
            if sol is not None:
                nums = []
                if ch.head != a:
                    head_val = problem.eval(f"d{tree.of}/d{ch.head.quantity}", digits=digits)[0]
                    nums.append(tex.number(head_val.values[0].text, paren=True))
                for f in factors:
                    nums.append(tex.number(sol.local(f).text, paren=True))
                if nums:
                    lines.append("&= " + " \\cdot ".join(nums))
            lines.append(f"&{approx} {value}")
            return lines
        if A.is_scalar and A.name == g.loss and pr is not None:
            for rule in matrix_rules(g):
                if rule.wrt == B.name:
                    mp = pr.MatrixPrinter(tex.names, tex.loss)
                    body = " + ".join(mp.tex(t.expr) for t in rule.terms)
                    return [f"{lhs} &= {body}", f"&{approx} {value}"]
        return [f"{lhs} &{approx} {value}"]

    if isinstance(tree, ex.AtStep) and tree.name in problem.spec.update:
        k = tree.step
        p = tree.name
        eta = pr.fraction(problem.spec.learning_rate) if (pr and problem.spec.learning_rate is not None) else "\\eta"
        lhs = tex.name(p, k)
        prev = tex.name(p, k - 1)
        grad = tex.deriv(g.loss, p, k - 1)
        lines = [f"{lhs} &= {prev} - {eta} \\cdot {grad}"]
        try:
            pv = problem.eval(p if k == 1 else f"{p}@{k - 1}", digits=digits)[0]
            gv = problem.eval(f"d{g.loss}/d{p}" + (f"@{k - 1}" if k > 1 else ""), digits=digits)[0]
            if pv.value.shape == ():
                lines.append(f"&= {tex.number(pv.values[0].text)} - {eta} \\cdot "
                             f"{tex.number(gv.values[0].text, paren=True)}")
            else:
                lines.append(f"&= {tex.shaped(pv.value.nested())} - {eta} \\cdot {tex.shaped(gv.value.nested())}")
        except DeriveError:
            pass
        lines.append(f"&{approx} {value}")
        return lines

    return [f"{tex.tree(tree)} &{approx} {value}"]


def _tree_printer(tex: Tex, subst=None):
    shapes = lambda n: tex.graph.quantities[n].shape if n in tex.graph.quantities else ()  # noqa: E731
    return pr.TreePrinter(tex.names, shapes, subst=subst)


def _value_tex(tex: Tex, name: str):
    q = tex.graph.quantities[name]
    if not q.is_scalar or tex.solution is None:
        return None
    return tex.number(tex.solution.value(q.entries[0]).text, paren=True)


# ---------------------------------------------------------------- the context
@dataclass(frozen=True)
class Row:
    index: int
    anchor: str
    of: str                 # the quantity as written (plain text)
    of_tex: str
    kind: str
    claimed: str            # plain text
    claimed_tex: str        # LaTeX (formulas) or "" (values: use claimed)
    true: str               # plain text (value to the claim's digits, or the correct formula)
    true_tex: str
    true_digits: str
    verdict: str
    diagnosis: str
    message: str
    note: str
    derivation: tuple       # LaTeX lines (wrong claims)
    carries: tuple


def _plain(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, list):
        if x and isinstance(x[0], list):
            return "[" + ", ".join("[" + ", ".join(map(str, r)) + "]" for r in x) + "]"
        return "[" + ", ".join(map(str, x)) + "]"
    return str(x)


def build_rows(checker: Checker, results: list) -> list:
    problem = checker.problem
    sol = None
    if not problem.is_symbolic:
        sol = problem.solve(digits=checker.digits)
    tex = Tex(problem, sol)
    rows = []
    for r in results:
        c = r.claim
        try:
            of_tex = tex.tree(c.of_tree)
        except (TypeError, KeyError):
            of_tex = ""
        claimed_tex = ""
        if c.kind != "value" and c.tree is not None:
            claimed_tex = tex.tree(c.tree)
        true_tex = ""
        if c.kind != "value" and not c.constant:
            true_tex = _true_formula_tex(tex, c)
        lines: tuple = ()
        if r.verdict == "wrong" and not problem.is_symbolic and c.of_error is None:
            try:
                lines = tuple(derivation(tex, checker, c))
            except (DeriveError, KeyError, TypeError):
                lines = ()
        rows.append(Row(c.index, f"claim-{c.index}", c.of, of_tex, c.kind, _plain(r.claimed), claimed_tex,
                        _plain(r.true), true_tex, _plain(r.true_digits), r.verdict, r.diagnosis or "",
                        r.message, c.note, lines, tuple(r.carries)))
    return rows


def _true_formula_tex(tex: Tex, claim) -> str:
    g = tex.graph
    tree = claim.of_tree
    try:
        if isinstance(tree, ex.Name) and g.quantities[tree.id].kind == "forward":
            return _tree_printer(tex).tex(g.quantities[tree.id].tree)
        if isinstance(tree, ex.Deriv) and tree.step == 0:
            A, B = g.quantities[tree.of], g.quantities[tree.wrt]
            if A.is_scalar and B.is_scalar:
                f = chain_formula(g, A.entries[0], B.entries[0])
                if f is not None:
                    return tex.chain(f)
            if A.is_scalar and A.name == g.loss:
                for rule in matrix_rules(g):
                    if rule.wrt == B.name:
                        mp = pr.MatrixPrinter(tex.names, tex.loss)
                        return " + ".join(mp.tex(t.expr) for t in rule.terms)
        if isinstance(tree, ex.AtStep) and tree.name in tex.spec.update:
            lr = tex.spec.learning_rate
            eta = pr.fraction(lr) if lr is not None else "\\eta"
            return f"{tex.name(tree.name, tree.step - 1)} - {eta} \\cdot {tex.deriv(g.loss, tree.name, tree.step - 1)}"
    except (DeriveError, KeyError, TypeError):
        return ""
    return ""


def render_report(cf, results: list, fmt: str, lang: str, digits: int, checker: Checker | None = None) -> str:
    """The errata document of one checked claims file as Markdown ('md') or LaTeX ('tex')."""
    if checker is None:
        checker = Checker(cf.problem, digits, lang)
        checker.results = list(results)
    env = environment(fmt)
    s = strings(lang)
    spec = cf.problem.spec
    rows = build_rows(checker, results)
    ctx = dict(
        s=s, lang=lang, title=spec.title, source=spec.source, spec_id=spec.id, digits=digits,
        claims_file=Path(cf.path).name, rows=rows, summary=summary(results), verdicts=VERDICTS,
        summary_line=summary_line(results, lang), symbolic=cf.problem.is_symbolic,
        cjk=any(CJK.search(x) for x in [spec.title, spec.source] + [r.note + r.message for r in rows]),
        sweep=sweep_claims(spec, digits), sweep_steps=spec.training.sweep.steps if spec.training.sweep else 0,
    )
    name = "errata.md.j2" if fmt == "md" else "errata.tex.j2"
    return tpl.render(env, name, ctx)


def sweep_claims(spec, digits: int) -> tuple:
    """The source's verdicts on learning rates (train.sweep.claimed) against the runs: one dict per
    stated verdict (learning rate, claimed, found, the loss at the end), () when none is stated."""
    sw = spec.training.sweep
    if spec.is_symbolic or sw is None or not any(sw.claimed):
        return ()
    return tuple({"eta": train.fraction_text(r.learning_rate), "claimed": c, "found": r.verdict,
                  "last": r.training.history[-1].text, "diverged": r.training.diverged}
                 for r, c in zip(train.sweep_of(spec, digits), sw.claimed) if c)


# ---------------------------------------------------------------- every built-in problem
def builtin_claims() -> list:
    """(id, path) of every built-in problem with a claims file, sorted by id."""
    out = []
    for pid in builtin_ids():
        p = problems_dir() / f"{pid}.claims.toml"
        if p.is_file():
            out.append((pid, str(p)))
    return out


ERRATA_LANGS = LANGS


@dataclass(frozen=True)
class ErrataStep:
    """A claim of the source document that is not correct, for the handout's list of links."""
    index: int
    of: str
    verdict: str
    diagnosis: str | None
    anchor: str            # claim-<index>


def errata_name(pid: str, lang: str, fmt: str) -> str:
    """errata/<id>.md and .tex in English; errata/<id>.zh.md and .zh.tex in Chinese."""
    return f"{pid}.{fmt}" if lang == "en" else f"{pid}.{lang}.{fmt}"


def errata_documents(pid: str, path: str, lang: str, digits: int = 10) -> tuple[dict, list]:
    """({fmt: text} for md and tex, [ErrataStep]) for one built-in claims file in one language."""
    return errata_by_language(pid, path, (lang,), digits)[lang]


def errata_by_language(pid: str, path: str, langs, digits: int = 10, problem=None) -> dict:
    """{lang: ({fmt: text}, [ErrataStep])}: the claims checked once, reported in every language
    (`problem`: the built-in problem already loaded, so that its graph is built once)."""
    cf = load_claims(path, problem)
    base = Checker(cf.problem, digits, "en")
    out = {}
    for lang in langs:
        checker = base.speaking(lang)
        results = checker.check(cf.claims)
        cf.path = f"{pid}.claims.toml"
        docs = {fmt: render_report(cf, results, fmt, lang, digits, checker) for fmt in ("md", "tex")}
        steps = [ErrataStep(r.claim.index, r.claim.of, r.verdict, r.diagnosis, f"claim-{r.claim.index}")
                 for r in results if r.verdict != "correct"]
        out[lang] = (docs, steps)
    return out


def write_errata(out_dir="output", digits: int = 10) -> list:
    """Write <out_dir>/errata/<id>.md, .tex (English) and <id>.zh.md, .zh.tex (Chinese) for every
    built-in problem with a claims file.  Returns the paths written.  Atomic and deterministic."""
    written = []
    target = Path(out_dir) / "errata"
    for pid, path in builtin_claims():
        for lang in ERRATA_LANGS:
            docs, _steps = errata_documents(pid, path, lang, digits)
            for fmt, text in docs.items():
                p = target / errata_name(pid, lang, fmt)
                write_atomic(p, text, make_parents=True)
                written.append(str(p))
    return written
