"""The checker's messages, in English and Chinese: the sentence of one verdict, from its data;
the names of the verdicts and diagnoses for readers are `verdicts.VERDICT_NAMES` and
`verdicts.DIAGNOSIS_NAMES` (the one table used by `derive check` and the errata)."""
from __future__ import annotations

import re

from . import expr as ex
from .claims import nest
from .report import cell
from .verdicts import DIAGNOSIS_NAMES, VERDICT_NAMES, diagnosis_name, shown_true, sig_text, text_at  # noqa: F401


ROUNDED_ORDER = ("forward", "local", "adjoint")
_MATMUL = re.compile(r"shape mismatch in '@': (.+?) @ (.+?) \((\d+) columns against (\d+) rows\)$")
_SHAPE = re.compile(r"an? (\d+)×(\d+) matrix")


_JACOBIAN = re.compile(r"^(\S+) would be a Jacobian of an? (\d+)×(\d+) by an? (\d+)×(\d+) matrix; one of them "
                       r"must be a scalar, or both of one shape and elementwise$")
_FULL_JACOBIAN = re.compile(r"^(\S+) is a full Jacobian \(each entry of (\S+) depends on several entries of "
                            r"(\S+)\); ask for a scalar, e\.g\. .*$")


def readable_error(err: str, lang: str) -> str:
    """An error of the expression language in the reader's words (no Python operator '@'; the
    undefined Jacobians of `quantity.derivative_pairs` in Chinese too)."""
    m = _JACOBIAN.match(err)
    if m:
        q, r1, c1, r2, c2 = m.groups()
        if lang == "zh":
            return (f"{q} 是 {r1}×{c1} 矩阵对 {r2}×{c2} 矩阵的雅可比矩阵，这里没有定义：两者之一必须是标量，"
                    "或者两者形状相同、逐元素对应")
        return err
    m = _FULL_JACOBIAN.match(err)
    if m and lang == "zh":
        q, a, b = m.groups()
        return f"{q} 是完整的雅可比矩阵（{a} 的每个分量都依赖 {b} 的多个分量）；请改问一个标量，例如用 sum() 求和后的导数"
    m = _MATMUL.search(err)
    if m is None:
        return err.replace("'@'", "the matrix product" if lang == "en" else "矩阵乘积")
    a, b, c, r = m.groups()
    if lang == "zh":
        a, b = (_SHAPE.sub(lambda x: f"{x.group(1)}×{x.group(2)} 矩阵", t) for t in (a, b))
    t = MESSAGES[lang]
    return err[:m.start()] + t["matmul_error"].format(a=a, b=b, detail=t["matmul_detail"].format(c=c, r=r))


MESSAGES = {
    "en": {
        "correct_value": "equals the true value {td} rounded to the stated digits",
        "correct_exact": "exactly the true value {td}",
        "correct_formula": "equivalent to the true formula{how}",
        "how_sympy": " (SymPy confirms it symbolically)",
        "how_numeric": " (equal at the given values and at {k} random points, {d} digits)",
        "rounding_unit": "one unit off in the last of {n} stated digits: the true value {td} rounds to {tr}",
        "rounding_world": "the true value {td} rounds to {tr}, but a hand calculation with {which} rounded "
                          "to {n} significant digits gives {alt}: only rounding",
        "rounding_chain": " ({chain})",
        "rounding_const": "the true value is {td}; the numbers in this expression are the intermediate values "
                          "rounded to {n} significant digits",
        "rounding_const_chain": "the true value is {td}; the numbers in this expression are the {which} of a "
                                "hand calculation at {n} significant digits ({chain})",
        "rounded_forward": "values", "rounded_local": "local derivatives", "rounded_adjoint": "backpropagated derivatives",
        "and": " and ",
        "truncated": "the true value {td} cut off at the stated digits; rounded it is {tr}",
        "wrong_value": "the true value is {tr} ({td})",
        "wrong_exact": "the true value is {td}",
        "const_value": "the expression equals {val}; ",
        "entries_wrong": "{n} of {m} entries wrong ({which})",
        "entries_all_wrong": "all {m} entries wrong",
        "entries_all_truncated": "all {m} entries cut off (not rounded) at the stated digits",
        "entries_all_rounding": "all {m} entries off by rounding",
        "entries_truncated": "{which} cut off (not rounded) at the stated digits",
        "entries_rounding": "{which} off by rounding",
        "true_matrix": "the true value is {tr}",
        "wrong_formula": "not equivalent to the true formula {tf}",
        "given_only": "; equal at this problem's values but not in general (it depends differently on {names})",
        "one_hot_hint": "; it holds when {name} is one-hot (entries 0 or 1 summing to 1): if it is, declare one_hot = [\"{name}\"] in the spec",
        "of_error": "the claimed quantity is not defined: {err}",
        "formula_error": "the formula is undefined: {err}",
        "shape_mismatch": "the formula is {fs}, but {of} is {qs}",
        "sum_note": " (the sum of its entries equals {of})",
        "because": "; reproduced by this mistake: {what}",
        "carried": "computed correctly from the earlier claim(s) {claims}",
        "matmul_error": "the matrix product of {a} and {b} is undefined ({detail})",
        "matmul_detail": "{c} columns against {r} rows",
        "restated": "restates the earlier claim {claims}",
        "own_formula": " with the author's formula of claim {claim}",
        "also": " (also consistent with: {others})",
        "entries": "; entries {which}",
        "arithmetic": "; no single mistake tested reproduces it (an arithmetic slip)",
        "scalar": "a scalar", "matrix": "a {r}×{c} matrix",
    },
    "zh": {
        "correct_value": "等于真值 {td} 按所写位数四舍五入的结果",
        "correct_exact": "恰好等于真值 {td}",
        "correct_formula": "与正确公式等价{how}",
        "how_sympy": "（SymPy 已做符号验证）",
        "how_numeric": "（在题目给定值和 {k} 个随机点上按 {d} 位精度相等）",
        "rounding_unit": "所写的 {n} 位有效数字中最后一位差 1：真值 {td} 四舍五入后是 {tr}",
        "rounding_world": "真值 {td} 四舍五入后是 {tr}，但把{which}保留 {n} 位有效数字来手算，得到的正是 {alt}："
                          "只是舍入造成的差别",
        "rounding_chain": "（{chain}）",
        "rounding_const": "真值为 {td}；式中的数是保留 {n} 位有效数字的中间结果",
        "rounding_const_chain": "真值为 {td}；式中的数是保留 {n} 位有效数字手算时的{which}（{chain}）",
        "rounded_forward": "中间值", "rounded_local": "局部导数", "rounded_adjoint": "反向传播的导数",
        "and": "和",
        "truncated": "真值 {td} 在所写的位数处被截断，而不是四舍五入；四舍五入应为 {tr}",
        "wrong_value": "真值为 {tr}（{td}）",
        "wrong_exact": "真值为 {td}",
        "const_value": "该式等于 {val}；",
        "entries_wrong": "{m} 个分量中有 {n} 个错误（{which}）",
        "entries_all_wrong": "全部 {m} 个分量都错误",
        "entries_all_truncated": "全部 {m} 个分量都在所写位数处被截断，而不是四舍五入",
        "entries_all_rounding": "全部 {m} 个分量的差别都只是舍入造成的",
        "entries_truncated": "{which} 在所写位数处被截断，而不是四舍五入",
        "entries_rounding": "{which} 的差别只是舍入造成的",
        "true_matrix": "真值为 {tr}",
        "wrong_formula": "与正确公式 {tf} 不等价",
        "given_only": "；在本题的数值下相等，但一般不成立（对 {names} 的依赖不同）",
        "one_hot_hint": "；当 {name} 为独热向量（各分量为 0 或 1，和为 1）时成立：若是如此，请在题目中声明 one_hot = [\"{name}\"]",
        "of_error": "所断言的量没有定义：{err}",
        "formula_error": "公式无意义：{err}",
        "shape_mismatch": "公式是{fs}，而 {of} 是{qs}",
        "sum_note": "（其各分量之和等于 {of}）",
        "because": "；可由这个错误重现：{what}",
        "carried": "用前面断言 {claims} 的值计算，本身没有算错",
        "restated": "重复了前面的断言 {claims}",
        "own_formula": "，并用了断言 {claim} 中作者自己的公式",
        "also": "（也符合：{others}）",
        "entries": "；分量 {which}",
        "arithmetic": "；所检验的各种单一错误都不能重现它（计算错误）",
        "matmul_error": "{a}与 {b}的矩阵乘积无定义（{detail}）",
        "matmul_detail": "{c} 列对 {r} 行",
        "scalar": "标量", "matrix": "一个 {r}×{c} 矩阵",
    },
}


_CJK_CHAR = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
_FULL = {",": "，", ":": "：", ";": "；"}


def full_width(text: str) -> str:
    """Chinese punctuation after Chinese text: , : ; after a Chinese character become ，：；, and a
    parenthesis opened after one becomes （…） (with its own closing one); formulas keep theirs."""
    out, stack = [], []
    skip = False
    for i, ch in enumerate(text):
        prev = text[i - 1] if i else ""
        if skip and ch == " ":
            continue
        skip = False
        if ch in _FULL and _CJK_CHAR.match(prev):
            out.append(_FULL[ch])
            skip = True         # no space after a full-width mark
        elif ch == "(":
            wide = bool(_CJK_CHAR.match(prev))
            stack.append(wide)
            out.append("（" if wide else ch)
        elif ch == ")" and stack:
            out.append("）" if stack.pop() else ch)
        else:
            out.append(ch)
    return "".join(out)


def rounded_words(rounded, lang: str) -> str:
    """What a hand calculation rounds ("values and local derivatives"), from a rounding subset."""
    m = MESSAGES[lang]
    parts = [m[f"rounded_{k}"] for k in ROUNDED_ORDER if k in rounded]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + m["and"] + parts[-1] if lang == "en" else "、".join(parts[:-1]) + m["and"] + parts[-1]


def rounded_chain_text(chain, n: int) -> str:
    """The rounded chain as text: h1 ≈ 0.0474, ∂L/∂y_pred ≈ −0.952, … (`worlds.rounded_chain`)."""
    out = []
    for kind, e, wrt, k, v in chain:
        at = f"@{k}" if k else ""
        name = e.name if kind == "forward" else f"∂{e.name}/∂{wrt.name}"
        out.append(f"{name}{at} = {sig_text(v, n)}")
    return ", ".join(out)


def shape_words(shape, lang) -> str:
    m = MESSAGES[lang]
    return m["scalar"] if shape == () else m["matrix"].format(r=shape[0], c=shape[1])


class Messages:
    """Messages in one language; `results` (the verdicts so far) for naming earlier claims."""

    def __init__(self, lang: str, digits: int, results: list):
        self.lang, self.digits, self.results = lang, digits, results

    def msg(self, key: str, **kw) -> str:
        if "err" in kw:
            kw["err"] = readable_error(kw["err"], self.lang)
        return MESSAGES[self.lang][key].format(**kw)

    def value_message(self, claim, per, stated, T, numbers, verdict, diagnosis, carries, also, what,
                      rounding=None) -> str:
        def td_of(s, t, num):
            return shown_true(t, num, max(self.digits, (s.sig or 0) + 3))

        if len(per) == 1:
            (v, detail), s, t, num = per[0], stated[0], T[0], numbers[0]
            td = td_of(s, t, num)
            tr = text_at(s, t) if not claim.constant else td
            if v == "correct":
                text = self.msg("correct_exact" if claim.constant else "correct_value", td=td)
            elif v == "rounding":
                kind, n, alt, rounded = detail
                which = rounded_words(rounded or (), self.lang)
                chain = rounded_chain_text(rounding.chain, n) if rounding is not None and rounding.chain else ""
                if kind == "unit":
                    text = self.msg("rounding_unit", n=n, td=td, tr=tr)
                elif kind == "const":
                    which = rounded_words({x[0] for x in rounding.chain}, self.lang) if chain else which
                    text = self.msg("rounding_const_chain", n=n, td=td, which=which, chain=chain) if chain else \
                        self.msg("rounding_const", n=n, td=td)
                else:
                    text = self.msg("rounding_world", n=n, td=td, tr=tr, alt=text_at(s, alt), which=which)
                    if chain:
                        text += self.msg("rounding_chain", chain=chain)
            elif v == "truncated":
                text = self.msg("truncated", td=td, tr=tr)
            else:
                text = self.msg("wrong_value", td=td, tr=tr) if tr != td else self.msg("wrong_exact", td=td)
            if claim.constant and v != "correct":
                text = self.msg("const_value", val=shown_true(s.value, None, max(self.digits, 6))) + text
        else:
            groups: dict = {}
            for i, (v, _d) in enumerate(per):
                groups.setdefault(v, []).append(f"[{ex.index_text(claim.shape, i)}]")
            tr = nest([text_at(s, t) for s, t in zip(stated, T)], claim.shape, claim.flat)
            parts = []
            for v in ("wrong", "truncated", "rounding"):
                if v in groups and len(groups[v]) == len(per):
                    parts.append(self.msg(f"entries_all_{v}", m=len(per)))
                elif v in groups:
                    parts.append(self.msg(f"entries_{v}", which=", ".join(groups[v]), n=len(groups[v]),
                                          m=len(per)))
            if not parts:
                parts.append(self.msg("correct_value", td=cell(nest([n.text for n in numbers], claim.shape,
                                                                      claim.flat), 200)))
            else:
                parts.append(self.msg("true_matrix", tr=cell(tr, 200)))
            text = ("; " if self.lang == "en" else "；").join(parts)
        if verdict == "wrong":
            text += self.diagnosis_text(diagnosis, carries, also, what)
        return text

    def diagnosis_text(self, diagnosis, carries, also, what) -> str:
        if diagnosis is None:
            return ""
        if diagnosis == "arithmetic":
            return self.msg("arithmetic")
        if diagnosis == "carried-forward":
            claims = ", ".join(self.claim_ref(i) for i in carries)
            if what.get("restated"):
                body = self.msg("restated", claims=claims)
            else:
                body = self.msg("carried", claims=claims)
                if what.get("formula"):
                    body += self.msg("own_formula", claim=f"[{what['formula']}]")
            text = self.msg("because", what=body)
        else:
            text = self.msg("because", what=what.text[0] if self.lang == "en" else full_width(what.text[1]))
        if also:
            sep = ", " if self.lang == "en" else "、"
            text += self.msg("also", others=sep.join(diagnosis_name(a, self.lang) for a in also))
        return text

    def claim_ref(self, index: int) -> str:
        r = self.results[index - 1]
        c = r.claim
        shown = c.claimed_display() if c.kind == "value" else c.reading
        if isinstance(shown, list):
            shown = "[…]"
        verdict = VERDICT_NAMES[self.lang][r.verdict]
        return f"[{index}] {c.of} = {shown} ({verdict})" if self.lang == "en" else f"[{index}] {c.of} = {shown}（{verdict}）"

