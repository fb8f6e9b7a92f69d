// Search and filter the index as you type. The table reads whole without this script.
(function () {
  "use strict";
  var search = document.getElementById("search");
  var environment = document.getElementById("environment");
  var count = document.getElementById("count");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#models tbody tr"));
  var keys = rows.map(function (row) { return row.getAttribute("data-search"); });
  var served = rows.map(function (row) { return " " + row.getAttribute("data-served") + " "; });

  function filter() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var env = environment.value;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var match = (!env || served[i].indexOf(" " + env + " ") >= 0) &&
        words.every(function (word) { return keys[i].indexOf(word) >= 0; });
      rows[i].hidden = !match;
      if (match) { shown++; }
    }
    count.textContent = shown + (shown === 1 ? " model" : " models");
  }

  search.addEventListener("input", filter);
  environment.addEventListener("change", filter);
})();
