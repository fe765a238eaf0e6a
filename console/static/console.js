// The console's only script (CSP allows no inline script). Three jobs:
// 1. a form is sent once: a second click or Enter while it is on its way does nothing;
// 2. the Manual Fulfillment and tracking forms are checked before they are sent;
// 3. the order page follows the order's version and refreshes itself when the pipeline
//    has applied something, and notifications show the pipeline's answer.
"use strict";

(function () {
  var POLL_MS = 1000;
  var SLOW_POLL_MS = 5000;

  // ---- 1. one submission per form ---------------------------------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    if (form.dataset.validate && !validate(form)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.sent === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    // Disabled after the browser has collected the form's fields.
    setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = true;
        button.dataset.label = button.textContent;
        button.textContent = "Sending…";
      });
    }, 0);
  });

  // A page restored from the back/forward cache may still be marked as sent.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      delete form.dataset.sent;
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = false;
        if (button.dataset.label) button.textContent = button.dataset.label;
      });
    });
  });

  // The replay preview updates itself when its checkbox changes.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input instanceof HTMLInputElement && input.dataset.autosubmit !== undefined && input.form) {
      input.form.submit();
    }
  });

  // ---- 2. checks before sending -----------------------------------------------------
  function fieldValue(form, name) {
    var field = form.elements.namedItem(name);
    return field && "value" in field ? String(field.value).trim() : "";
  }

  function showErrors(form, problems) {
    var box = form.querySelector("#form-errors");
    form.querySelectorAll(".field-error.client").forEach(function (node) { node.remove(); });
    form.querySelectorAll("[aria-invalid=true]").forEach(function (node) {
      node.removeAttribute("aria-invalid");
    });
    if (!box) return;
    box.textContent = "";
    if (!problems.length) {
      box.hidden = true;
      return;
    }
    var heading = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = problems.length === 1
      ? "Please correct this:" : "Please correct these " + problems.length + " things:";
    heading.appendChild(strong);
    var list = document.createElement("ul");
    problems.forEach(function (problem) {
      var item = document.createElement("li");
      item.textContent = problem.message;
      list.appendChild(item);
      if (problem.field) {
        var input = form.elements.namedItem(problem.field);
        if (input && input.setAttribute) {
          input.setAttribute("aria-invalid", "true");
          var note = document.createElement("span");
          note.className = "field-error client";
          note.textContent = problem.message;
          input.parentElement.appendChild(note);
        }
      }
    });
    box.appendChild(heading);
    box.appendChild(list);
    box.hidden = false;
    box.scrollIntoView({ block: "start" });
  }

  function checkUrl(form, name, label, problems) {
    var value = fieldValue(form, name);
    if (value && !/^https?:\/\/\S+$/.test(value)) {
      problems.push({ field: name, message: label + ": a web address starting with https://" });
    }
  }

  function validateFulfill(form) {
    var problems = [];
    var ships = false;
    var chosen = 0;
    form.querySelectorAll("input.qty").forEach(function (input) {
      var raw = input.value.trim();
      var max = Number(input.max);
      var title = input.dataset.title;
      var quantity = Number(raw);
      if (!/^\d+$/.test(raw)) {
        problems.push({ field: input.name, message: title + ": enter a whole number of 0 or more" });
      } else if (quantity > max) {
        problems.push({ field: input.name, message: title + ": at most " + max + " (what is still unfulfilled)" });
      }
      // A line meant to be sent, even with a wrong quantity: its details are checked too.
      if (raw !== "0") {
        chosen += 1;
        if (input.dataset.delivery === "shipment") ships = true;
        if (input.dataset.delivery === "digital") {
          var line = input.dataset.line;
          var given = ["access_url-", "username-", "password-", "token-", "instructions-"].some(
            function (prefix) { return fieldValue(form, prefix + line) !== ""; });
          if (!given) {
            problems.push({ field: "access_url-" + line, message: title + ": give an access URL, credentials or instructions" });
          }
        }
      }
    });
    if (!chosen && !problems.length) {
      problems.push({ field: null, message: "Choose a quantity above 0 for at least one line" });
    }
    if (ships) {
      var labels = {
        carrier: "Carrier: required for a shipment (the shipping agent)",
        tracking_number: "Airway bill: required for a shipment",
        "ship-name": "Recipient: required for a shipment",
        "ship-line1": "Address line 1: required for a shipment",
        "ship-city": "City: required for a shipment",
        "ship-postal_code": "Postal code: required for a shipment",
        "ship-country": "Country: required for a shipment"
      };
      Object.keys(labels).forEach(function (name) {
        if (!fieldValue(form, name)) problems.push({ field: name, message: labels[name] });
      });
      var country = fieldValue(form, "ship-country");
      if (country && !/^[A-Za-z]{2}$/.test(country)) {
        problems.push({ field: "ship-country", message: "Country: a two-letter ISO 3166-1 code, such as DE or US" });
      }
      checkUrl(form, "tracking_url", "Tracking link", problems);
    }
    return problems;
  }

  function validateTracking(form) {
    var problems = [];
    if (!fieldValue(form, "carrier")) problems.push({ field: "carrier", message: "Carrier: required" });
    if (!fieldValue(form, "tracking_number")) problems.push({ field: "tracking_number", message: "Airway bill: required" });
    checkUrl(form, "tracking_url", "Tracking link", problems);
    return problems;
  }

  function validateStatus(form) {
    var problems = [];
    if (!fieldValue(form, "happened_at")) problems.push({ field: "happened_at", message: "Happened at: required" });
    return problems;
  }

  var CHECKS = { fulfill: validateFulfill, tracking: validateTracking, status: validateStatus };

  function validate(form) {
    var check = CHECKS[form.dataset.validate];
    if (!check) return true;
    var problems = check(form);
    showErrors(form, problems);
    return problems.length === 0;
  }

  // ---- 3. live order page and notifications -------------------------------------------
  var live = document.getElementById("live");
  var notices = Array.prototype.slice.call(document.querySelectorAll(".notice[data-state]"));
  var version = live ? live.dataset.version : null;
  var refreshing = false;

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); throw new Error("logged out"); }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      });
  }

  function refresh() {
    if (!live || refreshing) return Promise.resolve();
    refreshing = true;
    return fetch(live.dataset.fragment, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.classList.remove("updated");
          void live.offsetWidth;  // restart the highlight animation
          live.classList.add("updated");
        }
      })
      .finally(function () { refreshing = false; });
  }

  var LABELS = {
    pending: "Pending: ",
    done: "Done: ",
    refused: "Refused by the pipeline: ",
    waiting: "Waiting: "
  };

  var STILL_PENDING_S = 20;

  function updateNotice(notice, answer) {
    var result = notice.querySelector("[data-result]");
    if (!result || !answer) return false;
    var summary = answer.summary;
    var waited = Math.round((Date.now() - started) / 1000);
    if (answer.state === "pending" && waited >= STILL_PENDING_S) {
      // Sent and acknowledged by Kafka, but no worker has applied it: say so, not just wait.
      summary = "still not applied after " + waited + " s. The event is on Kafka; " +
        "is a worker running? This page updates itself when it is applied.";
    }
    result.textContent = (LABELS[answer.state] || "") + summary;
    notice.classList.remove("notice-info", "notice-success", "notice-warning");
    notice.classList.add(
      answer.state === "done" ? "notice-success"
        : answer.state === "pending" ? "notice-info" : "notice-warning");
    notice.dataset.outcome = answer.state;
    return answer.state !== "pending";
  }

  function pollNotices() {
    var open = notices.filter(function (notice) { return !notice.dataset.outcome || notice.dataset.outcome === "pending"; });
    return Promise.all(open.map(function (notice) {
      return getJson(notice.dataset.state).then(function (answer) {
        var event = new URL(notice.dataset.state, window.location.href).searchParams.get("event");
        updateNotice(notice, answer.events[event]);
        return answer.version;
      }).catch(function () { return null; });
    }));
  }

  function pollOrder() {
    if (!live) return Promise.resolve();
    return getJson(live.dataset.state).then(function (answer) {
      if (String(answer.version) !== String(version)) {
        version = answer.version;
        live.dataset.version = version;
        return refresh();
      }
    });
  }

  var started = Date.now();
  function tick() {
    if (document.hidden) { setTimeout(tick, SLOW_POLL_MS); return; }
    Promise.all([pollOrder(), pollNotices()])
      .catch(function () { /* the next tick tries again */ })
      .finally(function () {
        // Quick while something was just sent, calmer when nothing happens for a while.
        var busy = Date.now() - started < 60000;
        setTimeout(tick, busy ? POLL_MS : SLOW_POLL_MS);
      });
  }
  if (live || notices.length) setTimeout(tick, 300);
})();
