// PariVision live court: the WebSocket feed drawn on a half court, with filters, a what-if
// click, a rolling log-loss chart and a points-above-expectation leaderboard.
// Plain browser JavaScript in ES modules, no build step and no network beyond this page's own
// API. This module wires the parts together; each lives in its own module.
import { board } from "./board.js";
import { drawLegend } from "./colour.js";
import { showTooltip } from "./court.js";
import { $ } from "./dom.js";
import { follow } from "./feed.js";
import { applyFilter, refreshOptions } from "./filters.js";
import { logloss } from "./logloss.js";
import { handle, loadRecent } from "./messages.js";
import { addPanel, schedulePanels } from "./panels.js";
import { state } from "./state.js";
import { renderStats } from "./stats.js";
import { askAgain, askWhatIf } from "./whatif.js";

// Drawn in this order on each redraw: the options first, so the labels below use their names.
addPanel(refreshOptions);
addPanel(renderStats);
addPanel(() => logloss.render());
addPanel(() => board.render());

function start() {
  drawLegend();
  for (const id of ["filter-game", "filter-team", "filter-player"]) $(id).addEventListener("change", applyFilter);
  $("filter-clear").addEventListener("click", () => {
    for (const id of ["filter-game", "filter-team", "filter-player"]) $(id).value = "";
    applyFilter();
  });
  for (const button of document.querySelectorAll("#board-order button")) {
    button.addEventListener("click", () => board.setOrder(button.dataset.order));
  }
  $("court").addEventListener("click", askWhatIf);
  $("court").addEventListener("mousemove", showTooltip);
  $("court").addEventListener("mouseleave", () => ($("tooltip").hidden = true));
  for (const id of ["filter-game", "filter-team", "filter-player", "whatif-player"]) {
    $(id).addEventListener("blur", schedulePanels);
  }
  for (const id of ["whatif-player", "whatif-period", "whatif-clock", "whatif-season"]) {
    $(id).addEventListener("change", askAgain);
  }
  // First, so nothing scored while the history loads is lost; a feed that reopens after a drop
  // loads what was scored while it was away.
  follow({ onMessage: (msg) => handle(msg, true), onReopen: loadRecent });
  loadRecent();
  board.load();
  schedulePanels();
}

window.pariVision = { state, logloss, board }; // for a look from the console
start();
