// The WebSocket to /ws/live: opened, reopened with backoff when it drops, its state shown in the
// header, and the page's filter sent whenever it opens or changes. What a message means is
// the caller's (see messages.js).
import { $ } from "./dom.js";
import { showNotice } from "./notice.js";
import { state } from "./state.js";

const feed = { ws: null, retries: 0, opened: false, timer: null, onMessage: null, onReopen: null };

// onMessage(msg) gets each message parsed; onReopen() runs when the feed opens again after a drop.
export function follow({ onMessage, onReopen }) {
  feed.onMessage = onMessage;
  feed.onReopen = onReopen;
  connect();
}

function connect() {
  clearTimeout(feed.timer);
  setStatus("connecting", "connecting…");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let ws;
  try {
    ws = new WebSocket(`${scheme}${location.host}/ws/live`);
  } catch (err) {
    reconnectLater(`cannot open the feed (${err.message})`);
    return;
  }
  feed.ws = ws;
  ws.onopen = () => {
    const again = feed.opened;
    feed.retries = 0;
    feed.opened = true;
    setStatus("connected", "live");
    sendFilter();
    if (again) feed.onReopen(); // shots scored while we were away
  };
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch (err) {
      console.warn("PariVision: a feed message is not JSON", event.data);
      return;
    }
    feed.onMessage(msg);
  };
  ws.onclose = (event) => {
    if (feed.ws !== ws) return;
    feed.ws = null;
    if (event.code === 1008) showNotice(`The server closed the feed: ${event.reason || "policy violation"}.`, "warn");
    reconnectLater(event.reason);
  };
}

function reconnectLater(reason) {
  const delay = Math.min(10000, 500 * 2 ** feed.retries) * (0.8 + 0.4 * Math.random());
  feed.retries += 1;
  const until = Date.now() + delay;
  const tick = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    setStatus("reconnecting", `reconnecting in ${left} s`, reason);
    if (Date.now() < until) feed.timer = setTimeout(tick, 500);
    else connect();
  };
  tick();
}

function setStatus(kind, text, detail) {
  const el = $("status");
  el.dataset.state = kind;
  $("status-text").textContent = text;
  el.title = detail || "";
}

export function sendFilter() {
  if (feed.ws && feed.ws.readyState === WebSocket.OPEN) {
    feed.ws.send(JSON.stringify({ filter: state.filter }));
  }
}
