// What the dashboard and the agent console share: their words in five languages, the
// token the person gives, API calls with it, and the event stream that tells a page to
// read again. The stream is read with fetch (EventSource cannot send a token) and resumed
// after a drop with Last-Event-ID, so a daemon restart costs a reconnect, not an event.
"use strict";

const TEXTS = {
  en: { title: "callbackd", figures_today: "Today (UTC)",
    connected_today: "Connected today", abandoned_today: "Abandoned today", in_state: "In state for", details: "Details", history: "History", close: "Close", event: "Event", time: "Time", language: "Language", token: "API token", open: "Open",
    bad_token: "This token is not accepted.", waiting_list: "Callers and callbacks",
    position: "#", kind: "Kind", number: "Number", state: "State", waited: "Waited",
    estimate: "Estimated wait", agent: "Agent", agents: "Agents",
    live: "Live", reconnecting: "Reconnecting…", waiting: "Waiting now",
    in_queue: "Callbacks in queue", total: "Total callbacks",
    average: "Average callback wait time", longest: "Longest current wait",
    k_live: "caller", k_callback: "callback",
    s_waiting: "waiting", s_offered: "ringing", s_dialing: "dialing", s_retry_wait: "retry later",
    s_connected: "connected", s_closed: "closed", a_available: "available", a_away: "away",
    a_on_call: "on a call", a_wrap_up: "wrap-up", a_transfers_only: "transfers only",
    a_offline: "offline" },
  es: { title: "callbackd", figures_today: "Hoy (UTC)",
    connected_today: "Conectadas hoy", abandoned_today: "Abandonos hoy", in_state: "En el estado desde hace", details: "Detalles", history: "Historial", close: "Cerrar", event: "Evento", time: "Hora", language: "Idioma", token: "Token de la API", open: "Abrir",
    bad_token: "Este token no es válido.", waiting_list: "Llamantes y devoluciones de llamada",
    position: "#", kind: "Tipo", number: "Número", state: "Estado", waited: "Espera",
    estimate: "Espera estimada", agent: "Agente", agents: "Agentes",
    live: "En directo", reconnecting: "Reconectando…", waiting: "En espera ahora",
    in_queue: "Devoluciones de llamada en cola", total: "Total de devoluciones de llamada",
    average: "Tiempo medio de espera de devolución", longest: "Espera actual más larga",
    k_live: "llamante", k_callback: "devolución",
    s_waiting: "en espera", s_offered: "sonando", s_dialing: "marcando", s_retry_wait: "reintento",
    s_connected: "conectado", s_closed: "cerrado", a_available: "disponible", a_away: "ausente",
    a_on_call: "en llamada", a_wrap_up: "tareas posteriores", a_transfers_only: "solo transferencias",
    a_offline: "desconectado" },
  fr: { title: "callbackd", figures_today: "Aujourd’hui (UTC)",
    connected_today: "Aboutis aujourd’hui", abandoned_today: "Abandons aujourd’hui", in_state: "Dans cet état depuis", details: "Détails", history: "Historique", close: "Fermer", event: "Événement", time: "Heure", language: "Langue", token: "Jeton de l’API", open: "Ouvrir",
    bad_token: "Ce jeton n’est pas accepté.", waiting_list: "Appelants et rappels",
    position: "#", kind: "Type", number: "Numéro", state: "État", waited: "Attente",
    estimate: "Attente estimée", agent: "Agent", agents: "Agents",
    live: "En direct", reconnecting: "Reconnexion…", waiting: "En attente",
    in_queue: "Rappels dans la file", total: "Total des rappels",
    average: "Temps d’attente moyen des rappels", longest: "Plus longue attente en cours",
    k_live: "appelant", k_callback: "rappel",
    s_waiting: "en attente", s_offered: "sonne", s_dialing: "appel en cours", s_retry_wait: "nouvel essai",
    s_connected: "connecté", s_closed: "terminé", a_available: "disponible", a_away: "absent",
    a_on_call: "en appel", a_wrap_up: "post-appel", a_transfers_only: "transferts seulement",
    a_offline: "hors ligne" },
  de: { title: "callbackd", figures_today: "Heute (UTC)",
    connected_today: "Heute verbunden", abandoned_today: "Heute aufgelegt", in_state: "Im Status seit", details: "Details", history: "Verlauf", close: "Schließen", event: "Ereignis", time: "Zeit", language: "Sprache", token: "API-Token", open: "Öffnen",
    bad_token: "Dieses Token wird nicht angenommen.", waiting_list: "Anrufer und Rückrufe",
    position: "#", kind: "Art", number: "Nummer", state: "Status", waited: "Gewartet",
    estimate: "Geschätzte Wartezeit", agent: "Agent", agents: "Agenten",
    live: "Live", reconnecting: "Verbinde neu…", waiting: "Wartend",
    in_queue: "Rückrufe in der Warteschlange", total: "Rückrufe insgesamt",
    average: "Durchschnittliche Rückruf-Wartezeit", longest: "Längste aktuelle Wartezeit",
    k_live: "Anrufer", k_callback: "Rückruf",
    s_waiting: "wartet", s_offered: "klingelt", s_dialing: "wählt", s_retry_wait: "neuer Versuch",
    s_connected: "verbunden", s_closed: "beendet", a_available: "verfügbar", a_away: "abwesend",
    a_on_call: "im Gespräch", a_wrap_up: "Nachbearbeitung", a_transfers_only: "nur Weiterleitungen",
    a_offline: "offline" },
  ja: { title: "callbackd", figures_today: "本日 (UTC)",
    connected_today: "本日の接続率", abandoned_today: "本日の放棄呼", in_state: "この状態の時間", details: "詳細", history: "履歴", close: "閉じる", event: "イベント", time: "時刻", language: "言語", token: "APIトークン", open: "開く",
    bad_token: "このトークンは使えません。", waiting_list: "発信者と折り返し電話",
    position: "#", kind: "種類", number: "番号", state: "状態", waited: "待ち時間",
    estimate: "予想待ち時間", agent: "エージェント", agents: "エージェント",
    live: "ライブ", reconnecting: "再接続中…", waiting: "待機中",
    in_queue: "キュー内の折り返し電話数", total: "合計折り返し電話コール数",
    average: "平均折り返し電話待機時間", longest: "現在の最長待ち時間",
    k_live: "発信者", k_callback: "折り返し電話",
    s_waiting: "待機中", s_offered: "呼び出し中", s_dialing: "発信中", s_retry_wait: "再試行待ち",
    s_connected: "接続済み", s_closed: "終了", a_available: "対応可能", a_away: "離席中",
    a_on_call: "通話中", a_wrap_up: "後処理", a_transfers_only: "転送のみ", a_offline: "オフライン" },
};

const params = new URLSearchParams(location.hash.slice(1));
let lang = params.get("lang") || localStorage.getItem("callbackd.lang") ||
  (navigator.language || "en").slice(0, 2);
if (!TEXTS[lang]) lang = "en";
let token = params.get("token") || sessionStorage.getItem("callbackd.token") || "";
// A token handed in the link's fragment (never sent to the server) leaves the address bar.
if (params.has("token")) history.replaceState(null, "", location.pathname);
let lastEventId = null;
let refreshing = null;

const t = (key) => TEXTS[lang][key] ?? TEXTS.en[key] ?? key;

function translatePage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  document.getElementById("lang").value = lang;
}

function duration(ms) {
  if (ms == null) return "—";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

async function api(path, init = {}) {
  const resp = await fetch(path, { ...init,
    headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` } });
  if (resp.status === 401) throw new Error("unauthorized");
  return resp;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function translateIn(root) {
  root.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
}

// Many events come in bursts: one refresh for a burst. It waits longer than the server
// keeps a queue's read for its views (200 ms), so it reads what the event changed.
function refreshSoon() {
  if (refreshing) return;
  refreshing = setTimeout(() => { refreshing = null; refresh().catch(showError); }, 300);
}

function setLive(key) {
  const live = document.getElementById("live");
  live.dataset.state = key;
  live.textContent = t(key);
}

async function follow() {
  for (;;) {
    try {
      const headers = lastEventId ? { "Last-Event-ID": lastEventId } : {};
      const resp = await api("/v1/events", { headers });
      if (!resp.ok || !resp.body) throw new Error(`events: ${resp.status}`);
      setLive("live");
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = block.split("\n").find((l) => l.startsWith("id:"));
          if (id) {
            lastEventId = id.slice(3).trim();
            refreshSoon();
          }
        }
      }
    } catch (e) {
      if (e.message === "unauthorized") return showLogin(true);
    }
    setLive("reconnecting");
    await new Promise((r) => setTimeout(r, 1000));
    refreshSoon();
  }
}

function showError(e) {
  if (e.message === "unauthorized") showLogin(true);
}

function showLogin(refused) {
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = refused ? t("bad_token") : "";
}

// The page reads itself with `refresh` (which throws "unauthorized" for a bad token):
// once on start, then after every burst of events and every reconnect.
let refresh = async () => {};

async function start() {
  try {
    await refresh();
  } catch (e) {
    return showError(e);
  }
  sessionStorage.setItem("callbackd.token", token);
  document.getElementById("login").hidden = true;
  follow();
}

// Each language in its own words, for the pages' language menu.
const LANGUAGE_NAMES = { en: "English", es: "Español", fr: "Français", de: "Deutsch", ja: "日本語" };

function boot(pageRefresh) {
  refresh = pageRefresh;
  document.getElementById("lang").replaceChildren(...Object.entries(LANGUAGE_NAMES)
    .map(([code, name]) => new Option(name, code)));
  document.getElementById("lang").addEventListener("change", (ev) => {
    lang = ev.target.value;
    localStorage.setItem("callbackd.lang", lang);
    translatePage();
    refresh().catch(showError);
  });
  document.getElementById("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = document.getElementById("token").value.trim();
    start();
  });
  translatePage();
  if (token) start(); else showLogin(false);
}
