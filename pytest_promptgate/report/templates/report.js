// The HTML report's only script; its SHA-256 is the one script the page's CSP allows.
// Sorting: numbers sort by data-sort (missing values last), text by locale. The self-test hook
// (URL ending in #selftest) exercises the sort in a headless browser and records the result in a
// data attribute, so a test can read it from the dumped DOM.
(function () {
  "use strict";
  function sortValue(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent.trim(); }
    if (!numeric) { return raw.toLowerCase(); }
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }
  function sortTable(table, column) {
    var header = table.tHead.rows[0].cells[column];
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortValue(a.cells[column], numeric), y = sortValue(b.cells[column], numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      th.classList.add("sortable");
      th.addEventListener("click", function () { sortTable(table, column); });
    });
  });
  var summary = JSON.parse(document.getElementById("promptgate-data").textContent);
  document.documentElement.setAttribute("data-prompts", String(summary.prompts.length));
  if (window.location.hash === "#selftest") {
    var table = document.getElementById("cases");
    var header = table.querySelector("th[data-key=latency]");
    header.click();
    var ascending = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return sortValue(row.cells[header.cellIndex], true);
    });
    header.click();
    var descending = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return sortValue(row.cells[header.cellIndex], true);
    });
    document.documentElement.setAttribute("data-selftest", JSON.stringify({
      ascending: ascending.slice(0, 5), descending: descending.slice(0, 5), rows: ascending.length
    }));
  }
})();
