// `%miniagents runs` live: the runs table, each run's id a button; a click asks the kernel for that run, whose view
// (the static HTML `%miniagents run ID` shows) is drawn below the table. The kernel keeps the table's static forms
// in `saved_form` (static/saving.js), so a saved notebook shows the table, and the run that was open, without us.

function cellText(text) {
  const cell = document.createElement("td");
  cell.textContent = text;
  return cell;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "mna-runs mna-runs-live";
  const title = document.createElement("div");
  title.className = "mna-runs-title";
  const table = document.createElement("table");
  table.className = "mna-runs-table";
  const opened = document.createElement("div");
  opened.className = "mna-runs-opened";
  root.append(title, table, opened);
  el.appendChild(root);

  const drawTable = () => {
    title.textContent = model.get("title");
    table.replaceChildren();
    const head = document.createElement("tr");
    for (const name of model.get("columns")) {
      const th = document.createElement("th");
      th.textContent = name;
      head.appendChild(th);
    }
    const thead = document.createElement("thead");
    thead.appendChild(head);
    const tbody = document.createElement("tbody");
    const current = model.get("opened")?.run_id;
    for (const row of model.get("rows")) {
      const tr = document.createElement("tr");
      tr.className = `mna-run mna-status-${row.status}` + (row.run_id === current ? " mna-run-selected" : "");
      const [id, ...rest] = row.cells;
      const idCell = document.createElement("td");
      const button = document.createElement("button");
      button.className = "mna-run-open";
      button.type = "button";
      button.textContent = id;
      button.title = `open this run below (${row.cells[row.cells.length - 1]})`;
      button.addEventListener("click", () => model.send({ type: "open", run_id: row.run_id }));
      idCell.appendChild(button);
      tr.appendChild(idCell);
      for (const text of rest) tr.appendChild(cellText(text));
      tbody.appendChild(tr);
    }
    table.append(thead, tbody);
  };
  const drawOpened = () => {
    const run = model.get("opened") ?? {};
    if (run.html) {
      opened.innerHTML = run.html; // the kernel's own static view (escaped there), like a display's text/html
    } else if (run.error) {
      const error = document.createElement("div");
      error.className = "mna-runs-error";
      error.textContent = run.error;
      opened.replaceChildren(error);
    } else {
      opened.replaceChildren();
    }
    drawTable();
  };

  drawOpened();
  model.on("change:rows", drawTable);
  model.on("change:opened", drawOpened);
  return () => {
    model.off("change:rows", drawTable);
    model.off("change:opened", drawOpened);
  };
}

export default {
  initialize({ model }) {
    return keepSavedForm(model); // static/saving.js
  },
  render,
};
