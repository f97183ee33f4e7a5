// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-nav-toggle]");
  if (!toggle) return;
  const nav = document.getElementById("sidenav");
  if (!nav) return;
  const open = nav.classList.toggle("open");
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
});

// Under the Content-Security-Policy no markup carries inline script or style: behaviour and the
// few computed styles are attached here.
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-submit-on-change]");
  if (field && field.form) field.form.submit();
});

function applyComputedStyles(root) {
  // the R×F heat map's shade of each cell (data-heat="0…100")
  root.querySelectorAll("[data-heat]").forEach((cell) => cell.style.setProperty("--heat", `${cell.dataset.heat}%`));
}
document.addEventListener("DOMContentLoaded", () => applyComputedStyles(document));
document.addEventListener("htmx:afterSwap", (event) => applyComputedStyles(event.target));

// Tables become cards on a narrow screen (app.css, "Lists on a narrow screen"): each cell gets
// its column's header as data-label, and the table is marked .stacked. The first column names
// the row (the card's title) unless the table says data-stack-title="none".
function stackTables(root) {
  root.querySelectorAll(".table-wrap > table").forEach((table) => {
    if (table.matches(".matrix, .heatmap, [data-no-stack]")) return;
    const headerRow = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!headerRow) return;
    const labels = [];
    Array.from(headerRow.cells).forEach((th) => {
      const text = th.textContent.replace(/[▲▼]/g, "").trim();
      for (let i = 0; i < (th.colSpan || 1); i += 1) labels.push(text);
    });
    const titled = table.dataset.stackTitle !== "none";
    Array.from(table.tBodies).forEach((body) => {
      Array.from(body.rows).forEach((row) => {
        let column = 0;
        Array.from(row.cells).forEach((cell) => {
          const span = cell.colSpan || 1;
          if (span === 1 && !cell.hasAttribute("data-label")) {
            if (titled && column === 0 && cell.tagName === "TD") cell.classList.add("stack-title");
            else if (labels[column]) cell.setAttribute("data-label", labels[column]);
          }
          column += span;
        });
      });
    });
    table.classList.add("stacked");
  });
}
document.addEventListener("DOMContentLoaded", () => stackTables(document));
document.addEventListener("htmx:afterSwap", (event) => stackTables(event.target.closest(".table-wrap")?.parentElement || event.target));
