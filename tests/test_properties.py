"""Property-based tests (hypothesis): random well-formed networks never crash and their
gradients agree with finite differences; random bytes and random TOML give exit 2 or a result."""
import io
import contextlib
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import derive
from derive import spec as spec_mod
from derive.cli import main

from conftest import examples, run_exec

ACTIVATIONS = ["sigmoid", "tanh", "relu", "softplus", ""]


def decimals(lo=-2, hi=2):
    return st.integers(lo * 1000, hi * 1000).map(lambda n: f"{n / 1000:.3f}")


@st.composite
def layered_network(draw):
    """A random small fully connected network as a spec text (scalar names, one per neuron)."""
    n_in = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)) + [draw(st.integers(1, 2))]
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in sizes]
    loss_kind = draw(st.sampled_from(["half-squared", "squared", "cross-entropy"]))
    data = [f"x{i} = {draw(decimals())}" for i in range(n_in)]
    params, forward = [], []
    prev = [f"x{i}" for i in range(n_in)]
    for layer, (size, act) in enumerate(zip(sizes, acts)):
        last = layer == len(sizes) - 1
        if last and loss_kind == "cross-entropy":
            act = "sigmoid"
        outs = []
        for j in range(size):
            terms = []
            for k, p in enumerate(prev):
                w = f"w{layer}_{j}_{k}"
                params.append(f"{w} = {draw(decimals())}")
                terms.append(f"{w}*{p}")
            b = f"b{layer}_{j}"
            params.append(f"{b} = {draw(decimals())}")
            net, out = f"net{layer}_{j}", f"out{layer}_{j}"
            forward.append(f'{net} = "{" + ".join(terms)} + {b}"')
            forward.append(f'{out} = "{act}({net})"' if act else f'{out} = "{net}"')
            outs.append(out)
        prev = outs
    targets = []
    loss_terms = []
    for j, o in enumerate(prev):
        t = f"t{j}"
        lo, hi = (0, 1) if loss_kind == "cross-entropy" else (-2, 2)
        targets.append(f"{t} = {draw(decimals(lo, hi))}")
        loss_terms.append({
            "half-squared": f"1/2*({t} - {o})^2",
            "squared": f"({t} - {o})^2",
            "cross-entropy": f"-({t}*log({o}) + (1 - {t})*log(1 - {o}))",
        }[loss_kind])
    forward.append(f'E = "{" + ".join(loss_terms)}"')
    lr = draw(decimals(0, 1))
    return "\n".join(['title = "random network"', "[data]", *data, *targets, "[parameters]", *params,
                      "[forward]", *forward, "[train]", f"learning_rate = {lr}"]) + "\n"


def _relu_at_kink(problem) -> bool:
    sol = problem.solve(digits=5)
    for q in problem.graph.quantities.values():
        if q.kind == "forward" and q.text.startswith("relu("):
            arg = problem.graph.quantities[q.uses[0]]
            if any(sol.value(e).text == "0" for e in arg.entries):
                return True
    return False


def solves_and_verifies(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("net") / "net.toml"
    path.write_text(text)
    problem = derive.Problem(spec_mod.load(str(path)))
    assume(not _relu_at_kink(problem))      # relu is not differentiable at exactly 0
    sol = problem.solve(digits=8)
    assert len(sol.gradients) == len(problem.graph.parameters)
    v = problem.verify(digits=40)
    assert v.ok, [c for c in v.checks if not c.ok][:3]


# verify's SymPy cross-check (sympy.diff of the composed loss per parameter) takes about 0.5 s of
# CPU a network: 40 networks in the full suite, 10 in the fast tier
@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layered_network())
def test_random_networks_solve_and_gradients_agree_with_finite_differences(tmp_path_factory, text):
    solves_and_verifies(tmp_path_factory, text)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layered_network())
def test_ten_random_networks_solve_and_agree_with_finite_differences(tmp_path_factory, text):
    solves_and_verifies(tmp_path_factory, text)


def _run_main(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


# examples(full, fast): the full suite runs the first count, the fast tier the second (tests/conftest.py)
@settings(max_examples=examples(150, fast=40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_as_spec_give_exit_2_never_a_traceback(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("bytes") / "spec.toml"
    path.write_bytes(blob)
    code, out, err = _run_main(["solve", str(path)])
    assert code in (0, 2)
    if code == 2:
        assert err.startswith("derive: ") and err.count("\n") == 1


toml_keys = st.sampled_from(["title", "data", "parameters", "forward", "train", "latex", "symbolic",
                             "w", "x", "E", "loss", "update", "steps", "learning_rate", "sigmoid"])
toml_scalars = st.one_of(
    st.integers(-10 ** 6, 10 ** 6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(f), repr(f))),
    st.text(alphabet=string.ascii_letters + string.digits + "+-*/^()@ .,_'\"", max_size=20).map(
        lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(["true", "[1, 2]", "[[1, 2], [3, 4]]", "[]", '"w*x"', '"sigmoid(w)"', "{}"]))


@st.composite
def random_toml(draw):
    title = draw(st.sampled_from(['"t"', "1", '""']))
    lines = [f"title = {title}"]
    for section in draw(st.lists(st.sampled_from(["data", "parameters", "forward", "train", "latex"]),
                                 max_size=5, unique=True)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(toml_keys, max_size=4, unique=True)):
            lines.append(f"{key} = {draw(toml_scalars)}")
    return "\n".join(lines) + "\n"


@settings(max_examples=examples(200, fast=50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_toml())
def test_random_toml_gives_exit_2_or_a_result(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "spec.toml"
    path.write_text(text)
    for args in (["solve", str(path)], ["eval", str(path), "E"]):
        code, out, err = _run_main(args)
        assert code in (0, 2), (text, err)
        if code == 2:
            assert err.startswith("derive: ") and err.count("\n") == 1, err


def test_garbage_through_a_real_subprocess(tmp_path):
    # the same as above, once, as a user runs it
    for i, blob in enumerate([b"\x00\xff\xfe", b"title = \"t\"\n[forward]\nE = \"((((\"\n", b"[[[", "标题 = 1".encode()]):
        p = tmp_path / f"g{i}.toml"
        p.write_bytes(blob)
        r = run_exec("solve", p)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1


claim_values = st.one_of(
    st.text(alphabet=string.digits + ".-e", max_size=12).map(lambda s: f'"{s}"'),
    st.sampled_from(['"0.0214"', '"1e400"', '"nan"', '"-0"', "0.5", "true", "[]", '[["1"], ["2"]]', '["1", "2"]']))
claim_formulas = st.text(alphabet=string.ascii_letters + string.digits + "+-*/^()@ _.{}\\", max_size=30)
claim_ofs = st.sampled_from(["L", "dL/dw1", "w1@1", "h1", "dL/dh1", "nope", "dh1/dw1", "sum_h1 + 1", "(((", ""])


@st.composite
def random_claims(draw):
    spec = draw(st.sampled_from(['"alice"', '"nope"', "1", '"../x.toml"']))
    lines = [f"spec = {spec}"]
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[claim]]")
        lines.append(f'of = "{draw(claim_ofs)}"')
        kind = draw(st.sampled_from(["value", "expr", "latex", "none", "both"]))
        if kind in ("value", "both"):
            lines.append(f"value = {draw(claim_values)}")
        if kind in ("expr", "both"):
            lines.append("expr = '" + draw(claim_formulas).replace("'", "") + "'")
        if kind == "latex":
            lines.append("latex = '" + draw(claim_formulas).replace("'", "") + "'")
    return "\n".join(lines) + "\n"


@settings(max_examples=examples(120, fast=30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(random_claims(), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_random_claims_files_give_a_verdict_or_exit_2(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("claims") / "claims.toml"
    path.write_text(text, encoding="utf-8")
    code, out, err = _run_main(["check", str(path)])
    assert code in (0, 1, 2), (text, err)
    if code == 2:
        assert err.startswith("derive: ") and err.count("\n") == 1, err
