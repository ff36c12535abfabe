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
  // Today's figures, as the reference names them; "in queue" and the waits are now.
  const today = summary.today;
  figure(figures, "waiting", summary.waiting);
  figure(figures, "in_queue", summary.callbacks_in_queue);
  figure(figures, "total", today.callbacks_requested);
  figure(figures, "average", duration(today.average_callback_wait_ms));
  figure(figures, "longest", view.entries.length ? duration(longest) : "—");
  figure(figures, "connected_today",
    today.connected_percent == null ? "—" : `${today.connected_percent} %`);
  figure(figures, "abandoned_today", today.abandoned);
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
    const td = document.createElement("td");
    if (e.kind === "callback") {
      const open = document.createElement("button");
      open.type = "button";
      open.className = "details";
      open.textContent = t("details");
      open.setAttribute("aria-label", `${t("details")} ${e.number ?? ""}`);
      open.addEventListener("click", () => showDetail(e.id));
      td.appendChild(open);
    }
    row.appendChild(td);
    entries.appendChild(row);
  }
  const agents = section.querySelector(".agents tbody");
  for (const a of view.agents) {
    const row = document.createElement("tr");
    row.dataset.agent = a.id;
    cell(row, a.id);
    cell(row, t(`a_${a.state}`));
    cell(row, duration(a.in_state_ms));
    agents.appendChild(row);
  }
  translateIn(section);
  return section;
}

// The callback whose history is open, read again with the rest of the page.
let detailId = null;

function clock(ms) {
  return new Date(ms).toLocaleTimeString(lang);
}

async function showDetail(id) {
  detailId = id;
  await renderDetail();
  document.getElementById("detail-close").focus();
}

async function renderDetail() {
  const section = document.getElementById("detail");
  if (!detailId) { section.hidden = true; return; }
  const resp = await api(`/v1/callbacks/${encodeURIComponent(detailId)}`);
  if (!resp.ok) { detailId = null; section.hidden = true; return; }
  const cb = await resp.json();
  section.dataset.callback = cb.id;
  document.getElementById("detail-title").textContent = `${t("k_callback")} ${cb.number}`;
  document.getElementById("detail-summary").textContent =
    `${cb.queue} · ${t(`s_${cb.state}`)}${cb.closed_reason ? ` (${cb.closed_reason})` : ""}`;
  const rows = (cb.history || []).map((ev) => {
    const row = document.createElement("tr");
    row.dataset.kind = ev.kind;
    cell(row, ev.fields.at ? clock(Number(ev.fields.at)) : "");
    cell(row, ev.kind);
    cell(row, ev.fields.agent ?? ev.fields.agents ?? "");
    return row;
  });
  section.querySelector("tbody").replaceChildren(...rows);
  section.hidden = false;
}

document.getElementById("detail-close").addEventListener("click", () => {
  detailId = null;
  document.getElementById("detail").hidden = true;
});

async function refreshDashboard() {
  const summaries = await (await api("/v1/queues")).json();
  const views = await Promise.all(summaries.map(async (q) =>
    (await api(`/v1/queues/${encodeURIComponent(q.name)}`)).json()));
  const list = document.getElementById("queues");
  list.replaceChildren(...summaries.map((q, i) => renderQueue(q, views[i])));
  await renderDetail();
}

boot(refreshDashboard);
