"""Exercise banks (`derive exercise`, derive/variants.py): reproducible variants, the grid rule,
degenerate draws rejected, the spec and claims files, and every number of a bank's key checked
against an independent mpmath computation from the variant's spec file (read with tomllib)."""
from __future__ import annotations

import re
import shutil
import tomllib
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest

import derive
from derive import variants as vr
from derive.errors import DeriveError
from derive.render import render_text
from derive.solve import Problem
from derive.spec import load as load_spec
from conftest import run_cli
from reference import agrees, sig

DIGITS = 4


@pytest.fixture(scope="module")
def base():
    return derive.load("two-two-two")


@pytest.fixture(scope="module")
def bank(base):
    return vr.draw(base, 5, 11)


# ---------------------------------------------------------------- the grid and the draws
def test_grid_rule():
    assert vr.grid(Fraction("0.25")) == tuple(Fraction(k * 5, 100) for k in range(1, 20))
    assert vr.grid(Fraction(120)) == tuple(Fraction(k * 50) for k in range(1, 20))
    assert vr.grid(Fraction("-0.02")) == tuple(-Fraction(k * 5, 1000) for k in range(1, 20))
    assert vr.grid(Fraction("0.95"))[-1] == Fraction("0.95")
    assert vr.grid(Fraction(1))[0] == Fraction("0.5")
    assert vr.grid(Fraction(0)) == vr.grid(Fraction("0.5"))      # a 0 named by --vary


def _exp(q: Fraction) -> int:
    return int(mpmath.floor(mpmath.log10(abs(mpmath.mpf(q.numerator) / q.denominator))))


def test_same_sign_and_magnitude(base, bank):
    orig = {**base.spec.data, **base.spec.parameters}
    for vp in bank.variants:
        new = {**vp.spec.data, **vp.spec.parameters}
        assert new.keys() == orig.keys()
        for name, v in orig.items():
            for a, b in zip(v.entries, new[name].entries):
                e = _exp(a)                    # |b| = k·5·10^(e−1), k = 1 … 19, b of a's sign
                assert (a > 0) == (b > 0), (name, a, b)
                assert Fraction(10) ** e / 2 <= abs(b) <= Fraction(95, 10) * Fraction(10) ** e, (name, a, b)
                assert (b * 2 * Fraction(10) ** (1 - e)).denominator == 1
    assert vp.spec.forward == base.spec.forward and vp.spec.learning_rate == base.spec.learning_rate


def test_reproducible_and_seed_dependent(base, bank):
    again = vr.draw(base, 5, 11)
    f1 = vr.bank_files(bank, lang="en")
    assert f1 == vr.bank_files(again, lang="en")
    other = vr.draw(base, 5, 12)
    assert other.variants[0].spec.parameters != bank.variants[0].spec.parameters
    assert vr.bank_files(other, lang="en") != f1


def test_vary_restricts_and_zero_stays(tmp_path):
    spec = tmp_path / "z.toml"
    spec.write_text('title = "z"\n[data]\nx = 0.5\ny = 0.3\n[parameters]\nw = 0.4\nb = 0\n'
                    '[forward]\nz = "w*x + b"\nE = "1/2*(sigmoid(z) - y)^2"\n')
    p = derive.load(str(spec))
    bank = vr.draw(p, 6, 1)
    assert all(vp.spec.parameters["b"].entries == (0,) for vp in bank.variants)
    assert len({vp.spec.parameters["w"].entries for vp in bank.variants}) > 1
    only_w = vr.draw(p, 3, 1, vary="w")
    assert all(vp.spec.data == p.spec.data for vp in only_w.variants)
    with_b = vr.draw(p, 3, 1, vary="b,w")
    assert all(vp.spec.parameters["b"].entries[0] in vr.grid(Fraction(0)) for vp in with_b.variants)
    with pytest.raises(DeriveError, match="'q' is not a data value or parameter"):
        vr.draw(p, 2, 1, vary="w,q")


def _problem(tmp_path, name, text):
    f = tmp_path / f"{name}.toml"
    f.write_text(text)
    return derive.load(str(f))


def test_degenerate_draws_are_rejected(tmp_path):
    # σ(w·80): only w = 0.05 keeps σ′ ≥ 1e-3 (σ′(4) ≈ 0.018, σ′(8) < 1e-3)
    p = _problem(tmp_path, "sat", 'title = "s"\n[data]\nx = 80\ny = 0.5\n[parameters]\nw = 0.5\n'
                 '[forward]\nh = "sigmoid(w*x)"\nE = "1/2*(h - y)^2"\n')
    rejected = 0
    for seed in range(5):
        b = vr.draw(p, 1, seed, vary="w")
        assert b.variants[0].spec.parameters["w"].entries == (Fraction("0.05"),)
        rejected += b.n_rejected
        assert set(dict(b.rejected)) <= {"saturated unit"}
        assert b.draws == 1 + b.n_rejected
    assert rejected > 0
    with pytest.raises(DeriveError, match="same answers as an earlier variant"):
        vr.draw(p, 2, 0, vary="w")          # the one good value cannot give two variants
    dead = _problem(tmp_path, "dead", 'title = "d"\n[data]\nx = 0.5\ny = 0.5\n[parameters]\nw = 0.5\nb = -0.5\n'
                    '[forward]\nh = "relu(w*x + b)"\nE = "1/2*(h + w - y)^2"\n')
    with pytest.raises(DeriveError, match="dead ReLU"):
        vr.draw(dead, 1, 0, vary="w")
    flat = _problem(tmp_path, "flat", 'title = "f"\n[data]\nx = 0.5\ny = 0.25\n[parameters]\nw = 0.5\n'
                    '[forward]\nE = "1/2*(w*x - y)^2"\n')
    assert vr.degenerate(flat) == "vanishing gradient"
    near = _problem(tmp_path, "near", 'title = "n"\n[data]\nx = 0.5\ny = 0.251\n[parameters]\nw = 0.5\n'
                    '[forward]\nE = "1/2*(w*x - y)^2"\n')
    assert vr.degenerate(near) == "loss near 0"
    assert vr.degenerate(derive.load("two-two-two")) is None
    r = run_cli("exercise", "sigmoid-2-4-2", "--variants", "2", "-o", str(tmp_path / "none"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    for q in (p, dead, flat, near):
        assert vr.degenerate(q) == vr.degenerate(q, full=True)
    assert "saturated unit" in r.stderr and "the spec's own numbers give a saturated unit too" in r.stderr


def test_bad_counts_and_seeds(base):
    for n in (0, 501):
        with pytest.raises(DeriveError, match="--variants must be between 1 and 500"):
            vr.draw(base, n, 1)
    with pytest.raises(DeriveError, match="--seed"):
        vr.draw(base, 1, -1)
    with pytest.raises(DeriveError, match="symbolic"):
        vr.draw(derive.load("one-two-one"), 1, 1)


# ---------------------------------------------------------------- files
def test_spec_file_reads_back_as_the_variant(bank, tmp_path):
    for name, data in vr.bank_files(bank, lang="en").items():
        (tmp_path / name).write_bytes(data)
    for vp in bank.variants:
        back = load_spec(str(tmp_path / f"{vp.spec.id}.toml"))
        a, b = back, vp.spec
        assert (a.data, a.parameters, a.loss, a.update, a.steps, a.learning_rate, a.latex, a.title,
                a.title_zh, a.lang, a.id) == (b.data, b.parameters, b.loss, b.update, b.steps, b.learning_rate,
                                               b.latex, b.title, b.title_zh, b.lang, b.id)
        assert [d.text for d in a.forward] == [d.text for d in b.forward]


# ---------------------------------------------------------------- an independent reference
def reference_answers(spec_file: Path) -> dict:
    """Every asked quantity of a two-two-two variant, from its spec file's numbers (tomllib) by a
    network written out here in mpmath; gradients by mpmath.diff."""
    doc = tomllib.loads(spec_file.read_text())
    with mpmath.workdps(50):
        v = {k: mpmath.mpf(repr(x)) for k, x in {**doc["data"], **doc["parameters"]}.items()}
        lr = mpmath.mpf(repr(doc["train"]["learning_rate"]))

        def forward(v):
            f = {}
            f["net_h1"] = v["w1"] * v["i1"] + v["w2"] * v["i2"] + v["b1"]
            f["out_h1"] = sig(f["net_h1"])
            f["net_h2"] = v["w3"] * v["i1"] + v["w4"] * v["i2"] + v["b1"]
            f["out_h2"] = sig(f["net_h2"])
            f["net_o1"] = v["w5"] * f["out_h1"] + v["w6"] * f["out_h2"] + v["b2"]
            f["out_o1"] = sig(f["net_o1"])
            f["net_o2"] = v["w7"] * f["out_h1"] + v["w8"] * f["out_h2"] + v["b2"]
            f["out_o2"] = sig(f["net_o2"])
            f["E_o1"] = (v["target_o1"] - f["out_o1"]) ** 2 / 2
            f["E_o2"] = (v["target_o2"] - f["out_o2"]) ** 2 / 2
            f["E_total"] = f["E_o1"] + f["E_o2"]
            return f

        out = dict(forward(v))
        new = dict(v)
        for p in doc["train"]["update"]:
            g = mpmath.diff(lambda x: forward({**v, p: x})["E_total"], v[p])
            out[f"dE_total/d{p}"] = g
            out[f"{p}@1"] = new[p] = v[p] - lr * g
        out["E_total@1"] = forward(new)["E_total"]
        return out


def _variant_sections(text: str) -> list:
    """The sections of a bank's Markdown, split at its --- rules, not at the --- lines of the
    Mermaid blocks' frontmatter."""
    return re.sub(r"```mermaid\n.*?\n```", "", text, flags=re.S).split("\n---\n")


def _key_rows(text: str) -> list:
    """Per variant section (split at ---, outside the Mermaid blocks, whose frontmatter has ---
    lines of its own): the answers of its key table, in order."""
    sections = _variant_sections(text)
    rows = []
    for sec in sections:
        # an answer with its exact value after it (a short exact value: '$`0.1308`$ (exactly $`0.13075`$)')
        rows.append([m for m in re.findall(r"^\| \d+ \| \$`.*?`\$ \| \$`(.*?)`\$(?: \S[^|]*)? \|$", sec, re.M)])
    return rows


def _latex_number(t: str) -> str:
    m = re.fullmatch(r"(-?[\d.]+) \\times 10\^\{(-?\d+)\}", t)
    return f"{m.group(1)}e{m.group(2)}" if m else t


def test_every_key_number_against_the_reference(bank, tmp_path):
    files = vr.bank_files(bank, lang="en")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    rows = _key_rows(files["two-two-two.variants.key.en.md"].decode())
    assert len(rows) == 5
    for vp, answers in zip(bank.variants, rows):
        ref = reference_answers(tmp_path / f"{vp.spec.id}.toml")
        asked = vr.asked(vp, DIGITS)
        assert len(answers) == len(asked) == 28
        for (quantity, flat, _row), shown in zip(asked, answers):
            assert agrees(_latex_number(shown), ref[quantity], DIGITS), (vp.spec.id, quantity, shown)
    # an exact value given beside an answer is the reference's value
    text = files["two-two-two.variants.key.en.md"].decode()
    seen = 0
    for vp, sec in zip(bank.variants, _variant_sections(text)):
        ref = reference_answers(tmp_path / f"{vp.spec.id}.toml")
        cells = re.findall(r"^\| \d+ \| \$`.*?`\$ \| \$`.*?`\$(?: \(exactly \$`(-?[\d.]+)`\$\))? \|$", sec, re.M)
        for (quantity, _flat, _row), exact in zip(vr.asked(vp, DIGITS), cells):
            if exact:
                seen += 1
                assert abs(mpmath.mpf(exact) - ref[quantity]) < mpmath.mpf(10) ** -12, (vp.spec.id, quantity, exact)
    assert seen, "no short exact value in the bank (net_h1 = 0.13075 of variant 1)"
        # the sheet holds the numbers of its variant
    sheet = files["two-two-two.variants.en.md"].decode()
    assert len(_variant_sections(sheet)) == 5 and "variant 5" in sheet and "variant 6" not in sheet
    assert not any(_key_rows(sheet)[i] for i in range(5))          # a sheet has no answers


def test_claims_template_checks_once_filled(bank, tmp_path):
    files = vr.bank_files(bank, lang="en")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    vp = bank.variants[2]
    template = (tmp_path / f"{vp.spec.id}.claims.toml").read_text()
    doc = tomllib.loads(template)
    assert doc["spec"] == f"{vp.spec.id}.toml"
    assert [c["of"] for c in doc["claim"]] == [q for q, _f, _r in vr.asked(vp, DIGITS)]
    assert all(c["value"] == "" for c in doc["claim"])
    ref = reference_answers(tmp_path / f"{vp.spec.id}.toml")
    filled = template
    for c in doc["claim"]:
        value = mpmath.nstr(ref[c["of"]], 8)
        filled = filled.replace(f'of = "{c["of"]}"\nvalue = ""', f'of = "{c["of"]}"\nvalue = "{value}"', 1)
    (tmp_path / "filled.claims.toml").write_text(filled)
    r = run_cli("check", str(tmp_path / "filled.claims.toml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(doc['claim'])} claims: {len(doc['claim'])} correct" in r.stdout


# ---------------------------------------------------------------- the command
def test_cli_writes_the_bank_reproducibly(tmp_path):
    outs = []
    for d in ("a", "b"):
        r = run_cli("exercise", "two-two-two", "--variants", "3", "--seed", "5", "--lang", "en",
                    "-o", str(tmp_path / d))
        assert r.returncode == 0, r.stderr
        assert "3 variants drawn from seed 5" in r.stderr and f"wrote 9 files to {tmp_path / d}" in r.stderr
        outs.append({p.name: p.read_bytes() for p in (tmp_path / d).iterdir()})
    assert outs[0] == outs[1]
    assert sorted(outs[0]) == sorted(["derive-manifest.txt", "two-two-two.variants.en.md",
                                      "two-two-two.variants.key.en.md"]
                                     + [f"two-two-two-v0{i}{x}" for i in (1, 2, 3) for x in (".toml", ".claims.toml")])
    r = run_cli("exercise", "two-two-two", "--variants", "2", "--seed", "5", "--format", "tex", "-o",
                str(tmp_path / "a"))                # its own directory: replaced, stale files removed
    assert r.returncode == 0, r.stderr
    names = {p.name for p in (tmp_path / "a").iterdir()}
    assert "two-two-two-v03.toml" not in names and "two-two-two.variants.key.zh.tex" in names
    tex = (tmp_path / "a" / "two-two-two.variants.key.zh.tex").read_text()
    assert tex.count("\\begin{document}") == 1 and tex.count("\\end{document}") == 1


@pytest.mark.parametrize("args, message", [
    (["--variants", "0"], "--variants: expected a whole number from 1 to 500, got 0"),
    (["--variants", "501"], "--variants: expected a whole number from 1 to 500, got 501"),
    (["--variants", "two"], "--variants: expected a whole number, got 'two'"),
    ([], "--variants N is required"),
    (["--variants", "2", "--seed", "x1"], "--seed: expected a whole number, got 'x1'"),
    (["--variants", "2", "--seed", "-3"], "--seed: expected a whole number from 0"),
    (["--variants", "2", "--vary", "w1,w9"], "--vary: 'w9' is not a data value or parameter of two-two-two"),
])
def test_cli_errors_one_line(tmp_path, args, message):
    r = run_cli("exercise", "two-two-two", *args, "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_never_overwrites_other_files(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    r = run_cli("exercise", "two-two-two", "--variants", "1", "-o", str(d))
    assert r.returncode == 2 and "not empty and not derive's" in r.stderr and r.stderr.count("\n") == 1
    ok = tmp_path / "bank"
    assert run_cli("exercise", "two-two-two", "--variants", "1", "-o", str(ok)).returncode == 0
    (ok / "two-two-two-v01.toml").write_text("edited by the teacher\n")
    r = run_cli("exercise", "two-two-two", "--variants", "1", "--seed", "9", "-o", str(ok))
    assert r.returncode == 2 and "changed since derive wrote it" in r.stderr
    assert (ok / "two-two-two-v01.toml").read_text() == "edited by the teacher\n"
    built = tmp_path / "built"
    built.mkdir()
    (built / "derive-manifest.txt").write_text("# derive build: the files derive wrote in this directory\n")
    r = run_cli("exercise", "two-two-two", "--variants", "1", "-o", str(built))
    assert r.returncode == 2 and "derive build's directory" in r.stderr


@pytest.mark.tex
@pytest.mark.skipif(not (shutil.which("xelatex") and shutil.which("latexmk")),
                    reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
def test_bank_tex_compiles(base):
    from derive.tex import compile_pdf
    bank = vr.draw(base, 2, 3)
    for lang in ("en", "zh"):
        pdf = compile_pdf(vr.render_bank(bank, fmt="tex", lang=lang, mode="key"))
        assert pdf.startswith(b"%PDF")


def test_build_writes_the_bank_derive_exercise_writes(tmp_path, built):
    """derive build's 5-variant two-two-two bank (exercises/two-two-two.variants/) is what
    `derive exercise two-two-two --variants 5 --seed 7 --format moodle` writes, in each language,
    the same bytes at every build (here and in the session's `derive build`, another process),
    and output/ holds it."""
    from derive import build
    from conftest import ROOT
    pid, n, seed = build.BANK
    files = build.bank_files(derive.load(pid))
    prefix = f"exercises/{pid}.variants/"
    assert files == {p.relative_to(built).as_posix(): p.read_bytes()
                     for p in (built / prefix).rglob("*") if p.is_file()}
    for lang in ("en", "zh"):
        r = run_cli("exercise", pid, "--variants", str(n), "--seed", str(seed), "--format", "moodle",
                    "--lang", lang, "-o", str(tmp_path / lang))
        assert r.returncode == 0, r.stderr
        for p in (tmp_path / lang).iterdir():
            if p.name != "derive-manifest.txt":
                assert files[prefix + p.name] == p.read_bytes(), p.name
        assert f"{pid}.moodle.{lang}.xml" in {p.name for p in (tmp_path / lang).iterdir()}
    for name, data in files.items():
        assert (ROOT / "output" / name).read_bytes() == data, name


def test_readme_rejection_example(tmp_path):
    """The README's example of rejected draws: its spec file, its command, the two lines derive says."""
    from conftest import ROOT
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```console\n\$ cat sat\.toml\n(.*?)\$ derive exercise sat\.toml (.*?)\n(.*?)```", readme, re.S)
    (tmp_path / "sat.toml").write_text(block.group(1))
    args = block.group(2).split()
    r = run_cli("exercise", str(tmp_path / "sat.toml"), *args[:-1], str(tmp_path / args[-1]))
    assert r.returncode == 0, r.stderr
    said = r.stderr.replace(str(tmp_path) + "/", "")
    assert said == block.group(3)


@pytest.mark.parametrize("pid", ["two-two-two", "relu-2-4-2", "sigmoid-2-4-2"])
def test_degenerate_reads_the_numbers_it_judges_as_the_full_solution_has_them(pid):
    """degenerate() certifies only the numbers its checks read; on draws of every kind (accepted
    and rejected, explicit zeros drawn too), its verdict is the one from all of Problem.numbers,
    and the numbers it reads are those numbers, entry by entry."""
    import random
    from derive import engine
    base = derive.load(pid)
    frame = vr.Frame(base, 50)
    names = vr.default_names(base.spec)
    reasons = set()
    for seed in range(3):
        rng = random.Random(seed)
        for n in range(15):
            spec = vr.numbered(base.spec, vr._drawn_values(base.spec, rng, names, seed == 2), n + 1)
            vp, full = frame.problem(spec, (vr.CHECK_DIGITS, DIGITS)), frame.problem(spec, (vr.CHECK_DIGITS,))
            try:
                why = vr.degenerate(vp)
            except (DeriveError, ZeroDivisionError, OverflowError, ValueError):
                why = "not computable"
            try:
                whole = vr.degenerate(full, full=True)
                nums = full.numbers(vr.CHECK_DIGITS, 1)
            except (DeriveError, ZeroDivisionError, OverflowError, ValueError):
                whole = "not computable"
            assert why == whole, (pid, seed, n)
            reasons.add(why)
            if whole != "not computable":
                got = engine.solve_numbers(vp.program, vr.CHECK_DIGITS, 1,
                                           [engine.Request("adjoint", u, 0) for u in base.spec.update], vp.runs)
                for u in base.spec.update:
                    assert [g.approx for g in got[engine.Request("adjoint", u, 0)]] == \
                        [g.approx for g in nums.gradients[u]]
    assert (None in reasons) == (pid != "sigmoid-2-4-2")     # sigmoid-2-4-2: every draw saturated (as its own numbers)


@pytest.mark.parametrize("pid", ["matrix-linear", "softmax-3"])
def test_variants_share_the_calculus_and_keep_their_own_worked_solutions(pid):
    """A bank's variants share the base graph's chain-rule structure (`calculus.Calculus`: its
    formulas and closed forms, the one-hot cancellation of softmax-3 among them, worked out once),
    and each variant's worked solution is still that of its spec loaded as a problem of its own."""
    bank = vr.draw(derive.load(pid), 12, 3)        # a large bank: tapes replayed
    a, b = bank.variants[1], bank.variants[2]
    assert a.calculus is b.calculus and a.graph is not b.graph and a.graph.spec is a.spec
    for vp in (a, b):
        for lang in ("en", "zh"):
            own = Problem(vp.spec)
            assert render_text(vp, fmt="md", lang=lang) == render_text(own, fmt="md", lang=lang)


def test_a_log_axis_ticking_at_infinity_has_no_label():
    """A sweep whose loss runs towards the float range gets a log axis that matplotlib ticks up to
    inf; the tick label was round(log10(inf)): an OverflowError traceback from `derive exercise
    matrix-linear --variants 4 --seed 2 --format moodle` (the test below)."""
    from derive.plot import _power_of_ten
    assert _power_of_ten(float("inf"), 0) == ""
    assert _power_of_ten(float("nan"), 0) == ""
    assert _power_of_ten(1e-3, 0) == "10⁻³"
    assert _power_of_ten(1.0, 0) == "1"


@pytest.mark.slow
def test_a_bank_whose_variant_diverges_towards_the_float_range_is_written(tmp_path):
    r = run_cli("exercise", "matrix-linear", "--variants", "4", "--seed", "2", "--format", "moodle",
                "-o", str(tmp_path / "bank"))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert (tmp_path / "bank" / "matrix-linear.moodle.zh.xml").is_file()
