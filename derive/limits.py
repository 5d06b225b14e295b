"""Limits shared by the evaluators (each refusal names its limit; README "Limits" lists them)."""

MAX_POWER_DIGITS = 10_000   # a numeric power whose exact value would have more digits is refused
EXP_LIMIT = 100_000         # exp / sigmoid / softplus of a value beyond ± this is refused
MAX_STEPS = 50              # gradient-descent steps: train.steps, --steps and every NAME@k
