"""Errata: a checked claims file rendered for a reader (Markdown and LaTeX), to hand out.

Takes the results of `derive.check` for one claims file; gives a document in three parts:
1. the wrong claims, each with what the source says (its formula re-printed from the parsed tree by
   `printer.ClaimPrinter`, its number as a number), where it says it (the claim's note: LaTeX it
   quotes typeset when in the whitelist `NOTE_COMMANDS`, plain-text formulas such as
   `h3 = σ(0.4×120 − 0.7×1)` typeset when they read as formulas, code after "code:" as code), the
   true value or formula, the mistake in plain words — built from the diagnosis's data
   (`hypotheses.Hypothesis`: which activation, which term, which path; the earlier claims carried),
   never its tag (`WORDS`, both languages) — and the corrected derivation (the definition or the
   chain rule in ∂-notation, each factor's formula, the numbers, the value);
2. a lighter list of the differences that are only rounding or truncation, with the rounded chain
   of a `rounding` verdict (`verdicts.RoundingChain`: the intermediate values of the hand
   calculation that reproduces the claim);
3. the complete claim table (fixed-width columns on A4, rows stretched for stacked fractions; every
   row that is not correct linked, only the wrong ones bold; the true value only where it differs).
A wrong claim's block is kept together by one \\Needspace (`Row.block_lines`) when short; true values
are printed to --digits significant digits (`true_value_tex`: a saturated value as 1 − ε); the source
is cited by its sections without a hashed file name (`cited_source`); one footer line.
Numbers are typeset (×10ⁿ, minus signs), verdicts and diagnoses named by `verdicts.VERDICT_NAMES`
and `DIAGNOSIS_NAMES`.  Templates: `templates/errata/errata.md.j2` (math only through
templates/macros.md.j2) and `errata.tex.j2` (LaTeX delimiters `\\BLOCK{…}`, `\\VAR{…}`, `\\#{…}`;
StrictUndefined); prose in `templates/errata/strings.<lang>.toml`.  User text (notes, names, the
file name) is escaped (`derive.escape`); formulas are re-printed from the parsed trees, never copied
from the claims file.  The title and source are typeset as in the worked solution (`derive.titles`);
a Chinese document uses the spec's title_zh/source_zh and a claim's note_zh, else keeps a note up
to its first English word (claims files are written in English).

Anchors, for links from the handouts: every claim that is not correct has `claim-<index>` (Markdown
`<a id="claim-13"></a>`, LaTeX `\\label{claim-13}` and `\\hypertarget{claim-13}{}`), so a handout
links `errata/<id>.md#claim-13`.  `errata_documents` also gives the `ErrataStep`s (the claims that
are not correct) that `derive build` lists, with those links, at the end of each handout.

`write_errata(out_dir)` writes `<out_dir>/errata/<id>.md` and `.tex` (English) and `<id>.zh.md` and
`.zh.tex` (Chinese) for every built-in problem with a claims file, atomically (temporary file +
os.replace) and deterministically (no dates; the checker's random points are seeded).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import sympy as sp

from . import expr as ex
from . import numeric as nm
from . import printer as pr
from . import templating as tpl
from . import train
from .calculus import Calculus
from .check import Checker
from .claims import load_claims
from .formulas import chain_formula
from .hypotheses import compared, halved
from .render_context import free_symbol
from .training_context import shown_verdict
from .report import plain, summary, summary_line
from .messages import MESSAGES, full_width
from .verdicts import VERDICT_NAMES, VERDICTS, diagnosis_name, sig_text, text_at
from .errors import DeriveError
from . import texcheck
from .escape import CJK, md_code, md_text, tex_prose
from .files import write_atomic
from .matrixform import matrix_rules
from .spec import LANGS, builtin_ids, problems_dir
from .titles import document_title, typeset_parts


# ---------------------------------------------------------------- templates
def template_dir() -> Path:
    """templates/errata of a source checkout, else of the installed package."""
    return tpl.default_template_dir() / "errata"


def environment(fmt: str):
    """The sandboxed environment of the errata templates (templates/errata)."""
    return tpl.environment(fmt, [template_dir(), tpl.default_template_dir()],
                           {"tex": tex_prose, "md": md_text, "code": md_code, "mdpiece": md_piece})


def md_piece(text) -> str:
    """A piece of prose between formulas for Markdown: escaped, its spaces at either end kept."""
    text = str(text)
    if not text.strip():
        return " " if text else ""
    return (" " if text[0].isspace() else "") + md_text(text) + (" " if text[-1].isspace() else "")


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
        """A chain formula (formulas.chain_formula) as a product in textbook order (printer.chain_latex)."""
        return pr.chain_latex(node, self.names, values)

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
    if answer.value.shape == () and claim.query is not None and pr.rounds_to_one(value):
        tv, tn = checker.rc.truth(claim.query)          # a saturated unit: 1 − ε, not 1.000000000
        value = true_value_tex(tv[0], tn[0], digits)

    if isinstance(tree, ex.Name) and g.quantities[tree.id].kind == "forward":
        q = g.quantities[tree.id]
        lhs = tex.name(q.name)
        lines = [f"{lhs} &= {_tree_printer(tex).tex(q.tree)}"]
        if q.is_scalar and sol is not None:
            numeric = _tree_printer(tex, lambda n: _value_tex(tex, n)).tex(q.tree)
            if f"{lhs} &= {numeric}" != lines[0]:
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
            if lines[0] == f"{lhs} &= {lhs}" and len(lines) > 1:     # ∂L/∂ŷ = ∂L/∂ŷ says nothing
                lines = [lhs + " " + lines[1]] + lines[2:]
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


def given_pieces(tex: Tex, lang: str, s: dict) -> tuple:
    """The problem's data as the errata state it before the claims, so that every symbol a claim
    uses is defined: the inputs and parameters with their values, the definitions of the network
    (z = W·x + b, p = softmax(z), L = …) and the learning rate, as pieces."""
    g, problem = tex.graph, tex.problem
    sep = ", " if lang == "en" else "，"
    values, defs = [], []
    for n, q in g.quantities.items():
        if q.kind == "forward":
            defs.append(f"{tex.name(n)} = {_tree_printer(tex).tex(q.tree)}")
        elif not problem.is_symbolic:
            try:
                a = problem.eval(n, digits=10)[0]
            except DeriveError:
                continue
            if a.value.shape != () and a.value.shape[1] == 1 and a.value.shape[0] > 1:
                # a column vector on one line of the paragraph: its transpose, a row
                row = pr.pmatrix([[tex.number(x.text) for x in a.value.values]])
                values.append(f"{tex.name(n)} = {row}^{{\\top}}")
                continue
            v = a.value.nested() if a.value.shape != () else a.value.values[0].text
            values.append(f"{tex.name(n)} = {tex.shaped(v)}")
    out: list = []
    for group in (values, defs):
        if not group:
            continue
        if out:
            out.append(("t", "; " if lang == "en" else "；"))
        for j, m in enumerate(group):
            if j:
                out.append(("t", sep))
            out.append(("m", m))
    lr = tex.spec.learning_rate
    if tex.spec.update and lr is not None:
        out += [("t", ("; " if lang == "en" else "；") + s["given_lr"]), ("m", f"\\eta = {pr.fraction(lr)}")]
    if out:
        out.append(("t", "." if lang == "en" else "。"))
    return tuple(out)


def unaligned(line: str) -> str:
    """A display line without its alignment point: the first & that is not a matrix's column."""
    depth = 0
    for m in re.finditer(r"\\begin\{|\\end\{|&", line):
        if m.group() == "&" and depth == 0:
            return (line[:m.start()] + line[m.end():]).strip()
        depth += {"\\begin{": 1, "\\end{": -1}.get(m.group(), 0)
    return line


DERIVATION_WIDTH = 64.0     # a line of a corrected derivation, in printer.width units (layout.LINE_WIDTH: 75)


def packed(lines: tuple) -> tuple:
    """A derivation's display lines with as many steps to a line as fit DERIVATION_WIDTH: the chain
    rule, its formula and its numbers of a short derivation on one or two lines instead of four
    (each step keeps its relation: `= ŷ(1 − ŷ)·w₇ = 0.2288 · 0.1 ≈ 0.02288`)."""
    out: list = []
    for line in lines:
        step = line.strip()
        if out and step.startswith("&"):
            joined = f"{out[-1]} {step[1:].strip()}"
            if pr.width(joined) <= DERIVATION_WIDTH:
                out[-1] = joined
                continue
        out.append(step)
    return tuple(out)


def _tree_printer(tex: Tex, subst=None):
    shapes = lambda n: tex.graph.quantities[n].shape if n in tex.graph.quantities else ()  # noqa: E731
    return pr.TreePrinter(tex.names, shapes, subst=subst)


def _value_tex(tex: Tex, name: str):
    q = tex.graph.quantities[name]
    if not q.is_scalar or tex.solution is None:
        return None
    return tex.number(tex.solution.value(q.entries[0]).text, paren=True)


# ---------------------------------------------------------------- the context
# A piece of an explanation: ("t", prose) — escaped by the template —, ("m", LaTeX math) or
# ("ref", claim index) — a link to that claim's section.
@dataclass(frozen=True)
class Row:
    index: int
    anchor: str
    of: str                 # the quantity as written (plain text)
    of_tex: str
    kind: str
    claimed: str            # plain text
    claimed_tex: str        # LaTeX: the formula, or the number(s) as written
    true: str               # plain text (value to the claim's digits, or the correct formula)
    true_tex: str           # LaTeX: the correct formula, or the true value to the claim's digits
    true_digits: str
    true_digits_tex: str    # LaTeX: the true value to --digits ("" for formulas)
    verdict: str
    verdict_name: str
    diagnosis: str
    diagnosis_name: str
    message: str
    note: tuple             # the claim's note as pieces (note_pieces)
    derivation: tuple       # LaTeX lines (wrong claims)
    carries: tuple
    explain: tuple          # pieces: the mistake (wrong) or why it is only rounding
    chain: tuple            # rounding: LaTeX lines "h_{1} = 0.0474" of the rounded calculation
    formula: bool           # a formula claim (not a value, not a constant expression)
    same_as: int = 0        # the claim under which the same corrected derivation is shown (not repeated)

    @property
    def inline_derivation(self) -> str:
        """A derivation of one line without its alignment point (the first & outside a matrix)."""
        if len(self.derivation) != 1:
            return ""
        return unaligned(self.derivation[0])

    @property
    def block_lines(self) -> int:
        """About how many lines of the page a wrong claim's block takes (its heading, the items of
        its description, its corrected derivation): the errata keep a short block on one page."""
        def lines(text: str) -> int:
            shown = re.sub(r"\\(left|right|cdot|mathrm|hat|frac|partial|sigma|tfrac|,)|[{}\\]", "", text)
            return 1 + (len(shown) + sum(map(len, CJK.findall(shown)))) // 90     # a Chinese character: two
        items = [self.claimed_tex or self.claimed, "".join(p[1] for p in self.note), self.true_tex,
                 "".join(str(p[1]) for p in self.explain)]
        n = 3 + sum(lines(x) for x in items if x)
        if self.same_as:
            return n + 1
        if len(self.derivation) == 1:           # an item of the block, in display style
            return n + 2
        return n + (2 + 2 * len(self.derivation) if self.derivation else 0)


WORDS = {
    "en": {
        "pre": ["The derivative of the activation (", "M:names", ") is taken at the pre-activation ",
                "M:u", ": ", "M:pre", " is written for ", "M:true", "."],
        "out": ["The derivative of the activation (", "M:names", ") is taken at the output ", "M:y",
                " instead of the pre-activation: ", "M:outf", "."],
        "drop": ["The factor ", "M:f'", " of the activation (", "M:names", ") is left out of the chain rule."],
        "neg": ["The sign is wrong (for example ", "M:flipped", " written for ", "M:true", ")."],
        "term": ["The term ", "M:term", " of ", "M:q", " has the wrong sign."],
        "double": ["It is twice the true value (for example the ", "M:\\tfrac{1}{2}", " of ",
                   "M:halved", " dropped, or a term counted twice)."],
        "double_plain": ["It is twice the true value (for example a term counted twice)."],
        "half": ["It is half the true value (for example ", "M:\\tfrac{1}{2}", " applied twice, or a factor 2 left out)."],
        "plus": ["The update is ", "M:wrongrule", "; gradient descent is ", "M:rule", "."],
        "step-only": ["The step ", "M:step", " alone is given as the new value ", "M:new", ": the ",
                      "M:p\\,-", " in front of it is missing."],
        "minus-step-only": ["M:-step", " alone is given as the new value ", "M:new", ": the old value ",
                            "M:p", " is missing."],
        "path": ["The path(s) through ", "M:via", " are left out of ", "M:grad", "."],
        "updated": ["The backward pass uses the parameters already updated in this step (the hidden error "
                    "terms from the new weights)."],
        "arithmetic": "No single mistake that was tested reproduces this number: an arithmetic slip.",
        "same_mistake": ["The same mistake as in ", "."],
        "carried": "The step itself is right, but it is computed from earlier values that were not correct: ",
        "restated": "It repeats an earlier value that was not correct: ",
        "restated_entries": ["Its entry ", "E", " repeats an earlier value that was not correct: "],
        "own_formula": " (with the author's own formula of claim ",
        "also": ["The value is also what ", "D", " would give."],
        "not_equivalent": "The formula is not the true one.",
        "given_only": " It agrees at this problem's values but not in general (it depends differently on ",
        "unit": ["One unit off in the last of the ", "N", " stated digits: the true value ", "M:td",
                 " rounds to ", "M:tr", "."],
        "unit_same": ["One unit off in the last of the ", "N", " stated digits: the true value, correctly rounded "
                      "to them, is ", "M:tr", "."],
        "world": ["The true value ", "M:td", " rounds to ", "M:tr", "; a hand calculation that rounds its ",
                  "W", " to ", "N", " significant digits as it goes gives ", "M:alt", ":"],
        "world_nochain": ["The true value ", "M:td", " rounds to ", "M:tr", "; a hand calculation with ",
                          "W", " rounded to ", "N", " significant digits gives ", "M:alt", "."],
        "const": ["The source's expression, with its rounded inputs, gives ", "M:val", "; the true value is ",
                  "M:td", ". Its numbers are the ", "W", " of a hand calculation at ", "N", " significant digits:"],
        "const_nochain": ["The source's expression, with its rounded inputs, gives ", "M:val",
                          "; the true value is ", "M:td", ". Its numbers are intermediate values rounded to ",
                          "N", " significant digits."],
        "truncated": ["The true value ", "M:td", " was cut off at the stated digits instead of rounded; rounded it is ",
                      "M:tr", "."],
        "entries": "Entries ", "entries_wrong": " wrong", "entries_truncated": " cut off instead of rounded",
        "entries_rounding": " off by rounding", "sep": "; ", "list": ", ", "end": ".",
        "other_truncated": " are cut off instead of rounded", "other_rounding": " are off only by rounding",
        "other_truncated_1": " is cut off instead of rounded", "other_rounding_1": " is off only by rounding",
        "entry": "Entry ",
        "values": "values", "local": "local derivatives", "adjoint": "backpropagated derivatives", "and": " and ",
    },
    "zh": {
        "pre": ["M:names", " 的激活函数导数是在预激活值 ", "M:u", " 处计算的：把 ", "M:true", " 写成了 ", "M:pre", "。"],
        "out": ["M:names", " 的激活函数导数是在输出值 ", "M:y", " 处计算的，而不是在预激活值处：写成了 ", "M:outf", "。"],
        "drop": ["链式法则中漏乘了 ", "M:names", " 的激活函数导数 ", "M:f'", "。"],
        "neg": ["符号反了（例如把 ", "M:true", " 写成了 ", "M:flipped", "）。"],
        "term": ["M:q", " 中的项 ", "M:term", " 符号写反了。"],
        "double": ["它是真值的 2 倍（例如漏掉了 ", "M:halved", " 中的 ", "M:\\tfrac{1}{2}",
                   "，或把一项算了两次）。"],
        "double_plain": ["它是真值的 2 倍（例如把一项算了两次）。"],
        "half": ["它是真值的一半（例如 ", "M:\\tfrac{1}{2}", " 用了两次，或漏掉了因子 2）。"],
        "plus": ["更新写成了 ", "M:wrongrule", "；梯度下降应为 ", "M:rule", "。"],
        "step-only": ["把步长 ", "M:step", " 当成了新值 ", "M:new", "，漏掉了前面的 ", "M:p\\,-", "。"],
        "minus-step-only": ["把 ", "M:-step", " 当成了新值 ", "M:new", "，漏掉了原值 ", "M:p", "。"],
        "path": ["M:grad", " 漏掉了经过 ", "M:via", " 的路径。"],
        "updated": ["反向传播时用了本步已经更新过的参数（用新权重计算了隐藏层的误差项）。"],
        "arithmetic": "所检验的各种单一错误都不能重现这个数：是计算错误。",
        "same_mistake": ["错误与", " 相同。"],
        "carried": "这一步本身没有算错，但用的是前面不正确的值：",
        "restated": "它重复了前面一个不正确的值：",
        "restated_entries": ["它的分量 ", "E", " 重复了前面一个不正确的值："],
        "own_formula": "（并用了作者在断言 ",
        "also": ["这个值也可以由", "D", "得出。"],
        "not_equivalent": "这个公式不正确。",
        "given_only": "它在本题的数值下成立，但一般不成立（对下列量的依赖不同：",
        "unit": ["所写的 ", "N", " 位有效数字中最后一位差 1：真值 ", "M:td", " 四舍五入后是 ", "M:tr", "。"],
        "unit_same": ["所写的 ", "N", " 位有效数字中最后一位差 1：真值正确四舍五入到这些位数是 ", "M:tr", "。"],
        "world": ["真值 ", "M:td", " 四舍五入后是 ", "M:tr", "；手算时把", "W", "随时保留 ", "N",
                  " 位有效数字，得到的正是 ", "M:alt", "："],
        "world_nochain": ["真值 ", "M:td", " 四舍五入后是 ", "M:tr", "；把", "W", "保留 ", "N",
                          " 位有效数字来手算，得到的正是 ", "M:alt", "。"],
        "const": ["原文的式子代入它四舍五入后的数，得 ", "M:val", "；真值为 ", "M:td", "。式中的数是保留 ", "N",
                  " 位有效数字手算时的", "W", "："],
        "const_nochain": ["原文的式子代入它四舍五入后的数，得 ", "M:val", "；真值为 ", "M:td", "。式中的数是保留 ",
                          "N", " 位有效数字的中间结果。"],
        "truncated": ["真值 ", "M:td", " 在所写的位数处被截断了，而不是四舍五入；四舍五入应为 ", "M:tr", "。"],
        "entries": "分量 ", "entries_wrong": " 错误", "entries_truncated": " 被截断而不是四舍五入",
        "entries_rounding": " 只差舍入", "sep": "；", "list": "、", "end": "。",
        "other_truncated": " 被截断而不是四舍五入", "other_rounding": " 只差舍入",
        "other_truncated_1": " 被截断而不是四舍五入", "other_rounding_1": " 只差舍入", "entry": "分量 ",
        "values": "中间值", "local": "局部导数", "adjoint": "反向传播的导数", "and": "和",
    },
}


def _pieces(template: list, fill: dict) -> list:
    out = []
    for item in template:
        if item.startswith("M:"):
            key = item[2:]
            out.append(("m", fill.get(key, key)))
        elif item in ("N", "W"):
            out.append(("t", str(fill[item])))
        else:
            out.append(("t", item))
    return out


def _entry_tex(tex: Tex, key) -> str:
    """An engine entry key (quantity, row-major index) in LaTeX."""
    q, i = key
    quantity = tex.graph.quantities[q]
    if quantity.is_scalar:
        return tex.name(q)
    c = quantity.shape[1]
    return pr.with_index(tex.name(q), (i // c, i % c), quantity.shape)


def _rounded_words(rounded, lang: str) -> str:
    w = WORDS[lang]
    parts = [w["values" if k == "forward" else k] for k in ("forward", "local", "adjoint") if k in rounded]
    if len(parts) <= 1:
        return "".join(parts)
    return w["list"].join(parts[:-1]) + w["and"] + parts[-1]


def mistake(tex: Tex, r, lang: str, results: list) -> list:
    """The mistake of a wrong claim in plain words, as pieces (no diagnosis tag)."""
    w = WORDS[lang]
    hyp, d = r.hypothesis, r.diagnosis
    out: list = []
    if d == "carried-forward" and isinstance(hyp, dict):
        if hyp.get("entries"):
            which = [f"({ex.index_text(r.claim.shape, i)})" for i in hyp["entries"]]
            for x in w["restated_entries"]:
                out += _entry_list(which, lang) if x == "E" else [("t", x)]
        else:
            out.append(("t", w["restated" if hyp.get("restated") else "carried"]))
        for j, i in enumerate(r.carries):
            if j:
                out.append(("t", w["list"]))
            out += _claim_ref(tex, results[i - 1], lang)
        if hyp.get("formula"):
            out += [("t", w["own_formula"]), ("ref", hyp["formula"]), ("t", ")" if lang == "en" else " 中的公式）")]
        out.append(("t", w["end"]))
        out += _other_entries(r, lang)
    elif d == "arithmetic":
        out.append(("t", w["arithmetic"]))
    elif hyp is not None and getattr(hyp, "kind", None):
        out += _hypothesis_pieces(tex, hyp, lang, r.claim)
    else:
        if r.message.startswith(MESSAGES[lang]["wrong_formula"].split("{tf}")[0]):
            out.append(("t", w["not_equivalent"]))
        else:
            out += message_pieces(tex, _sentence(r.message, lang))
    if r.claim.kind != "value" and not r.claim.constant:
        m = re.search(re.escape(MESSAGES[lang]["given_only"].split("{names}")[0].lstrip(";；")) + r"(.+?)[)）]",
                      r.message)
        if m:
            names = [x.strip() for x in re.split(r"[,、]", m.group(1))]
            out.append(("t", w["given_only"]))
            for j, n in enumerate(names):
                if j:
                    out.append(("t", w["list"]))
                out.append(("m", tex.name(n)))
            out.append(("t", ")." if lang == "en" else "）。"))
    if r.also:
        out.append(("t", " " if lang == "en" else ""))
        out += [("t", _also_words(r.also, lang, r.carries) if x == "D" else x) for x in w["also"]]
    return out


def _entry_list(which: list, lang: str) -> list:
    """Entry indices, (2), (4), as pieces: each a formula, the separator text between them (a
    Chinese 、 is prose, not math: the math font has no such character)."""
    out: list = []
    for j, x in enumerate(which):
        if j:
            out.append(("t", WORDS[lang]["list"]))
        out.append(("m", x))
    return out


def _other_entries(r, lang: str) -> list:
    """For a vector or matrix claim that is wrong in some entries: the entries that are only cut
    off or rounded, as a sentence (sigmoid-2-4-2's a_hidden: one entry carried forward, two
    truncated) — nothing when there are none."""
    if len(r.entries) < 2 or r.claim.shape == ():
        return []
    w = WORDS[lang]
    out: list = []
    for v in ("truncated", "rounding"):
        which = [f"({ex.index_text(r.claim.shape, i)})" for i, x in enumerate(r.entries) if x == v]
        if which:
            one = "_1" if len(which) == 1 else ""
            out += [("t", w["sep"] if out else (" " if lang == "en" else "")),
                    ("t", w["entry" if one else "entries"] if not out or lang != "en" else
                     w["entry" if one else "entries"].lower()),
                    *_entry_list(which, lang), ("t", w[f"other_{v}{one}"])]
    return out + [("t", w["end"])] if out else []


UNDIAGNOSED = {   # the heading of a wrong claim that no catalogued mistake explains, by what is wrong
    "en": {"of_error": "undefined quantity", "formula_error": "undefined formula",
           "shape": "shape mismatch", "formula": "wrong formula"},
    "zh": {"of_error": "所断言的量没有定义", "formula_error": "公式无意义", "shape": "形状不符", "formula": "公式错误"},
}


def heading_name(r, lang: str) -> str:
    """What a wrong claim's heading names after it: its diagnosis (the claims it carries named),
    or, for a claim no catalogued mistake explains, what is wrong with it (an undefined quantity,
    an undefined formula, a formula of the wrong shape, a formula not equivalent to the true one)."""
    c = r.claim
    if r.diagnosis == "carried-forward":
        return carried_name(r.carries, lang)
    if r.diagnosis or r.verdict != "wrong":
        return diagnosis_name(r.diagnosis, lang) if r.diagnosis else ""
    words = UNDIAGNOSED[lang]
    if c.of_error is not None:
        return words["of_error"]
    if getattr(c, "formula_error", None) is not None:
        return words["formula_error"]
    fq, q = getattr(c, "formula_query", None), c.query
    if fq is not None and q is not None and fq.shape != q.shape and fq.shape != ():
        return words["shape"]
    return words["formula"] if c.kind != "value" and not c.constant else ""


def carried_name(carries, lang: str) -> str:
    """The diagnosis of a claim that carries an earlier error, naming the claims it carries:
    "carried forward from claim 7" (claims 42, 43 and 44), “沿用了断言 7 的错误”."""
    if not carries:
        return diagnosis_name("carried-forward", lang)
    nums = [str(i) for i in carries]
    if lang == "en":
        listed = nums[0] if len(nums) == 1 else ", ".join(nums[:-1]) + " and " + nums[-1]
        return f"carried forward from claim{'s' if len(nums) > 1 else ''} {listed}"
    return f"沿用了断言 {'、'.join(nums)} 的错误"


def _also_words(tags, lang: str, carries=()) -> str:
    """The further diagnoses a wrong value is consistent with, as a noun phrase for WORDS' "also"
    sentence: "a factor of 2", "the error of claim 12 carried forward" (English: each with its
    article); Chinese: “相差因子 2”."""
    def name(a):
        if a == "carried-forward" and carries:
            nums = [str(i) for i in carries]
            if lang == "en":
                listed = nums[0] if len(nums) == 1 else ", ".join(nums[:-1]) + " and " + nums[-1]
                return f"the error{'s' if len(nums) > 1 else ''} of claim{'s' if len(nums) > 1 else ''} {listed} carried forward"
            return f"沿用断言 {'、'.join(nums)} 的错误"
        return diagnosis_name(a, lang)
    if lang == "en":
        names = [("an " if name(a)[0] in "aeiou" else "a ") + name(a)
                 if not name(a).startswith(("a ", "an ", "the ")) else name(a) for a in tags]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return "或".join(f"“{name(a)}”" for a in tags)


_QUANTITY_TOKEN = re.compile(r"\bd([A-Za-z][A-Za-z0-9_]*)/d([A-Za-z][A-Za-z0-9_]*)\b|\b[A-Za-z][A-Za-z0-9_]*\b")


def message_pieces(tex: Tex, text: str) -> list:
    """A checker's message as pieces, its quantities typeset: dA/dB of two quantities as ∂A/∂B,
    a quantity's name (one with a digit, an underscore or a capital letter, so that an English
    word is never taken for one) as its display name; the rest text."""
    out, at = [], 0
    quantities = tex.graph.quantities
    for m in _QUANTITY_TOKEN.finditer(text):
        if m.group(1):
            if m.group(1) not in quantities or m.group(2) not in quantities:
                continue
            math = pr.deriv(tex.name(m.group(1)), tex.name(m.group(2)), inline=True)
        else:
            word = m.group(0)
            if word not in quantities or not re.search(r"[0-9_A-Z]", word):
                continue
            math = tex.name(word)
        if m.start() > at:
            out.append(("t", text[at:m.start()]))
        out.append(("m", math))
        at = m.end()
    if at < len(text):
        out.append(("t", text[at:]))
    return out


def _sentence(text: str, lang: str) -> str:
    text = text.strip()
    if lang == "en":
        return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
    return text + ("" if text.endswith("。") else "。")


def _claim_ref(tex: Tex, r, lang: str) -> list:
    """Claim [i] (x = 0.99, truncated) as pieces."""
    c = r.claim
    shown = c.claimed_display() if c.kind == "value" else None
    try:
        of_tex = tex.tree(c.of_tree)
    except (TypeError, KeyError):
        of_tex = ""
    value = tex.shaped(shown) if shown is not None else (tex.tree(c.tree) if c.tree is not None else "")
    verdict = VERDICT_NAMES[lang][r.verdict]
    lo, hi, sep = (" (", ")", ", ") if lang == "en" else ("（", "）", "，")
    out = [("ref", c.index)]
    if of_tex and value:
        out += [("t", lo), ("m", f"{of_tex} = {value}"), ("t", sep + verdict + hi)]
    return out


def _update_fill(tex: Tex, claim) -> dict:
    """The update rule in the claim's own symbols: its parameter w₁ (the value before the step,
    w₁⁽¹⁾ after it) and the problem's learning rate as the corrected derivation writes it (the
    number, η for a symbolic problem) — never a p or η the document does not define (softmax-3's
    p is its output)."""
    tree = claim.of_tree if claim is not None else None
    lr = tex.spec.learning_rate
    eta = pr.fraction(lr) if lr is not None else "\\eta"
    index = None
    if isinstance(tree, ex.Index) and isinstance(tree.base, ex.AtStep):   # W@1[1, 1]: the entry W₁₁
        tree, index = tree.base, tuple(i - 1 for i in tree.index)
    if isinstance(tree, ex.AtStep) and tree.name in tex.graph.quantities:
        shape = tex.graph.quantities[tree.name].shape

        def name(k):
            n = tex.name(tree.name, k)
            return pr.with_index(n, index, shape) if index is not None else n
        p, new = name(tree.step - 1), name(tree.step)
        grad = pr.deriv(tex.loss, p, inline=True)
    else:
        p = free_symbol(tex.names)
        new, grad = pr.with_step(p, 1), pr.deriv(tex.loss, p, inline=True)
    step = f"{eta} \\cdot {grad}"
    return {"p": p, "new": new, "step": step, "-step": f"-{step}",
            "rule": f"{new} = {p} - {step}", "wrongrule": f"{new} = {p} + {step}"}


def _hypothesis_pieces(tex: Tex, hyp, lang: str, claim=None) -> list:
    w = WORDS[lang]
    g = tex.graph
    world = hyp.world
    if hyp.kind in ("used-preactivation", "missing-activation-derivative") and world is not None:
        acts = world.activation
        names = ", ".join(tex.name(n) for n, _m in acts)
        fns = {g.quantities[n].tree.fn for n, _m in acts if isinstance(g.quantities[n].tree, ex.Call)}
        tanh = fns == {"tanh"}
        mode = acts[0][1]
        fill = {"names": names, "u": "u", "y": "y", "f'": "f'",
                "pre": "1 - u^{2}" if tanh else "u\\,(1 - u)",
                "true": "1 - \\tanh^{2}(u)" if tanh else "\\sigma(u)\\,(1 - \\sigma(u))",
                "outf": "1 - \\tanh^{2}(y)" if tanh else "\\sigma(y)\\,(1 - \\sigma(y))"}
        return _pieces(w["drop" if mode == "drop" else mode], fill)
    if hyp.kind == "sign-flip":
        if hyp.term_of is not None:
            q = g.quantities[hyp.term_of]
            term = q.local[0].args[hyp.term]
            return _pieces(w["term"], {"term": tex.sympy(term), "q": tex.name(hyp.term_of)})
        pair = compared(g)
        o, t = (tex.name(pair[0]), tex.name(pair[1])) if pair else ("o", "t")   # the problem's own symbols
        return _pieces(w["neg"], {"flipped": f"{t} - {o}", "true": f"{o} - {t}"})
    if hyp.kind == "factor-2":
        if hyp.key != "double":
            return _pieces(w["half"], {})
        half = halved(g)
        if half is None:
            return _pieces(w["double_plain"], {})
        return _pieces(w["double"], {"halved": f"{tex.name(half)} = {tex.tree(g.quantities[half].tree)}"})
    if hyp.kind == "update-sign":
        return _pieces(w["plus"], _update_fill(tex, claim))
    if hyp.kind == "update-missing-weight":
        fill = _update_fill(tex, claim)
        fill["p\\,-"] = f"{fill['p']}\\,-"
        return _pieces(w[hyp.key if hyp.key in w else "step-only"], fill)
    if hyp.kind == "dropped-path" and world is not None:
        consumers = sorted({c for c, _e in world.dropped})
        entries = sorted({e for _c, e in world.dropped})
        if len(entries) == 1:
            grad = pr.deriv(tex.loss, _entry_tex(tex, entries[0]), inline=True)
            via = ", ".join(_entry_tex(tex, c) for c in consumers)
        else:
            grad = pr.deriv(tex.loss, tex.name(entries[0][0]), inline=True)
            via = ", ".join(dict.fromkeys(tex.name(c[0]) for c in consumers))
        return _pieces(w["path"], {"grad": grad, "via": via})
    if hyp.kind == "used-updated-weights":
        return _pieces(w["updated"], {})
    return [("t", hyp.text[0 if lang == "en" else 1])]


def rounding_pieces(tex: Tex, r, lang: str, const_value=None, shown=None, digits: int = 10) -> tuple[list, list]:
    """(why a rounding or truncated claim is only that, as pieces; the rounded chain as LaTeX lines)."""
    w = WORDS[lang]
    c = r.claim
    if c.shape != () and len(r.entries) > 1:
        out = []
        for v in ("wrong", "truncated", "rounding"):
            which = [f"({ex.index_text(c.shape, i)})" for i, x in enumerate(r.entries) if x == v]
            if which:
                if out:
                    out.append(("t", w["sep"]))
                out += [("t", w["entries"]), *_entry_list(which, lang), ("t", w[f"entries_{v}"])]
        out.append(("t", w["end"]))
        return out, []
    stated = c.stated[0] if c.kind == "value" else None
    td = shown if shown is not None else tex.number(plain(r.true_digits))
    tr = tex.number(plain(r.true))
    if r.verdict == "truncated":
        return _pieces(w["truncated"], {"td": td, "tr": tr}), []
    rc = r.rounding
    if rc is None:
        return message_pieces(tex, _sentence(r.message, lang)), []
    fill = {"td": td, "tr": tr, "N": rc.digits, "W": _rounded_words(rc.rounded, lang),
            "alt": tex.number(text_at(stated, rc.value)) if (rc.value is not None and stated is not None)
            else (tex.number(sig_text(rc.value, rc.digits)) if rc.value is not None else "")}
    lines = [_chain_line(tex, x, rc.digits) for x in rc.chain]
    if rc.kind == "unit":
        return _pieces(w["unit" if shown is None or shown else "unit_same"], fill), []
    if rc.kind == "const":
        fill["W"] = _rounded_words({x[0] for x in rc.chain}, lang) if rc.chain else fill["W"]
        fill["val"] = true_value_tex(const_value, None, digits) if const_value is not None else ""
        return _pieces(w["const" if lines else "const_nochain"], fill), lines
    return _pieces(w["world" if lines else "world_nochain"], fill), lines


def true_value_tex(t, num, digits: int) -> str:
    """A true value in LaTeX to `digits` significant digits, as the errata's introduction states
    (an exact short value as it is).  One that rounds to ±1 without being it (a saturated σ) is
    written honestly as 1 − ε (−1 + ε), ε to `digits` digits, as the handouts do: h₃ = σ(48.7)
    is 1 − 7.011…×10⁻²², neither 1.000000000 nor 0.999999999999999999999."""
    if num is not None and num.is_exact:
        return pr.number(num.text)
    if t == 0:
        return "0"
    text = nm.show(t, digits, exact=t).text if nm.is_short_exact(t, digits) else sig_text(t, digits)
    if abs(t) != 1 and pr.rounds_to_one(pr.number(text)):
        eps = pr.number(sig_text(1 - abs(t), digits))
        return f"-1 + {eps}" if t < 0 else f"1 - {eps}"
    return pr.number(text)


def evident_value_tex(t, num, sig: int, digits: int) -> str:
    """The true value of a claim one unit off in its last stated digit, written so that its rounding
    to the stated `sig` digits is evident: cut off after one digit more, with an ellipsis
    (0.3358298904… rounds to 0.335829890; its 10-digit rounding 0.3358298905 reads as if it
    rounded to 0.335829891) — "" when that digit is beyond the `digits` the document promises (the
    sentence then gives the rounding alone), the value itself when exact and short."""
    if t == 0 or (num is not None and num.is_exact and nm.is_short_exact(t, sig + 1)):
        return true_value_tex(t, num, sig)
    if sig + 1 > digits:
        return ""
    m = sig + 1
    a = abs(t)
    e = len(str(a.numerator // a.denominator)) - 1 if a >= 1 else -len(str(a.denominator // a.numerator))
    while Fraction(10) ** e > a:
        e -= 1
    while Fraction(10) ** (e + 1) <= a:
        e += 1
    n = int(a / Fraction(10) ** (e - m + 1))          # the first m digits, cut off
    text = nm.format_decimal(Decimal(("-" if t < 0 else "") + str(n) + f"E{e - m + 1}"), m)
    return pr.number(text) + "\\ldots"


def _chain_line(tex: Tex, item, n: int) -> str:
    kind, e, wrt, k, v = item
    if kind == "forward":
        lhs = tex.name(e.quantity, k) if not e.index else pr.with_index(tex.name(e.quantity, k), e.index, e.qshape)
    else:
        a = tex.name(e.quantity) if not e.index else pr.with_index(tex.name(e.quantity), e.index, e.qshape)
        b = tex.name(wrt.quantity) if not wrt.index else pr.with_index(tex.name(wrt.quantity), wrt.index, wrt.qshape)
        lhs = pr.deriv(a, b)
    return f"{lhs} \\approx {tex.number(sig_text(v, n) if v else '0')}"


def _tex_value(tex: Tex, x) -> str:
    """A value as the checker gives it (a string or nested lists of strings) in LaTeX, "" for none."""
    if x is None or x == "—":
        return ""
    try:
        return tex.shaped(x)
    except (TypeError, ValueError, IndexError):
        return ""


# The LaTeX a note may quote from its source (typeset, never printed as source text): these commands,
# letters, digits, spaces and + − = ( ) [ ] { } ^ _ ' , . / | : ; !; nothing else reaches TeX.
NOTE_COMMANDS = {"frac", "tfrac", "partial", "nabla", "mathbf", "mathrm", "text", "cdot", "times", "eta",
                 "alpha", "beta", "gamma", "delta", "sigma", "theta", "lambda", "mu", "sum", "prod", "hat",
                 "bar", "tilde", "vec", "top", "ldots", "cdots", "sqrt", "exp", "log", "ln", "odot", "circ",
                 "approx", "leftarrow", "to", ","}      # "," is \\, (a thin space: 300\\,000)
_NOTE_SPLIT = re.compile(r"(;\s|\s--\s|,\s(?=with\b)|\s\((?=[a-z]{3,}\b(?!_)))")
_CJK_OR_COLON = re.compile(r"[\u3000-\u9fff\uff00-\uffef]|:$")


def safe_math(text: str) -> bool:
    """Whether quoted LaTeX is in the subset that notes may typeset (NOTE_COMMANDS, balanced braces,
    \\text of letters only, no double scripts)."""
    if not text or len(text) > 300 or re.search(r"\^\^|[%#&~$\\]\\|\\\\", text):
        return False
    if re.search(r"[^A-Za-z0-9\s+\-=()\[\]{}^_',./|:;!*\\<>]", text):
        return False
    for m in re.finditer(r"\\([A-Za-z]+|.)", text):
        if m.group(1) not in NOTE_COMMANDS:
            return False
    for m in re.finditer(r"\\text\{([^{}]*)\}", text):
        if not re.fullmatch(r"[A-Za-z ]*", m.group(1)):
            return False
    if re.search(r"\\text(?!\{[A-Za-z ]*\})", text):
        return False
    depth = 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    if depth:
        return False
    try:
        texcheck.check_display_math(text)
    except DeriveError:
        return False
    return True


_WORD = re.compile(r"(?<![\\A-Za-z_\d])[A-Za-z]{2,}(?![_\dA-Za-z])")


_MARKED = re.compile(r"\$([^$]+)\$|`([^`]+)`")


def _marked_pieces(note: str) -> tuple:
    """A note that marks its formulas as $…$ and its code as `…`: exactly those pieces (a formula
    outside the `safe_math` subset is shown as code, never given to TeX)."""
    out: list = []
    pos = 0
    for m in _MARKED.finditer(note):
        out.append(("t", note[pos:m.start()]))
        math, code = m.groups()
        out.append(("m", math.strip()) if math is not None and safe_math(math.strip()) else ("c", math or code))
        pos = m.end()
    out.append(("t", note[pos:]))
    return tuple(p for p in out if p[1])


def note_pieces(note: str, lang: str = "en", note_zh: str = "") -> tuple:
    """A note as pieces: formulas typeset ("m"), code ("c"), the rest prose ("t").  A note that marks
    them ($…$, `…`) is taken as marked; an unmarked one is read by heuristics: the LaTeX it quotes
    typeset (if `safe_math`), code after "code:" as code, plain-text formulas typeset where they
    read as formulas.  A Chinese document uses the claim's `note_zh` when it has one; otherwise
    (claims files are written in English) it keeps the note up to its first English word (its
    locator: §(一)4 (2), §11)."""
    if lang == "zh" and note_zh:
        return tuple((k, full_width(t) if k == "t" else t) for k, t in _note_text(note_zh))
    pieces = _note_text(note)
    if lang != "zh":
        return pieces
    pieces = tuple((k, full_width(t) if k == "t" else t) for k, t in pieces)
    out: list = []
    for kind, text in pieces:
        m = _WORD.search(text) if kind == "t" else (re.search(r"[A-Za-z]{2,}", text) if kind == "c" else None)
        if m is None:
            out.append((kind, text))
            continue
        head = text[:m.start()] if kind == "t" else ""
        out.append(("t", head))
        break
    while out and out[-1][0] == "t":
        rest = out[-1][1].rstrip(" ,:;(—-–，：；（、")
        if rest:
            out[-1] = ("t", rest)
            break
        out.pop()
    return tuple(p for p in out if p[1])


_UNICODE_MATH = {"*": " \\cdot ", "←": " \\leftarrow ", "·": " \\cdot ", "×": " \\times ", "∂": "\\partial ", "α": "\\alpha ", "σ": "\\sigma ",
                 "η": "\\eta ", "−": "-", "′": "'", "ŷ": "\\hat{y}"}
_FORMULA_TOKEN = re.compile(r"[A-Za-z0-9_.,·×*←∂ασηŷ′'()\[\]+\-−=/^]+")
_IDENT = re.compile(r"(?<![A-Za-z\\])([A-Za-z]+)(\d+)?(?:_([A-Za-z0-9]+))?(?![A-Za-z])")


def _unicode_formula(run: str) -> str | None:
    """A formula a note writes in plain text (h3 = σ(0.4×120 − 0.7×1), w1_new = α·∂L/∂w1_old) as
    LaTeX, or None when it does not read as one."""
    if not re.search(r"[=·×∂σαη]", run) or re.search(r"[A-Za-z]{4,}(?![\d_])", re.sub(r"_[A-Za-z0-9]+", "", run)) \
            or re.search(r"[A-Za-z]\d+[A-Za-z]|\^\(|\.\.|\d[A-Za-z]|[A-Za-z]{2,}\(", run):
        return None     # juxtaposed names (w1x1), e^(…), an ellipsis, a function name: left as written

    def ident(m):
        base, num, sub = m.groups()
        if len(base) > 1 and not num and not sub:
            return f"\\mathrm{{{base}}}"
        idx = ",".join(x if x.isdigit() else f"\\mathrm{{{x}}}" for x in (num, sub) if x)
        return base + (f"_{{{idx}}}" if idx else "")
    text = _IDENT.sub(ident, run)
    for k, v in _UNICODE_MATH.items():
        text = text.replace(k, v)
    text = " ".join(text.split())
    return text if safe_math(text) else None


def _plain_formulas(seg: str) -> list:
    """Prose with its plain-text formulas typeset: runs of formula tokens (with an = or ∂ · × σ)."""
    out: list = []
    pos = 0
    toks = list(re.finditer(r"\S+", seg))
    i = 0
    while i < len(toks):
        j = i
        while j < len(toks) and _FORMULA_TOKEN.fullmatch(toks[j].group()) and \
                not re.fullmatch(r"[A-Za-z]{2,}[,.;:]?", toks[j].group()):      # a word ends a formula
            j += 1
        if j > i:
            a, b = toks[i].start(), toks[j - 1].end()
            run = seg[a:b]
            core = run.rstrip(",.;:")
            tex = _unicode_formula(core)
            if tex is not None:
                out += [("t", seg[pos:a]), ("m", tex)]
                pos = a + len(core)
            i = j
        else:
            i += 1
    out.append(("t", seg[pos:]))
    return [p for p in out if p[1]]


def _note_text(note: str) -> tuple:
    return _marked_pieces(note) if _MARKED.search(note) else _note_pieces(note)


def _note_pieces(note: str) -> tuple:
    out: list = []
    for seg in _NOTE_SPLIT.split(note):
        if not seg:
            continue
        if _NOTE_SPLIT.fullmatch(seg):
            out.append(("t", seg))
            continue
        m = re.search(r"\bcode:\s+", seg)
        if m and "\\" not in seg:
            out += [("t", seg[:m.end()]), ("c", seg[m.end():])]
            continue
        toks = list(re.finditer(r"\S+", seg))
        first = next((i for i, t in enumerate(toks) if "\\" in t.group()), None)
        if first is None:
            out += _plain_formulas(seg)
            continue
        start = first
        while start > 0 and not _CJK_OR_COLON.search(toks[start - 1].group()) and \
                re.search(r"[=()_^{}\d]", toks[start - 1].group()):
            start -= 1
        end, depth = len(toks), 0
        for i in range(start, len(toks)):
            t = toks[i].group()
            if depth == 0 and i > first and re.fullmatch(r"[A-Za-z]{2,}[,.;:]?|\S*[\u3000-\u9fff\uff00-\uffef]\S*", t):
                end = i
                break
            depth += t.count("{") - t.count("}")
        at, stop = toks[start].start(), toks[end - 1].end()
        math = seg[at:stop]
        if safe_math(math):
            out += [("t", seg[:at]), ("m", math), ("t", seg[stop:])]
        else:
            out.append(("t", seg))
    return tuple(p for p in out if p[1])


def build_rows(checker: Checker, results: list) -> list:
    problem = checker.problem
    lang = checker.lang
    sol = None
    if not problem.is_symbolic:
        sol = problem.solve(digits=checker.digits)
    tex = Tex(problem, sol)
    rows = []
    shown_derivations: dict = {}        # a derivation already shown: {its lines: the claim it is under}
    shown_mistakes: dict = {}           # the same for the explanation of a mistake
    for r in results:
        c = r.claim
        try:
            of_tex = tex.tree(c.of_tree)
        except (TypeError, KeyError):
            of_tex = ""
        formula = c.kind != "value" and not c.constant
        claimed_tex = tex.tree(c.tree) if (c.kind != "value" and c.tree is not None) else \
            _tex_value(tex, r.claimed)
        if formula:
            # language-neutral LaTeX: worked out once, shared by the report of every language
            true_tex = checker.rc.memo(("errata-true-tex", c.index), lambda: _true_formula_tex(tex, c)) \
                if c.of_error is None else ""
        else:
            true_tex = _tex_value(tex, r.true)
        lines: tuple = ()
        if r.verdict == "wrong" and not problem.is_symbolic and c.of_error is None:
            try:
                lines = checker.rc.memo(("errata-derivation", c.index),
                                        lambda: packed(tuple(derivation(tex, checker, c))))
            except (DeriveError, KeyError, TypeError):
                lines = ()
        same_as = shown_derivations.get(lines, 0) if lines else 0
        if lines and not same_as:
            shown_derivations[lines] = c.index
        chain: list = []
        if r.verdict == "wrong":
            explain = mistake(tex, r, lang, results)
            # a catalogued mistake word for word an earlier claim's (not an arithmetic slip, which is
            # no one mistake, nor a carried error, which names its own claims)
            first = shown_mistakes.setdefault(tuple(explain), c.index) \
                if r.diagnosis not in ("arithmetic", "carried-forward", None, "") else c.index
            if first != c.index:            # word for word an earlier claim's: named, not repeated
                explain = _pieces(WORDS[lang]["same_mistake"], {}) [:1] + [("ref", first)] + \
                    _pieces(WORDS[lang]["same_mistake"], {})[1:]
        elif r.verdict in ("rounding", "truncated"):
            const = shown = None
            if c.constant and c.formula_query is not None and c.formula_query.shape == ():
                const = checker.rc.truth(c.formula_query)[0][0]
            if c.query is not None and c.query.shape == ():
                tv, tn = checker.rc.truth(c.query)
                sig = c.stated[0].sig if c.kind == "value" else 0
                shown = true_value_tex(tv[0], tn[0], max(checker.digits, sig))
                if r.rounding is not None and r.rounding.kind == "unit" and sig:
                    shown = evident_value_tex(tv[0], tn[0], sig, checker.digits)
            explain, chain = rounding_pieces(tex, r, lang, const, shown, checker.digits)
        else:
            explain = []
        true_digits_tex = "" if formula else _tex_value(tex, r.true_digits)
        if not formula and not problem.is_symbolic and c.query is not None and c.query.shape == () \
                and true_digits_tex:
            tv, tn = checker.rc.truth(c.query)
            true_digits_tex = true_value_tex(tv[0], tn[0], checker.digits)
        rows.append(Row(c.index, f"claim-{c.index}", c.of, of_tex, c.kind, plain(r.claimed), claimed_tex,
                        plain(r.true), true_tex, plain(r.true_digits), true_digits_tex,
                        r.verdict, VERDICT_NAMES[lang][r.verdict], r.diagnosis or "",
                        heading_name(r, lang), r.message, note_pieces(c.note, lang, c.note_zh), lines, tuple(r.carries),
                        tuple(explain), tuple(chain), formula, same_as))
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


def render_report(cf, results: list, fmt: str, lang: str, digits: int, checker: Checker | None = None,
                  sweep: tuple | None = None, rows: list | None = None) -> str:
    """The errata document of one checked claims file as Markdown ('md') or LaTeX ('tex').
    `sweep`: `sweep_claims(spec, digits)` when already computed (it trains the network);
    `rows`: `build_rows(checker, results)` when already built (they do not depend on the format)."""
    if checker is None:
        checker = Checker(cf.problem, digits, lang)
        checker.results = list(results)
    env = environment(fmt)
    s = strings(lang)
    demonstration = getattr(cf, "demonstration", False)
    if demonstration:       # claims written for an example without a source document: worded as such
        s = {**s, **s.get("demonstration", {})}
    spec = cf.problem.spec
    rows = build_rows(checker, results) if rows is None else rows
    title, source = document_title(spec, lang) or spec.id, cited_source(spec.source_in(lang))
    names = pr.display_names(spec, cf.problem.graph)
    head = source_head(getattr(cf, "source_title", ""), getattr(cf, "source_author", ""), s, bool(source))
    source_parts = (((False, head),) if head else ()) + tuple(typeset_parts(source, spec, names))
    source = head + source
    counts = summary(results)
    ctx = dict(
        s=s, lang=lang, title=title, source=source, spec_id=spec.id, digits=digits,
        title_parts=typeset_parts(title, spec, names), source_parts=source_parts,
        claims_file=Path(cf.path).name, rows=rows, summary=counts, verdicts=VERDICTS,
        summary_line=summary_line(results, lang, demonstration), symbolic=cf.problem.is_symbolic,
        wrong=[r for r in rows if r.verdict == "wrong"],
        minor=[r for r in rows if r.verdict in ("rounding", "truncated")],
        cjk=any(CJK.search(x) for x in [title, source] + [r.message for r in rows]
                + [p[1] for r in rows for p in r.note]),
        given=given_pieces(Tex(cf.problem), lang, s), table_lead=table_lead(rows),
        sweep=sweep_rows(sweep_claims(spec, digits) if sweep is None else sweep, lang), sweep_steps=spec.training.sweep.steps if spec.training.sweep else 0,
    )
    name = "errata.md.j2" if fmt == "md" else "errata.tex.j2"
    return tpl.render(env, name, ctx)


# the file name of a source document kept as a hashed copy (seeds/000_3542a7de84a5e77d.txt), in
# front of the sections the spec's source line cites: a name that tells a reader nothing
_HASHED_FILE = re.compile(r"^\s*(?:[\w.-]+/)*\d+_[0-9a-f]{8,}\.(?:txt|md|html?)\s*(?:[,，;；:：]\s*|$)")


def table_lead(rows: list) -> int:
    """The lines the claim table's heading, introduction, head and first row take (a \\Needspace,
    so that the heading never ends a page alone nor with one row): 10, and two more per further row
    of a matrix in the first row."""
    if not rows:
        return 10
    r = rows[0]
    cells = [r.claimed_tex, r.true_tex if r.verdict != "correct" else ""]
    extra = max((x.count("\\\\") for x in cells if "pmatrix" in x), default=0)
    return 10 + 2 * extra


def source_head(title: str, author: str, s: dict, more: bool) -> str:
    """The source document named in front of its sections: its title (and author, when the claims
    file's [source] gives one), “人工神经网络与梯度下降法”, then the separator when sections follow."""
    if not title:
        return ""
    head = s["source_title"].replace("{title}", title)
    if author:
        head += s["source_author"].replace("{author}", author)
    return head + (s["source_sep"] if more else "")


def cited_source(source: str) -> str:
    """The source as the errata cite it: the spec's source line without the hashed file name in
    front of it (its sections, §(一)4 权重的梯度 …), so that every errata cites the same way
    whether the spec writes seeds/001_….txt or 001_….txt; a line that is nothing else is kept."""
    rest = _HASHED_FILE.sub("", source, count=1)
    return rest if rest.strip() else source


def sweep_claims(spec, digits: int) -> tuple:
    """The source's verdicts on learning rates (train.sweep.claimed) against the runs: one dict per
    stated verdict (learning rate, claimed, found — train.verdict, which the source's two-valued
    words are compared with —, shown — the worked solution's word for the run,
    `training_context.shown_verdict`: converging, diverging or oscillating —, the last loss computed
    and its step, the step in which the run stopped and whether its loss passed the float64 range
    there), () when none is stated."""
    sw = spec.training.sweep
    if spec.is_symbolic or sw is None or not any(sw.claimed):
        return ()
    return tuple({"eta": train.fraction_text(r.learning_rate), "claimed": c, "found": r.verdict,
                  "shown": shown_verdict(r.verdict, r.training.history_floats, r.training.diverged),
                  "last": r.training.history[-1].text, "last_tex": pr.number(r.training.history[-1].text),
                  "last_step": len(r.training.history) - 1,
                  "diverged": r.training.diverged,
                  "overflow": r.training.diverged is not None and "overflow" in (r.training.reason or "")}
                 for r, c in zip(train.sweep_of(spec, digits), sw.claimed) if c)


OVERFLOW_TEX = "2^{1024} \\approx 1.8 \\times 10^{308}"     # train.OVERFLOW: beyond the float64 range


def sweep_rows(sweep: tuple, lang: str) -> tuple:
    """The sweep's rows for a document in `lang`: each with `shows`, what training shows, as pieces
    (the worked solution's verdict; for a run that stopped, in which step and why: its loss passed
    train.OVERFLOW, or the step could not be computed)."""
    s = strings(lang)
    out = []
    for r in sweep:
        shows = [("t", s["shown_" + r["shown"]])]
        if r["diverged"] is not None:
            n = str(r["diverged"])
            if r["overflow"]:
                a, b = s["diverged_in"].replace("{n}", n).split("{limit}")
                shows += [("t", a), ("m", OVERFLOW_TEX), ("t", b)]
            else:
                shows.append(("t", s["diverged_other"].replace("{n}", n)))
        out.append({**r, "shows": tuple(p for p in shows if p[1])})
    return tuple(out)


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
    stated: str = ""       # a scalar value claim's stated number (the handout's list shows it)


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
    sweep = sweep_claims(cf.problem.spec, digits)      # the runs of the spec's sweep, once
    out = {}
    for lang in langs:
        checker = base.speaking(lang)
        results = checker.check(cf.claims)
        cf.path = f"{pid}.claims.toml"
        rows = build_rows(checker, results)             # one language's rows, for md and tex
        docs = {fmt: render_report(cf, results, fmt, lang, digits, checker, sweep, rows) for fmt in ("md", "tex")}
        # claims written for the example (no source document) are not listed in the handout as a
        # source's errors
        steps = [] if cf.demonstration else \
            [ErrataStep(r.claim.index, r.claim.of, r.verdict, r.diagnosis, f"claim-{r.claim.index}",
                        r.claim.stated[0].text if r.claim.kind == "value" and r.claim.stated
                        and len(r.claim.stated) == 1 else "")
             for r in results if r.verdict != "correct"]
        out[lang] = (docs, steps)
    return out


def write_errata(out_dir="output", digits: int = 10) -> list:
    """Write <out_dir>/errata/<id>.md, .tex (English) and <id>.zh.md, .zh.tex (Chinese) for every
    built-in problem with a claims file.  Returns the paths written.  Atomic and deterministic."""
    written = []
    target = Path(out_dir) / "errata"
    for pid, path in builtin_claims():
        reports = errata_by_language(pid, path, ERRATA_LANGS, digits)    # checked once, both languages
        for lang in ERRATA_LANGS:
            docs, _steps = reports[lang]
            for fmt, text in docs.items():
                p = target / errata_name(pid, lang, fmt)
                write_atomic(p, text, make_parents=True)
                written.append(str(p))
    return written
