/* The interactive worked solution (derive render --format html): the answer boxes, judged in the
   page with the rule of `derive check` (derive/verdicts.py, derive/judge_values.py), ported here:

   - a number as written: its value exactly, and its precision — the place of its last written
     digit (0.0281 → 10^-4, 3 significant digits; 300 → 10^2, 1 digit; 3.00e2 → 10^0, 3 digits);
   - correct: |stated − true| ≤ ½·10^exp;
   - rounding: (2 or more digits) correct against a hand calculation at that many digits that rounds
     its intermediate values (the checker's rounding worlds, embedded by derive for 2–6 digits), or
     one unit off in the last of 6 or more digits (|stated − true| ≤ 3/2·10^exp);
   - truncated: the true value cut off at that place;
   - wrong, and its diagnosis: the first catalogued mistake (in derive's order) whose recomputed
     value the number reproduces (rounded, cut off, or one unit off).
   Values are exact rationals (BigInt), embedded exactly by derive.  No network access, no eval. */
(function () {
  "use strict";

  // ------------------------------------------------------------ exact rationals [n, d], d > 0
  function gcd(a, b) { a = a < 0n ? -a : a; b = b < 0n ? -b : b; while (b) { [a, b] = [b, a % b]; } return a; }
  function rat(n, d) { if (d < 0n) { n = -n; d = -d; } const g = gcd(n, d) || 1n; return [n / g, d / g]; }
  function sub(a, b) { return rat(a[0] * b[1] - b[0] * a[1], a[1] * b[1]); }
  function mul(a, b) { return rat(a[0] * b[0], a[1] * b[1]); }
  function abs(a) { return [a[0] < 0n ? -a[0] : a[0], a[1]]; }
  function cmp(a, b) { const x = a[0] * b[1], y = b[0] * a[1]; return x < y ? -1 : x > y ? 1 : 0; }
  function pow10(e) { return e >= 0 ? [10n ** BigInt(e), 1n] : [1n, 10n ** BigInt(-e)]; }

  // a value as derive embeds it (a decimal, 0xMANTISSApEXP for m·2^exp, or n/d) as a rational
  function decimal(text) {
    let b = /^(-?)0x([0-9a-f]+)p(-?\d+)$/.exec(text);
    if (b) {
      const n = (b[1] ? -1n : 1n) * BigInt("0x" + b[2]), e = BigInt(b[3]);
      return e >= 0n ? rat(n * 2n ** e, 1n) : rat(n, 2n ** -e);
    }
    b = /^(-?\d+)\/(\d+)$/.exec(text);
    if (b) return rat(BigInt(b[1]), BigInt(b[2]));
    const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
    if (!m) throw new Error("bad number " + text);
    const fp = m[3] || "", digits = (m[2] || "") + fp;
    let e = (m[4] ? parseInt(m[4], 10) : 0) - fp.length;
    let n = BigInt(digits || "0");
    if (m[1] === "-") n = -n;
    return mul([n, 1n], pow10(e));
  }

  // ------------------------------------------------------------ a number as the student writes it
  const SIGNS = { "\u2212": "-", "\uff0d": "-", "\ufe63": "-", "\uff0b": "+", "\ufe62": "+", "\uff0e": ".", "\u066b": "." };
  function asciiNumerals(text) {
    return text.replace(/[^\x00-\x7f]/g, function (ch) {
      if (SIGNS[ch]) return SIGNS[ch];
      const c = ch.codePointAt(0);
      for (const base of [0xff10, 0x0660, 0x06f0, 0x0966, 0x09e6]) {
        if (c >= base && c <= base + 9) return String(c - base);
      }
      return ch;
    });
  }

  /* parse_stated of derive/verdicts.py: {value, exp, sig}, null when it is not a number, or
     {error} for an exponent outside ±1000. */
  function parseStated(raw) {
    let text = asciiNumerals(String(raw).trim()).replace(/\u2009/g, "").replace(/ /g, "");
    if (/^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$/.test(text)) text = text.replace(/,/g, "");
    const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
    if (!m || !(m[2] || m[3]) || text.length > 400) return null;
    const ip = m[2] || "", fp = m[3], e10 = m[4] ? parseInt(m[4], 10) : 0;
    if (Math.abs(e10) > 1000) return null;
    const value = decimal(text);
    const digits = ip + (fp || "");
    const stripped = digits.replace(/^0+/, "");
    let exp, sig;
    if (fp !== undefined) {
      exp = -fp.length + e10;
      sig = Math.max(1, stripped.length);
    } else {
      const core = ip.replace(/^0+/, "");
      const zeros = core ? core.length - core.replace(/0+$/, "").length : 0;
      exp = zeros + e10;
      sig = Math.max(1, core.replace(/0+$/, "").length);
    }
    return { value: value, exp: exp, sig: sig, quantum: pow10(exp) };
  }

  // ------------------------------------------------------------ the rule of derive check
  function isCorrect(s, t) { return cmp(mul([2n, 1n], abs(sub(s.value, t))), s.quantum) <= 0; }
  function isLastUnit(s, t) { return s.sig >= 6 && cmp(mul([2n, 1n], abs(sub(s.value, t))), mul([3n, 1n], s.quantum)) <= 0; }
  function truncTo(x, q) {              // x cut off at a multiple of q
    const a = abs(x), k = (a[0] * q[1]) / (a[1] * q[0]);
    return mul([x[0] >= 0n ? k : -k, 1n], q);
  }
  function roundTo(x, q) {              // x rounded to a multiple of q, half away from zero
    const a = abs(x), num = a[0] * q[1], den = a[1] * q[0];
    let k = num / den;
    if (2n * (num - k * den) >= den) k += 1n;
    return mul([x[0] >= 0n ? k : -k, 1n], q);
  }
  function isTruncated(s, t) { return cmp(s.value, truncTo(t, s.quantum)) === 0; }
  function reproduces(s, alt) { return isCorrect(s, alt) || isTruncated(s, alt) || isLastUnit(s, alt); }

  /* {verdict, diagnosis, kind} of a stated number against one quantity's embedded values:
     q = {t: truth, r: {digits: [values]}, m: [[tag, value, description], ...]}. */
  function judge(s, q) {
    const t = decimal(q.t);
    if (isCorrect(s, t)) return { verdict: "correct" };
    if (s.sig >= 2) {
      for (const a of (q.r[String(s.sig)] || [])) {
        if (isCorrect(s, decimal(a))) return { verdict: "rounding", kind: "world" };
      }
    }
    if (isLastUnit(s, t)) return { verdict: "rounding", kind: "unit" };
    if (isTruncated(s, t)) return { verdict: "truncated" };
    for (const m of q.m) {
      if (reproduces(s, decimal(m[1]))) return { verdict: "wrong", diagnosis: m[0], text: m[2] };
    }
    return { verdict: "wrong" };
  }

  // the true value written to the stated number's last digit (text_at of derive/verdicts.py)
  function format(x, exp) {
    const neg = x[0] < 0n, a = abs(x);
    if (exp >= 0) { const n = a[0] / a[1]; return (neg && n ? "-" : "") + n.toString(); }
    const scaled = (a[0] * 10n ** BigInt(-exp)) / a[1];
    let digits = scaled.toString().padStart(-exp + 1, "0");
    const text = digits.slice(0, digits.length + exp) + "." + digits.slice(digits.length + exp);
    return (neg && scaled ? "-" : "") + text;
  }
  function sigExp(x) {                  // ⌊log10 |x|⌋, x ≠ 0
    const a = abs(x);
    let e = a[0].toString().length - a[1].toString().length;
    if (cmp(pow10(e), a) > 0) e -= 1;
    return e;
  }
  function textAt(s, t) {
    if (t[0] === 0n) return "0";
    const r = roundTo(t, s.quantum);
    if (r[0] === 0n || (s.exp > 0 && cmp(abs(t), s.quantum) < 0)) {
      const e = sigExp(t) - s.sig + 1;
      return format(roundTo(t, pow10(e)), Math.min(0, e));
    }
    return format(r, Math.min(0, s.exp));
  }

  // ------------------------------------------------------------ the page
  function fill(template, values) {
    return template.replace(/\{([a-z_]+)\}/g, function (all, key) { return key in values ? values[key] : all; });
  }

  function check(box, data) {
    const input = box.querySelector("input[data-quantity]");
    const out = box.querySelector("output");
    const msg = data.msg;
    const q = data.q[input.getAttribute("data-quantity")];
    box.removeAttribute("data-diagnosis");
    if (!input.value.trim()) {
      box.removeAttribute("data-verdict");
      out.textContent = msg.empty;
      return;
    }
    const s = parseStated(input.value);
    if (!s || !q) {
      box.setAttribute("data-verdict", "invalid");
      out.textContent = msg.invalid;
      return;
    }
    const r = judge(s, q);
    box.setAttribute("data-verdict", r.verdict);
    const t = textAt(s, decimal(q.t));
    let text;
    if (r.verdict === "correct") text = msg.correct;
    else if (r.verdict === "rounding") text = fill(r.kind === "unit" ? msg.rounding_unit : msg.rounding, { t: t });
    else if (r.verdict === "truncated") text = fill(msg.truncated, { t: t });
    else if (r.diagnosis) {
      box.setAttribute("data-diagnosis", r.diagnosis);
      text = fill(msg.wrong_mistake, { name: data.names[r.diagnosis] || r.diagnosis, text: data.texts[r.text] });
    } else text = msg.wrong_unknown;
    out.textContent = text;
  }

  function setUp(root) {
    const script = root.querySelector("script.derive-data");
    if (!script) return;
    const data = JSON.parse(script.textContent);
    root.querySelectorAll(".answer").forEach(function (box) {
      const input = box.querySelector("input[data-quantity]");
      const button = box.querySelector("button.check");
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") { ev.preventDefault(); check(box, data); }
      });
      button.addEventListener("click", function () { check(box, data); });
    });
    root.querySelectorAll("button.toggle-all").forEach(function (b) {
      b.addEventListener("click", function () {
        const all = root.querySelectorAll("details.working");
        const open = b.getAttribute("data-open") !== "1";
        all.forEach(function (d) { d.open = open; });
        b.setAttribute("data-open", open ? "1" : "0");
        b.textContent = open ? data.msg.hide_all : data.msg.show_all;
      });
    });
  }

  function typeset() {
    if (typeof katex === "undefined") return;
    document.querySelectorAll(".tex").forEach(function (el) {
      katex.render(el.textContent, el, { displayMode: el.tagName === "DIV", throwOnError: false, strict: "ignore" });
    });
  }

  const api = { parseStated: parseStated, judge: judge, textAt: textAt, decimal: decimal };
  if (typeof module !== "undefined" && module.exports) { module.exports = api; return; }
  window.deriveJudge = api;
  function start() { typeset(); document.querySelectorAll(".derive-solution").forEach(setUp); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
