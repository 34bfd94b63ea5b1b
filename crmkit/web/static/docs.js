// The docs page: reads openapi.json from this server and lists every operation by tag; "Try" sends a request.
"use strict";
const base = location.pathname.replace(/\/docs\/?$/, "");
let spec = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => (k === "class" ? (node.className = v) : node.setAttribute(k, v)));
  children.forEach((c) => node.append(c));
  return node;
}

function resolve(schema, depth) {
  if (!schema || depth > 4) return schema;
  if (schema.$ref) return resolve(spec.components.schemas[schema.$ref.split("/").pop()], depth + 1);
  const copy = Array.isArray(schema) ? [] : {};
  for (const [k, v] of Object.entries(schema)) copy[k] = typeof v === "object" && v !== null ? resolve(v, depth + 1) : v;
  return copy;
}

function operation(path, method, op) {
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  const params = (op.parameters || []).filter((p) => p.in !== "header");
  if (params.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "schema")));
    params.forEach((p) => table.append(el("tr", {}, el("td", {}, p.name + (p.required ? " *" : "")), el("td", {}, p.in),
      el("td", {}, JSON.stringify(resolve(p.schema, 0))))));
    body.append(table);
  }
  const request = op.requestBody && op.requestBody.content["application/json"];
  if (request) body.append(el("h4", {}, "Body"), el("pre", {}, JSON.stringify(resolve(request.schema, 0), null, 2)));
  for (const [status, answer] of Object.entries(op.responses)) {
    if (status >= 400) continue;
    const content = answer.content && Object.values(answer.content)[0];
    body.append(el("h4", {}, status + " " + answer.description));
    if (content && content.schema) body.append(el("pre", {}, JSON.stringify(resolve(content.schema, 0), null, 2)));
  }
  const input = el("input", { value: path, size: 60, class: "path" });
  const payload = el("textarea", { rows: 4, cols: 60, placeholder: "JSON body" });
  const output = el("pre", {});
  const send = el("button", {}, "Try");
  send.onclick = async () => {
    const headers = { "Content-Type": "application/json" };
    const token = document.getElementById("token").value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(base + input.value, { method: method.toUpperCase(), headers,
      body: ["get", "delete"].includes(method) || !payload.value ? undefined : payload.value });
    output.textContent = response.status + "\n" + (await response.text());
  };
  body.append(el("p", {}, input, " ", send), request ? payload : "", output);
  return el("details", { "data-search": (method + " " + path + " " + op.summary).toLowerCase() },
    el("summary", {}, el("span", { class: "method " + method.toUpperCase() }, method.toUpperCase()),
      el("span", { class: "path" }, path), " — ", op.summary || ""), body);
}

async function main() {
  spec = await (await fetch(base + "/openapi.json")).json();
  document.getElementById("about").textContent = spec.info.description + " Version " + spec.info.version + ".";
  const byTag = {};
  for (const [path, ops] of Object.entries(spec.paths))
    for (const [method, op] of Object.entries(ops)) (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push([path, method, op]);
  const nav = document.getElementById("tags"), main = document.getElementById("operations");
  for (const tag of Object.keys(byTag).sort()) {
    nav.append(el("a", { href: "#tag-" + tag }, tag));
    const about = (spec.tags || []).find((t) => t.name === tag);
    const section = el("section", {}, el("h2", { id: "tag-" + tag }, tag), el("p", {}, about ? about.description : ""));
    byTag[tag].forEach(([path, method, op]) => section.append(operation(path, method, op)));
    main.append(section);
  }
  document.getElementById("filter").oninput = (event) => {
    const words = event.target.value.toLowerCase();
    document.querySelectorAll("details").forEach((d) => (d.hidden = !d.dataset.search.includes(words)));
    document.querySelectorAll("main section").forEach((s) => (s.hidden = !s.querySelector("details:not([hidden])")));
  };
}
main();
