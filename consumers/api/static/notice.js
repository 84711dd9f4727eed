// The banner above the court that tells the user what went wrong, for ten seconds.
import { $ } from "./dom.js";

let noticeTimer = null;

export function showNotice(message, kind) {
  const el = $("notice");
  el.textContent = message;
  el.dataset.kind = kind || "info";
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (el.hidden = true), 10000);
}
