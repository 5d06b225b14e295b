"""Teaching remarks (derive/remarks.py): found from the numbers, every printed number checked
against an independent mpmath computation (tests/reference.py), and none where nothing calls for one."""
from __future__ import annotations

import re

import mpmath
import pytest

import reference as ref
from derive.handout import setting
from derive.remarks import remarks
from derive.solve import load

DIGITS = 6


def found(pid: str, digits: int = DIGITS) -> list:
    p = load(pid)
    return list(remarks(setting(p, p.solve(digits=digits), lang="en", only=None, mode="solution")))


def value_of(tex: str) -> mpmath.mpf:
    """A printed LaTeX number ('2.28973 \\times 10^{-11}', '137.370') as an mpf."""
    m = re.fullmatch(r"(-?[\d.]+)(?: \\times 10\^\{(-?\d+)\})?", tex.strip())
    assert m, tex
    return mpmath.mpf(m.group(1)) * mpmath.mpf(10) ** int(m.group(2) or 0)


def kinds(rs) -> list:
    return [r.kind for r in rs]


def test_house_price_saturated_units_show_their_distance_from_1_certified():
    merged = [r for r in found("house-price") if r.kind.startswith("saturated")]
    assert [r.kind for r in merged] == ["saturated_many"]          # one remark names all three
    rs = [dict(zip(("unit", "value", "slope"), t))
          for t in zip(merged[0]["unit"], merged[0]["value"], merged[0]["slope"])]
    assert [r["unit"] for r in rs] == ["h_{1}", "h_{2}", "h_{3}"]
    with mpmath.workdps(60):
        v = ref.numbers("house-price")
        pre = [v["w1"] * v["x1"] + v["w4"] * v["x2"], v["w2"] * v["x1"] + v["w5"] * v["x2"],
               v["w3"] * v["x1"] + v["w6"] * v["x2"]]        # every bias is 0
        for r, z in zip(rs, pre):
            h = ref.sig(z)
            unit, one, eps = r["value"].replace(" \\approx ", " - ", 1).split(" - ", 2)
            assert (unit, one) == (r["unit"], "1")
            assert ref.agrees(mpmath.nstr(value_of(eps), 15), 1 - h, DIGITS)
            formula, slope = r["slope"].rsplit(" \\approx ", 1)
            assert formula == f"{r['unit']} \\cdot (1 - {r['unit']})"
            assert ref.agrees(mpmath.nstr(value_of(slope), 15), h * (1 - h), DIGITS)


def test_house_price_target_outside_the_range_of_the_sigmoid():
    r = next(r for r in found("house-price") if r.kind == "target_outside")
    assert r.values == {"target": "y", "value": "y = 300000", "output": "\\hat{y}", "range": "(0, 1)"}


def test_house_price_large_steps_and_a_loss_that_hardly_falls():
    rs = found("house-price")
    merged = [r for r in rs if r.kind.startswith("large_step")]
    assert [r.kind for r in merged] == ["large_step_many"]         # one remark names all three
    steps = [dict(zip(("param", "before", "after"), t))
             for t in zip(merged[0]["param"], merged[0]["before"], merged[0]["after"])]
    assert [r["param"] for r in steps] == ["w_{7}", "w_{8}", "w_{9}"]
    with mpmath.workdps(60):
        v = ref.numbers("house-price")
        g = ref.gradients("house-price")
        for r in steps:
            name = "w" + r["param"][3]
            assert value_of(r["before"]) == v[name]
            assert ref.agrees(r["after"], v[name] - v["_lr"] * g[(name, ())], DIGITS)
        before = ref.loss_value("house-price")
        after = ref.loss_after_one_step("house-price", [f"w{i}" for i in range(1, 10)])
    # one step: the remark does not repeat the percentage of the sentence above it, which has 3 digits
    assert "loss_hardly_falls_one" in kinds(rs) and "loss_hardly_falls" not in kinds(rs)
    from derive import render
    md = render.render_text(load("house-price"), fmt="md", lang="en", digits=DIGITS)
    percent = re.search(r"that is \$`([^`]+)`\$ percent", md).group(1)
    assert ref.agrees(mpmath.nstr(value_of(percent), 15), 100 * (before - after) / before, 3)
    assert md.count(f"{percent}`$ percent") == 1


def test_a_loss_that_rises_is_said_once_by_the_pass_after_the_step_not_again_by_a_remark():
    assert "loss_rises" not in kinds(found("relu-2-4-2"))
    from derive import render
    md = render.render_text(load("linear-2x"), fmt="md", lang="en")
    assert md.count("The loss rose") == 1 and "overshot" not in md


@pytest.mark.parametrize("pid", ["two-two-two", "alice", "matrix-linear", "one-two-one"])
def test_no_remark_where_nothing_calls_for_one(pid):
    assert found(pid) == []


def test_remark_arguments_as_inline_math_of_a_format():
    r = next(r for r in found("house-price") if r.kind == "target_outside")
    assert r.inline("$`", "`$")["value"] == "$`y = 300000`$"


def test_dead_relu_is_found(tmp_path):
    spec = tmp_path / "dead.toml"
    spec.write_text('title = "dead"\n[data]\nx = 1\nt = 1\n[parameters]\nw = -2\nv = 0.5\n'
                    '[forward]\nz = "w*x"\nh = "relu(z)"\ny = "v*h"\nL = "(y - t)^2"\n'
                    '[train]\nloss = "L"\nlearning_rate = 0.1\nupdate = ["w", "v"]\nsteps = 1\n')
    assert "dead_relu" in kinds(found(str(spec)))


def test_saturated_values_are_shown_as_one_minus_epsilon_and_without_a_misleading_numbers_line():
    from derive import render
    md = render.render_text(load("house-price"), fmt="md", lang="en")
    with mpmath.workdps(60):
        v = ref.numbers("house-price")
        eps = 1 - ref.sig(v["w1"] * v["x1"] + v["w4"] * v["x2"])
    m = re.search(r"h_\{1\} &= \\sigma\(z_\{h_1\}\) = .*?\\approx 1 - ([^\\]+ \\times 10\^\{-?\d+\}) \\\\", md)
    assert m, "h1's forward line ends with 1 − ε"
    assert ref.agrees(mpmath.nstr(value_of(m.group(1)), 15), eps, DIGITS)
    # δ_h1's lines: the formula h1·(1 − h1), then the factors' values — never 1.00000·(1 − 1.00000)
    delta = md.split("\\delta_{h_1} &=", 1)[1].split("\\delta_{h_2}", 1)[0]
    assert "h_{1} \\cdot \\left(1 - h_{1}\\right)" in delta and "1.00000" not in delta


def test_updates_that_do_not_show_at_the_digits_are_named_with_their_change():
    r = next(r for r in found("house-price") if r.kind == "hidden_step")
    assert r["first"] == "w_{1}" and r["params"].startswith("w_{1}, w_{2}")
    with mpmath.workdps(60):
        v = ref.numbers("house-price")
        change = -v["_lr"] * ref.gradients("house-price")[("w1", ())]
    assert ref.agrees(mpmath.nstr(value_of(r["change"]), 15), change, DIGITS)
    assert not any(r.kind == "hidden_step" for r in found("two-two-two"))   # its updates show at 6 digits
