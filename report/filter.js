// The flow table's filter: every word typed must occur in one of a row's cells (case is
// ignored), and each select keeps only the rows with its value. The count says how many
// rows are shown.
(function () {
  "use strict";
  var input = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-column]"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("#flow-table tbody tr"));
  var texts = rows.map(function (row) {
    return Array.prototype.map.call(row.cells, function (cell) { return cell.textContent; }).join("\t").toLowerCase();
  });
  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(function (w) { return w !== ""; });
    var wanted = selects.filter(function (s) { return s.value !== ""; });
    var count = 0;
    rows.forEach(function (row, i) {
      var keep = words.every(function (w) { return texts[i].indexOf(w) >= 0; }) &&
        wanted.every(function (s) { return row.getAttribute("data-" + s.getAttribute("data-column")) === s.value; });
      row.hidden = !keep;
      if (keep) { count++; }
    });
    shown.textContent = String(count);
  }
  input.addEventListener("input", apply);
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
})();
