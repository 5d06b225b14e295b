"""The checker's messages, in English and Chinese: the sentence of one verdict, from its data."""
from __future__ import annotations


from .claims import entry_label, nest
from .report import cell
from .verdicts import shown_true, text_at
MESSAGES = {
    "en": {
        "correct_value": "equals the true value {td} rounded to the stated digits",
        "correct_exact": "exactly the true value {td}",
        "correct_formula": "equivalent to the true formula{how}",
        "how_sympy": " (SymPy confirms it symbolically)",
        "how_numeric": " (equal at the given values and at {k} random points, {d} digits)",
        "rounding_unit": "one unit off in the last of {n} stated digits: the true value {td} rounds to {tr}",
        "rounding_world": "the true value {td} rounds to {tr}, but working with intermediate values rounded "
                          "to {n} significant digits gives {alt}: a rounding effect",
        "rounding_const": "the true value is {td}; the numbers in this expression are the intermediate values "
                          "rounded to {n} significant digits",
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
        "because": "; explained by {diag}: {what}",
        "carried": "computed correctly from the earlier claim(s) {claims}",
        "restated": "restates the earlier claim {claims}",
        "own_formula": " with the author's formula of claim {claim}",
        "also": " (also consistent with: {others})",
        "entries": "; entries {which}",
        "arithmetic": "; no single mistake tested reproduces it (arithmetic)",
        "scalar": "a scalar", "matrix": "a {r}×{c} matrix",
    },
    "zh": {
        "correct_value": "等于真值 {td} 按所写位数舍入的结果",
        "correct_exact": "恰好等于真值 {td}",
        "correct_formula": "与正确公式等价{how}",
        "how_sympy": "(SymPy 符号化验证)",
        "how_numeric": "(在题目给定值和 {k} 个随机点上以 {d} 位精度相等)",
        "rounding_unit": "所写 {n} 位有效数字的最后一位差一:真值 {td} 舍入为 {tr}",
        "rounding_world": "真值 {td} 舍入为 {tr},但用舍入到 {n} 位有效数字的中间值计算得到 {alt}:舍入误差",
        "rounding_const": "真值为 {td};式中的数是舍入到 {n} 位有效数字的中间值",
        "truncated": "真值 {td} 在所写位数处被截断而非舍入;舍入应为 {tr}",
        "wrong_value": "真值为 {tr}({td})",
        "wrong_exact": "真值为 {td}",
        "const_value": "该式等于 {val};",
        "entries_wrong": "{m} 个分量中 {n} 个错误({which})",
        "entries_all_wrong": "全部 {m} 个分量都错误",
        "entries_all_truncated": "全部 {m} 个分量都在所写位数处被截断而非舍入",
        "entries_all_rounding": "全部 {m} 个分量都为舍入误差",
        "entries_truncated": "{which} 在所写位数处被截断而非舍入",
        "entries_rounding": "{which} 为舍入误差",
        "true_matrix": "真值为 {tr}",
        "wrong_formula": "与正确公式 {tf} 不等价",
        "given_only": ";在本题的数值下相等,但一般不成立(与 {names} 的关系不同)",
        "one_hot_hint": ";当 {name} 为独热向量(各分量为 0 或 1,和为 1)时成立:若是如此,请在题目中声明 one_hot = [\"{name}\"]",
        "of_error": "所声称的量没有定义:{err}",
        "formula_error": "公式无意义:{err}",
        "shape_mismatch": "公式是{fs},而 {of} 是{qs}",
        "sum_note": "(其各分量之和等于 {of})",
        "because": ";原因是 {diag}:{what}",
        "carried": "用前面的声明 {claims} 的值计算是正确的",
        "restated": "重复了前面的声明 {claims}",
        "own_formula": ",并用了声明 {claim} 中作者自己的公式",
        "also": "(也符合:{others})",
        "entries": ";分量 {which}",
        "arithmetic": ";所检验的单一错误都不能重现它(计算错误)",
        "scalar": "标量", "matrix": "{r}×{c} 矩阵",
    },
}


def shape_words(shape, lang) -> str:
    m = MESSAGES[lang]
    return m["scalar"] if shape == () else m["matrix"].format(r=shape[0], c=shape[1])


class Messages:
    """Messages in one language; `results` (the verdicts so far) for naming earlier claims."""

    def __init__(self, lang: str, digits: int, results: list):
        self.lang, self.digits, self.results = lang, digits, results

    def msg(self, key: str, **kw) -> str:
        return MESSAGES[self.lang][key].format(**kw)

    def value_message(self, claim, per, stated, T, numbers, verdict, diagnosis, carries, also, what) -> str:
        def td_of(s, t, num):
            return shown_true(t, num, max(self.digits, (s.sig or 0) + 3))

        if len(per) == 1:
            (v, detail), s, t, num = per[0], stated[0], T[0], numbers[0]
            td = td_of(s, t, num)
            tr = text_at(s, t) if not claim.constant else td
            if v == "correct":
                text = self.msg("correct_exact" if claim.constant else "correct_value", td=td)
            elif v == "rounding":
                kind, n, alt = detail
                if kind == "unit":
                    text = self.msg("rounding_unit", n=n, td=td, tr=tr)
                elif kind == "const":
                    text = self.msg("rounding_const", n=n, td=td)
                else:
                    text = self.msg("rounding_world", n=n, td=td, tr=tr, alt=text_at(s, alt))
            elif v == "truncated":
                text = self.msg("truncated", td=td, tr=tr)
            else:
                text = self.msg("wrong_value", td=td, tr=tr) if tr != td else self.msg("wrong_exact", td=td)
            if claim.constant and v != "correct":
                text = self.msg("const_value", val=shown_true(s.value, None, max(self.digits, 6))) + text
        else:
            groups: dict = {}
            for i, (v, _d) in enumerate(per):
                groups.setdefault(v, []).append(f"[{entry_label(i, claim.shape)}]")
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
            text = "; ".join(parts)
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
            text = self.msg("because", diag=diagnosis, what=body)
        else:
            text = self.msg("because", diag=diagnosis, what=what.text[0 if self.lang == "en" else 1])
        if also:
            text += self.msg("also", others=", ".join(also))
        return text

    def claim_ref(self, index: int) -> str:
        r = self.results[index - 1]
        c = r.claim
        shown = c.claimed_display() if c.kind == "value" else c.reading
        if isinstance(shown, list):
            shown = "[…]"
        return f"[{index}] {c.of} = {shown} ({r.verdict})"

