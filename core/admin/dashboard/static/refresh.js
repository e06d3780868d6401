// Refresh the parts of a page marked data-refresh="SECONDS" without a reload: fetch the same URL,
// swap in the element of the same id. Paused while the tab is hidden or while keyboard focus is
// inside the element (so it never moves under a user); stopped if the session has ended.
(function () {
  "use strict";
  document.querySelectorAll("[data-refresh][id]").forEach(function (live) {
    var every = Math.max(2, parseInt(live.getAttribute("data-refresh"), 10) || 5) * 1000;
    var timer = setInterval(function () {
      if (document.hidden || live.contains(document.activeElement)) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
        .then(function (response) {
          if (!response.ok || response.redirected) { clearInterval(timer); return null; }
          return response.text();
        })
        .then(function (html) {
          if (html === null) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(live.id);
          if (fresh) { live.innerHTML = fresh.innerHTML; live.setAttribute("data-refreshed", Date.now()); }
        })
        .catch(function () { /* try again on the next tick */ });
    }, every);
  });
})();
