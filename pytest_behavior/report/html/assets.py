"""The HTML report's stylesheet and its one script, inline: the page loads nothing.

The script reads the cases from the page's ``<script type="application/json">``
element and renders the case table from it, a page at a time; it writes every
value with ``textContent``, never as markup, so a question that contains HTML
stays text. The positions in a case row are ``cases.CASE_FIELDS``.
"""

from __future__ import annotations

import base64
import hashlib

from pytest_behavior.report.charts import NEUTRAL_COLOUR, STATUS_COLOURS

_COLOURS = "".join(f"--{name}:{colour};" for name, colour in STATUS_COLOURS.items())

STYLE = (
    f":root{{{_COLOURS}--neutral:{NEUTRAL_COLOUR};}}"
    """
:root { --ink: #24292f; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
header { background: var(--soft); border-bottom: 1px solid var(--line); padding: 16px 28px; }
main { padding: 0 28px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 26px 0 8px; padding-top: 14px; border-top: 1px solid var(--line); }
main > section:first-child > h2 { border-top: none; padding-top: 0; }
#verdicts-table td.trait { min-width: 14em; }
.cut { color: var(--muted); cursor: help; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p { margin: 6px 0; }
a { color: var(--neutral); }
.meta, .small, .note { color: var(--muted); }
.small { font-size: 12px; }
nav { margin-top: 10px; }
nav a { margin-right: 16px; }
.summary { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
  font-size: 12px; font-weight: 600; white-space: nowrap; background: var(--neutral); }
.summary .badge { font-size: 13px; padding: 3px 10px; }
.pass { background: var(--pass); } .fail { background: var(--fail); }
.inconclusive { background: var(--inconclusive); } .error { background: var(--error); }
.not-run { background: var(--not-run); }
.m-yes { background: var(--ink); }
.neutral { background: #fff; color: var(--neutral); box-shadow: inset 0 0 0 1px var(--neutral); }
.m-no { background: #fff; color: var(--ink); box-shadow: inset 0 0 0 1px var(--muted); }
.unparseable { background: var(--inconclusive); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: center; margin: 6px 0; }
.legend .badge { margin-right: 2px; }
.wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 8px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top;
  font-size: 13px; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
.pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.line { display: block; }
svg { max-width: 100%; height: auto; display: block; margin: 6px 0; }
ul.flags li { margin: 2px 0; }
ul.flags li.error-flag { color: var(--error); }
ul.flags li.warning-flag { color: #7d4e00; }
details.trait { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0;
  padding: 4px 10px; }
details.trait > summary { cursor: pointer; padding: 3px 0; }
details.trait pre { background: var(--soft); padding: 6px 8px; border-radius: 4px; margin: 4px 0;
  white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; }
details.flip-block { margin: 8px 0; padding: 4px 10px; border: 1px solid var(--line);
  border-radius: 6px; }
details.flip-block > summary { cursor: pointer; padding: 3px 0; }
button { font: inherit; font-size: 13px; padding: 3px 10px; border: 1px solid var(--line);
  border-radius: 5px; background: #fff; cursor: pointer; }
button:hover { background: var(--soft); }
.controls { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center; margin: 8px 0;
  padding: 10px 12px; background: var(--soft); border: 1px solid var(--line);
  border-radius: 6px; }
.controls label { display: inline-flex; gap: 6px; align-items: center; }
.controls input[type=search] { width: 22em; font: inherit; padding: 3px 6px; }
.controls select { font: inherit; padding: 2px 4px; max-width: 28em; }
#case-count { font-weight: 600; }
#case-table td.group { min-width: 10em; max-width: 15em; overflow-wrap: break-word;
  font-size: 12px; }
#case-table td.question { min-width: 20em; max-width: 44em; }
#case-table td.answer { min-width: 10em; max-width: 26em; }
#case-table td.probabilities { white-space: pre; font-variant-numeric: tabular-nums; }
#case-table td.flip { min-width: 13em; }
#case-table td.answer .request-error { color: var(--error); }
#case-table tr.flipped td:first-child { box-shadow: inset 4px 0 0 var(--neutral); }
#case-table .before { color: var(--muted); font-size: 12px; }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
"""
)

SCRIPT = """
(function () {
  "use strict";
  var blob = document.getElementById("behavior-cases");
  var body = document.getElementById("case-rows");
  if (!blob || !body) { return; }
  var data = JSON.parse(blob.textContent);
  var groups = data.groups, cases = data.cases;
  var G = 0, INDEX = 1, ID = 2, QUESTION = 3, ANSWER = 4, CHOICE = 5, PROBABILITIES = 6,
    STATUS = 7, PATH = 8, FLIPS = 9, ERROR = 10, CUT = 11;
  var PAGE = 200;
  var CUT_NOTE = "cut to 100 characters in the JSON report";
  var MATCHED = {yes: "yes", no: "no", unparseable: "unparseable", error: "request error",
    "not-run": "not run"};
  var BADGE = {yes: "m-yes", no: "m-no", unparseable: "unparseable", error: "error",
    "not-run": "not-run"};
  var search = document.getElementById("case-search");
  var group = document.getElementById("case-group");
  var status = document.getElementById("case-status");
  var flipped = document.getElementById("case-flipped");
  var count = document.getElementById("case-count");
  var more = document.getElementById("case-more");
  var reset = document.getElementById("case-reset");
  var haystacks = null, matching = [], shown = 0;

  function haystack(row) {
    return [groups[row[G]].join(" "), "#" + row[INDEX], row[ID], row[QUESTION], row[ANSWER] || "",
      row[CHOICE] || "", row[ERROR] || ""].join("\\n").toLowerCase();
  }
  function add(parent, tag, text, className) {
    var element = document.createElement(tag);
    if (text !== null && text !== undefined) { element.textContent = text; }
    if (className) { element.className = className; }
    parent.appendChild(element);
    return element;
  }
  function render(row) {
    var tr = document.createElement("tr");
    var flips = row[FLIPS] || [];
    tr.className = "case case-" + row[STATUS] + (flips.length ? " flipped" : "");
    var where = add(tr, "td", null, "group");
    add(where, "span", groups[row[G]][0], "line");
    add(where, "span", groups[row[G]][1], "line small");
    var index = add(tr, "td", String(row[INDEX]), "num");
    index.title = "case id " + row[ID];
    var question = add(tr, "td", null, "question pre");
    add(question, "span", row[QUESTION]);
    if (row[CUT]) {
      add(question, "span", " \\u2702", "cut").title = CUT_NOTE;
    }
    var answer = add(tr, "td", null, "answer pre");
    if (row[ANSWER] !== null) { add(answer, "span", row[ANSWER]); }
    if (row[ERROR] !== null) {
      add(answer, "span", (row[ANSWER] !== null ? "\\n" : "") + row[ERROR], "request-error");
    }
    if (row[ANSWER] === null && row[ERROR] === null) { answer.textContent = "\\u2014"; }
    add(tr, "td", row[CHOICE] === null ? "\\u2014" : row[CHOICE], "pre");
    add(tr, "td", row[PROBABILITIES] || "\\u2014", "probabilities");
    var matched = add(tr, "td", null, "nowrap");
    add(matched, "span", MATCHED[row[STATUS]], "badge " + BADGE[row[STATUS]]);
    add(tr, "td", row[PATH] || "\\u2014", "nowrap");
    var flip = add(tr, "td", flips.length ? null : "\\u2014", "flip");
    flips.forEach(function (item) {
      var line = add(flip, "span", (item[1] ? "\\u25b2 to matching" : "\\u25bc to not matching") +
        " vs " + item[0], "line nowrap");
      line.title = "matched before: " + (item[1] ? "no" : "yes");
      add(flip, "span", "before: " + (item[2] === null ? "\\u2014" : item[2]), "line before pre");
    });
    return tr;
  }
  function showMore() {
    var end = Math.min(matching.length, shown + PAGE);
    var fragment = document.createDocumentFragment();
    for (var i = shown; i < end; i++) { fragment.appendChild(render(cases[matching[i]])); }
    body.appendChild(fragment);
    shown = end;
    count.textContent = (matching.length === cases.length ? cases.length + " cases" :
      matching.length + " of " + cases.length + " cases") +
      (shown < matching.length ? ", first " + shown + " shown" : "");
    more.hidden = shown >= matching.length;
  }
  function apply() {
    var text = search.value.trim().toLowerCase();
    var wanted = group.value, state = status.value, onlyFlipped = flipped.checked;
    if (text && haystacks === null) { haystacks = cases.map(haystack); }
    matching = [];
    for (var i = 0; i < cases.length; i++) {
      var row = cases[i];
      if (wanted !== "" && String(row[G]) !== wanted) { continue; }
      if (state !== "" && row[STATUS] !== state) { continue; }
      if (onlyFlipped && !(row[FLIPS] && row[FLIPS].length)) { continue; }
      if (text && haystacks[i].indexOf(text) < 0) { continue; }
      matching.push(i);
    }
    body.textContent = "";
    shown = 0;
    if (!matching.length) {
      var empty = add(add(body, "tr", null, "none"), "td", "No case matches these filters.",
        "empty");
      empty.colSpan = 9;
    }
    showMore();
  }
  search.addEventListener("input", apply);
  group.addEventListener("change", apply);
  status.addEventListener("change", apply);
  flipped.addEventListener("change", apply);
  more.addEventListener("click", showMore);
  reset.addEventListener("click", function () {
    search.value = ""; group.value = ""; status.value = ""; flipped.checked = false; apply();
  });
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-show-group]") : null;
    if (!target) { return; }
    search.value = "";
    status.value = "";
    group.value = target.getAttribute("data-show-group");
    flipped.checked = target.hasAttribute("data-flipped");
    apply();
    if (target.tagName !== "A") { document.getElementById("cases").scrollIntoView(); }
  });
  apply();
})();
"""


def script_hash(script: str) -> str:
    """The Content-Security-Policy source that lets exactly this inline script run."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Nothing may be fetched; only the report's own script (by its hash) may run.
def content_security_policy(script: str) -> str:
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src {script_hash(script)}; base-uri 'none'; form-action 'none'"
    )
