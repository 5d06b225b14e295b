"""Quantities: NAME, dA/dB, NAME@k, expressions — values against independent computations."""
import mpmath
import pytest

import derive
from derive.errors import DeriveError
from reference import agrees, gradients, numbers, sig


def _two_two_two_forward(v):
    h1 = sig(v["w1"] * v["i1"] + v["w2"] * v["i2"] + v["b1"])
    h2 = sig(v["w3"] * v["i1"] + v["w4"] * v["i2"] + v["b1"])
    net_o1 = v["w5"] * h1 + v["w6"] * h2 + v["b2"]
    o1 = sig(net_o1)
    return h1, h2, net_o1, o1


def test_intermediate_derivatives_and_updated_values():
    with mpmath.workdps(50):
        v = numbers("two-two-two")
        h1, h2, net_o1, o1 = _two_two_two_forward(v)
        g = gradients("two-two-two")
        expect = {
            "dE_total/dout_o1": o1 - v["target_o1"],
            "dout_o1/dnet_o1": o1 * (1 - o1),
            "dnet_o1/dw6": h2,
            "dE_total/dw6": g[("w6", ())],
            "w6@1": v["w6"] - v["_lr"] * g[("w6", ())],
            "out_o1 - target_o1": o1 - v["target_o1"],
        }
    answers = derive.load("two-two-two").eval(*expect, digits=10)
    for a in answers:
        assert agrees(a.value.values[0].text, expect[a.quantity], 10), a


def test_derivative_of_unrelated_quantity_is_zero():
    a = derive.load("two-two-two").eval("dout_h1/dw5", digits=5)[0]
    assert a.value.values[0].text == "0"


def test_loss_after_steps_decreases_and_history_has_every_step():
    sol = derive.load("two-two-two").solve(digits=10, steps=3)
    hist = [float(n.text) for n in sol.history]
    assert len(hist) == 4 and hist[0] > hist[1] > hist[2] > hist[3]
    e3 = derive.load("two-two-two").eval("E_total@3", digits=10)[0].value.values[0].text
    assert e3 == sol.history[3].text


def test_matrix_quantities_and_norms():
    p = derive.load("matrix-linear")
    a = p.eval("norm2(pred - output)", "dE/dw2", "w1@1", digits=6)
    # ‖[[2,3],[2,1]]‖₂ = sqrt(9 + sqrt(65)), independently
    with mpmath.workdps(30):
        assert agrees(a[0].value.values[0].text, mpmath.sqrt(9 + mpmath.sqrt(65)), 6)
    assert a[1].value.nested() == [["14", "21"], ["32", "46"]]   # Hᵀ(P − T) with H = XW1, exact
    assert a[2].value.shape == (3, 2)


def test_elementwise_derivative_of_vectors():
    p = derive.load("sigmoid-2-4-2")
    a = p.eval("da_hidden/dz_hidden", digits=8)[0]
    with mpmath.workdps(30):
        z = [mpmath.mpf(x) for x in ("8.2", "13.2", "5.2", "9.2")]
        for t, zi in zip(a.value.values, z):
            assert agrees(t.text, sig(zi) * (1 - sig(zi)), 8)


@pytest.mark.parametrize("text, what", [
    ("nope", "unknown name 'nope'"),
    ("dE/dnope + 1", "unknown name"),
    ("dhidden/dw1", "Jacobian"),
    ("E@1.5", "whole number"),
    ("E@-1", "whole number from 0 to 50"),
    ("E@51", "the limit is 50 steps"),
    ("dE/dw2@100000", "the limit is 50 steps"),
    ("__import__('os')", "unexpected character"),
])
def test_bad_quantities(text, what):
    with pytest.raises(DeriveError, match=what):
        derive.load("matrix-linear").eval(text)


def test_symbolic_spec_eval_gives_formula():
    a = derive.load("one-two-one").eval("dL/dv1")[0]
    assert a.value is None and a.formula is not None and "a1" in str(a.formula)


def test_step_limit_is_checked_before_any_work():
    import time
    p = derive.load("two-two-two")
    t = time.perf_counter()
    with pytest.raises(DeriveError, match="the limit is 50"):
        p.eval("E_total@10000")
    with pytest.raises(DeriveError, match="between 0 and 50"):
        p.solve(steps=10000)
    assert time.perf_counter() - t < 1
    assert p.eval("w6@50", digits=5)[0].value.text == "0.21313"
