"""The web service's pages, served with no CDN: the intake page at ``/``, and Swagger UI at
``/docs`` and ReDoc at ``/redoc`` from packaged assets (the ``fastapi-offline`` package of the
``service`` extra, which ships Swagger UI 5 and ReDoc; Swagger UI 4, as in ``swagger-ui-bundle``,
cannot show the OpenAPI 3.1 document FastAPI writes).

The intake page renders a form from the intake JSON Schema (``GET /schema``), sends what was
filled in to ``POST /assess/html`` and shows the answer (the same HTML as
``Assessment._repr_html_``). Its script is inline; it loads nothing from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["INTAKE_PAGE", "swagger_assets"]


def swagger_assets() -> Path | None:
    """The folder of the packaged Swagger UI and ReDoc files, or None when fastapi-offline is
    not installed."""
    try:
        import fastapi_offline
    except ModuleNotFoundError:
        return None
    path = Path(fastapi_offline.__file__).parent / "static"
    needed = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
    return path if all((path / name).is_file() for name in needed) else None


INTAKE_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hipscreen intake</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem; }
fieldset { margin: .5rem 0; border: 1px solid #ccc; }
label { display: inline-block; margin: .15rem .8rem .15rem 0; }
.field { margin: .3rem 0; }
.field > .name { display: inline-block; min-width: 14rem; font-weight: 600; }
.hint { color: #666; font-size: .85em; }
#problems { color: #a00; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>hipscreen intake</h1>
<p class="hint">A screening aid, not a diagnosis. Leave a field empty when it was not asked.
<a href="docs">API</a> · <a href="rules">rules</a></p>
<form id="intake"><div id="fields">Loading the form…</div>
<button type="submit" id="screen">Screen</button></form>
<div id="problems" role="alert"></div>
<div id="result" aria-live="polite"></div>
<script>
"use strict";
let ROOT = null;

function resolve(node) {
  let seen = 0;
  while (node && node.$ref && seen++ < 20) {
    node = ROOT.$defs[node.$ref.split("/").pop()];
  }
  return node || {};
}

function simplest(node) {
  node = resolve(node);
  const options = node.anyOf || node.oneOf;
  if (!options) return node;
  const concrete = options.map(simplest).filter(o => o.type !== "null");
  const scalar = concrete.find(o => o.type && o.type !== "object" && o.type !== "array");
  const named = {title: node.title, description: node.description};
  return Object.assign({}, scalar || concrete[0] || {}, named);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function render(node, path, depth) {
  node = simplest(node);
  const name = path.split(".").pop();
  const wrap = el("div", {class: "field"});
  const label = el("span", {class: "name"}, node.title || name);
  if (node.type === "object" && depth < 4) {
    // named properties, or a map whose keys are a closed list (propertyNames) of one value type
    const names = resolve(node.propertyNames).enum || [];
    const children = node.properties ? Object.entries(node.properties)
      : names.map(key => [key, node.additionalProperties]);
    const set = el("fieldset", {}, el("legend", {}, node.title || name));
    if (node.description) set.append(el("span", {class: "hint"}, node.description));
    for (const [key, child] of children) {
      set.append(render(child, path ? path + "." + key : key, depth + 1));
    }
    return set;
  }
  if (node.type === "array") {
    const items = resolve(node.items);
    wrap.append(label);
    for (const value of items.enum || []) {
      wrap.append(el("label", {}, el("input", {type: "checkbox", name: path, value: value,
        "data-kind": "multi", "data-path": path}), " " + value));
    }
    return wrap;
  }
  let input;
  if (node.enum) {
    input = el("select", {name: path, "data-path": path, "data-kind": "string"},
      el("option", {value: ""}, "—"));
    for (const value of node.enum) input.append(el("option", {value: value}, String(value)));
  } else if (node.type === "boolean") {
    input = el("select", {name: path, "data-path": path, "data-kind": "boolean"},
      el("option", {value: ""}, "—"), el("option", {value: "true"}, "yes"),
      el("option", {value: "false"}, "no"));
  } else if (node.type === "integer" || node.type === "number") {
    input = el("input", {type: "number", name: path, "data-path": path, "data-kind": "number",
      step: node.type === "integer" ? "1" : "any"});
    if (node.minimum !== undefined) input.setAttribute("min", node.minimum);
    if (node.maximum !== undefined) input.setAttribute("max", node.maximum);
  } else {
    input = el("input", {type: "text", name: path, "data-path": path, "data-kind": "string"});
  }
  wrap.append(label, input);
  if (node.description) wrap.append(el("span", {class: "hint"}, " " + node.description));
  return wrap;
}

function put(target, path, value) {
  const keys = path.split(".");
  let here = target;
  for (const key of keys.slice(0, -1)) here = here[key] = here[key] || {};
  here[keys[keys.length - 1]] = value;
}

function collect() {
  const form = {};
  const multi = {};
  for (const input of document.querySelectorAll("[data-path]")) {
    const kind = input.dataset.kind;
    if (!kind) continue;
    const path = input.dataset.path;
    if (kind === "multi") {
      multi[path] = multi[path] || [];
      if (input.checked) multi[path].push(input.value);
      continue;
    }
    if (input.value === "") continue;
    if (kind === "number") put(form, path, Number(input.value));
    else if (kind === "boolean") put(form, path, input.value === "true");
    else put(form, path, input.value);
  }
  for (const [path, values] of Object.entries(multi)) if (values.length) put(form, path, values);
  return form;
}

async function screen(event) {
  event.preventDefault();
  const problems = document.getElementById("problems");
  problems.textContent = "";
  const answer = await fetch("assess/html", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(collect())});
  if (!answer.ok) {
    const report = await answer.json().catch(() => ({detail: []}));
    problems.textContent = (report.detail || []).map(p => p.field + ": " + p.msg).join("\\n")
      || "HTTP " + answer.status;
    return;
  }
  document.getElementById("result").innerHTML = await answer.text();
}

async function start() {
  const contract = await (await fetch("schema")).json();
  ROOT = contract.input;
  const fields = document.getElementById("fields");
  fields.textContent = "";
  for (const [key, child] of Object.entries(ROOT.properties)) fields.append(render(child, key, 0));
  document.getElementById("intake").addEventListener("submit", screen);
  document.body.dataset.ready = "yes";
}
start();
</script>
</body>
</html>
"""
"""The intake page (``GET /``): self-contained HTML, script inline, nothing fetched elsewhere."""
