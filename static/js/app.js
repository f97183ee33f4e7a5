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
