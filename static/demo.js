// The demo page's send form: posts to the demo-only send route (no API key needed).
const form = document.getElementById("send-form");
const status = document.getElementById("send-status");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const payload = Object.fromEntries([...new FormData(form)].filter(([, value]) => value !== ""));
  const response = await fetch(form.dataset.sendUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  const body = await response.json();
  status.textContent = response.ok ? "Sent." : `Not sent: ${body.error.message}`;
});
