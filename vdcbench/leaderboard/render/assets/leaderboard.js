(function () {
  "use strict";
  function value(row, index, type) {
    var cell = row.cells[index];
    if (!cell) { return null; }
    var raw = cell.getAttribute("data-value");
    if (type === "num") {
      if (raw === null || raw === "") { return null; }
      return parseFloat(raw);
    }
    return (raw !== null ? raw : cell.textContent).trim().toLowerCase();
  }
  function sortBy(table, index, direction) {
    var header = table.tHead.rows[0].cells;
    var type = header[index].getAttribute("data-type") || "text";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var pinned = rows.filter(function (r) { return r.classList.contains("pinned"); });
    var rest = rows.filter(function (r) { return !r.classList.contains("pinned"); });
    rest.forEach(function (r) { r._order = parseInt(r.getAttribute("data-order"), 10); });
    rest.sort(function (a, b) {
      var x = value(a, index, type), y = value(b, index, type);
      if (x === null && y === null) { return a._order - b._order; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      if (x < y) { return -direction; }
      if (x > y) { return direction; }
      return a._order - b._order;
    });
    pinned.concat(rest).forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(header, function (th, i) {
      if (i === index) {
        th.setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
      } else { th.removeAttribute("aria-sort"); }
    });
  }
  function onHeader(event) {
    var th = event.currentTarget;
    var table = th.closest("table");
    var index = Array.prototype.indexOf.call(th.parentNode.cells, th);
    var current = th.getAttribute("aria-sort");
    var numeric = th.getAttribute("data-type") === "num";
    var direction = current === "descending" ? 1 : current === "ascending" ? -1 : (numeric ? -1 : 1);
    sortBy(table, index, direction);
  }
  var labels = document.getElementById("filter-labels");
  var net = document.getElementById("filter-net");
  function matches(element) {
    var l = labels.value, n = net.value;
    var rowLabels = element.getAttribute("data-labels");
    var rowNets = (element.getAttribute("data-nets") || "").split(" ");
    var okLabels = !l || rowLabels === "*" || rowLabels === l;
    var okNet = !n || rowNets.indexOf("*") >= 0 || rowNets.indexOf(n) >= 0;
    return okLabels && okNet;
  }
  function apply() {
    var shown = 0;
    document.querySelectorAll("[data-filter]").forEach(function (el) {
      el.hidden = !matches(el);
      if (!el.hidden && el.tagName === "TR" && !el.classList.contains("pinned")) { shown += 1; }
    });
    document.querySelectorAll("section.board").forEach(function (section) {
      section.hidden = !!net.value && section.getAttribute("data-net") !== net.value;
    });
    document.getElementById("shown").textContent = shown + " rows shown";
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", onHeader);
  });
  labels.addEventListener("change", apply);
  net.addEventListener("change", apply);
  apply();
  document.body.setAttribute("data-ready", "1");

  if (location.hash === "#selftest") {
    var report = {};
    var table = document.querySelector("section.board table");
    if (table) {
      var head = table.tHead.rows[0].cells;
      var col = -1;
      for (var i = 0; i < head.length; i++) {
        if (head[i].getAttribute("data-type") === "num") { col = i; break; }
      }
      sortBy(table, col, -1);
      var values = Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
        return !r.classList.contains("pinned");
      }).map(function (r) { return value(r, col, "num"); }).filter(function (v) { return v !== null; });
      report.sorted_desc = values.every(function (v, k) { return k === 0 || values[k - 1] >= v; });
      report.sorted_values = values;
      sortBy(table, col, 1);
      var up = Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
        return !r.classList.contains("pinned");
      }).map(function (r) { return value(r, col, "num"); }).filter(function (v) { return v !== null; });
      report.sorted_asc = up.every(function (v, k) { return k === 0 || up[k - 1] <= v; });
    }
    var options = Array.prototype.map.call(labels.options, function (o) { return o.value; });
    report.filters = {};
    options.filter(Boolean).forEach(function (l) {
      labels.value = l; apply();
      var visible = Array.prototype.filter.call(document.querySelectorAll("tr[data-filter]"),
        function (r) { return !r.hidden; });
      report.filters[l] = {
        visible: visible.length,
        only_matching: visible.every(function (r) {
          var v = r.getAttribute("data-labels"); return v === "*" || v === l;
        })
      };
    });
    labels.value = ""; apply();
    report.entries = document.querySelectorAll("#entries tbody tr").length;
    report.images = document.images.length;
    document.getElementById("selftest").textContent = JSON.stringify(report);
  }
}());
