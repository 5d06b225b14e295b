"""The interactive HTML worked solution (derive/htmlpage.py, templates/solution.html.j2, page.js)
without a browser: the page's structure (an answer box per step, named as derive check reads
quantities), the embedded values against independent computations (tests/reference.py), the
judge of page.js (run with node) against `derive check` on many numbers, self-containedness, the
Moodle fragment, the exercise page and the command line."""
import json
import re
import shutil
import subprocess
import tempfile
import time
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import mpmath
import pytest

import derive
import reference as ref
from conftest import run_cli
from derive import htmlpage as hp
from derive import render as rd
from derive.check import Checker
from derive.claims import load_claims
from derive.hypotheses import DIAGNOSES

ROOT = Path(__file__).resolve().parent.parent
PAGE_JS = ROOT / "templates" / "page.js"
NODE = shutil.which("node")


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list = []
        self.scripts: list = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in = dict(attrs)
            self.scripts.append([dict(attrs), ""])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            self.scripts[-1][1] += data


def parse(text: str) -> Tags:
    t = Tags()
    t.feed(text)
    return t


def page_data(text: str) -> list:
    return [json.loads(body) for attrs, body in parse(text).scripts if attrs.get("class") == "derive-data"]


@pytest.fixture(scope="module")
def two():
    p = derive.load("two-two-two")
    return p, hp.page(p, lang="en")


def val(text: str) -> Fraction:
    """A value as the page embeds it: a decimal, 0xMANTISSApEXP (m·2^exp) or n/d."""
    m = re.fullmatch(r"(-?)0x([0-9a-f]+)p(-?\d+)", text)
    if m:
        return (-1 if m.group(1) else 1) * Fraction(int(m.group(2), 16)) * Fraction(2) ** int(m.group(3))
    return Fraction(text)


def mp(text: str):
    v = val(text)
    return mpmath.mpf(v.numerator) / v.denominator


def quantities(text: str) -> list:
    return [a["data-quantity"] for tag, a in parse(text).tags if tag == "input" and "data-quantity" in a]


# ---------------------------------------------------------------- structure
def test_an_answer_box_before_every_step_in_the_order_of_the_solution(two):
    p, page = two
    qs = quantities(page)
    fwd = [d.name for d in p.spec.forward if d.name != p.spec.loss]
    params = [f"w{i}" for i in range(1, 9)]
    assert qs[:len(fwd) + 1] == fwd + ["E_total"]
    backward = qs[len(fwd) + 1:len(fwd) + 1 + 4 + 8]
    # the output layer's δ, its gradients, then the hidden layer's (the textbook order)
    assert backward == ["dE_total/dnet_o1", "dE_total/dnet_o2", "dE_total/dw5", "dE_total/dw6", "dE_total/dw7",
                        "dE_total/dw8", "dE_total/dnet_h1", "dE_total/dnet_h2", "dE_total/dw1", "dE_total/dw2",
                        "dE_total/dw3", "dE_total/dw4"]
    rest = qs[len(fwd) + 13:]
    assert sorted(rest[:8]) == sorted(f"{w}@1" for w in params)
    assert rest[8:] == [f"{n}@1" for n in fwd] + ["E_total@1"]
    assert len(qs) == len(set(qs))
    tags = parse(page).tags
    # each box: a label, a button beside it, an output; the working behind a <details>
    assert sum(1 for t, a in tags if t == "button" and a.get("class") == "check") == len(qs)
    assert sum(1 for t, a in tags if t == "details" and a.get("class") == "working") == len(qs)
    ids = [a["id"] for t, a in tags if t == "input"]
    assert [a["for"] for t, a in tags if t == "label"] == ids


def test_the_embedded_values_are_the_true_ones(two):
    """Truths against the hand-written mpmath network; mistakes against their definitions."""
    p, page = two
    (data,) = page_data(page)
    q = data["q"]
    grads = ref.gradients("two-two-two")
    deltas = ref.deltas("two-two-two")
    with mpmath.workdps(50):
        for i in range(1, 9):
            g = grads[(f"w{i}", ())]
            assert abs(mp(q[f"dE_total/dw{i}"]["t"]) - g) < mpmath.mpf(10) ** -38
            new = mpmath.mpf(ref.numbers("two-two-two")[f"w{i}"]) - mpmath.mpf("0.1") * g
            assert abs(mp(q[f"w{i}@1"]["t"]) - new) < mpmath.mpf(10) ** -38
        for n, d in deltas.items():
            assert abs(mp(q[f"dE_total/d{n}"]["t"]) - d) < mpmath.mpf(10) ** -38
        assert abs(mp(q["E_total"]["t"]) - ref.loss_value("two-two-two")) < mpmath.mpf(10) ** -38
        after = ref.loss_after_one_step("two-two-two", [f"w{i}" for i in range(1, 9)])
        assert abs(mp(q["E_total@1"]["t"]) - after) < mpmath.mpf(10) ** -38
    assert q["net_h1"]["t"] == "0.415"           # exact values exactly
    t = val(q["dE_total/dw6"]["t"])
    by_tag = {}
    for tag, v, _i in q["dE_total/dw6"]["m"]:
        by_tag.setdefault(tag, []).append(val(v))
        assert tag in DIAGNOSES
    assert any(abs(v - 2 * t) < Fraction(1, 10 ** 38) for v in by_tag["factor-2"])
    assert any(abs(v + t) < Fraction(1, 10 ** 38) for v in by_tag["sign-flip"])
    # a mistake's description, in the page's language
    assert any("twice the true value" in data["texts"][i] for tag, _v, i in q["dE_total/dw6"]["m"])
    assert data["names"]["factor-2"] == "factor of 2"


def test_the_page_needs_no_network_and_has_its_math_and_diagram(two):
    _p, page = two
    tags = parse(page).tags
    assert not [a for t, a in tags if t in ("link", "img", "iframe", "object", "embed")]
    assert not [a for t, a in tags if t == "script" and "src" in a]
    assert "@import" not in page
    urls = re.findall(r"url\(([^)]*)\)", page)
    assert urls and all(u.startswith(("data:font/woff2;base64,", "#derive-arrow")) for u in urls)
    assert [a.get("class") for t, a in tags if t == "svg"] == ["derive-network"]
    assert 'name="viewport"' in page
    n_tex = page.count('class="tex"')
    assert n_tex > 100


def test_every_formula_of_the_markdown_solution_is_in_the_page(two):
    """The same content as the Markdown handout: every display of its context is in the page."""
    p, page = two
    sol = p.solve(digits=6)
    ctx = rd.build_context(p, sol, lang="en")
    eqs = [st.eq for st in ctx["forward"]] + [ctx["loss_step"].eq]
    for layer in ctx["layers"]:
        eqs += [d.eq for d in layer.deltas] + [g.eq for g in layer.grads]
    eqs += [u.eq for u in ctx["updates"]] + [st.eq for st in ctx["after"].steps] + [ctx["after"].loss.eq]
    html_text = page.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    for e in eqs:
        for line in ([e.flat] if e.flat else e.lines):
            assert line in html_text, line


@pytest.mark.parametrize("pid", ["house-price", "alice", "matrix-linear", "one-two-one", "softmax-3"])
def test_other_problems(pid):
    p = derive.load(pid)
    page = hp.page(p, lang="zh")
    qs = quantities(page)
    if p.is_symbolic:
        assert qs == [] and not page_data(page)
        assert page.count('class="working"') == 0        # formulas only, all shown
        return
    (data,) = page_data(page)
    assert set(qs) == set(data["q"]) and len(qs) == len(set(qs))
    assert data["lang"] == "zh" and data["names"]["factor-2"] == "相差因子 2"
    from derive.quantity import make_query
    from derive.worlds import Recomputations
    rc = Recomputations(p, 10)
    for text in qs[:6] + qs[-4:]:
        truth, _ = rc.truth(make_query(text, p.graph))
        assert len(truth) == 1 and abs(val(data["q"][text]["t"]) - truth[0]) <= abs(truth[0]) * Fraction(1, 10 ** 39)


def test_entries_of_matrices_are_named_as_derive_check_reads_them():
    p = derive.load("matrix-linear")
    qs = quantities(hp.page(p, lang="en"))
    assert "dE/dw2[1,2]" in qs and "w2[2,1]@1" in qs
    assert hp.entry_text("dE/dW", (0, 1), (2, 2)) == "dE/dW[1,2]"
    assert hp.entry_text("b@1", (3, 0), (4, 1)) == "b[4]@1"


def test_page_renders_in_under_a_second(two):
    p, _page = two
    hp.page(derive.load("two-two-two"), lang="en")       # templates compiled, KaTeX read
    times = []
    for _ in range(2):
        fresh = derive.load("two-two-two")
        t = time.perf_counter()
        hp.page(fresh, lang="en")
        times.append(time.perf_counter() - t)
    assert min(times) < 2.5, times        # the target is 1 s (README: measured); a loaded machine is slower


# ---------------------------------------------------------------- the judge of page.js vs derive check
def cases(q: dict) -> list:
    """Numbers a student might type for one quantity: the truth rounded and cut off, one unit off,
    hand calculations that round, every mistake, and some noise."""
    t = val(q["t"])
    out = set()
    for n in range(1, 9):
        for x in [t, t * Fraction(1001, 1000), t * Fraction(999, 1000)]:
            if x:
                out.add(_sig(x, n))
                out.add(_sig(x, n, cut=True))
        out.add(_sig(t, n, shift=1))
        out.add(_sig(t, n, shift=-1))
    for n, vals in q["r"].items():
        for v in vals[:3]:
            out.add(_sig(val(v), int(n)))
    for _tag, v, _i in q["m"]:
        for n in (3, 4, 6):
            out.add(_sig(val(v), n))
            out.add(_sig(val(v), n, cut=True))
    out |= {"abc", "", "1e5000", "0"}
    return sorted(out)


def _sig(x: Fraction, n: int, cut: bool = False, shift: int = 0) -> str:
    if x == 0:
        return "0"
    e = len(str(abs(x.numerator))) - len(str(x.denominator))
    if Fraction(10) ** e > abs(x):
        e -= 1
    q = Fraction(10) ** (e - n + 1)
    k = abs(x) / q
    k = int(k) if cut else int(k + Fraction(1, 2))
    k += shift
    v = (k if x > 0 else -k) * q
    places = max(0, -(e - n + 1))
    return f"{float(v):.{places}f}" if places < 17 else str(v)


def _python_verdicts(pid: str, items: list) -> list:
    """derive check's (verdict, diagnosis) of each (quantity, text), one claim at a time."""
    lines = [f'spec = "{pid}"']
    for qty, text in items:
        lines += ["[[claim]]", f'of = "{qty}"', f'value = "{text}"']
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.toml"
        path.write_text("\n".join(lines) + "\n")
        cf = load_claims(path)
    checker = Checker(cf.problem, 10, "en")
    out = []
    for c in cf.claims:
        (r,) = checker.speaking("en").check([c])
        out.append((r.verdict, r.diagnosis if r.diagnosis not in (None, "arithmetic", "carried-forward") else None))
    return out


def _node_verdicts(data: dict, items: list) -> list:
    script = (f"const j = require({json.dumps(str(PAGE_JS))});\n"
              "const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
              "const out = data.items.map(([q, t]) => { const s = j.parseStated(t);\n"
              "  if (!s) return ['invalid', null];\n"
              "  const r = j.judge(s, data.q[q]); return [r.verdict, r.diagnosis || null]; });\n"
              "process.stdout.write(JSON.stringify(out));\n")
    r = subprocess.run([NODE, "-e", script], input=json.dumps({"q": data["q"], "items": items}), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [tuple(x) for x in json.loads(r.stdout)]


@pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs it)")
def test_the_page_judges_as_derive_check_does(two):
    _p, page = two
    (data,) = page_data(page)
    items = []
    for qty in ["out_h1", "E_total", "dE_total/dnet_o1", "dE_total/dw6", "dE_total/dw1", "w6@1", "E_total@1"]:
        items += [(qty, t) for t in cases(data["q"][qty])]
    valid = [(q, t) for q, t in items if t not in ("abc", "", "1e5000")]
    js = _node_verdicts(data, items)
    assert [v for (q, t), v in zip(items, js) if t in ("abc", "", "1e5000")] == [("invalid", None)] * (
        3 * len(set(q for q, _ in items)))
    py = _python_verdicts("two-two-two", valid)
    js_valid = [v for (q, t), v in zip(items, js) if t not in ("abc", "", "1e5000")]
    mismatches = [(q, t, a, b) for (q, t), a, b in zip(valid, py, js_valid) if a != b]
    assert not mismatches, mismatches[:10]
    seen = {v for v, _ in py}
    assert seen == {"correct", "rounding", "truncated", "wrong"}, seen     # every verdict was exercised
    assert {d for _, d in py if d} >= {"factor-2", "sign-flip", "used-preactivation"}
    assert len(valid) > 400


@pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs it)")
def test_the_number_reader_is_derive_checks():
    """parseStated against verdicts.parse_stated: value, last digit's place, significant digits."""
    from derive.verdicts import parse_stated
    texts = ["0.0281", "300", "3.00e2", "-0.5", "+.5", "5.", "0.000", "1,234.5", "２.５", "−0.25", "1e-3",
             "0012.340", "7E+2", "1 234"]
    script = (f"const j = require({json.dumps(str(PAGE_JS))});\n"
              "const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
              "process.stdout.write(JSON.stringify(texts.map(t => { const s = j.parseStated(t);\n"
              "  return s && [s.value[0].toString(), s.value[1].toString(), s.exp, s.sig]; })));\n")
    r = subprocess.run([NODE, "-e", script], input=json.dumps(texts), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for text, got in zip(texts, json.loads(r.stdout)):
        s = parse_stated(text)
        assert got == [str(s.value.numerator), str(s.value.denominator), s.exp, s.sig], text


# ---------------------------------------------------------------- the Moodle fragment, exercises, the CLI
def test_solution_fragment_is_static_html_with_mathjax_delimiters(two):
    p, _page = two
    f = hp.solution_fragment(p, "en")
    tags = parse(f).tags
    assert not [a for t, a in tags if t in ("input", "details", "script", "button")]
    assert "\\(" in f and "\\[" in f and 'class="tex"' not in f and "$" not in f
    assert f.startswith('<section class="derive-solution"') and "<h3>" in f
    assert "0.0281337" in f                                  # dE_total/dw6, as the handout shows it
    assert "<svg" in f and "<svg" not in hp.solution_fragment(p, "zh", diagram=False)


def test_exercise_page_has_every_variant(tmp_path):
    r = run_cli("exercise", "two-two-two", "--variants", "2", "--seed", "7", "--format", "html", "--lang", "en",
                "-o", tmp_path / "bank")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "bank" / "two-two-two.variants.en.html").read_text()
    data = page_data(page)
    assert len(data) == 2 and page.count('class="variant"') == 2
    ids = [a["id"] for t, a in parse(page).tags if t == "input"]
    assert len(ids) == len(set(ids)) and ids[0].startswith("v1-")
    # each variant's truths are its own numbers
    for n, d in enumerate(data, 1):
        spec = tmp_path / "bank" / f"two-two-two-v{n:02d}.toml"
        r = run_cli("eval", spec, "dE_total/dw6", "--digits", "30")
        assert r.returncode == 0
        assert val(d["q"]["dE_total/dw6"]["t"]) == pytest.approx(Fraction(r.stdout.split()[-1]), rel=1e-28)
    assert data[0]["q"]["dE_total/dw6"]["t"] != data[1]["q"]["dE_total/dw6"]["t"]


def test_cli_render_html(tmp_path):
    out = tmp_path / "p.html"
    r = run_cli("render", "two-two-two", "--format", "html", "--lang", "zh", "-o", out)
    assert r.returncode == 0 and r.stderr.strip() == f"derive: wrote {out}"
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and '<html lang="zh-Hans">' in text and "检查" in text
    r = run_cli("render", "two-two-two", "--format", "html", "--mode", "key")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--format html" in r.stderr
    r = run_cli("render", "two-two-two", "--format", "html", "--lang", "fr")
    assert r.returncode == 2 and "--lang" in r.stderr
