// The panels around the court (options, stats, chart, leaderboard) redraw at most every
// PANEL_EVERY_MS however fast the feed is: a message only asks for a redraw.

const PANEL_EVERY_MS = 250;
const panels = []; // render functions, in the order they draw
let panelsPending = false;

// A panel's render function returns true when it wants to be drawn again without a new message.
export function addPanel(render) {
  panels.push(render);
}

export function schedulePanels() {
  if (panelsPending) return;
  panelsPending = true;
  setTimeout(renderPanels, PANEL_EVERY_MS);
}

function renderPanels() {
  panelsPending = false;
  let again = false;
  for (const render of panels) again = render() === true || again;
  if (again) schedulePanels();
}
