// The agent console: the callbacks waiting for this agent to click Call (their phone rings,
// then the customer is dialed) or Decline (it leaves their list), their state, and a
// caller's recorded name to play. Read again whenever the event stream says something
// happened, so a callback another agent took vanishes here without a reload.
"use strict";

Object.assign(TEXTS.en, { console: "Call console", agent_token: "Agent token",
  your_state: "Your state", set_state: "Set your state", callbacks: "Callbacks",
  no_callbacks: "No callbacks waiting.", call: "Call", decline: "Decline",
  play_name: "Play name", waited_for: "waiting for", attempts: "attempts",
  phone_rings: "Your phone rings: answer it and the customer is dialed.",
  taken: "Another agent took this callback.", not_free: "You are not free to take a callback now.",
  declined: "Declined.", need_agent: "This console needs an agent's token." });
Object.assign(TEXTS.es, { console: "Consola de llamadas", agent_token: "Token del agente",
  your_state: "Tu estado", set_state: "Cambiar tu estado", callbacks: "Devoluciones de llamada",
  no_callbacks: "No hay devoluciones de llamada en espera.", call: "Llamar", decline: "Rechazar",
  play_name: "Escuchar el nombre", waited_for: "en espera desde hace", attempts: "intentos",
  phone_rings: "Tu teléfono suena: contesta y se llamará al cliente.",
  taken: "Otro agente tomó esta devolución de llamada.",
  not_free: "Ahora no estás libre para tomar una devolución de llamada.",
  declined: "Rechazada.", need_agent: "Esta consola necesita el token de un agente." });
Object.assign(TEXTS.fr, { console: "Console d’appel", agent_token: "Jeton de l’agent",
  your_state: "Votre état", set_state: "Changer votre état", callbacks: "Rappels",
  no_callbacks: "Aucun rappel en attente.", call: "Appeler", decline: "Refuser",
  play_name: "Écouter le nom", waited_for: "en attente depuis", attempts: "essais",
  phone_rings: "Votre téléphone sonne : décrochez et le client est appelé.",
  taken: "Un autre agent a pris ce rappel.",
  not_free: "Vous n’êtes pas libre de prendre un rappel maintenant.",
  declined: "Refusé.", need_agent: "Cette console demande le jeton d’un agent." });
Object.assign(TEXTS.de, { console: "Anrufkonsole", agent_token: "Agenten-Token",
  your_state: "Ihr Status", set_state: "Status ändern", callbacks: "Rückrufe",
  no_callbacks: "Keine wartenden Rückrufe.", call: "Anrufen", decline: "Ablehnen",
  play_name: "Namen anhören", waited_for: "wartet seit", attempts: "Versuche",
  phone_rings: "Ihr Telefon klingelt: Nehmen Sie ab, dann wird der Kunde angerufen.",
  taken: "Ein anderer Agent hat diesen Rückruf übernommen.",
  not_free: "Sie sind gerade nicht frei für einen Rückruf.",
  declined: "Abgelehnt.", need_agent: "Diese Konsole braucht das Token eines Agenten." });
Object.assign(TEXTS.ja, { console: "コールコンソール", agent_token: "エージェントトークン",
  your_state: "あなたの状態", set_state: "状態を変更", callbacks: "折り返し電話",
  no_callbacks: "待機中の折り返し電話はありません。", call: "発信", decline: "応答しない",
  play_name: "名前を再生", waited_for: "待ち時間", attempts: "試行回数",
  phone_rings: "電話が鳴っています。応答するとカスタマーに発信します。",
  taken: "別のエージェントがこの折り返し電話を受けました。",
  not_free: "現在は折り返し電話を受けられる状態ではありません。",
  declined: "応答しないにしました。", need_agent: "このコンソールにはエージェントのトークンが必要です。" });

let agent = null;

function notice(key) {
  const p = document.getElementById("notice");
  p.dataset.notice = key;
  p.textContent = key ? t(key) : "";
}

const path = (entry, action) => `/v1/agents/${encodeURIComponent(agent)}/console/` +
  `${encodeURIComponent(entry.queue)}/${encodeURIComponent(entry.id)}/${action}`;

async function act(entry, action) {
  const resp = await api(path(entry, action), { method: "POST" });
  if (resp.ok) {
    notice(action === "call" ? "phone_rings" : "declined");
  } else {
    const body = await resp.json().catch(() => ({}));
    const code = body.error?.code;
    notice(code === "taken" ? "taken" : "not_free");
  }
  refreshSoon();
}

// The recording needs the token, which an <audio src> cannot send: fetched, then played.
async function play(entry, button) {
  const resp = await api(path(entry, "name"));
  if (!resp.ok) { button.disabled = true; return; }
  const url = URL.createObjectURL(await resp.blob());
  const audio = new Audio(url);
  audio.addEventListener("ended", () => URL.revokeObjectURL(url));
  await audio.play().catch(() => {});
}

function renderCallback(entry) {
  const li = document.getElementById("callback").content.firstElementChild.cloneNode(true);
  li.dataset.entry = entry.id;
  li.querySelector(".number").textContent = entry.number;
  li.querySelector(".queue").textContent = entry.queue;
  const attempts = entry.attempts ? ` · ${t("attempts")}: ${entry.attempts}` : "";
  li.querySelector(".waited").textContent =
    `${t("waited_for")} ${duration(entry.waited_ms)}${attempts}`;
  translateIn(li);
  const label = `${entry.number}`;
  for (const [cls, action] of [["call", "call"], ["decline", "decline"]]) {
    const button = li.querySelector(`.${cls}`);
    button.setAttribute("aria-label", `${t(action)} ${label}`);
    button.addEventListener("click", () => { button.disabled = true; act(entry, action); });
  }
  const playButton = li.querySelector(".play");
  playButton.hidden = !entry.has_name;
  playButton.addEventListener("click", () => play(entry, playButton));
  return li;
}

async function refreshConsole() {
  if (!agent) {
    const me = await (await api("/v1/me")).json();
    agent = me.agent ?? params.get("agent");
    if (!agent) {
      showLogin(false);
      document.getElementById("login-error").textContent = t("need_agent");
      throw new Error("no agent");
    }
  }
  const resp = await api(`/v1/agents/${encodeURIComponent(agent)}/console`);
  if (!resp.ok) throw new Error(`console: ${resp.status}`);
  const view = await resp.json();
  document.getElementById("me").hidden = false;
  document.getElementById("agent-name").textContent = view.display_name;
  document.getElementById("agent-state").textContent = t(`a_${view.agent.state}`);
  document.querySelectorAll("#states button").forEach((b) => {
    b.setAttribute("aria-pressed", String(b.dataset.state === view.agent.state));
  });
  document.getElementById("callbacks").replaceChildren(...view.callbacks.map(renderCallback));
  document.getElementById("none").hidden = view.callbacks.length > 0;
}

document.querySelectorAll("#states button").forEach((b) => {
  b.addEventListener("click", async () => {
    await api(`/v1/agents/${encodeURIComponent(agent)}/state`, { method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ state: b.dataset.state }) });
    refreshSoon();
  });
});
boot(refreshConsole);
