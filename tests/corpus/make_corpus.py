"""Writes tests/corpus/specs/*.toml: one bad spec per failure kind, each starting with
`# expect: <fragment of the one-line error>` and `# key: <the key it must name>`.
Run once by hand (python3 tests/corpus/make_corpus.py); the files are committed."""
from pathlib import Path

HERE = Path(__file__).resolve().parent / "specs"
BASE = 'title = "t"\n[data]\nx = 2\n[parameters]\nw = 0.5\n'


def fw(expr: str) -> str:
    return BASE + f'[forward]\nE = """{expr}"""\n'


CASES = {
    # code and things that are not expressions
    "import": (fw("__import__('os').system('touch PWNED')"), "forward.E", "unexpected character"),
    "dunder-bases": (fw("().__class__.__bases__"), "forward.E", "attribute access"),
    "lambda": (fw("lambda: 0"), "forward.E", "unexpected character"),
    "attribute": (fw("w.real"), "forward.E", "attribute access"),
    "subscript": (fw("x[0]"), "forward.E", "indices start at 1"),
    "keyword-arg": (fw("sigmoid(x=1)"), "forward.E", "keyword arguments"),
    "string": (fw("'abc'"), "forward.E", "strings"),
    "unknown-name": (fw("w*y"), "forward.E", "'y' is not defined"),
    "unknown-function": (fw("exec(w)"), "forward.E", "unknown function 'exec'"),
    "open-call": (fw("open(w)"), "forward.E", "unknown function 'open'"),
    "semicolon": (fw("w; x"), "forward.E", "unexpected character ';'"),
    "backtick": (fw("`w`"), "forward.E", "unexpected character"),
    "assignment": (fw("w = 1"), "forward.E", "assignments"),
    "conditional": (fw("w if x else 1"), "forward.E", "unexpected 'if'"),
    "empty-expression": (fw(""), "forward.E", "empty expression"),
    "unbalanced-paren": (fw("(w*x"), "forward.E", "expected ')'"),
    "trailing-operator": (fw("w*"), "forward.E", "expected a number"),
    "two-arguments": (fw("sigmoid(w, x)"), "forward.E", "takes one argument"),
    # resource bombs
    "power-tower": (fw("w*10^10^10"), "forward.E", "more than 10000 digits"),
    "exp-tower": (fw("w*exp(exp(exp(100)))"), "forward.E", "larger than 100000"),
    "deep-nesting": (fw("(" * 3000 + "w" + ")" * 3000), "forward.E", "nested more than"),
    "long-expression": (fw("w+" * 12000 + "w"), "forward.E", "characters long"),
    "huge-literal": (fw("w*" + "9" * 500), "forward.E", "longer than 400 characters"),
    "huge-exponent-literal": (fw("w*1e100000"), "forward.E", "outside ±1000"),
    # x @ transpose(x) would be a 100000×100000 matrix (10^10 entries): refused on the engine's memory
    # estimate before any work (a 10^6-entry layer is accepted since the engine rebuild)
    "huge-layer": ('title = "t"\n[data]\nx = [' + ", ".join(["1"] * 100_000) + ']\n[parameters]\nw = 1\n'
                   '[forward]\nM = "x @ transpose(x)"\nE = "w*sum(M)"\n', "forward.M",
                   "GB of memory (M alone is a 100000×100000 matrix); the limit is 4 GB"),
    "too-many-steps": (BASE + '[forward]\nE = "w*x"\n[train]\nsteps = 1000\n', "train.steps", "limited to 50"),
    "huge-integer": (BASE.replace("x = 2", "x = 1" + "0" * 120) + '[forward]\nE = "w*x"\n', "data.x",
                     "more than 100 digits"),
    # values
    "nan": (BASE.replace("x = 2", "x = nan") + '[forward]\nE = "w*x"\n', "data.x", "not a finite number"),
    "inf": (BASE.replace("x = 2", "x = -inf") + '[forward]\nE = "w*x"\n', "data.x", "not a finite number"),
    "string-value": (BASE.replace("w = 0.5", 'w = "0.5"') + '[forward]\nE = "w*x"\n', "parameters.w",
                     "expected a number"),
    "bool-value": (BASE.replace("w = 0.5", "w = true") + '[forward]\nE = "w*x"\n', "parameters.w",
                   "expected a number"),
    "ragged-matrix": (BASE.replace("w = 0.5", "w = [[1, 2], [3]]") + '[forward]\nE = "sum(w)"\n',
                      "parameters.w", "equal length"),
    "empty-list": (BASE.replace("w = 0.5", "w = []") + '[forward]\nE = "sum(w)"\n', "parameters.w",
                   "empty list"),
    "mixed-list": (BASE.replace("w = 0.5", "w = [1, [2]]") + '[forward]\nE = "sum(w)"\n', "parameters.w",
                   "mixes numbers and lists"),
    # structure
    "no-title": ('[parameters]\nw = 1\n[forward]\nE = "w"\n', "title", "required"),
    "no-forward": (BASE, "forward", "at least one definition"),
    "used-before-defined": (BASE + '[forward]\nE = "a*w"\na = "x"\n', "forward.E", "used before its definition"),
    "cycle": (BASE + '[forward]\na = "b*w"\nb = "a*x"\n', "forward.a", "cycle: a -> b -> a"),
    "self-reference": (BASE + '[forward]\na = "a*w"\n', "forward.a", "in terms of itself"),
    "duplicate-name": (BASE + '[data]\n' if False else BASE.replace("[parameters]\nw = 0.5", "[parameters]\nx = 0.5")
                       + '[forward]\nE = "x"\n', "parameters.x", "already defined by data.x"),
    "function-as-name": (BASE.replace("w = 0.5", "exp = 0.5") + '[forward]\nE = "x"\n', "parameters.exp",
                         "function name"),
    "bad-name": (BASE.replace("w = 0.5", '"w-1" = 0.5') + '[forward]\nE = "x"\n', "parameters.w-1",
                 "not a valid name"),
    "unknown-top-key": ('colour = "red"\n' + BASE + '[forward]\nE = "w*x"\n', "colour", "unknown key"),
    "unknown-train-key": (BASE + '[forward]\nE = "w*x"\n[train]\nrate = 0.1\n', "train.rate", "unknown key"),
    "loss-not-defined": (BASE + '[forward]\nE = "w*x"\n[train]\nloss = "F"\n', "train.loss", "not a name"),
    "loss-not-scalar": ('title = "t"\n[parameters]\nw = [1, 2]\n[forward]\nE = "w"\n', "train.loss",
                        "must be a scalar"),
    "update-unknown": (BASE + '[forward]\nE = "w*x"\n[train]\nupdate = ["v"]\n', "train.update",
                       "not a parameter"),
    "update-twice": (BASE + '[forward]\nE = "w*x"\n[train]\nupdate = ["w", "w"]\n', "train.update", "twice"),
    "negative-steps": (BASE + '[forward]\nE = "w*x"\n[train]\nsteps = -1\n', "train.steps", "whole number"),
    "bad-lang": ('lang = "fr"\n' + BASE + '[forward]\nE = "w*x"\n', "lang", "expected one of en, zh"),
    "bad-toml": ("title = \n", "", "not valid TOML"),
    "latex-input": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'\\input{/etc/passwd}\'\n', "latex.w",
                    "not in the safe subset"),
    "latex-write18": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'\\write18{rm -rf /}\'\n', "latex.w",
                      "not in the safe subset"),
    "latex-catcode": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'\\catcode`\\%=12\'\n', "latex.w",
                      "may not contain"),
    "latex-unbalanced": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w_{1"\n', "latex.w", "unbalanced braces"),
    "latex-percent": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w%"\n', "latex.w", "may not contain"),
    "latex-unknown-name": (BASE + '[forward]\nE = "w*x"\n[latex]\nv = "v"\n', "latex.v", "not a name"),
    # shapes
    "shape-matmul": ('title = "t"\n[data]\nx = [1, 2]\n[parameters]\nW = [[1, 2, 3]]\n[forward]\n'
                     'E = "sum(W @ x)"\n', "forward.E", "shape mismatch in '@'"),
    "shape-add": ('title = "t"\n[data]\nx = [1, 2]\n[parameters]\nw = [1, 2, 3]\n[forward]\nE = "sum(x + w)"\n',
                  "forward.E", "shape mismatch in '+'"),
    "matmul-scalar": (BASE + '[forward]\nE = "w @ x"\n', "forward.E", "'@' needs two matrices"),
    "matrix-exponent": ('title = "t"\n[parameters]\nw = [1, 2]\n[forward]\nE = "sum(2^w)"\n', "forward.E",
                        "exponent must be a scalar"),
    # numeric edge cases
    "log-zero": (BASE + '[forward]\nE = "w*log(x - 2)"\n', "forward.E", "log(0)"),
    "log-zero-at-runtime": (BASE.replace("w = 0.5", "w = 0") + '[forward]\nE = "log(relu(w))"\n', "forward.E",
                            "log of a value ≤ 0"),
    "division-by-zero": (BASE + '[forward]\nE = "w/(x - 2)"\n', "forward.E", "division by zero"),
    "division-by-zero-at-runtime": (BASE + '[forward]\nE = "x/(w - 0.5)"\n', "forward.E", "division by zero"),
    "sqrt-negative": (BASE + '[forward]\nE = "w*sqrt(-x)"\n', "forward.E", "sqrt of a negative"),
    "norm2-in-loss": ('title = "t"\n[parameters]\nW = [[1, 2], [3, 4]]\n[forward]\nE = "norm2(W)"\n',
                      "forward.E", "cannot be differentiated"),
    # display names: TeX's ^^ notation, characters TeX makes special or active, and what would
    # reach the Markdown handouts as raw HTML (issue 12, class 1 and 5)
    "latex-caret-caret-backslash": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'^^5cinput{/etc/passwd}\'\n',
                                    "latex.w", "may not contain '^^'"),
    "latex-caret-caret-char": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'w^^M\'\n', "latex.w",
                               "may not contain '^^'"),
    "latex-caret-caret-in-group": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'w_{^^7b}\'\n', "latex.w",
                                   "may not contain '^^'"),
    "latex-control-char": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\\u0007"\n', "latex.w", "U+0007"),
    "latex-delete-char": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\\u007f"\n', "latex.w", "U+007F"),
    "latex-tab": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\\t1"\n', "latex.w", "U+0009"),
    "latex-form-feed": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\\f"\n', "latex.w", "U+000C"),
    "latex-non-ascii": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "σ_{1}"\n', "latex.w", "U+03C3"),
    "latex-zero-width": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\\u200b"\n', "latex.w", "U+200B"),
    "latex-bidi-override": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\\u202e1"\n', "latex.w", "U+202E"),
    "latex-html-tag": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'<img src=x onerror=alert(1)>\'\n',
                       "latex.w", "may not contain '<' '>'"),
    "latex-greater-than": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w>0"\n', "latex.w", "may not contain '>'"),
    "latex-ampersand": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w &amp; v"\n', "latex.w",
                        "may not contain '&'"),
    "latex-double-quote": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'w"\'\n', "latex.w",
                           "may not contain '\"'"),
    "latex-prime-quote": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\'"\n', "latex.w",
                          "may not contain \"'\""),
    "latex-backtick": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "`w`"\n', "latex.w", "may not contain '`'"),
    "latex-pipe": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "|w|"\n', "latex.w", "may not contain '|'"),
    "latex-tilde": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w~1"\n', "latex.w", "may not contain '~'"),
    "latex-double-backslash": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'w\\\\x\'\n', "latex.w",
                               "not in the safe subset"),
    "latex-control-space": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'w\\ x\'\n', "latex.w",
                            "not in the safe subset"),
    "latex-csname": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'\\csname input\\endcsname\'\n', "latex.w",
                     "not in the safe subset"),
    "latex-too-long": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "' + "w" * 121 + '"\n', "latex.w",
                       "longer than 120 characters"),
    "latex-markdown-link": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "[a](javascript:alert(1))"\n',
                            "latex.w", "may not contain ']('"),
    # issue 12, class 13: truly nested input is still refused (flat chains are not nested)
    "deep-unary": (fw("-" * 101 + "w"), "forward.E", "nested more than 100 levels"),
    "deep-power": (fw("w" + "^w" * 101), "forward.E", "nested more than 100 levels"),
    "deep-calls": (fw("sigmoid(" * 101 + "w" + ")" * 101), "forward.E", "nested more than 100 levels"),
    "deep-parentheses-in-sum": (fw("x + " * 500 + "(" * 101 + "w" + ")" * 101), "forward.E",
                                "nested more than 100 levels"),
    # issue 12, class 15: errors reached only after an update step say which step and which values
    "negative-power-after-step": ('title = "t"\n[parameters]\nw = 0.1\n[forward]\ny = "w^1.5"\nE = "y + 1"\n'
                                  '[train]\nlearning_rate = 1\n', "forward.y (after step 1, w = -0.3743)",
                                  "a negative value raised to a fractional power"),
    "log-zero-after-step": ('title = "t"\n[parameters]\nw = 0.5\n[forward]\nE = "log(w)"\n'
                            '[train]\nlearning_rate = 0.25\n', "forward.E (after step 1, w = 0)", "log of a value ≤ 0"),
    "division-by-zero-after-step": ('title = "t"\n[data]\nx = 1\n[parameters]\nw = 2\nv = 1\n[forward]\n'
                                    'E = "x/(w - 1) + 2*w + v"\n[train]\nlearning_rate = 1\nsteps = 3\n',
                                    "forward.E (after step 1, w = 1, v = 0)", "division by zero"),
    "sqrt-negative-after-two-steps": ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "sqrt(w) + w"\n'
                                      '[train]\nlearning_rate = 0.4\nsteps = 3\n', "forward.E (after step 2, w = -0.",
                                      "sqrt of a negative value"),
    # issue 12, class 16: text TeX cannot typeset is refused when the spec is read
    "title-nul": ('title = "a\\u0000b"\n' + BASE[12:] + '[forward]\nE = "w*x"\n', "title", "U+0000"),
    "title-delete": ('title = "a\\u007Fb"\n' + BASE[12:] + '[forward]\nE = "w*x"\n', "title", "U+007F"),
    "title-c1-control": ('title = "a\\u009Bb"\n' + BASE[12:] + '[forward]\nE = "w*x"\n', "title", "U+009B"),
    "title-lone-cr": ('title = "a\\rb"\n' + BASE[12:] + '[forward]\nE = "w*x"\n', "title", "line break"),
    "title-newline": ('title = "a\\nb"\n' + BASE[12:] + '[forward]\nE = "w*x"\n', "title", "line break"),
    "title-line-separator": ('title = "a\\u2028b"\n' + BASE[12:] + '[forward]\nE = "w*x"\n', "title", "U+2028"),
    "title-200000-characters": ('title = "' + "a" * 200_000 + '"\n' + BASE[12:] + '[forward]\nE = "w*x"\n',
                                "title", "200000 characters long; the limit is 500"),
    "title-100000-cjk": ('title = "' + "题" * 100_000 + '"\n' + BASE[12:] + '[forward]\nE = "w*x"\n',
                         "title", "100000 characters long; the limit is 500"),
    "source-bell": (BASE + 'source = "seed \\u0007"\n' if False else 'source = "seed \\u0007"\n' + BASE
                    + '[forward]\nE = "w*x"\n', "source", "U+0007"),
    "source-too-long": ('source = "' + "s" * 501 + '"\n' + BASE + '[forward]\nE = "w*x"\n', "source",
                        "501 characters long; the limit is 500"),
    "latex-double-superscript": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w^2^3"\n', "latex.w",
                                 "double superscript"),
    "latex-double-subscript": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w_1_2"\n', "latex.w",
                               "double subscript"),
    # a prime is refused before its place is looked at: display names may not contain ' (write ^{\prime})
    "latex-prime-after-superscript": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w^2\'"\n', "latex.w",
                                      "may not contain \"'\""),
    "latex-bare-mathrm": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = \'\\mathrm\'\n', "latex.w",
                          "\\mathrm without an argument"),
    "latex-script-without-argument": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w_"\n', "latex.w",
                                      "_ without an argument"),
    "latex-control-character": (BASE + '[forward]\nE = "w*x"\n[latex]\nw = "w\\u0001"\n', "latex.w",
                                "U+0001"),
}


def main():
    HERE.mkdir(parents=True, exist_ok=True)
    for old in HERE.glob("*.toml"):
        old.unlink()
    for i, (name, (text, key, expect)) in enumerate(CASES.items(), 1):
        header = f"# expect: {expect}\n# key: {key}\n"
        (HERE / f"{i:02d}-{name}.toml").write_text(header + text, encoding="utf-8")
    print(f"{len(CASES)} files")


if __name__ == "__main__":
    main()
