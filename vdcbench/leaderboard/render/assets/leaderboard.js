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
  var status = document.getElementById("filter-status");
  function holds(element, name, wanted) {
    var values = (element.getAttribute(name) || "").split(" ");
    return !wanted || values.indexOf("*") >= 0 || values.indexOf(wanted) >= 0;
  }
  function matches(element) {
    var l = labels.value;
    var rowLabels = element.getAttribute("data-labels");
    var okLabels = !l || rowLabels === "*" || rowLabels === l;
    return okLabels && holds(element, "data-nets", net.value) &&
      holds(element, "data-statuses", status.value);
  }
  function apply() {
    var shown = 0;
    document.querySelectorAll("[data-filter]").forEach(function (el) {
      el.hidden = !matches(el);
      if (!el.hidden && el.tagName === "TR" && !el.classList.contains("pinned")) { shown += 1; }
    });
    // A board cell pooling entries of several statuses stays lit when it holds the one chosen.
    document.querySelectorAll("td[data-statuses]").forEach(function (cell) {
      cell.classList.toggle("dim", !holds(cell, "data-statuses", status.value));
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
  status.addEventListener("change", apply);
  apply();
  document.body.setAttribute("data-ready", "1");

  // 32-bit FNV-1a of a string: tells two image sources apart without copying them.
  function fingerprint(text) {
    var hash = 0x811c9dc5;
    for (var i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return ("0000000" + hash.toString(16)).slice(-8);
  }
  // Does anything stick out sideways? Each table against the box it scrolls in (a table wider
  // than its box hides columns behind a scrollbar), and the page against the window.
  function layout() {
    var root = document.documentElement;
    var tables = Array.prototype.map.call(document.querySelectorAll("main table"), function (t) {
      var box = t.closest(".scroll") || t.parentElement;
      var section = t.closest("section");
      return { section: section ? section.id : "", table_width: t.scrollWidth,
               box_width: box.clientWidth, box_scroll_width: box.scrollWidth,
               overflows: t.scrollWidth > box.clientWidth || box.scrollWidth > box.clientWidth };
    });
    return { window_width: window.innerWidth, page_width: root.clientWidth,
             page_scroll_width: root.scrollWidth, tables: tables };
  }
  function gallery() {
    var figures = Array.prototype.map.call(document.querySelectorAll("#gallery figure"),
      function (f) {
        var img = f.querySelector("img");
        return { id: f.id, archive: f.getAttribute("data-archive"), source: fingerprint(img.src),
                 source_length: img.src.length, width: img.naturalWidth,
                 height: img.naturalHeight };
      });
    // The picture each entry links to, through its id's link into the gallery.
    var entries = {};
    document.querySelectorAll("#entries tbody tr").forEach(function (row) {
      var link = row.querySelector("td.id a");
      var target = link ? document.getElementById(link.getAttribute("href").slice(1)) : null;
      var img = target ? target.querySelector("img") : null;
      entries[row.id.slice("entry-".length)] = {
        archive: row.getAttribute("data-archive"), source: img ? fingerprint(img.src) : null };
    });
    return { figures: figures, entries: entries };
  }

  // Each board as the reader sees it: its kind (official or temporal tracks), whether it is on
  // screen, its column headers and how many rows it shows.
  function boards() {
    return Array.prototype.map.call(document.querySelectorAll("section.board"), function (s) {
      var table = s.querySelector("table");
      return { id: s.id, section: s.getAttribute("data-section"),
               visible: !s.hidden && s.offsetWidth > 0 && s.offsetHeight > 0,
               headers: Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
                 return th.textContent.trim(); }),
               rows: Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
                 return !r.hidden; }).length };
    });
  }

  function selftest() {
    var report = { layout: layout(), gallery: gallery(), boards: boards() };
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
    // Every entry shows its status, and the status filter keeps exactly the entries holding it.
    report.statuses = {};
    document.querySelectorAll("#entries tbody tr").forEach(function (row) {
      var cell = row.querySelector("td.status");
      report.statuses[row.id.slice("entry-".length)] = cell ? {
        status: cell.getAttribute("data-status"), text: cell.textContent.trim(),
        visible: cell.offsetWidth > 0 && cell.offsetHeight > 0 } : null;
    });
    report.status_filters = {};
    Array.prototype.map.call(status.options, function (o) { return o.value; }).filter(Boolean)
      .forEach(function (s) {
        status.value = s; apply();
        var rows = Array.prototype.filter.call(
          document.querySelectorAll("#entries tbody tr"), function (r) { return !r.hidden; });
        var cells = Array.prototype.filter.call(
          document.querySelectorAll("section.board td[data-statuses]"),
          function (c) { return !c.closest("tr").hidden && !c.classList.contains("dim"); });
        report.status_filters[s] = {
          entries: rows.map(function (r) { return r.id.slice("entry-".length); }).sort(),
          lit_cells: cells.length,
          cells_hold_it: cells.every(function (c) {
            return c.getAttribute("data-statuses").split(" ").indexOf(s) >= 0; })
        };
      });
    status.value = ""; apply();
    report.entries = document.querySelectorAll("#entries tbody tr").length;
    report.images = document.images.length;
    document.getElementById("selftest").textContent = JSON.stringify(report);
  }
  if (location.hash === "#selftest") {
    // After load, when every image is decoded and has its natural size.
    if (document.readyState === "complete") { selftest(); }
    else { window.addEventListener("load", selftest); }
  }
}());
