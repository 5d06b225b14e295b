"""Stage 3 (calculus) and the whole engine: every gradient of every built-in problem against
independent computations (hand-coded networks + mpmath.diff in tests/reference.py)."""
import mpmath
import pytest
import sympy as sp

import derive
from derive import calculus as calc
from derive import verify
from reference import LOSSES, agrees, gradients, loss_after_one_step, loss_value

NUMERIC = sorted(LOSSES)


def _entry_key(entry):
    """(name, index) in the reference's convention: column vectors have 1-index."""
    if entry.index == ():
        return (entry.quantity, ())
    i, j = entry.index
    if entry.qshape[1] == 1:
        return (entry.quantity, (i,))
    return (entry.quantity, (i, j))


@pytest.mark.parametrize("pid", NUMERIC)
def test_every_gradient_matches_independent_reference(pid):
    problem = derive.load(pid)
    sol = problem.solve(digits=12)
    ref = gradients(pid)
    checked = 0
    for name in problem.graph.parameters:
        for entry in problem.graph.quantities[name].entries:
            text = sol.adjoint(entry).text
            assert agrees(text, ref[_entry_key(entry)], 12), (entry, text, ref[_entry_key(entry)])
            checked += 1
    assert checked == len(ref)


@pytest.mark.parametrize("pid", NUMERIC)
def test_loss_and_loss_after_one_step_match_reference(pid):
    problem = derive.load(pid)
    sol = problem.solve(digits=10)
    assert agrees(sol.loss.text, loss_value(pid), 10)
    assert agrees(sol.loss_after.text, loss_after_one_step(pid, list(problem.spec.update)), 10)


@pytest.mark.parametrize("pid", NUMERIC)
def test_verify_passes_on_every_builtin(pid):
    v = derive.load(pid).verify()
    assert v.ok
    methods = {c.method for c in v.checks}
    assert {"paths", "sympy.diff", "finite difference"} <= methods


def test_saturated_hidden_gradient_is_tiny_but_not_zero():
    # house-price: h3 = σ(48.7) = 1 − 7·10⁻²²; float64 gives exactly 0 for dL/dw3
    sol = derive.load("house-price").solve(digits=8)
    w3 = sol.graph.quantities["w3"].entries[0]
    g = sol.adjoint(w3)
    ref = gradients("house-price")[("w3", ())]
    assert g.text != "0" and agrees(g.text, ref, 8)
    assert abs(ref) < 1e-14


def test_shared_bias_sums_every_use():
    # two-two-two's b1 feeds both hidden neurons: dE/db1 = dE/dnet_h1 + dE/dnet_h2
    p = derive.load("two-two-two")
    g = p.graph
    c = p.calculus
    b1 = g.quantities["b1"].entries[0]
    assert {f.of.quantity for f in c.adjoint(b1).terms} == {"net_h1", "net_h2"}
    assert len(c.paths(b1)) == 4
    sol = p.solve(digits=15)
    total = sum(mpmath.mpf(sol.adjoint(g.quantities[n].entries[0]).text) for n in ("net_h1", "net_h2"))
    assert abs(total - mpmath.mpf(sol.adjoint(b1).text)) < 1e-17


def test_chain_stops_at_branch_and_names_textbook_factors():
    p = derive.load("two-two-two")
    g, c = p.graph, p.calculus
    w1 = g.quantities["w1"].entries[0]
    chain = c.chain(w1)
    assert chain.head.quantity == "out_h1"        # out_h1 feeds net_o1 and net_o2
    assert [(f.of.quantity, f.wrt.quantity) for f in chain.factors] == [("out_h1", "net_h1"), ("net_h1", "w1")]
    w6 = g.quantities["w6"].entries[0]
    assert [(f.of.quantity, f.wrt.quantity) for f in c.chain(w6).factors] == [
        ("E_total", "E_o1"), ("E_o1", "out_o1"), ("out_o1", "net_o1"), ("net_o1", "w6")]


def test_sigmoid_local_derivative_is_written_in_named_quantities():
    g = derive.load("two-two-two").graph
    out, net = g.quantities["out_o1"].entries[0], g.quantities["net_o1"].entries[0]
    assert g.local_derivatives[(out, net)].formula == out * (1 - out)


def test_symbolic_spec_gradient_formula_equals_sympy_diff_of_composed_loss():
    p = derive.load("one-two-one")
    g = p.graph
    composed_subs = {}
    for q in g.quantities.values():
        if q.kind == "forward":
            composed_subs[q.entries[0]] = q.local[0].xreplace(composed_subs)
    loss = composed_subs[g.loss_entry]
    for name in g.parameters:
        e = g.quantities[name].entries[0]
        ours = p.calculus.formula(e).xreplace(composed_subs)
        theirs = sp.diff(loss, e)
        # compare at random points (the two forms differ syntactically)
        for seed in range(3):
            pts = {s: sp.Rational(seed * 7 + i * 3 + 1, 11) for i, s in enumerate(sorted(loss.free_symbols, key=str))}
            a = sp.N(ours.xreplace(pts).rewrite(sp.exp), 30)
            b = sp.N(theirs.xreplace(pts).rewrite(sp.exp), 30)
            assert abs(a - b) < 1e-25, name


def test_paths_sum_to_gradient_formula():
    p = derive.load("two-two-two")
    for e, grad in p.calculus.gradients().items():
        total = sp.Add(*[path.formula for path in grad.paths])
        assert sp.expand(total - grad.formula) == 0, e


def test_diff_composed_cross_check_agrees_with_backprop():
    p = derive.load("alice")
    g = p.graph
    from derive import numeric as nm
    ctx = nm.MpContext(40)
    st = verify.make_state(g, verify.initial_values(g, ctx), ctx)
    for name in g.parameters:
        e = g.quantities[name].entries[0]
        d = calc.diff_composed(g, e)
        assert abs(nm.evaluate(d, st.values, ctx) - st.adjoint[e]) < mpmath.mpf(10) ** -35


def test_matrix_form_rules_checked_entry_by_entry():
    from derive.matrixform import matrix_rules, MMul, MT, MSym
    p = derive.load("matrix-linear")
    rules = {r.wrt: r for r in matrix_rules(p.graph)}
    # dE/dW2 = Hᵀ · dE/dP
    assert rules["w2"].terms[0].expr == MMul(MT(MSym("hidden")), MSym("pred", adjoint=True))
    v = p.verify()
    assert any(c.method == "matrix form" for c in v.checks) and v.ok
