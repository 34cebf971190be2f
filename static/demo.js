// The demo page: an inbox for the demo user over the REST API, and a send form.
// It refreshes every two seconds; the live Socket.IO bell replaces this polling.
const script = document.querySelector("script[data-token]");
const token = script.dataset.token;
const sendUrl = script.dataset.sendUrl;
const auth = { Authorization: `Bearer ${token}` };

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...auth, ...options.headers } });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? response.statusText);
  return body;
}

function renderItem(item) {
  const li = document.createElement("li");
  li.className = item.read_at ? "read" : "unread";
  const title = document.createElement("strong");
  title.textContent = item.title;
  const body = document.createElement("p");
  body.textContent = item.body ?? "";
  const when = document.createElement("time");
  when.dateTime = item.created_at;
  when.textContent = new Date(item.created_at).toLocaleString();
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.textContent = item.read_at ? "Mark unread" : "Mark read";
  toggle.addEventListener("click", async () => {
    await api(`/me/notifications/${item.id}/${item.read_at ? "unread" : "read"}`, { method: "POST" });
    refresh();
  });
  li.append(title, body, when, toggle);
  return li;
}

async function refresh() {
  const page = await api("/me/notifications?limit=50");
  document.getElementById("unread").textContent = String(page.unread_count);
  document.getElementById("inbox").replaceChildren(...page.items.map(renderItem));
}

document.getElementById("read-all").addEventListener("click", async () => {
  await api("/me/notifications/read-all", { method: "POST" });
  refresh();
});

document.getElementById("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const payload = Object.fromEntries([...form].filter(([, value]) => value !== ""));
  const status = document.getElementById("send-status");
  try {
    await api(sendUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    status.textContent = "Sent.";
    refresh();
  } catch (error) {
    status.textContent = `Not sent: ${error.message}`;
  }
});

refresh();
setInterval(refresh, 2000);
