/* The pipeline board's drag and drop. Dropping a deal on another stage posts what the card's own "Move" form
   posts (with the page's X-CSRF-Token header instead of the form's token), then shows the board the server
   answers: the deal where the service put it, or the service's reason for refusing. Without JavaScript, or
   from the keyboard, the form on each card does the same. */
(function () {
  "use strict";
  var dragged = null;

  function token() {
    var headers = document.body.getAttribute("hx-headers");
    return headers ? JSON.parse(headers)["X-CSRF-Token"] : "";
  }

  function columnAt(node) {
    return node && node.closest ? node.closest("[data-stage]") : null;
  }

  function target(event) {
    var column = columnAt(event.target);
    return dragged && column && !column.contains(dragged) ? column : null;
  }

  function clearTargets() {
    document.querySelectorAll(".drop-here").forEach(function (column) { column.classList.remove("drop-here"); });
  }

  function move(card, column) {
    var board = document.getElementById("board");
    column.querySelector("[data-cards]").appendChild(card);  // shown at once; the server's board follows
    board.setAttribute("aria-busy", "true");
    fetch(card.getAttribute("data-move"), {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRF-Token": token(), "HX-Request": "true"},
      body: new URLSearchParams({stage: column.getAttribute("data-stage")})
    }).then(function (response) {
      if (!response.ok && response.status !== 422) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (html) {
      board.innerHTML = html;
    }).catch(function () {
      window.location.reload();  // signed out, or the deal is gone: show the page as it is now
    }).finally(function () {
      board.removeAttribute("aria-busy");
    });
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest ? event.target.closest("[data-move]") : null;
    if (!card) { return; }
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
  });
  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    clearTargets();
  });
  document.addEventListener("dragover", function (event) {
    var column = target(event);
    if (!column) { return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    column.classList.add("drop-here");
  });
  document.addEventListener("dragleave", function (event) {
    var column = columnAt(event.target);
    if (column && !column.contains(event.relatedTarget)) { column.classList.remove("drop-here"); }
  });
  document.addEventListener("drop", function (event) {
    var column = target(event);
    if (!column) { return; }
    event.preventDefault();
    var card = dragged;
    clearTargets();
    move(card, column);
  });
})();
