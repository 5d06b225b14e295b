"""The tape (derive/tape.py) against the engine's own run, and against an independent mpmath loop.

- Ball for ball: on random programs of scalars (every operation and function the language has,
  seeded), every value, adjoint and op value at every step of a replayed run is the same ball —
  the same midpoint and radius — as the engine's run gives; errors are the same errors, with the
  same located message.
- Digit for digit: the certified numbers of `derive solve` with and without the tape.
- Many steps: 2 000 steps of two-two-two at 30 digits, the engine's run against the tape, and the
  loss and weights against gradient descent written out by hand in mpmath at 80 digits.
- The tape declines what it cannot repeat (arrays; an update that carries state of its own; a
  branch on a value), and the engine's own run is used instead.
"""
from __future__ import annotations

import random
import re
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest

import derive
from derive import engine, tape
from derive import spec as spec_mod
from derive.errors import DeriveError

FUNCTIONS = ["sigmoid", "tanh", "exp", "log", "sqrt", "relu", "softplus", "sum", "mean", "transpose",
             "frobenius", "norm2"]


def _general(program, prec: int, steps: int):
    """The engine's run, without the tape."""
    with engine.precision(prec) as ctx:
        return engine.run(program, ctx, steps)


def _replayed(program, prec: int, steps: int):
    with engine.precision(prec) as ctx:
        return tape.replayed(program, ctx, steps, engine._TAPE_PARTS)


def _same_ball(x, y) -> bool:
    """The same ball: midpoint and radius equal (a NaN or infinite ball: the same text)."""
    if not (isinstance(x, engine.arb) and isinstance(y, engine.arb)):
        return False
    if not (x.mid().is_finite() and y.mid().is_finite()):
        return str(x) == str(y)
    return x.mid() == y.mid() and x.rad() == y.rad()


def assert_same_trajectory(a, b):
    assert len(a.steps) == len(b.steps)
    for k, (s, t) in enumerate(zip(a.steps, b.steps)):
        for table in ("values", "adjoints"):
            x, y = getattr(s, table), getattr(t, table)
            assert list(x) == list(y), (k, table)
            for name in x:
                assert x[name].shape == y[name].shape == ()
                assert _same_ball(x[name].data, y[name].data), (k, table, name, x[name].data, y[name].data)
        assert list(s.op_values) == list(t.op_values)
        for name in s.op_values:
            xs, ys = s.op_values[name], t.op_values[name]
            assert len(xs) == len(ys) and all(_same_ball(p.data, q.data) for p, q in zip(xs, ys)), (k, name)


def _outcome(f):
    try:
        return "ok", f()
    except (DeriveError, engine.Imprecise) as e:     # Imprecise: a ball too wide to decide a branch
        return "error", f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------- random programs of scalars
def _random_spec(rng: random.Random):
    """A random scalar spec: data, parameters, definitions using every operation and function."""
    dec = lambda lo, hi: Fraction(rng.randint(int(lo * 1000), int(hi * 1000)), 1000)  # noqa: E731
    data = {f"x{i}": dec(-2, 2) for i in range(rng.randint(1, 3))}
    params = {f"w{i}": dec(-1.5, 1.5) for i in range(rng.randint(1, 4))}
    names = list(data) + list(params)

    def expression(depth: int) -> str:
        if depth == 0 or rng.random() < 0.25:
            return rng.choice(names) if rng.random() < 0.85 else str(dec(0.1, 3))
        kind = rng.random()
        if kind < 0.45:
            op = rng.choice(["+", "-", "*", "*", "/"])
            return f"({expression(depth - 1)} {op} {expression(depth - 1)})"
        if kind < 0.55:
            e = rng.choice(["2", "3", "0.5", "(-1)", rng.choice(names)])
            return f"({expression(depth - 1)})^{e}"
        if kind < 0.6:
            return f"-({expression(depth - 1)})"
        return f"{rng.choice(FUNCTIONS)}({expression(depth - 1)})"

    forward = {}
    for i in range(rng.randint(2, 6)):
        forward[f"d{i}"] = expression(rng.randint(1, 3))
        names.append(f"d{i}")
    last = list(forward)[-rng.randint(1, min(3, len(forward))):]
    forward["E"] = " + ".join(f"1/2*({n})^2" for n in last)
    if rng.random() < 0.3:          # a definition after the loss: computed, not differentiated
        forward["after"] = f"E * {rng.choice(names)}"
    update = [p for p in params if rng.random() < 0.8] or [next(iter(params))]
    doc = {"title": "random", "data": {k: float(v) for k, v in data.items()},
           "parameters": {k: float(v) for k, v in params.items()}, "forward": forward,
           "train": {"loss": "E", "learning_rate": float(dec(0.01, 0.5)), "update": update}}
    return doc


def _program(doc):
    return engine.compile_spec(spec_mod.spec_from_dict(doc, sid="random", path="random.toml"))


def _random_programs(n: int, seed: int = 0):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        doc = _random_spec(rng)
        try:
            out.append((doc, _program(doc)))
        except DeriveError:          # refused before any work (1/0 in a constant, …): draw again
            continue
    return out


RANDOM = _random_programs(60)


@pytest.mark.parametrize("i", range(len(RANDOM)))
def test_random_programs_replay_to_the_same_balls_or_the_same_error(i):
    _replay_agrees(i, 1 + i % 7 if i % 2 else tape.MIN_STEPS + i % 5, (64, 200))


@pytest.mark.parametrize("i", range(0, len(RANDOM), 6))
def test_random_programs_after_many_steps(i):
    _replay_agrees(i, 300, (128,))


def _replay_agrees(i: int, steps: int, precisions: tuple):
    doc, program = RANDOM[i]
    for prec in precisions:
        general = _outcome(lambda: _general(program, prec, steps))
        fast = _outcome(lambda: _replayed(program, prec, steps))
        via_engine = _outcome(lambda: engine._ball_run(program, prec, steps))
        if general[0] == "error":
            assert fast == ("ok", None), doc              # the tape declines ...
            assert via_engine == general, doc             # ... and the engine says what is wrong
            continue
        assert fast[0] == "ok" and fast[1] is not None, doc   # the tape applies to every such program
        assert_same_trajectory(general[1], fast[1])
        assert_same_trajectory(general[1], via_engine[1])


def test_the_random_programs_cover_the_language_and_its_errors():
    """The draw above is what it claims: every function, ÷ and ^, errors after a step, runs that
    end without error, and definitions after the loss."""
    texts = " ".join(" ".join(doc["forward"].values()) for doc, _ in RANDOM)
    assert all(f"{f}(" in texts for f in FUNCTIONS) and "/" in texts and "^" in texts
    kinds = []
    for i, (_doc, program) in enumerate(RANDOM):
        kinds.append(_outcome(lambda: _general(program, 64, 1 + i % 7))[0])
    assert kinds.count("ok") >= 30 and kinds.count("error") >= 3
    assert any("after" in doc["forward"] for doc, _ in RANDOM)


def _all_numbers(nums):
    for table in (nums.forward, nums.gradients, nums.updated):
        for name, vals in table.items():
            yield from ((name, v) for v in vals)
    yield from (("history", v) for v in nums.history)


@pytest.mark.parametrize("i", range(0, len(RANDOM), 3))
def test_certified_digits_are_the_same_with_and_without_the_tape(i, monkeypatch):
    doc, program = RANDOM[i]
    steps = tape.MIN_STEPS + i % 5
    for digits in (5, 30):
        fast = _outcome(lambda: list(_all_numbers(engine.solution_numbers(program, digits, steps))))
        with monkeypatch.context() as m:
            m.setattr(tape, "run", lambda *a: None)
            general = _outcome(lambda: list(_all_numbers(engine.solution_numbers(program, digits, steps))))
        if general[0] == "ok":
            assert [(n, v.text, v.exact) for n, v in fast[1]] == [(n, v.text, v.exact) for n, v in general[1]], doc
        else:
            assert fast == general, doc


def test_a_step_is_replayed_again_when_its_values_are_asked_for():
    """Steps in the middle keep their inputs and loss; their other values, adjoints and op
    values are replayed on demand, at the run's precision whatever flint's is then."""
    program = derive.load("two-two-two").program
    fast, general = _replayed(program, 300, 6), _general(program, 300, 6)
    middle = fast.steps[3]
    with engine.precision(53):
        a = middle.values["out_o2"].data
        grads = [middle.adjoints[p].data for p in ("w1", "w8", "b1", "i1")]
        ops = middle.op_values["net_h1"]
    assert _same_ball(a, general.steps[3].values["out_o2"].data)
    assert all(_same_ball(g, general.steps[3].adjoints[p].data) for g, p in zip(grads, ("w1", "w8", "b1", "i1")))
    assert len(ops) == len(general.steps[3].op_values["net_h1"])
    assert middle.values.get("nothing") is None and "E_total" in middle.adjoints
    assert_same_trajectory(general, fast)


def test_quantities_at_a_step_and_derivatives_from_other_seeds_are_the_same(monkeypatch):
    """`derive eval` of NAME@k, dA/dB@k (a backward pass from another seed over a replayed step's
    op values) and expressions over them: the same digits with and without the tape."""
    problem = derive.load("two-two-two")
    quantities = ["out_o1@14", "dE_o2/dw1@13", "dnet_o1/dout_h1@12", "E_total - E_total@15", "dE_total/di1@15"]
    fast = [a.value.text for a in problem.eval(*quantities, digits=25)]
    monkeypatch.setattr(tape, "run", lambda *a: None)
    general = [a.value.text for a in derive.load("two-two-two").eval(*quantities, digits=25)]
    assert fast == general


# ---------------------------------------------------------------- many steps
STEPS = 2000


def _mpmath_two_two_two(steps: int, dps: int = 80):
    """Gradient descent on the two-two-two network written out by hand (the chain rule for a
    2-2-2 sigmoid network, shared biases not updated), at `dps` digits: (losses, final weights)."""
    with mpmath.workdps(dps):
        m = mpmath.mpf
        i1, i2, t1, t2 = m("0.02"), m("0.04"), m("0.5"), m("0.9")
        w = [m(s) for s in ("0.25", "0.25", "0.15", "0.20", "0.30", "0.35", "0.40", "0.35")]
        b1, b2, lr = m("0.4"), m("0.7"), m("0.1")
        s = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
        losses = []
        for k in range(steps + 1):
            h1, h2 = s(w[0] * i1 + w[1] * i2 + b1), s(w[2] * i1 + w[3] * i2 + b1)
            o1, o2 = s(w[4] * h1 + w[5] * h2 + b2), s(w[6] * h1 + w[7] * h2 + b2)
            losses.append((t1 - o1) ** 2 / 2 + (t2 - o2) ** 2 / 2)
            if k == steps:
                break
            d1, d2 = (o1 - t1) * o1 * (1 - o1), (o2 - t2) * o2 * (1 - o2)
            e1, e2 = (d1 * w[4] + d2 * w[6]) * h1 * (1 - h1), (d1 * w[5] + d2 * w[7]) * h2 * (1 - h2)
            g = [e1 * i1, e1 * i2, e2 * i1, e2 * i2, d1 * h1, d1 * h2, d2 * h1, d2 * h2]
            w = [wi - lr * gi for wi, gi in zip(w, g)]
        return losses, w


def _within_half_unit(text: str, ref, digits: int) -> bool:
    """The decimal `text` is `ref` correctly rounded to `digits` significant digits, by value:
    |text − ref| ≤ ½ unit in its last place (up to 10⁻⁶⁰ of slack for the reference's own error)."""
    with mpmath.workdps(80):
        value = mpmath.mpf(text)
        unit = mpmath.mpf(10) ** (int(mpmath.floor(mpmath.log10(abs(ref)))) - digits + 1)
        return abs(value - ref) <= unit / 2 + mpmath.mpf(10) ** -60 and len(text.replace("-", "").replace(
            ".", "").split("e")[0].lstrip("0")) == digits


def test_two_thousand_steps_agree_with_the_engine_and_with_a_plain_mpmath_loop():
    problem = derive.load("two-two-two")
    prec = int(30 * 3.33) + 64 + STEPS // 50       # what `certified` starts at for these steps
    fast, general = _replayed(problem.program, prec, STEPS), _general(problem.program, prec, STEPS)
    assert [_same_ball(a.values["E_total"].data, b.values["E_total"].data)
            for a, b in zip(fast.steps, general.steps)] == [True] * (STEPS + 1)
    for k in (0, 1, 999, STEPS):
        assert all(_same_ball(fast.steps[k].values[p].data, general.steps[k].values[p].data)
                   for p in problem.program.parameters)
        assert all(_same_ball(fast.steps[k].adjoints[p].data, general.steps[k].adjoints[p].data)
                   for p in problem.program.parameters)

    nums = problem.numbers(30, STEPS)
    losses, weights = _mpmath_two_two_two(STEPS)
    assert len(nums.history) == STEPS + 1
    for k in (*range(0, STEPS + 1, 250), STEPS):
        assert _within_half_unit(nums.history[k].text, losses[k], 30), (k, nums.history[k].text, losses[k])
    for i, w in enumerate(weights):
        assert _within_half_unit(nums.updated[f"w{i + 1}"][0].text, w, 30)
    assert Fraction(nums.updated["b1"][0].text) == Fraction(2, 5)     # not in update: unchanged
    assert losses[STEPS] < losses[0] / 2            # the descent is doing something


# slow: 10 000 mpmath steps (about 4 s of CPU); the fast tier checks the same path with the 2 000-step
# test above (the engine, its tape and a plain mpmath loop agree)
@pytest.mark.slow
def test_the_readme_s_ten_thousand_steps():
    """The README's API example: the loss after 10 000 steps at 30 digits, against the mpmath
    descent at 60 digits (10 000 steps lose far fewer than 20 of them)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"problem\.numbers\(digits=30, steps=10000\)\.history\[-1\]\.text +# '([^']+)'", readme)
    assert shown is not None
    got = derive.load("two-two-two").numbers(digits=30, steps=10000).history[-1].text
    losses, _ = _mpmath_two_two_two(10000, dps=60)
    assert got == shown.group(1) and _within_half_unit(got, losses[-1], 30)


# ---------------------------------------------------------------- what the tape declines
def test_the_engine_replays_long_runs_of_scalars_and_runs_short_ones_itself(monkeypatch):
    """Recording costs about as much as a few steps of the engine's run: below MIN_STEPS steps the
    engine runs them itself; from MIN_STEPS on, `derive solve`'s runs come from the tape."""
    made = []
    real = tape.replayed
    monkeypatch.setattr(tape, "replayed", lambda *a: made.append(real(*a)) or made[-1])
    program = derive.load("two-two-two").program
    engine._ball_run(program, 128, tape.MIN_STEPS - 1)
    assert made == []
    traj = engine._ball_run(program, 128, tape.MIN_STEPS)
    assert len(made) == 1 and made[0] is traj
    engine.solution_numbers(program, 30, 40)
    assert len(made) == 2 and made[1] is not None


def test_arrays_are_left_to_the_engine():
    program = derive.load("matrix-linear").program
    assert not tape.applies(program)
    assert _replayed(program, 128, 2) is None
    assert engine._ball_run(program, 128, 2).steps[2].values["E"].shape == ()


def _with_update(update):
    """engine.run with its update replaced by update(ctx, lr, name, value, g, state)."""
    def run(program, ctx, steps):
        spec = program.spec
        values = engine.input_values(program, ctx)
        lr, state, out = ctx.const(spec.learning_rate), {}, []
        for k in range(steps + 1):
            step = engine._one_step(program, ctx, values, k)
            out.append(step)
            if k == steps:
                break
            values = {n: v for n, v in values.items() if n in spec.data or n in spec.parameters}
            for name in spec.update:
                g = step.adjoints.get(name)
                if g is not None:
                    values[name] = update(ctx, lr, name, values[name], g, state)
        return engine.Trajectory(ctx, out)
    return run


def _plain(ctx, lr, name, p, g, state):
    return ctx.sub(p, ctx.mul(lr, g, ()), ())


def _momentum(ctx, lr, name, p, g, state):
    # v ← v/2 + g, p ← p − η·v: v is carried from step to step outside the values
    state[name] = g if name not in state else ctx.add(ctx.mul(ctx.const(Fraction(1, 2)), state[name], ()), g, ())
    return ctx.sub(p, ctx.mul(lr, state[name], ()), ())


def _sign_descent(ctx, lr, name, p, g, state):
    # p ← p − η·sign(g): a branch on a value
    return ctx.sub(p, lr, ()) if ctx.entries(g)[0] > 0 else ctx.add(p, lr, ())


@pytest.mark.parametrize("update, repeats", [(_plain, True), (_momentum, False), (_sign_descent, False)],
                         ids=["plain", "momentum", "sign"])
def test_the_tape_is_used_only_when_the_steps_repeat(update, repeats):
    program = derive.load("two-two-two").program
    run = _with_update(update)
    parts = engine._TAPE_PARTS._replace(run=run)
    with engine.precision(128) as ctx:
        fast = tape.replayed(program, ctx, 5, parts)
        general = run(program, ctx, 5)
    if repeats:
        assert_same_trajectory(general, fast)
    else:
        assert fast is None
        with engine.precision(128) as ctx:     # and the plain tape would have been wrong
            plain = tape.replayed(program, ctx, 5, engine._TAPE_PARTS)
        assert not _same_ball(plain.steps[5].values["w6"].data, general.steps[5].values["w6"].data)


def test_an_error_after_many_steps_is_the_engines_message(monkeypatch):
    """w grows by about one each step and y = log(5 − w) fails after a few: the tape declines and
    the engine names the step and the parameter's value, exactly as without the tape."""
    doc = {"title": "t", "parameters": {"w": 0.0}, "forward": {"y": "log(5 - w)", "E": "y - 10*w"},
           "train": {"loss": "E", "learning_rate": 0.1, "update": ["w"]}}
    program = _program(doc)
    assert _replayed(program, 128, 2) is not None
    assert _replayed(program, 128, 40) is None
    fast = _outcome(lambda: engine.solution_numbers(program, 10, 40))
    monkeypatch.setattr(tape, "run", lambda *a: None)
    general = _outcome(lambda: engine.solution_numbers(program, 10, 40))
    assert fast[0] == "error" and "forward.y (after step" in fast[1] and "log of a value ≤ 0" in fast[1]
    assert fast == general


# ---------------------------------------------------------------- one pass per sample (training)
@pytest.mark.parametrize("i", range(0, len(RANDOM), 4))
def test_forward_backward_from_other_inputs_is_the_engines_step(i):
    """engine.forward_backward (what a training loop calls per sample) replays the tape from
    inputs other than the spec's: the same balls as the engine's own pass, or the same error."""
    _doc, program = RANDOM[i]
    spec = program.spec
    rng = random.Random(i)
    with engine.precision(128) as ctx:
        for _ in range(3):
            values = {n: ctx.const(Fraction(rng.randint(-900, 900), 1000))
                      for n in (*spec.data, *spec.parameters)}
            fast = _outcome(lambda: engine.forward_backward(program, ctx, values))
            slow = _outcome(lambda: engine._one_step(program, ctx, values, 0))
            assert fast[0] == slow[0], (fast, slow)
            if fast[0] == "error":
                assert fast[1] == slow[1]
                continue
            a, b = fast[1], slow[1]
            for table in ("values", "adjoints"):
                x, y = getattr(a, table), getattr(b, table)
                assert sorted(x) == sorted(y), table
                assert all(_same_ball(x[n].data, y[n].data) for n in x), table


def test_training_passes_of_a_scalar_network_replay_its_tape(monkeypatch):
    """alice's per-sample passes come from the tape (the engine's own pass is not called)."""
    program = derive.load("alice").program
    calls = []
    real = engine._one_step
    monkeypatch.setattr(engine, "_one_step", lambda *a, **k: calls.append(1) or real(*a, **k))
    with engine.precision(128) as ctx:
        values = engine.input_values(program, ctx)
        engine.forward_backward(program, ctx, values)        # records the tape (by engine.run)
        assert engine._tape_of(program, ctx) is not None
        calls.clear()
        st = engine.forward_backward(program, ctx, values)
        assert calls == []
        want = real(program, ctx, values, 0)
        assert _same_ball(st.values[program.loss].data, want.values[program.loss].data)
        assert all(_same_ball(st.adjoints[p].data, want.adjoints[p].data) for p in program.parameters)
