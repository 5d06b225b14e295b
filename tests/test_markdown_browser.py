"""The Markdown of output/ as GitHub shows it: rendered in a real headless browser.

Every generated .md of output/ (handouts, errata, the index) is rendered in Debian's `chromium`
with markdown-it, KaTeX and Mermaid from npm (tests/browser/package.json, installed by .ci/run or,
once, by this module into DERIVE_BROWSER_DEPS, default ~/.cache/derive-browser), in one page:
tests/browser/render.js treats ```math blocks and $`…`$ as GitHub does and typesets them with
KaTeX (throwOnError), and parses and draws every ```mermaid block.  The page writes a JSON report
that `chromium --headless --dump-dom` gives back; any KaTeX or Mermaid error fails the test.  Two
documents with a deliberate error ride along in the same page and must be reported, so the test
cannot pass because nothing was looked at.

The browser tests are marked `browser` (the fast tier, -m "not tex", leaves them out; see
pyproject.toml).  Without chromium or npm the browser tests are skipped, except under CI (CI=true),
where .ci/run installs both and a missing one is a failure.  The check of the math delimiters
(no $$, no bare $) needs no browser and always runs.

`python tests/test_markdown_browser.py FILE.md OUT.png` takes a screenshot of one document.
"""
from __future__ import annotations

import html
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output"
BROWSER_DIR = Path(__file__).resolve().parent / "browser"
DEPS = Path(os.environ.get("DERIVE_BROWSER_DEPS") or Path.home() / ".cache" / "derive-browser")
SCRIPTS = ("markdown-it/dist/browser/markdown-it.umd.min.js", "katex/dist/katex.min.js", "mermaid/dist/mermaid.min.js")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                  "--allow-file-access-from-files")

BROKEN = {
    "broken-math.md": "# A broken formula\n\nFine: $`a + b`$.\n\n```math\n\\frac{1}{2 + \\left(x\n```\n",
    "broken-mermaid.md": "# A broken diagram\n\n```mermaid\ngraph LR\n  a[\"x\"] --> --> b((\n```\n",
}


def markdown_files() -> list[Path]:
    return sorted(p for p in OUTPUT.rglob("*.md"))


# ------------------------------------------------------------------ math delimiters (no browser)
def bare_dollars(md: str) -> list[str]:
    """Lines of `md` with math outside the GitHub-robust forms: a $$ anywhere, or a dollar sign
    (not escaped as \\$) outside a $`…`$ span, outside code blocks."""
    bad, fence = [], None
    for n, line in enumerate(md.splitlines(), 1):
        m = re.match(r"^(`{3,})", line)
        if m:
            fence = None if fence and line.strip() == fence else (fence or m.group(1))
            continue
        if fence:
            continue
        bare = re.sub(r"\$`[^`]+`\$", "", line.replace("\\$", ""))
        if "$" in bare:
            bad.append(f"line {n}: {line[:120]}")
    return bad


def test_generated_markdown_uses_github_math_forms_only():
    files = markdown_files()
    assert len(files) > 20
    spans = blocks = 0
    for p in files:
        text = p.read_text(encoding="utf-8")
        assert "$$" not in text, f"{p.relative_to(ROOT)}: $$"
        assert not bare_dollars(text), f"{p.relative_to(ROOT)}: {bare_dollars(text)[:3]}"
        spans += len(re.findall(r"\$`[^`]+`\$", text))
        blocks += text.count("```math\n")
    assert spans > 500 and blocks > 200


def test_the_delimiter_check_catches_the_fragile_forms():
    assert bare_dollars("a $x$ b") and bare_dollars("$$\nx\n$$") and bare_dollars("w$_1$")
    assert not bare_dollars("a $`x`$ b \\$5\n```math\nx\n```\n```mermaid\na[\"$\"]\n```")


def test_generated_markdown_ends_with_a_footer_set_apart():
    for p in OUTPUT.glob("*.md"):
        if p.name == "README.md":
            continue
        tail = p.read_text(encoding="utf-8").rstrip("\n").rsplit("\n", 4)
        assert tail[-4:-1] == ["", "---", ""] and tail[-1].startswith("*"), p.name


# ------------------------------------------------------------------ the browser
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _need(what: str):
    if os.environ.get("CI", "") not in ("", "0", "false"):
        pytest.fail(f"{what} (.ci/run installs it)")
    pytest.skip(what)


def browser_deps() -> Path:
    """node_modules with markdown-it, KaTeX and Mermaid: installed into DEPS once (npm install of
    tests/browser/package.json) when they are missing or of other versions."""
    wanted = json.loads((BROWSER_DIR / "package.json").read_text())["dependencies"]

    def installed() -> bool:
        for name, version in wanted.items():
            meta = DEPS / "node_modules" / name / "package.json"
            if not meta.is_file() or json.loads(meta.read_text()).get("version") != version:
                return False
        return all((DEPS / "node_modules" / s).is_file() for s in SCRIPTS)

    if not installed():
        npm = shutil.which("npm")
        if npm is None:
            _need("npm is not installed")
        DEPS.mkdir(parents=True, exist_ok=True)
        shutil.copy(BROWSER_DIR / "package.json", DEPS / "package.json")
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DEPS,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and installed(), f"npm install failed: {r.stderr[-2000:]}"
    return DEPS / "node_modules"


def page(docs: list[dict], modules: Path) -> str:
    """The HTML page that renders `docs` ([{name, text, show}]) with tests/browser/render.js."""
    scripts = "\n".join(f'<script src="{(modules / s).as_uri()}"></script>' for s in SCRIPTS)
    data = json.dumps(docs, ensure_ascii=True).replace("</", "<\\/")
    css = (modules / "katex/dist/katex.min.css").as_uri()
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>rendering</title>
<link rel="stylesheet" href="{css}">
<style>body {{ font-family: sans-serif; max-width: 1000px; margin: 16px auto; line-height: 1.5 }}
table {{ border-collapse: collapse }} td, th {{ border: 1px solid #ccc; padding: 2px 6px }}
pre#report {{ display: none }} .math.display {{ overflow-x: auto }}</style>
{scripts}
</head><body>
<div id="shown"></div>
<pre id="report"></pre>
<script id="docs" type="application/json">{data}</script>
<script src="{(BROWSER_DIR / 'render.js').as_uri()}"></script>
</body></html>
"""


def run_chromium(args: list[str], timeout: float = 300) -> str:
    """chromium with the flags a root, offline, headless run needs and a fresh profile; stdout."""
    chromium = _chromium()
    if chromium is None:
        _need("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="derive-chromium-") as profile:
        proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, _err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"chromium did not finish in {timeout} s")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)     # helpers left behind, if any
            except ProcessLookupError:
                pass
    return out


def render_in_browser(docs: list[dict], workdir: Path) -> dict:
    modules = browser_deps()
    html_file = workdir / "render.html"
    html_file.write_text(page(docs, modules), encoding="utf-8")
    dom = run_chromium(["--virtual-time-budget=600000", "--run-all-compositor-stages-before-draw", "--dump-dom",
                        html_file.as_uri()])
    m = re.search(r'<pre id="report">(.*?)</pre>', dom, re.S)
    assert m and m.group(1), f"no report in the page: {dom[-500:]}"
    report = json.loads(html.unescape(m.group(1)))
    assert report.get("done") and not report.get("fatal"), report.get("fatal")
    return report


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    docs = [{"name": str(p.relative_to(OUTPUT)), "text": p.read_text(encoding="utf-8"), "show": False}
            for p in markdown_files()]
    docs += [{"name": k, "text": v, "show": False} for k, v in BROKEN.items()]
    report = render_in_browser(docs, tmp_path_factory.mktemp("browser"))
    return {d["name"]: d for d in report["docs"]}


@pytest.mark.browser
def test_every_generated_markdown_renders_without_katex_or_mermaid_errors(rendered):
    files = markdown_files()
    assert set(rendered) == {str(p.relative_to(OUTPUT)) for p in files} | set(BROKEN)
    errors = {n: d["errors"] for n, d in rendered.items() if d["errors"] and n not in BROKEN}
    assert not errors, json.dumps(errors, ensure_ascii=False, indent=1)[:6000]
    warnings = {n: d["warnings"] for n, d in rendered.items() if d["warnings"]}
    assert not warnings, json.dumps(warnings, ensure_ascii=False, indent=1)[:3000]   # KaTeX's strict mode
    for p in files:
        d = rendered[str(p.relative_to(OUTPUT))]
        text = p.read_text(encoding="utf-8")
        math = len(re.findall(r"\$`[^`]+`\$", text)) + text.count("```math\n")
        assert d["math"] == math, (p.name, d["math"], math)        # every formula was typeset
        assert d["mermaid"] == d["svgs"] == text.count("```mermaid\n"), p.name
    assert sum(d["math"] for d in rendered.values()) > 1000
    assert sum(d["svgs"] for d in rendered.values()) >= 16        # a diagram in every handout


@pytest.mark.browser
def test_the_browser_check_reports_a_broken_formula_and_a_broken_diagram(rendered):
    math, diagram = rendered["broken-math.md"], rendered["broken-mermaid.md"]
    assert math["math"] == 2 and len(math["errors"]) == 1 and math["errors"][0].startswith("KaTeX:")
    assert "\\frac{1}{2 + \\left(x" in math["errors"][0]
    assert diagram["svgs"] == 0 and len(diagram["errors"]) == 1 and diagram["errors"][0].startswith("Mermaid:")


# ------------------------------------------------------------------ the diagrams' geometry
_NUM = r"(-?[\d.]+(?:e-?\d+)?)"
CLEARANCE = 4      # px an arrow keeps from a node that is not its end
RUN_TOGETHER = 20  # px two arrows may run side by side (within about 2 BAND px), away from the nodes
BAND = 3


def _path_points(d: str, step: int = 24) -> list:
    """Points along an SVG path of M, L, Q and C commands (absolute, as Mermaid writes them)."""
    pts, cur = [], (0.0, 0.0)
    for cmd, args in re.findall(r"([MLQC])([^MLQC]*)", d):
        v = [float(x) for x in re.findall(r"-?[\d.]+(?:e-?\d+)?", args)]
        if cmd == "M":
            cur = (v[0], v[1])
            pts.append(cur)
        elif cmd == "L":
            for i in range(0, len(v), 2):
                (x0, y0), (x1, y1) = cur, (v[i], v[i + 1])
                pts += [(x0 + (x1 - x0) * t / step, y0 + (y1 - y0) * t / step) for t in range(1, step + 1)]
                cur = (x1, y1)
        elif cmd == "Q":
            for i in range(0, len(v), 4):
                (x0, y0), (x1, y1), (x2, y2) = cur, v[i:i + 2], v[i + 2:i + 4]
                pts += [((1 - t) ** 2 * x0 + 2 * (1 - t) * t * x1 + t * t * x2,
                         (1 - t) ** 2 * y0 + 2 * (1 - t) * t * y1 + t * t * y2) for t in (k / step for k in range(1, step + 1))]
                cur = (x2, y2)
        else:
            for i in range(0, len(v), 6):
                (x0, y0), (x1, y1), (x2, y2), (x3, y3) = cur, v[i:i + 2], v[i + 2:i + 4], v[i + 4:i + 6]
                for k in range(1, step + 1):
                    t = k / step
                    a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
                    pts.append((a * x0 + b * x1 + c * x2 + e * x3, a * y0 + b * y1 + c * y2 + e * y3))
                cur = (x3, y3)
    return pts


def _resample(pts: list, gap: float = 2.0) -> list:
    """The polyline through `pts` as points `gap` px apart."""
    out = pts[:1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(1, int(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 / gap))
        out += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1)]
    return out


def drawing_geometry(svg: str):
    """({node: inside(x, y, margin)}, [(src, dst, points)], [(edge, (x0, y0, x1, y1))]) of a Mermaid
    flowchart SVG, in the drawing's own coordinates (its nodes, arrows and labels sit in one group)."""
    nodes = {}
    for m in re.finditer(r'<g class="node[^"]*" id="[^"]*-flowchart-(n\d+)-\d+"[^>]*transform="translate\('
                         + _NUM + r", " + _NUM + r'\)">(.*?)<g class="label"', svg, re.S):
        n, cx, cy, shape = m.group(1), float(m.group(2)), float(m.group(3)), m.group(4)
        if c := re.search(r'<circle[^>]* r="' + _NUM + '"', shape):
            r = float(c.group(1))
            nodes[n] = lambda x, y, mg, cx=cx, cy=cy, r=r: (x - cx) ** 2 + (y - cy) ** 2 < (r - mg) ** 2
        elif b := re.search(r'<rect[^>]* x="' + _NUM + '" y="' + _NUM + '" width="' + _NUM + '" height="' + _NUM + '"', shape):
            x0, y0, w, h = (float(v) for v in b.groups())
            nodes[n] = lambda x, y, mg, a=cx + x0, b=cy + y0, w=w, h=h: a + mg < x < a + w - mg and b + mg < y < b + h - mg
        else:           # a polygon or path: its bounding box
            v = [float(t) for t in re.findall(r"-?\d+(?:\.\d+)?", " ".join(re.findall(r'(?:points|d)="([^"]*)"', shape)))]
            xs, ys = v[0::2], v[1::2]
            nodes[n] = lambda x, y, mg, a=cx + min(xs), b=cy + min(ys), c=cx + max(xs), d=cy + max(ys): \
                a + mg < x < c - mg and b + mg < y < d - mg
    edges = [(m.group(2), m.group(3), _path_points(m.group(1)))
             for m in re.finditer(r'<path d="([^"]*)" id="[^"]*-L_(n\d+)_(n\d+)_\d+"', svg)]
    labels = []
    for m in re.finditer(r'<g class="edgeLabel" transform="translate\(' + _NUM + ", " + _NUM + r'\)"><g class="label" '
                         r'data-id="L_(n\d+_n\d+)_\d+" transform="translate\(' + _NUM + ", " + _NUM
                         + r'\)"><foreignObject width="' + _NUM + '" height="' + _NUM + '"', svg):
        x, y, e, dx, dy, w, h = m.groups()
        if float(w) > 0:
            x0, y0 = float(x) + float(dx), float(y) + float(dy)
            labels.append((tuple(e.split("_")), (x0, y0, x0 + float(w), y0 + float(h))))
    return nodes, edges, labels


def drawing_faults(svg: str) -> list:
    """What makes a diagram hard to follow: an arrow through a node that is not its end, two arrows
    without a common end running along each other, two arrow labels on top of each other or a
    label on a node, an arrow through another arrow's label."""
    nodes, edges, labels = drawing_geometry(svg)
    faults = []
    for src, dst, pts in edges:
        for n, inside in nodes.items():
            if n not in (src, dst) and any(inside(x, y, -CLEARANCE) for x, y in pts):
                faults.append(f"arrow {src}->{dst} runs through {n}")
    # two arrows that run along each other away from the nodes (ELK's shared channels)
    dense = {(s_, d): [(x, y) for x, y in _resample(pts) if not any(inside(x, y, -12) for inside in nodes.values())]
             for s_, d, pts in edges}
    for (e, p), (f, q) in itertools.combinations(dense.items(), 2):
        cells = {(round(x / BAND), round(y / BAND)) for x, y in q}
        near = sum(1 for x, y in p if any((round(x / BAND) + i, round(y / BAND) + j) in cells
                                         for i in (-1, 0, 1) for j in (-1, 0, 1)))
        if near * 2 > RUN_TOGETHER:
            faults.append(f"arrows {e[0]}->{e[1]} and {f[0]}->{f[1]} run together for {near * 2} px")
    for i, (e, (a0, b0, a1, b1)) in enumerate(labels):
        for f, (c0, d0, c1, d1) in labels[i + 1:]:
            if a0 < c1 - 1 and c0 < a1 - 1 and b0 < d1 - 1 and d0 < b1 - 1:
                faults.append(f"labels of {e} and {f} overlap")
        for n, inside in nodes.items():
            if any(inside(x, y, 0) for x in (a0, (a0 + a1) / 2, a1) for y in (b0, (b0 + b1) / 2, b1)):
                faults.append(f"label of {e} lies on {n}")
        for src, dst, pts in edges:
            if (src, dst) != e and any(a0 + 1 < x < a1 - 1 and b0 + 1 < y < b1 - 1 for x, y in pts):
                faults.append(f"arrow {src}->{dst} runs through the label of {e}")
    return faults


@pytest.mark.browser
def test_no_arrow_runs_through_a_node_or_a_label_and_labels_stand_apart(rendered):
    """The drawn diagrams, as Mermaid lays them out: house-price's w7 arrow once ran under the box
    of the target y, and ELK ran a layer's arrows together as parallel lines."""
    drawings = {n: d["drawings"] for n, d in rendered.items() if n not in BROKEN}
    assert sum(len(v) for v in drawings.values()) >= 54
    faults = {n: f for n, v in drawings.items() for svg in v if (f := drawing_faults(svg))}
    assert not faults, json.dumps(faults, ensure_ascii=False, indent=1)[:4000]
    nodes, edges, labels = drawing_geometry(drawings["house-price.en.md"][0])
    assert len(nodes) == 8 and len(edges) == 11 and len(labels) == 9


def test_the_geometry_check_finds_an_arrow_through_a_node():
    svg = ('<g class="node default" id="m0-flowchart-n1-0" transform="translate(50, 50)"><rect class="basic" '
           'style="" x="-20" y="-10" width="40" height="20"></rect><g class="label"></g></g>'
           '<path d="M0,50L100,50" id="m0-L_n0_n2_0" class="flowchart-link"></path>'
           '<g class="edgeLabel" transform="translate(80, 50)"><g class="label" data-id="L_n3_n4_0" '
           'transform="translate(-5, -5)"><foreignObject width="10" height="10"></foreignObject></g></g>')
    assert drawing_faults(svg) == ["arrow n0->n2 runs through n1", "arrow n0->n2 runs through the label of ('n3', 'n4')"]


def screenshot(md_file: Path, png: Path, width: int = 1100, height: int = 6000):
    """A PNG of one Markdown document rendered as in the test (for looking at it)."""
    with tempfile.TemporaryDirectory(prefix="derive-shot-") as d:
        docs = [{"name": md_file.name, "text": md_file.read_text(encoding="utf-8"), "show": True}]
        html_file = Path(d) / "shot.html"
        html_file.write_text(page(docs, browser_deps()), encoding="utf-8")
        run_chromium(["--virtual-time-budget=120000", f"--window-size={width},{height}",
                      f"--screenshot={png.resolve()}", html_file.as_uri()])


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), *map(int, sys.argv[3:5]))
