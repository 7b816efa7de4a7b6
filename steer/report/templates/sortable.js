// Click a column header to sort the table by it; click again to reverse. Cells carry their raw value in
// data-n (numbers) or their text; empty cells (undefined values) sort last in either direction.
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.title = (th.title ? th.title + " · " : "") + "click to sort";
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var ex = x.dataset.empty === "1", ey = y.dataset.empty === "1";
        if (ex || ey) { return ex - ey; }
        var c;
        if (x.dataset.n !== undefined && y.dataset.n !== undefined) {
          c = parseFloat(x.dataset.n) - parseFloat(y.dataset.n);
        } else {
          c = x.textContent.localeCompare(y.textContent, undefined, { numeric: true });
        }
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
// A per-maze figure widens to the page's width on click, and back.
document.querySelectorAll(".figures.mazes figure").forEach(function (fig) {
  fig.addEventListener("click", function () { fig.classList.toggle("wide"); });
});
