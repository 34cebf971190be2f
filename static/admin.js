// The admin dashboard: polls the admin JSON routes and draws them with uPlot (vendored).
// Everything shown is set as text, never as HTML: error messages come from providers.
import uPlot from "./vendor/uplot/uPlot.esm.js";

const root = document.getElementById("admin");
const urls = {
  stats: root.dataset.statsUrl,
  live: root.dataset.liveUrl,
  failed: root.dataset.failedUrl,
  retry: root.dataset.retryUrl,
};
const csrfToken = root.dataset.csrfToken;
const windowSelect = document.getElementById("window-hours");
const refreshSelect = document.getElementById("refresh-seconds");
const statusLine = document.getElementById("admin-status");
const retryStatus = document.getElementById("retry-status");
const retryAllButton = document.getElementById("retry-all");

const HOUR = 3600;
const CHART_HEIGHT = 220;
const LIVE_SAMPLES = 180; // queue samples kept for the live chart
const CHANNELS = ["in_app", "email", "sms", "push"];
const DELIVERY_CHANNELS = ["email", "sms", "push"];
const CHANNEL_NAMES = { in_app: "In-app", email: "Email", sms: "SMS", push: "Push" };
// Mid-tone colours that read on both the light and the dark background.
const CHANNEL_COLORS = { in_app: "#6366f1", email: "#0ea5e9", sms: "#f59e0b", push: "#d946ef" };
const SENT_COLOR = "#10b981";
const FAILED_COLOR = "#ef4444";
const QUEUE_COLORS = ["#ef4444", "#f59e0b", "#6366f1", "#0ea5e9", "#d946ef", "#14b8a6"];
const STORAGE = { window: "notify-admin-window", refresh: "notify-admin-refresh" };

let failedTotal = 0;
const integer = new Intl.NumberFormat();
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

// --- Formatting -------------------------------------------------------------------------

function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds === 0) return "0 s";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  // The unary plus drops trailing zeros: "3 s", "3.5 s", "3.06 s".
  if (seconds < 60) return `${+seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < HOUR) return `${+(seconds / 60).toFixed(1)} min`;
  return `${+(seconds / HOUR).toFixed(1)} h`;
}

function ratio(value) {
  return value == null ? "–" : percent.format(value);
}

function utcTime(iso) {
  return iso.replace("T", " ").slice(0, 19);
}

// Axis labels in UTC, 24-hour: the date at midnight, else the time of day.
function hourLabels(u, splits) {
  return splits.map((ts) => {
    const date = new Date(ts * 1000);
    if (date.getUTCHours() === 0 && date.getUTCMinutes() === 0) {
      const day = { month: "short", day: "numeric", timeZone: "UTC" };
      return date.toLocaleDateString(undefined, day);
    }
    return date.toISOString().slice(11, 16);
  });
}

function clockLabels(u, splits) {
  return splits.map((ts) => new Date(ts * 1000).toISOString().slice(11, 19));
}

function unixSeconds(iso) {
  return Date.parse(iso) / 1000;
}

function setField(name, text) {
  root.querySelector(`[data-field="${name}"]`).textContent = text;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// --- Charts -----------------------------------------------------------------------------

function theme() {
  const style = getComputedStyle(root);
  return {
    text: style.getPropertyValue("--admin-muted").trim(),
    grid: style.getPropertyValue("--admin-grid").trim(),
  };
}

// Counts are whole numbers: no ticks at 0.2.
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6];

function axes(xValues, yValues, yIncrements, xIncrements) {
  const { text, grid } = theme();
  const line = { stroke: grid, width: 1 };
  return [
    { stroke: text, grid: line, ticks: line, values: xValues, incrs: xIncrements },
    { stroke: text, grid: line, ticks: line, size: 60, values: yValues, incrs: yIncrements },
  ];
}

const countLabels = (u, splits) => splits.map((v) => integer.format(v));

function lineSeries(label, color, format) {
  return {
    label,
    stroke: color,
    width: 2,
    fill: `${color}1f`,
    points: { show: true, size: 5, fill: color },
    value: (u, v) => (v == null ? "" : format(v)),
  };
}

function barSeries(label, color, align) {
  return {
    label,
    stroke: color,
    fill: `${color}cc`,
    width: 1,
    paths: uPlot.paths.bars({ size: [0.4, 24], align }),
    points: { show: false },
    value: (u, v) => (v == null ? "" : integer.format(v)),
  };
}

const hourlyScales = {
  // Half an hour either side, so the first and last bars are not cut in half.
  x: { time: true, range: (u, min, max) => [min - HOUR / 2, max + HOUR / 2] },
  y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] },
};

const CHARTS = {
  sends: () => ({
    series: CHANNELS.map((c) => lineSeries(CHANNEL_NAMES[c], CHANNEL_COLORS[c], integer.format)),
    scales: hourlyScales,
    axes: axes(hourLabels, countLabels, COUNT_STEPS),
  }),
  outcomes: () => ({
    series: [barSeries("Delivered", SENT_COLOR, -1), barSeries("Failed", FAILED_COLOR, 1)],
    scales: hourlyScales,
    axes: axes(hourLabels, countLabels, COUNT_STEPS),
  }),
  p95: () => ({
    series: DELIVERY_CHANNELS.map((c) => lineSeries(CHANNEL_NAMES[c], CHANNEL_COLORS[c], duration)),
    scales: hourlyScales,
    axes: axes(hourLabels, (u, splits) => splits.map(duration)),
  }),
  queues: (names) => ({
    series: names.map((name, index) =>
      lineSeries(name, QUEUE_COLORS[index % QUEUE_COLORS.length], integer.format),
    ),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    axes: axes(clockLabels, countLabels, COUNT_STEPS, [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]),
  }),
};

const charts = {}; // name -> {plot, data, key}

function draw(name, data, names = []) {
  const element = root.querySelector(`[data-chart="${name}"]`);
  const key = names.join("\u0000");
  const current = charts[name];
  if (current && current.key === key) {
    current.data = data;
    current.plot.setData(data);
    return;
  }
  current?.plot.destroy();
  const options = {
    width: element.clientWidth,
    height: CHART_HEIGHT,
    // The hours are UTC hours; label them so whatever the viewer's time zone.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    cursor: { points: { size: 7 } },
    legend: { live: true },
    ...CHARTS[name](names),
  };
  // The legend shows values only while the pointer is over the chart.
  const time = {
    label: "UTC",
    value: (u, v) => (v == null ? "" : utcTime(new Date(v * 1000).toISOString())),
  };
  options.series = [time, ...options.series];
  charts[name] = { plot: new uPlot(options, data, element), data, key, names };
}

function redrawAll() {
  // The axes take their colours from CSS, so a colour scheme change builds them again.
  for (const [name, chart] of Object.entries(charts)) {
    chart.plot.destroy();
    delete charts[name];
    draw(name, chart.data, chart.names);
  }
}

new ResizeObserver(() => {
  for (const [name, chart] of Object.entries(charts)) {
    const element = root.querySelector(`[data-chart="${name}"]`);
    if (chart.plot.width !== element.clientWidth) {
      chart.plot.setSize({ width: element.clientWidth, height: CHART_HEIGHT });
    }
  }
}).observe(root);
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawAll);

// --- Data -------------------------------------------------------------------------------

class SignedOut extends Error {}

async function request(url, options = {}) {
  const response = await fetch(url, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", ...options.headers },
  });
  if (response.status === 401) {
    // The session ended (signed out elsewhere, expired, or its key was revoked).
    location.reload();
    throw new SignedOut();
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? response.statusText);
  return body;
}

function showStats(stats) {
  const hours = stats.hours.map(unixSeconds);
  const channels = stats.channels;
  draw("sends", [
    hours,
    stats.in_app.sends,
    ...DELIVERY_CHANNELS.map((c) => channels[c].sends),
  ]);
  const sum = (field) =>
    hours.map((_, i) => DELIVERY_CHANNELS.reduce((n, c) => n + channels[c][field][i], 0));
  draw("outcomes", [hours, sum("sent"), sum("failed")]);
  draw("p95", [hours, ...DELIVERY_CHANNELS.map((c) => channels[c].p95_seconds)]);

  const all = stats.deliveries;
  setField("sends", integer.format(stats.in_app.total + all.sends));
  setField(
    "sends-note",
    `${integer.format(stats.in_app.total)} in-app, ${integer.format(all.sends)} email, SMS or push`,
  );
  setField("success-rate", ratio(all.success_rate));
  setField(
    "success-note",
    `${integer.format(all.sent)} delivered, ${integer.format(all.failed)} failed`,
  );
  setField("p95", duration(all.p95_seconds));

  const rows = [
    [CHANNEL_NAMES.in_app, integer.format(stats.in_app.total), "–", "–", "–", "–", "–", "–"],
    ...DELIVERY_CHANNELS.map((c) => {
      const t = channels[c].totals;
      return [
        CHANNEL_NAMES[c],
        integer.format(t.sends),
        integer.format(t.sent),
        integer.format(t.failed),
        integer.format(t.queued),
        integer.format(t.skipped),
        ratio(t.success_rate),
        duration(t.p95_seconds),
      ];
    }),
  ];
  document.getElementById("channel-rows").replaceChildren(
    ...rows.map((values) => {
      const tr = document.createElement("tr");
      tr.append(...values.map((v, i) => cell(v, i ? "admin-number" : "")));
      return tr;
    }),
  );

  const errors = document.getElementById("error-rows");
  if (!stats.top_errors.length) {
    const tr = document.createElement("tr");
    tr.append(cell("No failures in this window.", "admin-empty"));
    tr.firstChild.colSpan = 2;
    errors.replaceChildren(tr);
    return;
  }
  const most = stats.top_errors[0].count;
  errors.replaceChildren(
    ...stats.top_errors.map(({ error, count }) => {
      const tr = document.createElement("tr");
      const text = cell(error ?? "(no message)", "admin-error-text");
      const bar = document.createElement("span");
      bar.className = "admin-bar";
      bar.style.width = `${Math.max(2, (count / most) * 100)}%`;
      text.append(bar);
      tr.append(text, cell(integer.format(count), "admin-number"));
      return tr;
    }),
  );
}

const liveData = { names: [], times: [], values: {} };

function showLive(live) {
  setField("sockets", integer.format(live.connected_sockets));
  const { waiting, scheduled, failed } = live.queues;
  const total = Object.values(waiting).reduce((n, v) => n + v, 0);
  setField("waiting", integer.format(total));
  setField(
    "queue-note",
    `${integer.format(scheduled)} scheduled for a retry, ${integer.format(failed)} failed for good`,
  );

  const names = [...Object.keys(waiting), "scheduled"];
  const sample = { ...waiting, scheduled };
  for (const name of names) {
    liveData.values[name] ??= liveData.times.map(() => null);
  }
  liveData.names = [...new Set([...liveData.names, ...names])];
  liveData.times.push(unixSeconds(live.at));
  for (const name of liveData.names) liveData.values[name].push(sample[name] ?? null);
  if (liveData.times.length > LIVE_SAMPLES) {
    liveData.times.shift();
    for (const name of liveData.names) liveData.values[name].shift();
  }
  const series = liveData.names.map((n) => liveData.values[n]);
  draw("queues", [liveData.times, ...series], liveData.names);
}

function showFailed(failed) {
  failedTotal = failed.total;
  setField("failed-total", integer.format(failed.total));
  const shown = failed.items.length;
  document.getElementById("failed-count").textContent =
    failed.total > shown ? `(newest ${shown} of ${integer.format(failed.total)})` : "";
  retryAllButton.disabled = failed.total === 0;
  retryAllButton.textContent = `Retry all${failed.total ? ` ${integer.format(failed.total)}` : ""}`;
  const body = document.getElementById("failed-rows");
  if (!failed.items.length) {
    const tr = document.createElement("tr");
    tr.append(cell("No failed deliveries.", "admin-empty"));
    tr.firstChild.colSpan = 8;
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(
    ...failed.items.map((item) => {
      const tr = document.createElement("tr");
      tr.dataset.testid = "failed-row";
      tr.dataset.id = item.id;
      const error = cell(item.last_error ?? "(no message)", "admin-error-text");
      const action = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "admin-button";
      button.textContent = "Retry";
      button.dataset.testid = "retry";
      button.setAttribute("aria-label", `Retry delivery ${item.id}`);
      button.addEventListener("click", () => retry({ ids: [item.id] }, button));
      action.append(button);
      tr.append(
        cell(item.id, "admin-number"),
        cell(item.notification_id, "admin-number"),
        cell(item.user_id),
        cell(CHANNEL_NAMES[item.channel] ?? item.channel),
        cell(String(item.attempts), "admin-number"),
        error,
        cell(utcTime(item.updated_at)),
        action,
      );
      return tr;
    }),
  );
}

function showStatus(text, failed = false, line = statusLine) {
  line.textContent = text;
  line.classList.toggle("admin-status-error", failed);
}

async function retry(body, button) {
  button.disabled = true;
  try {
    const { requeued } = await request(urls.retry, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: JSON.stringify(body),
    });
    const done = requeued.length ? `Queued ${requeued.length} again.` : "Nothing left to retry.";
    showStatus(done, false, retryStatus);
  } catch (error) {
    if (error instanceof SignedOut) return;
    showStatus(`Retry failed: ${error.message}`, true, retryStatus);
    button.disabled = false;
    return;
  }
  await refresh();
}

// --- Refreshing -------------------------------------------------------------------------

let timer = null;

async function refresh() {
  clearTimeout(timer);
  const hours = windowSelect.value;
  const results = await Promise.allSettled([
    request(`${urls.stats}?hours=${encodeURIComponent(hours)}`).then(showStats),
    request(urls.live).then(showLive),
    request(urls.failed).then(showFailed),
  ]);
  const problems = results.filter(
    (r) => r.status === "rejected" && !(r.reason instanceof SignedOut),
  );
  if (problems.length) {
    showStatus(`Could not refresh: ${problems.map((r) => r.reason.message).join("; ")}`, true);
  } else {
    showStatus(`Updated ${new Date().toISOString().slice(11, 19)} UTC`);
  }
  const seconds = Number(refreshSelect.value);
  if (seconds > 0) timer = setTimeout(refresh, seconds * 1000);
}

function remembered(select, key) {
  const value = localStorage.getItem(key);
  if (value !== null && [...select.options].some((option) => option.value === value)) {
    select.value = value;
  }
  select.addEventListener("change", () => {
    localStorage.setItem(key, select.value);
    refresh();
  });
}

remembered(windowSelect, STORAGE.window);
remembered(refreshSelect, STORAGE.refresh);
retryAllButton.addEventListener("click", () => {
  if (confirm(`Queue all ${integer.format(failedTotal)} failed deliveries again?`)) {
    retry({ all: true }, retryAllButton);
  }
});
refresh();
