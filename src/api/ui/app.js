// The dashboard: each queue's live list and agents, read from the API with the token the
// supervisor gives, and read again whenever the event stream says something happened.
"use strict";

function figure(list, key, value) {
  const div = document.createElement("div");
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = t(key);
  dd.textContent = value;
  dd.dataset.figure = key;
  div.append(dt, dd);
  list.appendChild(div);
}

function renderQueue(summary, view) {
  const section = document.getElementById("queue").content.firstElementChild.cloneNode(true);
  section.dataset.queue = view.name;
  section.querySelector("h2").textContent = view.name;
  const figures = section.querySelector(".figures");
  const longest = Math.max(0, ...view.entries.map((e) => e.waited_ms));
  figure(figures, "waiting", summary.waiting);
  figure(figures, "in_queue", summary.callbacks_in_queue);
  figure(figures, "total", summary.callbacks_total);
  figure(figures, "average", duration(summary.average_callback_wait_ms));
  figure(figures, "longest", view.entries.length ? duration(longest) : "—");
  const entries = section.querySelector(".entries tbody");
  for (const e of view.entries) {
    const row = document.createElement("tr");
    row.className = e.kind;
    row.dataset.entry = e.id;
    cell(row, e.position ?? "");
    cell(row, t(`k_${e.kind}`));
    cell(row, e.number ?? "");
    cell(row, t(`s_${e.state}`));
    cell(row, duration(e.waited_ms));
    cell(row, e.estimated_wait_ms == null ? "—" : duration(e.estimated_wait_ms));
    cell(row, e.agents.join(", "));
    entries.appendChild(row);
  }
  const agents = section.querySelector(".agents tbody");
  const now = Date.now();
  for (const a of view.agents) {
    const row = document.createElement("tr");
    row.dataset.agent = a.id;
    cell(row, a.id);
    cell(row, t(`a_${a.state}`));
    cell(row, a.state === "available" ? duration(now - a.idle_since) : "—");
    agents.appendChild(row);
  }
  translateIn(section);
  return section;
}

async function refreshDashboard() {
  const summaries = await (await api("/v1/queues")).json();
  const views = await Promise.all(summaries.map(async (q) =>
    (await api(`/v1/queues/${encodeURIComponent(q.name)}`)).json()));
  const list = document.getElementById("queues");
  list.replaceChildren(...summaries.map((q, i) => renderQueue(q, views[i])));
}

boot(refreshDashboard);
