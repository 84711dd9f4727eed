// A leaderboard table: the ranked rows of players or teams, or a line saying none has enough shots.

export function fillBoard(table, rows, players, min) {
  const body = table.tBodies[0];
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = document.createElement("td");
    td.colSpan = 6;
    td.textContent = `no ${players ? "player" : "team"} with ${min}+ labelled shots yet`;
    tr.appendChild(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.id = row.id;
      tr.dataset.attempts = row.attempts;
      tr.dataset.pae = row.pae.toFixed(4);
      tr.dataset.shrunk = row.shrunk.toFixed(6);
      const name = document.createElement("td");
      name.className = "who";
      name.title = players && row.team ? `${row.name}, ${row.team}` : row.name;
      const who = document.createElement("span");
      who.className = "name";
      who.textContent = row.name;
      name.appendChild(who);
      if (players && row.team) {
        const team = document.createElement("span");
        team.className = "team";
        team.textContent = row.team.split(" ").pop();
        name.appendChild(team);
      }
      tr.append(
        name,
        cell(row.attempts.toLocaleString()),
        cell(row.points.toLocaleString()),
        cell(row.expected.toLocaleString(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 })),
        signed(100 * (row.pae / row.attempts), "raw"),
        signed(100 * row.shrunk, "pae"),
      );
      return tr;
    }),
  );
}

function signed(value, className) {
  const td = cell(`${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}`);
  td.className = `${className} ${value >= 0 ? "up" : "down"}`;
  return td;
}

function cell(value) {
  const td = document.createElement("td");
  td.textContent = typeof value === "number" ? value.toLocaleString() : value;
  return td;
}
