// Astra admin panel: the login form and the action buttons (confirm, then POST to /api/*).
(function () {
  "use strict";

  var texts = {};
  try {
    texts = JSON.parse(document.getElementById("admin-texts").textContent);
  } catch (e) { /* the words fall back to their keys */ }

  function tr(key, values) {
    var text = texts[key] || key;
    Object.keys(values || {}).forEach(function (k) {
      text = text.split("{" + k + "}").join(String(values[k]));
    });
    return text;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // An API answer's message ({"message"}), else its status.
  function readError(response) {
    return response.text().then(function (body) {
      try {
        var data = JSON.parse(body);
        if (data && data.message) { return data.message; }
      } catch (e) { /* not JSON */ }
      return tr("error", { status: response.status });
    });
  }

  // -- flash: a message that survives the reload after an action ---------------------------------
  function showFlash() {
    var box = document.getElementById("flash");
    var message = null;
    try {
      message = sessionStorage.getItem("astra-admin-flash");
      sessionStorage.removeItem("astra-admin-flash");
    } catch (e) { /* storage disabled */ }
    if (box && message) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function reloadWith(message) {
    try { sessionStorage.setItem("astra-admin-flash", message); } catch (e) { /* ignore */ }
    window.location.reload();
  }

  // -- login ---------------------------------------------------------------------------------------
  function setupLogin() {
    var form = document.getElementById("login-form");
    if (!form) { return; }
    var error = document.getElementById("login-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      error.hidden = true;
      fetch("/admin/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          user: form.elements.user.value,
          password: form.elements.password.value,
          monitor: form.elements.monitor.checked
        })
      }).then(function (response) {
        if (response.ok) {
          window.location.assign(form.getAttribute("data-next") || "/admin");
          return null;
        }
        return readError(response).then(function (message) {
          if (response.status === 429) {
            var wait = parseInt(response.headers.get("Retry-After") || "0", 10);
            message = message + " " + tr("locked", { minutes: Math.max(1, Math.ceil(wait / 60)) });
          }
          error.textContent = message;
          error.hidden = false;
          form.elements.password.value = "";
          form.elements.password.focus();
        });
      }).catch(function () {
        error.textContent = tr("network");
        error.hidden = false;
      }).then(function () { button.disabled = false; });
    });
  }

  // -- actions -------------------------------------------------------------------------------------
  function setupActions() {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog) {
      // Monitor mode renders no dialog and no action buttons; disable any that slipped in.
      document.querySelectorAll("[data-action]").forEach(function (b) { b.disabled = true; });
      return;
    }
    var title = dialog.querySelector("h2");
    var message = dialog.querySelector(".dialog-message");
    var reasonBox = dialog.querySelector(".dialog-reason");
    var reasonLabel = reasonBox.querySelector("span");
    var reason = reasonBox.querySelector("textarea");
    var error = dialog.querySelector(".dialog-error");
    var confirm = dialog.querySelector("[data-dialog-confirm]");
    var current = null;

    function open(button) {
      current = button;
      title.textContent = button.getAttribute("data-label") || title.textContent;
      message.textContent = button.getAttribute("data-confirm") || "";
      var wantsReason = button.getAttribute("data-reason");
      reasonBox.hidden = !wantsReason;
      reasonLabel.textContent = wantsReason === "required" ? tr("reason") : tr("reason_optional");
      reason.value = "";
      error.hidden = true;
      confirm.disabled = false;
      dialog.showModal();
      (wantsReason ? reason : confirm).focus();
    }

    function submit() {
      if (!current) { return; }
      var body = {};
      var raw = current.getAttribute("data-body");
      if (raw) {
        try { body = JSON.parse(raw); } catch (e) { body = {}; }
      }
      if (current.getAttribute("data-reason")) { body.reason = reason.value.trim(); }
      var label = current.getAttribute("data-label") || "";
      confirm.disabled = true;
      error.hidden = true;
      fetch(current.getAttribute("data-action"), {
        method: current.getAttribute("data-method") || "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(body)
      }).then(function (response) {
        if (response.ok) {
          return response.json().catch(function () { return {}; }).then(function (data) {
            var outcome = data && (data.action || data.status);
            var done = tr("done", { what: label }) + (typeof outcome === "string" ? " (" + outcome + ")" : "");
            dialog.close();
            reloadWith(done);
          });
        }
        return readError(response).then(function (text) {
          error.textContent = text;
          error.hidden = false;
          confirm.disabled = false;
        });
      }).catch(function () {
        error.textContent = tr("network");
        error.hidden = false;
        confirm.disabled = false;
      });
    }

    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-action]");
      if (button && !button.disabled) {
        event.preventDefault();
        open(button);
      }
    });
    dialog.querySelector("form").addEventListener("submit", function (event) {
      event.preventDefault();
      submit();
    });
    dialog.querySelector("[data-dialog-cancel]").addEventListener("click", function () {
      current = null;
      dialog.close();
    });
  }

  // -- forms that send JSON (Suporte) ---------------------------------------------------------------
  // Each named field becomes a key of the body: text as text (left out when empty), data-type
  // "int" as a number, a checkbox as true/false, ticked checkboxes marked data-list as a list.
  // A data-json textarea is parsed: named "_body" it is the whole body; with data-diff only the
  // keys that differ from data-original are sent.
  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) { return; }
      if (el.hasAttribute("data-json")) {
        var parsed;
        try { parsed = JSON.parse(el.value); } catch (e) {
          throw new Error(tr("bad_json", { error: e.message }));
        }
        if (el.hasAttribute("data-diff")) {
          var original = JSON.parse(el.getAttribute("data-original") || "{}");
          var diff = {};
          Object.keys(parsed || {}).forEach(function (key) {
            if (JSON.stringify(parsed[key]) !== JSON.stringify(original[key])) { diff[key] = parsed[key]; }
          });
          if (!Object.keys(diff).length) { throw new Error(tr("nothing")); }
          parsed = diff;
        }
        if (el.name === "_body") { body = Object.assign(body, parsed); } else { body[el.name] = parsed; }
        return;
      }
      if (el.type === "checkbox") {
        if (el.hasAttribute("data-list")) {
          body[el.name] = body[el.name] || [];
          if (el.checked) { body[el.name].push(el.value); }
        } else {
          body[el.name] = el.checked;
        }
        return;
      }
      var value = el.value.trim();
      if (!value) { return; }
      body[el.name] = el.getAttribute("data-type") === "int" ? parseInt(value, 10) : value;
    });
    return body;
  }

  function setupForms() {
    document.querySelectorAll("form[data-api]").forEach(function (form) {
      var error = form.querySelector(".form-error");
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var body;
        error.hidden = true;
        try { body = formBody(form); } catch (e) {
          error.textContent = e.message;
          error.hidden = false;
          return;
        }
        var question = form.getAttribute("data-confirm");
        if (question && !window.confirm(question)) { return; }
        var button = form.querySelector("button[type=submit]");
        button.disabled = true;
        fetch(form.getAttribute("data-api"), {
          method: form.getAttribute("data-method") || "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
          body: JSON.stringify(body)
        }).then(function (response) {
          if (response.ok) {
            reloadWith(tr("done", { what: form.getAttribute("data-label") || "" }));
            return null;
          }
          return readError(response).then(function (text) {
            error.textContent = text;
            error.hidden = false;
          });
        }).catch(function () {
          error.textContent = tr("network");
          error.hidden = false;
        }).then(function () { button.disabled = false; });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    showFlash();
    setupLogin();
    setupActions();
    setupForms();
  });
})();
