// Renders Markdown documents the way GitHub does, in the page, and reports every error.
// Loaded by the page that tests/test_markdown_browser.py writes, after markdown-it, KaTeX and
// Mermaid (the npm packages of tests/browser/package.json).  The documents come from the JSON in
// <script id="docs">; the report is written as JSON into <pre id="report"> (read back with
// chromium --dump-dom) and the page title becomes "done".
//
// GitHub's math: a ```math fenced block is display math; $`…`$ (a code span between two dollar
// signs) is inline math.  Both are typeset by KaTeX with throwOnError, so a formula KaTeX cannot
// read is an error of its document.  A ```mermaid block is parsed and rendered by Mermaid.
(async function () {
  const report = { docs: [], done: false };
  const out = document.getElementById("report");
  const show = document.getElementById("shown");
  function finish() {
    report.done = true;
    out.textContent = JSON.stringify(report);
    document.title = "done";
  }
  try {
    const docs = JSON.parse(document.getElementById("docs").textContent);
    mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "default" });
    let current = null;
    function katexHtml(tex, display) {
      current.math += 1;
      try {
        return katex.renderToString(tex, {
          displayMode: display, throwOnError: true, output: "htmlAndMathml",
          strict: (code, msg) => { current.warnings.push(code + ": " + msg); return "ignore"; },
        });
      } catch (e) {
        current.errors.push("KaTeX: " + e.message + " in: " + tex.slice(0, 200));
        return '<span class="math-error">' + md.utils.escapeHtml(tex) + "</span>";
      }
    }
    const md = window.markdownit({ html: true, linkify: false, typographer: false });
    const fence = md.renderer.rules.fence;
    md.renderer.rules.fence = function (tokens, idx, options, env, self) {
      const t = tokens[idx];
      const info = t.info.trim();
      if (info === "math") return '<div class="math display">' + katexHtml(t.content, true) + "</div>";
      if (info === "mermaid") {
        current.mermaid.push(t.content);
        return '<div class="mermaid-slot" data-n="' + (current.mermaid.length - 1) + '"></div>';
      }
      return fence(tokens, idx, options, env, self);
    };
    // $`…`$: a text token ending in "$", a code span, a text token starting with "$"
    md.core.ruler.push("github_inline_math", function (state) {
      for (const block of state.tokens) {
        if (block.type !== "inline" || !block.children) continue;
        const c = block.children;
        for (let i = 1; i + 1 < c.length; i++) {
          if (c[i].type === "code_inline" && c[i - 1].type === "text" && c[i + 1].type === "text"
              && c[i - 1].content.endsWith("$") && c[i + 1].content.startsWith("$")) {
            c[i - 1].content = c[i - 1].content.slice(0, -1);
            c[i + 1].content = c[i + 1].content.slice(1);
            c[i].type = "math_inline";
          }
        }
      }
    });
    md.renderer.rules.math_inline = (tokens, idx) => katexHtml(tokens[idx].content, false);
    let serial = 0;
    for (const doc of docs) {
      current = { name: doc.name, math: 0, errors: [], warnings: [], mermaid: [], svgs: 0, drawings: [] };
      const div = document.createElement("article");
      div.className = "markdown-body";
      div.innerHTML = md.render(doc.text);
      if (doc.show) show.appendChild(div);
      for (const slot of div.querySelectorAll(".mermaid-slot")) {
        const code = current.mermaid[Number(slot.dataset.n)];
        try {
          await mermaid.parse(code);
          const { svg } = await mermaid.render("m" + (serial++), code);
          if (/aria-roledescription="error"|Syntax error in text/.test(svg)) throw new Error("Mermaid drew its error picture");
          slot.innerHTML = svg;
          current.svgs += 1;
          // the drawing without its style sheet and markers, for the test's geometry checks
          current.drawings.push(svg.replace(/<style>[\s\S]*?<\/style>/g, "").replace(/<marker[\s\S]*?<\/marker>/g, ""));
        } catch (e) {
          current.errors.push("Mermaid: " + (e && e.message ? e.message : String(e)).slice(0, 300));
        }
      }
      const r = Object.assign({}, current);
      r.mermaid = current.mermaid.length;
      report.docs.push(r);
    }
  } catch (e) {
    report.fatal = String(e && e.stack ? e.stack : e);
  }
  finish();
})();
