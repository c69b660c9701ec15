// Beat's status page: polls GET /status with a read key and draws it. No framework, no build step.
// Every value goes in with textContent, never as HTML: error messages and ids come from providers and callers.
"use strict";

const KEY = "beat-read-key";
const body = document.body;
const minutes = Number(body.dataset.minutes);
const pollMs = Number(body.dataset.poll) * 1000;
let timer = null;

function headers() {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: "Bearer " + key } : {};
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function row(cells, attrs) {
  const tr = el("tr", null, attrs);
  for (const [field, value, cls] of cells) {
    tr.appendChild(el("td", value, Object.assign({ "data-field": field }, cls ? { class: cls } : {})));
  }
  return tr;
}

function askForKey(problem) {
  const form = document.getElementById("key-form");
  document.getElementById("key-problem").textContent = problem || "";
  form.hidden = false;
  document.getElementById("key").focus();
}

// A refused call means the key is missing or wrong: ask for one, and stop polling until it is given.
async function authorized(path) {
  const answer = await fetch(path, { headers: headers() });
  if (answer.status === 401 || answer.status === 403) {
    const had = sessionStorage.getItem(KEY) !== null;
    sessionStorage.removeItem(KEY);
    askForKey(had ? "that key was refused (" + answer.status + "): it needs the read scope" : "");
    return null;
  }
  return answer;
}

function drawFlows(flows) {
  const tbody = document.querySelector("#flows tbody");
  tbody.replaceChildren(
    ...flows.map((f) =>
      row(
        [
          ["flow", f.flow],
          ["rate_per_minute", f.rate_per_minute],
          ["backlog", f.backlog, f.backlog ? "busy" : ""],
          ["in_flight", f.in_flight],
          ["completed", f.completed],
          ["failed", f.failed, f.failed ? "bad" : ""],
          ["retried", f.retried, f.retried ? "warn" : ""],
          ["expired", f.expired],
        ],
        { "data-flow": f.flow },
      ),
    ),
  );
}

function drawSources(sources) {
  const tbody = document.querySelector("#sources tbody");
  tbody.replaceChildren(
    ...sources.map((s) =>
      row(
        [
          ["source", s.source],
          ["attempts", s.attempts],
          ["errors", s.errors, s.errors ? "bad" : ""],
          ["calls_today", s.calls_today],
          ["cost_today", s.cost_today],
          ["breaker", s.breaker, s.breaker === "closed" ? "" : "bad"],
          ["open_credential_circuits", s.open_credential_circuits, s.open_credential_circuits ? "warn" : ""],
          ["drift", s.drift ? "answers changed shape" : "", s.drift ? "bad" : ""],
          ["usable", s.usable, s.usable || !(s.resting + s.expired + s.disabled) ? "" : "bad"],
          ["resting", s.resting, s.resting ? "warn" : ""],
          ["expired", s.expired, s.expired ? "bad" : ""],
          ["disabled", s.disabled],
        ],
        { "data-source": s.source },
      ),
    ),
  );
}

function drawBudgets(budgets) {
  const tbody = document.querySelector("#budgets tbody");
  tbody.replaceChildren(
    ...budgets.map((b) =>
      row(
        [
          ["budget", b.budget],
          ["limit", b.limit],
          ["spent", b.spent],
          ["remaining", b.remaining, b.remaining > 0 ? "" : "bad"],
          ["resets_at", new Date(b.resets_at).toLocaleString()],
        ],
        { "data-budget": b.budget },
      ),
    ),
  );
}

function timelineLink(requestId, href) {
  const link = el("a", requestId, { href: href, class: "timeline-link", "data-request": requestId });
  link.addEventListener("click", (event) => {
    event.preventDefault();
    showTimeline(requestId, href);
  });
  return link;
}

function drawFailures(classes, failures) {
  const box = document.getElementById("failures");
  if (!classes.length) {
    box.replaceChildren(el("p", "no failure in the window", { class: "quiet" }));
    return;
  }
  box.replaceChildren(
    ...classes.map((c) => {
      const group = el("div", null, { class: "failure-class", "data-error-type": c.error_type });
      const title = el("h3", c.error_type);
      title.appendChild(el("span", c.count, { class: "count", "data-field": "count" }));
      group.appendChild(title);
      const list = el("ul");
      for (const f of failures.filter((f) => f.error_type === c.error_type)) {
        const item = el("li", null, { "data-request": f.request_id });
        item.appendChild(el("time", new Date(f.at).toLocaleTimeString()));
        item.appendChild(timelineLink(f.request_id, f.timeline));
        item.appendChild(el("span", f.flow + " · " + f.status.toLowerCase() + " · attempt " + f.attempt, { class: "meta" }));
        if (f.message) item.appendChild(el("span", f.message, { class: "message" }));
        list.appendChild(item);
      }
      group.appendChild(list);
      return group;
    }),
  );
}

async function showTimeline(requestId, href) {
  const section = document.getElementById("timeline");
  const answer = await authorized(href);
  if (!answer) return;
  section.hidden = false;
  if (!answer.ok) {
    section.replaceChildren(el("h2", "Timeline of " + requestId), el("p", "not found (" + answer.status + ")"));
    return;
  }
  const timeline = await answer.json();
  const table = el("table", null, { id: "timeline-events" });
  table.appendChild(row([["at", "at"], ["attempt", "attempt"], ["status", "status"], ["source", "source"], ["error", "error"]]));
  for (const e of timeline.events) {
    table.appendChild(
      row([
        ["at", new Date(e.at).toLocaleTimeString()],
        ["attempt", e.attempt],
        ["status", e.status],
        ["source", e.source || ""],
        ["error", e.error ? e.error.type + ": " + e.error.message : ""],
      ]),
    );
  }
  section.replaceChildren(el("h2", "Timeline of " + requestId), table);
  section.scrollIntoView();
}

async function find(requestId) {
  const section = document.getElementById("found");
  const href = "/requests/" + encodeURIComponent(requestId);
  const answer = await authorized(href);
  if (!answer) return;
  section.hidden = false;
  if (answer.status === 404) {
    section.replaceChildren(el("p", "no request " + requestId, { "data-field": "missing" }));
    return;
  }
  if (!answer.ok) {
    section.replaceChildren(el("p", "the lookup failed (" + answer.status + ")"));
    return;
  }
  const r = await answer.json();
  const line = el("p");
  line.appendChild(timelineLink(r.id, href + "/timeline"));
  line.appendChild(el("span", r.status, { class: "status", "data-field": "status" }));
  line.appendChild(el("span", r.flow + " · attempt " + r.attempt + (r.source ? " · via " + r.source : ""), { class: "meta" }));
  if (r.error) line.appendChild(el("span", r.error.type + ": " + r.error.message, { class: "message" }));
  section.replaceChildren(line);
}

async function poll() {
  clearTimeout(timer);
  try {
    const answer = await authorized("/status?minutes=" + minutes);
    if (!answer) return;
    if (!answer.ok) {
      document.getElementById("updated").textContent = "Beat answered " + answer.status + "; trying again";
    } else {
      const data = await answer.json();
      drawFlows(data.flows);
      drawSources(data.sources);
      drawBudgets(data.budgets);
      drawFailures(data.failure_classes, data.failures);
      const updated = document.getElementById("updated");
      updated.textContent = "as of " + new Date(data.at).toLocaleTimeString();
      updated.dataset.at = data.at;
    }
  } catch (error) {
    document.getElementById("updated").textContent = "Beat does not answer; trying again";
  }
  timer = setTimeout(poll, pollMs);
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = document.getElementById("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  event.target.hidden = true;
  document.getElementById("key").value = "";
  poll();
});

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const requestId = document.getElementById("search-id").value.trim();
  if (requestId) find(requestId);
});

poll();
