/* Astra seller portal: every change goes through the JSON API with the session's CSRF token.
   The pages are rendered on the server; this script only sends forms, shows answers and
   refreshes live bits (bot status, stock counts, channels). No framework, no build step. */
(() => {
  "use strict";

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const lang = document.documentElement.lang || "pt-BR";
  const FLASH_KEY = "astra.flash";
  const POLL_MS = 5000;

  const strings = (() => {
    try {
      return JSON.parse(($("#i18n") || {}).dataset?.strings || "{}");
    } catch {
      return {};
    }
  })();

  function t(key, params) {
    let text = strings[key] || key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split(`{${name}}`).join(String(value));
    }
    return text;
  }

  // -- money ----------------------------------------------------------------------------------

  const AMOUNT = /^(?:R\$)?\s*(\d{1,3}(?:\.\d{3})+|\d+)(?:[,.](\d{1,2}))?$/;

  /** "19,90", "19.90", "R$ 1.234,56", "10" -> cents; null when it is not an amount. */
  function parseBRL(text) {
    const match = AMOUNT.exec(String(text).trim());
    if (!match) return null;
    const reais = parseInt(match[1].replace(/\./g, ""), 10);
    const cents = reais * 100 + parseInt((match[2] || "0").padEnd(2, "0"), 10);
    return cents > 10000000000 ? null : cents;
  }

  function formatBRL(cents) {
    const sign = cents < 0 ? "-" : "";
    const abs = Math.abs(cents);
    const reais = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
    return `${sign}R$ ${reais},${String(abs % 100).padStart(2, "0")}`;
  }

  // -- API ------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  class FieldError extends Error {
    constructor(field, message) {
      super(message);
      this.field = field;
    }
  }

  const csrf = () => $('meta[name="csrf-token"]')?.content || "";

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    const token = csrf();
    if (token) headers["X-CSRF-Token"] = token;
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    } catch {
      throw new ApiError(t("js.network"), 0, null);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      if (response.status === 401 && url.startsWith("/api/")) {
        const here = location.pathname + location.search;
        location.assign(`/login?next=${encodeURIComponent(here)}`);
      }
      const message = data && typeof data.message === "string" && data.message
        ? data.message : t("js.error");
      throw new ApiError(message, response.status, data);
    }
    return data;
  }

  // -- feedback -------------------------------------------------------------------------------

  function toast(lines, kind = "ok", sticky = false) {
    const box = $("#toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = `toast toast-${kind}`;
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    const body = document.createElement("div");
    body.className = "toast-body";
    for (const line of [].concat(lines)) {
      const p = document.createElement("p");
      p.textContent = line;
      body.append(p);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", t("close"));
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.append(body, close);
    box.append(item);
    if (!sticky) setTimeout(() => item.remove(), kind === "error" ? 9000 : 5000);
  }

  function flashThenReload(message) {
    if (message) sessionStorage.setItem(FLASH_KEY, JSON.stringify([message]));
    location.reload();
  }

  function showFlash() {
    const raw = sessionStorage.getItem(FLASH_KEY);
    if (!raw) return;
    sessionStorage.removeItem(FLASH_KEY);
    try {
      toast(JSON.parse(raw), "ok");
    } catch {
      /* a broken flash is no reason to break the page */
    }
  }

  function showError(form, message, field) {
    const box = $("[data-error]", form);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
    if (!box) {
      toast(message, "error");
      return;
    }
    box.textContent = message;
    box.hidden = false;
  }

  function clearError(form) {
    const box = $("[data-error]", form);
    if (box) {
      box.hidden = true;
      box.textContent = "";
    }
    for (const el of $$('[aria-invalid="true"]', form)) el.removeAttribute("aria-invalid");
  }

  function setBusy(button, busy) {
    if (!button) return;
    if (busy) {
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
    } else {
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }

  function confirmDialog(message) {
    const dialog = $("#confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.confirm(message));
    }
    $("#confirm-text").textContent = message;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  /** The current password, asked again before a change that moves money or hands out a key
      (the server refuses it without one); null when the person cancels. */
  function passwordDialog(message) {
    const dialog = $("#reauth-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(null);
    const input = $("#reauth-password", dialog);
    $("[data-reauth-text]", dialog).textContent = message || "";
    input.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        const password = input.value;
        input.value = ""; // not left in the page
        resolve(dialog.returnValue === "ok" && password ? password : null);
      }, { once: true });
    });
  }

  // -- forms ----------------------------------------------------------------------------------

  function fieldValue(el) {
    // A password is sent as typed (spaces count, as at login); the server trims bot tokens.
    const value = el.type === "password" ? el.value : el.value.trim();
    if (el.type === "checkbox") return el.checked;
    switch (el.dataset.type) {
      case "nullable":
        return value === "" ? null : value;
      case "cents": {
        const cents = parseBRL(value);
        if (cents === null) throw new FieldError(el, t("js.bad_amount", { value }));
        return cents;
      }
      case "int":
      case "minutes": {
        const number = value === "" && "keepEmpty" in el.dataset ? 0 : parseInt(value, 10);
        if (Number.isNaN(number)) throw new FieldError(el, t("js.error"));
        return el.dataset.type === "minutes" ? number * 60 : number;
      }
      case "int-list": {
        const numbers = value.split(/[\s,;]+/).filter(Boolean).map((n) => parseInt(n, 10));
        if (numbers.some(Number.isNaN)) throw new FieldError(el, t("js.error"));
        return numbers;
      }
      default:
        return value;
    }
  }

  /** The form's named fields as JSON; `data-path="a.b"` nests, empty optional fields are left out. */
  function formJSON(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.name === "csrf_token" || el.type === "submit") continue;
      // An empty optional field is left out, unless emptying it means something: a cleared
      // text (data-keep-empty), a picker set to "none" (null) or an emptied list.
      const keep = el.type === "checkbox" || el.dataset.type === "nullable"
        || el.dataset.type === "int-list" || "keepEmpty" in el.dataset;
      if (el.value.trim() === "" && !el.required && !keep) continue;
      const path = (el.dataset.path || el.name).split(".");
      let target = out;
      for (const key of path.slice(0, -1)) target = target[key] ??= {};
      target[path[path.length - 1]] = el.type === "checkbox" ? el.checked : fieldValue(el);
    }
    return out;
  }

  async function submitWith(form, build, done) {
    clearError(form);
    const button = $('[type="submit"]', form);
    let body;
    try {
      body = build(form);
    } catch (err) {
      if (err instanceof FieldError) {
        showError(form, err.message, err.field);
        return;
      }
      throw err;
    }
    setBusy(button, true);
    try {
      const data = await api(form.dataset.method || "POST", form.dataset.url, body);
      await done(data);
    } catch (err) {
      showError(form, err instanceof ApiError ? err.message : t("js.error"));
    } finally {
      setBusy(button, false);
    }
  }

  function afterWrite(el, data) {
    const then = el.dataset.then || "reload";
    if (then === "key") {
      showKey(data && data.key, el.dataset.keyTitle);
    } else if (then === "redirect") {
      if (data && typeof data.redirect_url === "string") location.assign(data.redirect_url);
    } else if (then === "reload") {
      flashThenReload(el.dataset.flash);
    }
  }

  function bind(selector, event, handler) {
    for (const el of $$(selector)) el.addEventListener(event, handler);
  }

  function onSubmit(selector, build, done) {
    bind(selector, "submit", (ev) => {
      ev.preventDefault();
      const form = ev.currentTarget;
      submitWith(form, build, (data) => (done ? done(form, data) : afterWrite(form, data)));
    });
  }

  // -- login and sign-up ------------------------------------------------------------------------

  function safeNext(value) {
    return typeof value === "string" && value.startsWith("/") && !value.startsWith("//")
      && !value.startsWith("/\\") ? value : "/dashboard";
  }

  function initAuth() {
    onSubmit(".js-auth", (form) => {
      const body = {};
      for (const name of ["email", "password", "name"]) {
        if (form.elements[name]) body[name] = form.elements[name].value;
      }
      return body;
    }, (form) => location.assign(safeNext(form.dataset.next)));

    bind("[data-auth-tab]", "click", (ev) => {
      ev.preventDefault();
      const mode = ev.currentTarget.dataset.authTab;
      for (const tab of $$("[data-auth-tab]")) {
        tab.setAttribute("aria-selected", String(tab.dataset.authTab === mode));
      }
      for (const form of $$(".js-auth")) form.hidden = form.id !== `form-${mode}`;
      $(`#form-${mode} input:not([type=hidden])`)?.focus();
    });
  }

  // -- plan: trial and PIX checkout ------------------------------------------------------------

  let pixTimer = null;

  function initPix() {
    const dialog = $("#pix-dialog");
    if (!dialog) return;
    dialog.addEventListener("close", () => clearInterval(pixTimer));
    bind(".js-pix", "click", async (ev) => {
      const button = ev.currentTarget;
      setBusy(button, true);
      try {
        const charge = await api("POST", button.dataset.url, { plan_id: "monthly" });
        $("[data-pix-qr]", dialog).src = `data:image/png;base64,${charge.qr_code_base64}`;
        $("[data-pix-code]", dialog).value = charge.pix_code;
        $("[data-pix-amount]", dialog).textContent = formatBRL(charge.amount_cents);
        $("[data-pix-expires]", dialog).textContent = localTime(charge.expires_at);
        const sandbox = $("[data-pix-sandbox]", dialog);
        sandbox.hidden = !charge.sandbox;
        sandbox.textContent = charge.sandbox ? t("pix.sandbox", { charge: charge.charge_id }) : "";
        $("[data-pix-status]", dialog).textContent = t("pix.waiting");
        dialog.showModal();
        watchPlan(dialog);
      } catch (err) {
        toast(err.message || t("js.error"), "error");
      } finally {
        setBusy(button, false);
      }
    });
  }

  function watchPlan(dialog) {
    const before = $("[data-plan-until]")?.dataset.planUntil || "";
    clearInterval(pixTimer);
    pixTimer = setInterval(async () => {
      try {
        const me = await api("GET", "/api/me");
        if (me.plan && me.plan.kind === "paid" && me.plan.until && me.plan.until !== before) {
          clearInterval(pixTimer);
          $("[data-pix-status]", dialog).textContent = t("pix.paid");
          setTimeout(() => flashThenReload(t("pix.paid")), 1200);
        }
      } catch {
        /* keep waiting */
      }
    }, 4000);
  }

  // -- buttons that call the API ----------------------------------------------------------------

  function initActions() {
    bind(".js-action", "click", async (ev) => {
      const button = ev.currentTarget;
      let password = null;
      if ("reauth" in button.dataset) {
        // One dialog: the confirmation's question and the password field.
        password = await passwordDialog(button.dataset.confirm);
        if (password === null) return;
      } else if (button.dataset.confirm && !(await confirmDialog(button.dataset.confirm))) {
        return;
      }
      setBusy(button, true);
      try {
        let body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
        if (password !== null) body = { ...(body || {}), password };
        const data = await api(button.dataset.method || "POST", button.dataset.url, body);
        afterWrite(button, data);
      } catch (err) {
        toast(err.message || t("js.error"), "error");
      } finally {
        setBusy(button, false);
      }
    });
  }

  function showKey(key, title) {
    const dialog = $("#key-dialog");
    if (!dialog) return;
    const heading = $("[data-key-heading]", dialog);
    if (heading && title) heading.textContent = title;
    $("[data-key-value]", dialog).value = key || "";
    dialog.addEventListener("close", () => location.reload(), { once: true });
    dialog.showModal();
    $("[data-key-value]", dialog).select();
  }

  function initCopy() {
    bind(".js-copy", "click", async (ev) => {
      const button = ev.currentTarget;
      const target = $(button.dataset.copyTarget);
      if (!target) return;
      try {
        await navigator.clipboard.writeText(target.value);
      } catch {
        target.select();
        document.execCommand("copy");
      }
      toast(t("js.copied"));
    });
  }

  // -- instances ----------------------------------------------------------------------------------

  function slug(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  }

  function initSlug() {
    for (const source of $$("[data-slug-source]")) {
      const target = $(source.dataset.slugSource);
      if (!target) continue;
      let touched = false;
      target.addEventListener("input", () => { touched = target.value !== ""; });
      source.addEventListener("input", () => {
        if (!touched) target.value = slug(source.value);
      });
    }
  }

  function logsText(status) {
    if (!status.logs_available) return t("inst.logs.unavailable");
    return status.logs.length ? status.logs.join("\n") : t("inst.logs.none");
  }

  async function pollStatus(card) {
    try {
      const status = await api("GET", card.dataset.statusUrl);
      const pill = $("[data-status-pill]", card);
      pill.className = `pill pill-${status.status}`;
      pill.textContent = t(`status.${status.status}`);
      const reason = $("[data-status-reason]", card);
      reason.textContent = status.reason || "";
      reason.hidden = !status.reason;
      const desired = $("[data-desired]", card);
      if (desired) desired.textContent = t(`desired.${status.desired_state}`);
      const logs = $("[data-logs]", card);
      const text = logsText(status);
      if (logs && logs.textContent !== text) logs.textContent = text;
      return true;
    } catch (err) {
      return !(err instanceof ApiError && err.status === 404);
    }
  }

  function initStatus() {
    let cards = $$("[data-status-url]");
    if (!cards.length) return;
    const tick = async () => {
      if (document.visibilityState !== "visible") return;
      const alive = await Promise.all(cards.map(pollStatus));
      cards = cards.filter((_, i) => alive[i]);
    };
    tick();
    setInterval(tick, POLL_MS);
  }

  // -- store --------------------------------------------------------------------------------------

  function variantRows(form) {
    return $$("[data-variant-row]", form);
  }

  function initProductForm() {
    const form = $(".js-product");
    if (!form) return;
    const rows = $("[data-variant-rows]", form);
    let counter = variantRows(form).length;

    $("[data-add-variant]", form).addEventListener("click", () => {
      const row = variantRows(form)[0].cloneNode(true);
      const n = counter++;
      for (const input of $$("input", row)) {
        const field = input.dataset.field;
        input.id = `v-${field}-${n}`;
        input.value = field === "max" ? "10" : "";
        input.removeAttribute("aria-invalid");
        const label = input.closest(".field")?.querySelector("label");
        if (label) label.htmlFor = input.id;
      }
      rows.append(row);
      $("input", row).focus();
    });
    rows.addEventListener("click", (ev) => {
      const remove = ev.target.closest("[data-remove-variant]");
      if (remove && variantRows(form).length > 1) remove.closest("[data-variant-row]").remove();
    });
    const kind = $("[data-kind-select]", form);
    const content = $("[data-content-field]", form);
    const sync = () => { content.hidden = kind.value === "key"; };
    kind.addEventListener("change", sync);
    sync();

    onSubmit(".js-product", (f) => {
      const body = { name: f.elements.name.value.trim(), delivery_kind: kind.value, variants: [] };
      const description = f.elements.description.value.trim();
      if (description) body.description = description;
      if (kind.value !== "key" && f.elements.content.value.trim()) {
        body.content = f.elements.content.value.trim();
      }
      for (const row of variantRows(f)) {
        const name = $('[data-field="name"]', row);
        const price = $('[data-field="price"]', row);
        const max = $('[data-field="max"]', row);
        const cents = parseBRL(price.value);
        if (cents === null) throw new FieldError(price, t("js.bad_price", { value: price.value }));
        const variant = { name: name.value.trim(), price_cents: cents };
        const limit = parseInt(max.value, 10);
        if (!Number.isNaN(limit)) variant.max_per_order = limit;
        const days = $('[data-field="days"]', row);
        if (kind.value === "subscription" && days && days.value) {
          variant.period_days = parseInt(days.value, 10);
        }
        body.variants.push(variant);
      }
      return body;
    });
  }

  function initCouponForm() {
    onSubmit(".js-coupon", (f) => {
      const kind = f.elements.kind.value;
      const body = { code: f.elements.code.value.trim().toUpperCase(), kind };
      const raw = f.elements.value;
      if (kind === "percent") {
        const percent = parseInt(raw.value, 10);
        if (Number.isNaN(percent) || String(percent) !== raw.value.trim().replace(/%$/, "")) {
          throw new FieldError(raw, t("js.bad_amount", { value: raw.value }));
        }
        body.value = percent;
      } else {
        const cents = parseBRL(raw.value);
        if (cents === null) throw new FieldError(raw, t("js.bad_amount", { value: raw.value }));
        body.value = cents;
      }
      const min = f.elements.min_order;
      if (min.value.trim()) {
        const cents = parseBRL(min.value);
        if (cents === null) throw new FieldError(min, t("js.bad_amount", { value: min.value }));
        body.min_order_cents = cents;
      }
      for (const name of ["max_uses", "per_buyer_limit"]) {
        const value = parseInt(f.elements[name].value, 10);
        if (!Number.isNaN(value)) body[name] = value;
      }
      if (f.elements.expires.value) body.expires_at = `${f.elements.expires.value}T23:59:59-03:00`;
      return body;
    });
  }

  function reportLines(report) {
    const lines = [t("store.report", { added: report.added, skipped: report.skipped })];
    if (report.skipped) {
      lines.push(t("store.report.detail", {
        dup: report.duplicate_in_file || 0,
        existing: report.already_in_stock || 0,
        blank: report.blank || 0,
        long: report.too_long || 0,
        invalid: report.invalid || 0,
      }));
      const skipped = report.skipped_lines || [];
      if (skipped.length) {
        const shown = skipped.slice(0, 30).join(", ") + (skipped.length > 30 ? ", …" : "");
        lines.push(t("store.report.lines", { lines: shown }));
      }
    }
    return lines;
  }

  async function refreshStock(url) {
    try {
      const counts = await api("GET", url);
      for (const v of counts.variants) {
        const strong = $(`[data-stock="${CSS.escape(v.id)}"]`);
        if (strong) {
          strong.textContent = String(v.available);
          strong.className = v.available ? "ok" : "warn";
        }
        const detail = $(`[data-stock-detail="${CSS.escape(v.id)}"]`);
        if (detail) {
          detail.textContent = `${t("store.available")} · ${v.reserved} ${t("store.reserved")} · `
            + `${v.sold} ${t("store.sold")}`;
        }
      }
    } catch {
      /* the counts refresh with the next page load */
    }
  }

  function initStockForms() {
    onSubmit(".js-stock", (f) => {
      const data = new FormData();
      data.append("variant_id", f.elements.variant_id.value);
      const file = f.elements.file.files[0];
      if (file) {
        data.append("file", file, file.name);
      } else if (f.elements.keys.value.trim()) {
        data.append("keys", f.elements.keys.value);
      } else {
        throw new FieldError(f.elements.keys, t("js.need_keys"));
      }
      return data;
    }, async (f, answer) => {
      f.elements.keys.value = "";
      f.elements.file.value = "";
      if (answer && answer.state) {
        // A big file goes on as a job on the server: watch it to the end.
        await watchStockJob(f, answer);
      } else {
        showReport(f, answer);
      }
      await refreshStock(f.dataset.url);
    });
    // A page opened (or reloaded) while an import runs shows its progress too.
    for (const f of $$(".js-stock[data-jobs-url]")) {
      api("GET", f.dataset.jobsUrl).then(async (listing) => {
        const mine = listing.jobs.filter((job) => job.product_id === f.dataset.product);
        for (const job of mine) await watchStockJob(f, job);
        if (mine.length) await refreshStock(f.dataset.url);
      }).catch(() => { /* shown again with the next page load */ });
    }
  }

  function showReport(f, report) {
    const box = $("[data-report]", f);
    box.replaceChildren(...reportLines(report).map((line) => {
      const p = document.createElement("p");
      p.textContent = line;
      return p;
    }));
    box.hidden = false;
  }

  const STOCK_JOB_POLL_MS = 700;

  async function watchStockJob(f, job) {
    const holder = $("[data-progress]", f);
    const bar = $("[data-progress-bar]", f);
    const label = $("[data-progress-text]", f);
    $("[data-report]", f).hidden = true;
    const show = (view) => {
      bar.value = view.percent;
      label.textContent = t("store.report.job_progress", {
        processed: view.processed, total: view.total, percent: view.percent,
      });
    };
    holder.hidden = false;
    show(job);
    let view = job;
    while (view.state === "running" || view.state === "preparing") {
      await new Promise((done) => setTimeout(done, STOCK_JOB_POLL_MS));
      try {
        view = await api("GET", `${f.dataset.jobsUrl}/${encodeURIComponent(job.id)}`);
      } catch {
        continue; // a passing network failure: ask again
      }
      show(view);
      if (view.state === "running") await refreshStock(f.dataset.url);
    }
    holder.hidden = true;
    showReport(f, view.report);
    if (view.state === "failed") {
      const p = document.createElement("p");
      p.className = "form-error";
      p.textContent = t("store.report.job_failed");
      $("[data-report]", f).append(p);
    }
  }

  const channelRequests = new Map();

  function loadChannels(url) {
    if (!channelRequests.has(url)) {
      const request = api("GET", url);
      request.catch(() => channelRequests.delete(url));
      channelRequests.set(url, request);
    }
    return channelRequests.get(url);
  }

  function fillChannels(select, data) {
    const postable = (c) => c.type === 0 || c.type === 5;
    const categories = new Map(data.channels.filter((c) => c.type === 4).map((c) => [c.id, c]));
    const placeholder = new Option(`— ${t("store.channel")} —`, "");
    const loose = [];
    const grouped = new Map();
    for (const channel of data.channels.filter(postable)) {
      const option = new Option(`#${channel.name}`, channel.id);
      const parent = channel.parent_id && categories.get(channel.parent_id);
      if (!parent) {
        loose.push(option);
      } else {
        if (!grouped.has(parent.id)) grouped.set(parent.id, []);
        grouped.get(parent.id).push(option);
      }
    }
    const groups = [...grouped.entries()].map(([id, options]) => {
      const group = document.createElement("optgroup");
      group.label = categories.get(id).name;
      group.append(...options);
      return group;
    });
    select.replaceChildren(placeholder, ...loose, ...groups);
    select.disabled = false;
  }

  async function prepareChannels(form, guildId) {
    const select = $("[data-channel-select]", form);
    const guildField = $("[data-guild-field]", form);
    const guildSelect = $("[data-guild-select]", form);
    select.disabled = true;
    select.replaceChildren(new Option(t("store.loading"), ""));
    let url = form.dataset.channelsUrl;
    if (guildId) url += `?guild_id=${encodeURIComponent(guildId)}`;
    try {
      const data = await loadChannels(url);
      if (!data.guilds.length) {
        select.replaceChildren(new Option("—", ""));
        showError(form, t("store.no_channels"));
        return;
      }
      if (data.guilds.length > 1) {
        guildField.hidden = false;
        if (!guildSelect.options.length) {
          guildSelect.append(new Option(t("store.pick_guild"), ""));
          for (const g of data.guilds) guildSelect.append(new Option(g.name || g.id, g.id));
          guildSelect.addEventListener("change", () => {
            clearError(form);
            if (guildSelect.value) prepareChannels(form, guildSelect.value);
          });
        }
        if (data.guild_id) guildSelect.value = data.guild_id;
      }
      fillChannels(select, data);
    } catch (err) {
      select.replaceChildren(new Option("—", ""));
      showError(form, err.message || t("js.error"));
    }
  }

  function initPostForms() {
    for (const form of $$(".js-post")) {
      const details = form.closest("details");
      let started = false;
      const start = () => {
        if (!started) {
          started = true;
          prepareChannels(form);
        }
      };
      if (!details || details.open) start();
      details?.addEventListener("toggle", () => details.open && start());
    }
    onSubmit(".js-post", (f) => {
      const select = $("[data-channel-select]", f);
      if (!select.value) throw new FieldError(select, t("js.pick_channel"));
      const body = { product_id: f.dataset.product, channel_id: select.value };
      if (f.elements.purge?.checked) body.purge = true;
      return body;
    }, (f) => flashThenReload(f.dataset.flash || ""));
  }

  // -- product editor and its preview -----------------------------------------------------------

  let rowCounter = 0;

  function initRows(root) {
    root.addEventListener("click", (ev) => {
      const add = ev.target.closest("[data-add-row]");
      if (add && root.contains(add)) {
        const kind = add.dataset.addRow;
        const template = $(`template[data-row-template="${kind}"]`, root);
        const rows = $(`[data-rows="${kind}"]`, root);
        const html = template.innerHTML.replaceAll("-N\"", `-n${rowCounter++}"`);
        const holder = document.createElement("div");
        holder.innerHTML = html;
        const row = holder.firstElementChild;
        rows.append(row);
        $("input, textarea", row)?.focus();
        root.dispatchEvent(new Event("input", { bubbles: true }));
        return;
      }
      const remove = ev.target.closest("[data-remove-row]");
      if (remove && root.contains(remove)) {
        const row = remove.closest("[data-variant-row], [data-section-row]");
        const siblings = row.parentElement.children.length;
        if (row.matches("[data-variant-row]") && siblings <= 1) return;
        row.remove();
        root.dispatchEvent(new Event("input", { bubbles: true }));
      }
    });
  }

  /** The product as the API takes it, from the editor's fields (only those it has). */
  function productBody(form, strict = true) {
    const body = {};
    for (const el of $$("[data-field]", form)) {
      body[el.dataset.field] = el.type === "checkbox" ? el.checked : el.value.trim();
    }
    if ("color" in body && body.color === "") body.color = null;
    const sections = $$("[data-section-row]", form).map((row) => ({
      title: $('[data-s="title"]', row).value.trim(),
      text: $('[data-s="text"]', row).value.trim(),
    })).filter((x) => x.title || x.text);
    if ($('[data-rows="section"]', form)) body.sections = sections;
    body.variants = $$("[data-variant-row]", form).map((row) => {
      const get = (name) => $(`[data-v="${name}"]`, row);
      const price = get("price");
      const cents = parseBRL(price.value);
      if (cents === null) {
        if (strict) throw new FieldError(price, t("js.bad_price", { value: price.value }));
        return null;
      }
      const variant = { name: get("name").value.trim(), price_cents: cents };
      if (row.dataset.variantId) variant.id = row.dataset.variantId;
      const limit = parseInt(get("max").value, 10);
      if (!Number.isNaN(limit)) variant.max_per_order = limit;
      for (const name of ["emoji", "duration"]) {
        if (get(name)) variant[name] = get(name).value.trim();
      }
      // Subscription products: the days one unit buys (the field shows for that kind only).
      const days = get("days");
      if (days && form.dataset.kind === "subscription" && days.value.trim() !== "") {
        variant.period_days = parseInt(days.value, 10);
      }
      if (get("active")) variant.active = get("active").checked;
      return variant;
    }).filter(Boolean);
    return body;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /** Discord's markdown, the little a product post uses: **bold**, *italic*, `code`. */
  function inline(text) {
    const out = document.createDocumentFragment();
    const pattern = /(\*\*[^*]+\*\*|\*[^*]+\*|`[^`]+`)/g;
    let last = 0;
    for (const match of String(text || "").matchAll(pattern)) {
      out.append(text.slice(last, match.index));
      const token = match[0];
      if (token.startsWith("**")) out.append(el("strong", "", token.slice(2, -2)));
      else if (token.startsWith("`")) out.append(el("code", "", token.slice(1, -1)));
      else out.append(el("em", "", token.slice(1, -1)));
      last = match.index + token.length;
    }
    out.append(String(text || "").slice(last));
    return out;
  }

  function imageFrame(url, className) {
    // Pages load nothing from elsewhere (CSP): an external image is drawn as a frame.
    const frame = el("div", `dc-image ${className}`);
    let host = url;
    try {
      host = new URL(url).host + new URL(url).pathname;
    } catch { /* shown as typed */ }
    frame.append(el("span", "dc-image-label", `🖼 ${t("js.preview.image")}`), el("span", "dc-image-url", host));
    frame.title = url;
    return frame;
  }

  function drawEmbed(embed) {
    const box = el("div", "dc-embed");
    const color = typeof embed.color === "number" ? embed.color : 0x7c3aed;
    box.style.borderLeftColor = `#${color.toString(16).padStart(6, "0")}`;
    const main = el("div", "dc-embed-main");
    if (embed.author?.name) main.append(el("div", "dc-author", embed.author.name));
    if (embed.title) main.append(el("div", "dc-title", embed.title));
    if (embed.description) {
      const d = el("div", "dc-description");
      d.append(inline(embed.description));
      main.append(d);
    }
    if (embed.fields?.length) {
      const grid = el("div", "dc-fields");
      for (const f of embed.fields) {
        const cell = el("div", f.inline ? "dc-field inline" : "dc-field");
        const name = el("div", "dc-field-name");
        name.append(inline(f.name));
        const value = el("div", "dc-field-value");
        value.append(inline(f.value));
        cell.append(name, value);
        grid.append(cell);
      }
      main.append(grid);
    }
    if (embed.image?.url) main.append(imageFrame(embed.image.url, "dc-big"));
    if (embed.footer?.text) main.append(el("div", "dc-footer", embed.footer.text));
    box.append(main);
    if (embed.thumbnail?.url) box.append(imageFrame(embed.thumbnail.url, "dc-thumb"));
    return box;
  }

  function drawComponents(rows) {
    const out = el("div", "dc-components");
    for (const row of rows || []) {
      const line = el("div", "dc-row");
      for (const c of row.components || []) {
        if (c.type === 3) {
          const select = el("div", "dc-select");
          select.append(el("span", "dc-select-placeholder", c.placeholder || "…"), el("span", "dc-caret", "⌄"));
          const options = el("ul", "dc-options");
          for (const o of c.options || []) {
            const li = el("li", "dc-option");
            const emoji = o.emoji ? (o.emoji.id ? `:${o.emoji.name}: ` : `${o.emoji.name} `) : "";
            li.append(el("span", "dc-option-label", emoji + o.label));
            if (o.description) li.append(el("span", "dc-option-desc", o.description));
            options.append(li);
          }
          line.append(select);
          out.append(line);
          out.append(options);
          continue;
        }
        if (c.type === 2) {
          const button = el("span", c.style === 5 ? "dc-button link" : "dc-button", c.label || "");
          if (c.url) button.title = c.url;
          line.append(button);
        }
      }
      if (line.childElementCount && !line.querySelector(".dc-select")) out.append(line);
    }
    return out;
  }

  function drawPreview(box, answer) {
    // The banner (a message of its own, just before the post), then the post.
    const messages = [answer.banner, answer.message].filter(Boolean).map(
      (message) => drawMessage(message, answer.bot));
    box.replaceChildren(...messages);
  }

  function drawMessage(message, bot) {
    const wrap = el("div", "dc-message");
    const avatar = el("div", "dc-avatar", (bot || "A").slice(0, 1).toUpperCase());
    const body = el("div", "dc-body");
    const head = el("div", "dc-head");
    head.append(el("span", "dc-name", bot || "Astra"), el("span", "dc-tag", t("js.preview.bot")),
      el("span", "dc-time", t("js.preview.today")));
    body.append(head);
    if (message.content) {
      const c = el("div", "dc-content");
      c.append(inline(message.content));
      body.append(c);
    }
    for (const embed of message.embeds || []) body.append(drawEmbed(embed));
    body.append(drawComponents(message.components));
    wrap.append(avatar, body);
    return wrap;
  }

  function initProductEditors() {
    for (const form of $$(".js-product-edit")) {
      const editor = form.closest(".editor");
      const box = $("[data-preview]", editor);
      const status = $("[data-preview-status]", editor);
      const hint = status.textContent;
      initRows(form);
      const kind = $("[data-kind-select]", form);
      const content = $('[data-field="content"]', form)?.closest(".field");
      const syncKind = () => {
        if (content) content.hidden = kind.value === "key" && !$('[data-field="unlimited_stock"]', form)?.checked;
        // The CSS shows subscription-only fields (a variant's days) from this, rows added later too.
        if (kind) form.dataset.kind = kind.value;
      };
      kind?.addEventListener("change", syncKind);
      $('[data-field="unlimited_stock"]', form)?.addEventListener("change", syncKind);
      syncKind();
      let timer = null;
      let seq = 0;
      const refresh = async () => {
        const mine = ++seq;
        let body;
        try {
          body = productBody(form, false);
        } catch {
          return;
        }
        if (form.dataset.productId) body.product_id = form.dataset.productId;
        status.textContent = t("js.preview.loading");
        try {
          const answer = await api("POST", form.dataset.previewUrl, body);
          if (mine !== seq) return;
          drawPreview(box, answer);
          status.textContent = hint;
          status.classList.remove("bad");
        } catch (err) {
          if (mine !== seq) return;
          status.textContent = err.message || t("js.error");
          status.classList.add("bad");
        }
      };
      form.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(refresh, 350);
      });
      form.addEventListener("change", () => {
        clearTimeout(timer);
        timer = setTimeout(refresh, 150);
      });
      // A saved product's preview is drawn when its editor opens; a new one's once typed in.
      const details = form.closest("details.editor-disclosure");
      let started = !form.dataset.productId;
      const start = () => {
        if (!started) {
          started = true;
          refresh();
        }
      };
      if (details?.open) start();
      details?.addEventListener("toggle", () => details.open && start());
    }
    onSubmit(".js-product-edit", (f) => productBody(f, true));
  }

  // -- stock editor: a variant's keys, masked; available ones removable ---------------------------

  function initKeyEditors() {
    for (const box of $$(".js-keys")) {
      const select = $("[data-keys-variant]", box);
      const list = $("[data-keys-list]", box);
      const count = $("[data-keys-count]", box);
      const load = async () => {
        list.replaceChildren(el("p", "muted small", t("js.keys.loading")));
        try {
          const data = await api("GET", `${box.dataset.url}/keys?variant_id=${encodeURIComponent(select.value)}`);
          count.textContent = t("js.keys.count", data.counts);
          if (!data.keys.length) {
            list.replaceChildren(el("p", "muted", t("js.keys.none")));
            return;
          }
          const ul = el("ul", "keys");
          for (const key of data.keys) {
            const li = el("li", `key key-${key.state}`);
            li.dataset.keyId = key.id;
            const label = el("label", "key-label");
            const check = document.createElement("input");
            check.type = "checkbox";
            check.value = key.id;
            check.disabled = !key.removable;
            check.setAttribute("aria-label", t("js.keys.select", { masked: key.masked }));
            label.append(check, el("code", "mono", key.masked));
            li.append(label, el("span", `pill pill-key-${key.state}`, t(`js.keys.state.${key.state}`)));
            ul.append(li);
          }
          list.replaceChildren(ul);
        } catch (err) {
          list.replaceChildren(el("p", "bad", err.message || t("js.error")));
        }
      };
      select.addEventListener("change", load);
      const details = box.closest("details");
      details?.addEventListener("toggle", () => details.open && load());
      if (details?.open) load();
      $("[data-keys-all]", box).addEventListener("click", () => {
        for (const c of $$("input[type=checkbox]:not(:disabled)", list)) c.checked = true;
      });
      $("[data-keys-remove]", box).addEventListener("click", async (ev) => {
        const button = ev.currentTarget;
        const ids = $$("input[type=checkbox]:checked:not(:disabled)", list).map((c) => c.value);
        if (!ids.length) {
          toast(t("js.keys.pick"), "error");
          return;
        }
        if (!(await confirmDialog(t("js.keys.confirm", { n: ids.length })))) return;
        setBusy(button, true);
        try {
          const outcome = await api("POST", `${box.dataset.url}/remove`,
            { variant_id: select.value, key_ids: ids });
          const lines = [t("js.keys.removed", { n: outcome.removed.length })];
          if (outcome.kept.length) lines.push(t("js.keys.kept", { n: outcome.kept.length }));
          toast(lines, outcome.kept.length ? "error" : "ok");
          await load();
          await refreshStock(box.dataset.url);
        } catch (err) {
          toast(err.message || t("js.error"), "error");
        } finally {
          setBusy(button, false);
        }
      });
    }
  }

  // -- instance settings: Discord pickers, colours ------------------------------------------------

  const CHANNEL_TYPES = { text: [0, 5], category: [4] };

  function pickerOptions(kind, data) {
    if (kind === "guild") return data.guilds.map((g) => [g.id, g.name || g.id]);
    if (kind === "role") return (data.roles || []).map((r) => [r.id, `@${r.name}`]);
    const types = CHANNEL_TYPES[kind] || [];
    const categories = new Map(data.channels.filter((c) => c.type === 4).map((c) => [c.id, c.name]));
    return data.channels.filter((c) => types.includes(c.type)).map((c) => {
      const parent = c.parent_id && categories.get(c.parent_id);
      const name = kind === "category" ? c.name : `#${c.name}`;
      return [c.id, parent ? `${name} (${parent})` : name];
    });
  }

  function fillPicker(select, kind, data) {
    const current = select.value || select.dataset.current || "";
    const none = select.options[0] ? select.options[0].textContent : "—";
    const options = [new Option(none, "")];
    const known = new Set();
    for (const [id, label] of pickerOptions(kind, data)) {
      options.push(new Option(label, id));
      known.add(id);
    }
    if (current && !known.has(current)) {
      // Kept, but said: the bot no longer sees it (deleted, or another server).
      options.push(new Option(t("picker.gone", { id: current }), current));
    }
    select.replaceChildren(...options);
    select.value = current;
  }

  async function loadPickers(form, guildId) {
    const status = $("[data-picker-status]", form);
    if (form.dataset.hasToken !== "true") return;
    let url = form.dataset.channelsUrl;
    if (guildId) url += `?guild_id=${encodeURIComponent(guildId)}`;
    status.textContent = t("picker.loading");
    status.hidden = false;
    try {
      const data = await loadChannels(url);
      for (const select of $$("[data-picker]", form)) {
        fillPicker(select, select.dataset.picker, data);
      }
      const guild = $('[data-picker="guild"]', form);
      if (guild && !guild.value && data.guild_id) guild.value = data.guild_id;
      status.textContent = data.guilds.length ? t("picker.loaded") : t("store.no_channels");
    } catch (err) {
      status.textContent = err.message || t("js.error");
    }
  }

  function initSettingsForms() {
    for (const form of $$(".js-settings")) {
      const details = form.closest("details");
      let started = false;
      const start = () => {
        if (!started) {
          started = true;
          loadPickers(form);
        }
      };
      if (!details || details.open) start();
      details?.addEventListener("toggle", () => details.open && start());
      const guild = $('[data-picker="guild"]', form);
      guild?.addEventListener("change", () => {
        if (guild.value) loadPickers(form, guild.value);
      });
    }
    for (const swatch of $$("[data-color-swatch]")) {
      const text = $(swatch.dataset.colorSwatch);
      if (!text) continue;
      swatch.addEventListener("input", () => {
        text.value = swatch.value;
        text.dispatchEvent(new Event("input", { bubbles: true }));
      });
      text.addEventListener("input", () => {
        const hex = text.value.trim().replace(/^#?/, "#");
        if (/^#[0-9a-fA-F]{6}$/.test(hex)) swatch.value = hex.toLowerCase();
      });
    }
  }

  // -- account --------------------------------------------------------------------------------

  function initProfile() {
    onSubmit(".js-profile", (f) => ({
      name: f.elements.name.value.trim(),
      email: f.elements.email.value.trim(),
      current_password: f.elements.current_password.value,
    }), (f) => flashThenReload(f.dataset.flash));
  }

  function initPassword() {
    onSubmit(".js-password", (f) => {
      const fresh = f.elements.new_password;
      const again = f.elements.confirm_password;
      if (fresh.value !== again.value) throw new FieldError(again, t("acct.password_mismatch"));
      const body = { new_password: fresh.value };
      if (f.elements.current_password) body.current_password = f.elements.current_password.value;
      return body;
    }, (f, data) => {
      // Changing the password starts a new session, with a new CSRF token.
      if (data && data.csrf_token) {
        const meta = $('meta[name="csrf-token"]');
        if (meta) meta.content = data.csrf_token;
        for (const input of $$('input[name="csrf_token"]')) input.value = data.csrf_token;
      }
      f.reset();
      toast(f.dataset.flash);
    });
  }

  // -- small things -----------------------------------------------------------------------------

  function localTime(iso) {
    const at = new Date(iso);
    if (!iso || Number.isNaN(at.getTime())) return "—";
    return new Intl.DateTimeFormat(lang, { dateStyle: "short", timeStyle: "short" }).format(at);
  }

  function initTimes() {
    for (const el of $$("time[data-local]")) {
      const text = localTime(el.getAttribute("datetime"));
      if (text !== "—") el.textContent = text;
    }
  }

  function initAutosubmit() {
    for (const form of $$(".js-autosubmit")) {
      const button = $('[type="submit"]', form);
      if (button) button.hidden = true;
      $("select", form)?.addEventListener("change", () => form.submit());
    }
  }

  function init() {
    showFlash();
    initAuth();
    initPix();
    initActions();
    initCopy();
    initSlug();
    initStatus();
    initProductForm();
    initCouponForm();
    initStockForms();
    initPostForms();
    initSettingsForms();
    initProductEditors();
    initKeyEditors();
    initProfile();
    initPassword();
    initTimes();
    initAutosubmit();
    onSubmit(".js-api", formJSON);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
