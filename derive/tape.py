"""Stage 4b — tape: the engine's own run of a program of scalars, recorded once and replayed.

`engine.run` walks each definition's op list and sends every operation through the
`BallArrays` context: several Python calls around each arb operation, about four times the
arithmetic itself on a small network.  For a program whose every value is a scalar, `run` here
records what the engine's run does, once, and then repeats only the arb operations:

1. *Record.*  The engine's `run` itself is executed over stand-ins (`_Slot`) for the inputs,
   in a recording context: `BallArrays` with its two gates for functions (`zip`, `map`, through
   which every ÷, power, σ, exp, log, σ′ … goes) replaced by gates that write down which function
   was applied to what.  Each `+ − × neg` on a stand-in, and each function applied to one,
   becomes an instruction; what involves no stand-in (the constants 1/2, η, 1 …) is computed at
   once, at the run's precision, exactly as the engine computes it at every step.  A stand-in
   refuses comparisons and truth values, so a branch on a value outside those functions cannot
   be recorded: the recording fails and the engine's own run is used.
2. *Check.*  Recorded over 0 and over 2 steps: the tape is used only when steps 1 and 2 repeat
   step 0's instructions, and the update after step 1 repeats the one after step 0, on what the
   engine carries from step to step (the data and parameter values) and nothing else.
3. *Replay.*  Every step runs the instructions over a flat list of bare arbs: the same
   operations, on the same operands, in the same order as the engine's run, so the same balls.
   Only each step's inputs and loss are kept; any other value, adjoint or op value of a step is
   replayed again when it is asked for (the same balls again, at the run's precision).

Any error while replaying (÷ 0, the log of a ball that contains 0, a value beyond a limit …)
drops the tape: the engine's own run then reproduces the error with its located message.

The engine gives its own pieces (`Parts`: its general `run`, the value and step containers and
its `Imprecise`), so that this module imports no stage and every number still comes from the
engine's rules.
"""
from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import NamedTuple

import flint

from .errors import DeriveError

CHECK_STEPS = 2             # steps recorded to check that the tape repeats
MIN_STEPS = 12              # fewer steps: recording costs about as much as the engine's own run


class Parts(NamedTuple):
    """What the engine lends the tape."""
    run: object             # engine.run without the tape: (program, ctx, steps) -> Trajectory
    arr: type               # engine.Arr
    step: type              # engine.Step
    trajectory: type        # engine.Trajectory
    imprecise: type         # engine.Imprecise


class NotRecordable(Exception):
    """The engine's run did something the tape cannot repeat (see the module docstring)."""


def applies(program) -> bool:
    """A program the tape is for: every value (data, parameter, definition) a scalar."""
    return all(shape == () for shape in program.shapes.values())


def run(program, ctx, steps: int, parts: Parts):
    """`replayed`, for runs of at least MIN_STEPS steps (measured here on the built-in scalar
    networks: recording takes 1.5–2 ms, as long as 5–7 steps of the engine's own run); else None."""
    return replayed(program, ctx, steps, parts) if steps >= MIN_STEPS else None


def replayed(program, ctx, steps: int, parts: Parts):
    """The engine's `Trajectory` of `steps` steps in the ball context `ctx` (flint's working
    precision must be ctx.prec), from a tape; None when the tape does not apply or a replay
    fails (the engine's own run then gives the result, or the error)."""
    if not applies(program):
        return None
    old = flint.ctx.prec
    flint.ctx.prec = ctx.prec
    try:
        tape = record(program, ctx, parts)
    except NotRecordable:
        return None
    finally:
        flint.ctx.prec = old
    try:
        return tape.trajectory(ctx, steps)
    except (DeriveError, parts.imprecise):
        return None


def one_step(tape: "Tape", inputs: list):
    """One forward and backward pass from `inputs` (balls, the data and parameters in spec
    order) as the engine's `Step` (values and adjoints by name), at the tape's precision: what a
    training loop asks for once per sample.  DeriveError or Imprecise as the replay raises them."""
    parts = tape.parts
    old = flint.ctx.prec
    flint.ctx.prec = tape.prec
    try:
        r = tape.registers(inputs, False)
    finally:
        flint.ctx.prec = old
    regs = _Registers(tape, inputs, r[tape.loss], r)
    return parts.step(_Table(regs, tape.values, parts.arr), _Table(regs, tape.adjoints, parts.arr),
                      _OpTable(regs, tape.op_values, parts.arr), {})


# ---------------------------------------------------------------- recording
class _Slot:
    """A stand-in for a scalar ball while recording: a register of the tape."""
    __slots__ = ("book", "i")

    def __init__(self, book: "_Book"):
        self.book = book
        self.i = len(book.slots)
        book.slots.append(self)

    def __add__(self, other):
        return self.book.apply(operator.add, (self, other))

    def __radd__(self, other):
        return self.book.apply(operator.add, (other, self))

    def __sub__(self, other):
        return self.book.apply(operator.sub, (self, other))

    def __rsub__(self, other):
        return self.book.apply(operator.sub, (other, self))

    def __mul__(self, other):
        return self.book.apply(operator.mul, (self, other))

    def __rmul__(self, other):
        return self.book.apply(operator.mul, (other, self))

    def __neg__(self):
        return self.book.apply(operator.neg, (self,))

    def is_exact(self) -> bool:
        """A computed value is never taken as exact (so never as an exact 0, see engine._is_zero)."""
        return False

    def _refuse(self, *_args):
        raise NotRecordable("a value was compared or tested while recording")

    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = _refuse
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __abs__ = __float__ = __int__ = _refuse
    __hash__ = object.__hash__


class _Book:
    """The instructions recorded: (function, operands, result slot); an operand is a `_Slot`
    or a ball (a constant)."""

    def __init__(self):
        self.slots: list = []
        self.code: list = []
        self.inputs: list = []      # (slot, its ball), in the order the engine made them

    def apply(self, f, args: tuple):
        if not any(isinstance(a, _Slot) for a in args):
            return f(*args)          # a constant: computed now, as the engine does each step
        # an int operand (the 0 a what-if run's sum starts from) as the exact ball it is made into
        args = tuple(flint.arb(a) if type(a) is int else a for a in args)
        if any(not isinstance(a, (_Slot, flint.arb)) for a in args):
            raise NotRecordable(f"an operand of type {type(args[0]).__name__}")
        out = _Slot(self)
        self.code.append((f, args, out))
        return out


def _recording_context(ctx, book: _Book):
    """`ctx` (a BallArrays) whose function gates and input construction record into `book`."""
    base = type(ctx)

    class Recording(base):
        def from_fractions(self, shape, entries):
            made = base.from_fractions(self, shape, entries)
            if shape != ():
                raise NotRecordable("an array")
            slot = _Slot(book)
            book.inputs.append((slot, made.data))
            return type(made)((), slot)

        def zip(self, f, a, b, shape):
            if shape != ():
                raise NotRecordable("an array")
            return type(a)((), book.apply(f, (a.data, b.data)))

        def map(self, f, a):
            if a.shape != ():
                raise NotRecordable("an array")
            return type(a)((), book.apply(f, (a.data,)))

    rec = Recording.__new__(Recording)
    rec.__dict__.update(ctx.__dict__)
    return rec


def _recorded(program, ctx, parts: Parts, steps: int, what_if=None):
    book = _Book()
    try:
        rec = _recording_context(ctx, book)
        traj = parts.run(program, rec, steps) if what_if is None else parts.run(program, rec, steps, what_if)
    except NotRecordable:
        raise
    except Exception as e:   # an error in a constant, an operation the recording lacks: not for the tape
        raise NotRecordable(str(e)) from None
    return book, traj


def record(program, ctx, parts: Parts, what_if=None) -> "Tape":
    """The tape of `program` in ctx's precision, checked to repeat (NotRecordable otherwise);
    with `what_if` (an engine.WhatIf), the tape of that what-if run."""
    one, _ = _recorded(program, ctx, parts, 0, what_if)
    book, traj = _recorded(program, ctx, parts, CHECK_STEPS, what_if)
    n = len(one.code)
    rest = len(book.code) - (CHECK_STEPS + 1) * n
    if rest < 0 or rest % CHECK_STEPS:
        raise NotRecordable("the steps do not repeat")
    u = rest // CHECK_STEPS
    spec = program.spec
    names = [*spec.data, *spec.parameters]
    carried = [[traj.steps[k].values[nm].data for nm in names] for k in range(CHECK_STEPS + 1)]
    if not _all_is([s for s, _ in book.inputs], carried[0]):
        raise NotRecordable("the inputs are not the data and parameters")
    code = book.code
    step0, update0 = code[:n], code[n:n + u]
    for k in range(1, CHECK_STEPS + 1):
        start = k * (n + u)
        ren = dict(zip(carried[0], carried[k]))
        _same(step0, code[start:start + n], ren)
        _same_layout(traj.steps[0], traj.steps[k], ren)
        if k < CHECK_STEPS:
            _same(update0, code[start + n:start + n + u], ren)
            if not _all_is([ren.get(x, x) for x in carried[1]], carried[k + 1]):
                raise NotRecordable("the update carries more than the parameters")
    return Tape(program, ctx.prec, parts, book.inputs, step0, update0, traj.steps[0], carried[1])


def _all_is(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _same(a: list, b: list, ren: dict) -> None:
    """b repeats a with a's slots renamed by `ren` (extended by each result); else NotRecordable."""
    for (fa, xa, oa), (fb, xb, ob) in zip(a, b):
        if not _same_function(fa, fb) or len(xa) != len(xb):
            raise NotRecordable("the steps do not repeat")
        for p, q in zip(xa, xb):
            if isinstance(p, _Slot):
                if ren.get(p, p) is not q:
                    raise NotRecordable("the steps do not repeat")
            elif isinstance(q, _Slot) or not _same_ball(p, q):
                raise NotRecordable("the steps do not repeat")
        ren[oa] = ob


def _same_layout(a, b, ren: dict) -> None:
    """Step b's values, adjoints and op values are step a's, renamed."""
    def same(x, y):
        x, y = x.data, y.data
        return ren.get(x, x) is y if isinstance(x, _Slot) else not isinstance(y, _Slot) and _same_ball(x, y)
    ok = (a.values.keys() == b.values.keys() and a.adjoints.keys() == b.adjoints.keys()
          and a.op_values.keys() == b.op_values.keys()
          and all(same(a.values[n], b.values[n]) for n in a.values)
          and all(same(a.adjoints[n], b.adjoints[n]) for n in a.adjoints)
          and all(len(a.op_values[n]) == len(b.op_values[n])
                  and all(same(x, y) for x, y in zip(a.op_values[n], b.op_values[n])) for n in a.op_values))
    if not ok:
        raise NotRecordable("the steps do not repeat")


def _same_function(f, g) -> bool:
    """The same function: one object, or two closures of one code over the same objects
    (BallArrays makes its σ′ gate's lambda anew at each call)."""
    if f is g:
        return True
    code = getattr(f, "__code__", None)
    if code is None or code is not getattr(g, "__code__", None) or f.__globals__ is not g.__globals__:
        return False
    if f.__defaults__ != g.__defaults__ or f.__kwdefaults__ != g.__kwdefaults__:
        return False
    cells_f, cells_g = f.__closure__ or (), g.__closure__ or ()
    return len(cells_f) == len(cells_g) and all(c.cell_contents is d.cell_contents for c, d in zip(cells_f, cells_g))


def _same_ball(x, y) -> bool:
    return isinstance(x, flint.arb) and isinstance(y, flint.arb) and x.mid() == y.mid() and x.rad() == y.rad()


# ---------------------------------------------------------------- replaying
class Tape:
    """A program's recorded step as instructions over registers: the inputs (data and
    parameters, in spec order), one register per instruction, then the constants."""

    def __init__(self, program, prec: int, parts: Parts, inputs: list, step: list, update: list,
                 layout, carried: list):
        self.prec = prec
        self.parts = parts
        self.initial = [b for _, b in inputs]
        reg = {s: i for i, (s, _b) in enumerate(inputs)}
        self.n_inputs = len(reg)
        for _f, _args, res in (*step, *update):
            reg[res] = len(reg)
        self.base = len(reg)
        consts: list = []
        const_reg: dict = {}

        def where(x) -> int:
            """The register of a slot, or of a constant (one register per constant ball)."""
            if isinstance(x, _Slot):
                return reg[x]
            if id(x) not in const_reg:
                const_reg[id(x)] = self.base + len(consts)
                consts.append(x)
            return const_reg[id(x)]

        def flat(code) -> tuple:
            return tuple((f, reg[res], where(args[0]), where(args[1]) if len(args) > 1 else -1)
                         for f, args, res in code)

        self.step_code, self.update_code = flat(step), flat(update)
        self.values = {n: where(a.data) for n, a in layout.values.items()}
        self.adjoints = {n: where(a.data) for n, a in layout.adjoints.items()}
        self.op_values = {n: tuple(where(a.data) for a in vals) for n, vals in layout.op_values.items()}
        self.next_inputs = tuple(where(x) for x in carried)
        self.loss = self.values[program.loss]
        self.template = [None] * self.base + consts
        self._slices: dict = {}         # register -> the instructions it depends on (`value`)

    def registers(self, inputs: list, update: bool) -> list:
        """Every register of one step from its inputs (with the update's, when asked); flint's
        precision must be the tape's."""
        r = self.template[:]
        r[:self.n_inputs] = inputs
        for code in (self.step_code, self.update_code) if update else (self.step_code,):
            for f, o, a, b in code:
                r[o] = f(r[a]) if b < 0 else f(r[a], r[b])
        return r

    def value(self, inputs: list, register: int):
        """One register of a step from its inputs by the instructions it depends on alone (a
        forward value: no backward pass), at the tape's precision: the same ball as `registers`
        gives (the same operations in the same order)."""
        code = self._slices.get(register)
        if code is None:
            needed, kept = {register}, []
            for ins in reversed(self.step_code):
                if ins[1] in needed:
                    kept.append(ins)
                    needed.add(ins[2])
                    if ins[3] >= 0:
                        needed.add(ins[3])
            code = self._slices[register] = tuple(reversed(kept))
        old = flint.ctx.prec
        flint.ctx.prec = self.prec
        try:
            r = self.template[:]
            r[:self.n_inputs] = inputs
            for f, o, a, b in code:
                r[o] = f(r[a]) if b < 0 else f(r[a], r[b])
        finally:
            flint.ctx.prec = old
        return r[register]

    def replay(self, inputs: list) -> list:
        """`registers` at the tape's precision, whatever flint's is now."""
        old = flint.ctx.prec
        flint.ctx.prec = self.prec
        try:
            return self.registers(inputs, False)
        finally:
            flint.ctx.prec = old

    def trajectory(self, ctx, steps: int, inputs: list | None = None):
        """The engine's Trajectory of `steps` steps: every step's inputs and loss computed now,
        the rest of a step replayed when asked for (the first and last steps are kept whole).
        `inputs` (balls, the data and parameters in spec order) replace the recorded ones: the
        run of another program of the same structure (an exercise bank's variant)."""
        old = flint.ctx.prec
        flint.ctx.prec = self.prec
        try:
            inputs, kept = (self.initial if inputs is None else inputs), []
            for k in range(steps):
                r = self.registers(inputs, True)
                kept.append(_Registers(self, inputs, r[self.loss], r if k == 0 else None))
                inputs = [r[i] for i in self.next_inputs]
            r = self.registers(inputs, False)
            kept.append(_Registers(self, inputs, r[self.loss], r))
        finally:
            flint.ctx.prec = old
        arr, make = self.parts.arr, self.parts.step
        out = [make(_Table(regs, self.values, arr), _Table(regs, self.adjoints, arr),
                    _OpTable(regs, self.op_values, arr), {}) for regs in kept]
        return self.parts.trajectory(ctx, out)


class _Registers:
    """One step's registers: its inputs and loss as kept, the rest replayed on first use."""
    __slots__ = ("tape", "inputs", "loss", "all")

    def __init__(self, tape: Tape, inputs: list, loss, registers: list | None):
        self.tape = tape
        self.inputs = inputs
        self.loss = loss
        self.all = registers

    def __getitem__(self, i: int):
        if self.all is not None:
            return self.all[i]
        tape = self.tape
        if i < tape.n_inputs:
            return self.inputs[i]
        if i == tape.loss:
            return self.loss
        if i >= tape.base:
            return tape.template[i]
        self.all = tape.replay(self.inputs)
        return self.all[i]


class _Table(Mapping):
    """name -> Arr over one step's registers (the step's values, or its adjoints)."""

    def __init__(self, regs: _Registers, where: dict, arr):
        self.regs, self.where, self.arr = regs, where, arr

    def __getitem__(self, name):
        return self.arr((), self.regs[self.where[name]])

    def __iter__(self):
        return iter(self.where)

    def __len__(self):
        return len(self.where)


class _OpTable(_Table):
    """definition name -> the Arr of each of its ops (for backward passes from other seeds)."""

    def __getitem__(self, name):
        regs = self.regs
        return [self.arr((), regs[i]) for i in self.where[name]]
