// Notify's browser client: `NotifyClient` (live events, REST helpers, gap-free catch-up) and
// the `<notification-bell>` custom element. One ES module, no build step; the Socket.IO
// client is vendored next to it.
import { io } from "./vendor/socket.io/socket.io.esm.min.js";

const PAGE_SIZE = 20;

/** Live notifications of one user: events from Socket.IO and helpers for the REST API. */
export class NotifyClient extends EventTarget {
  constructor({ token, server = window.location.origin } = {}) {
    super();
    this.token = token;
    this.server = server.replace(/\/$/, "");
    this.lastId = null;
    this.seenIds = new Set();
    this.socket = null;
  }

  /** Open the socket. On every (re)connect the server replays what came after `lastId`. */
  connect() {
    this.socket = io(this.server, {
      auth: (send) => send(this.lastId ? { token: this.token, last_id: this.lastId } : { token: this.token }),
      transports: ["websocket", "polling"],
    });
    this.socket.on("connect", () => this.#emit("connection", { online: true }));
    this.socket.on("disconnect", () => this.#emit("connection", { online: false }));
    this.socket.on("connect_error", (error) => this.#emit("connection", { online: false, error: error.message }));
    this.socket.on("notification", (notification) => this.#received(notification));
    this.socket.on("notification_updated", (update) => this.#emit("notification_updated", update));
    this.socket.on("unread_count", ({ unread_count }) => this.#emit("unread_count", { unreadCount: unread_count }));
    this.socket.on("resync", ({ after }) => this.#catchUp(after));
    return this;
  }

  disconnect() {
    this.socket?.disconnect();
  }

  /** Remember the newest notification already shown, so a reconnect replays only newer. */
  markShown(notification) {
    this.seenIds.add(notification.id);
    if (this.lastId === null || BigInt(notification.id) > BigInt(this.lastId)) this.lastId = notification.id;
  }

  #received(notification) {
    if (this.seenIds.has(notification.id)) return;
    this.markShown(notification);
    this.#emit("notification", notification);
  }

  async #catchUp(after) {
    let cursor = null;
    let query = `after=${encodeURIComponent(after)}&limit=100`;
    do {
      const page = await this.request(`/me/notifications?${cursor ? `cursor=${encodeURIComponent(cursor)}&limit=100` : query}`);
      page.items.forEach((notification) => this.#received(notification));
      cursor = page.next_cursor;
    } while (cursor);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** One REST call as this user; throws an Error carrying the contract's error object. */
  async request(path, { method = "GET", body } = {}) {
    const response = await fetch(`${this.server}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const payload = response.status === 204 ? null : await response.json();
    if (!response.ok) {
      const error = new Error(payload?.error?.message ?? response.statusText);
      error.detail = payload?.error;
      throw error;
    }
    return payload;
  }

  list({ status = "all", archived = false, category, cursor, limit = PAGE_SIZE } = {}) {
    const query = new URLSearchParams({ status, archived: String(archived), limit: String(limit) });
    if (category) query.set("category", category);
    if (cursor) query.set("cursor", cursor);
    return this.request(`/me/notifications?${query}`);
  }

  read(id) { return this.request(`/me/notifications/${id}/read`, { method: "POST" }); }
  unread(id) { return this.request(`/me/notifications/${id}/unread`, { method: "POST" }); }
  archive(id) { return this.request(`/me/notifications/${id}/archive`, { method: "POST" }); }
  unarchive(id) { return this.request(`/me/notifications/${id}/unarchive`, { method: "POST" }); }
  readAll(category) { return this.request("/me/notifications/read-all", { method: "POST", body: category ? { category } : {} }); }
  seen(ids) { return ids.length ? this.request("/me/notifications/seen", { method: "POST", body: { ids } }) : null; }
  preferences() { return this.request("/me/preferences"); }
  updatePreferences(change) { return this.request("/me/preferences", { method: "PUT", body: change }); }

  /** Subscribe this browser to Web Push through a service worker, when the server has keys. */
  async subscribePush(serviceWorkerUrl = `${this.server}/static/notify-sw.js`) {
    const { key } = await this.request("/push/vapid-public-key");
    const registration = await navigator.serviceWorker.register(serviceWorkerUrl);
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: key,
    });
    return this.request("/me/push-subscriptions", { method: "POST", body: subscription.toJSON() });
  }
}

/** Every string the bell shows; assign `bell.strings = {...}` to translate. */
export const DEFAULT_STRINGS = {
  bell: "Notifications",
  unreadLabel: (n) => `${n} unread`,
  tabUnread: "Unread",
  tabAll: "All",
  tabArchived: "Archived",
  markAllRead: "Mark all as read",
  markRead: "Mark read",
  markUnread: "Mark unread",
  archive: "Archive",
  unarchive: "Unarchive",
  preferences: "Preferences",
  back: "Back",
  empty: "You're all caught up",
  loading: "Loading…",
  error: "Could not load notifications",
  retry: "Try again",
  offline: "Offline: reconnecting…",
  channelNames: { in_app: "In the app", email: "Email", sms: "SMS", push: "Push" },
  everything: "All notifications",
  enablePush: "Enable browser notifications",
};

const STYLE = `
:host { --notify-accent: #4f46e5; --notify-bg: #fff; --notify-fg: #111827; --notify-muted: #6b7280;
  --notify-border: #e5e7eb; --notify-unread-bg: #eef2ff; --notify-radius: 10px;
  position: relative; display: inline-block; font: 14px/1.4 system-ui, sans-serif; color: var(--notify-fg); }
@media (prefers-color-scheme: dark) { :host { --notify-bg: #1f2937; --notify-fg: #f9fafb;
  --notify-muted: #9ca3af; --notify-border: #374151; --notify-unread-bg: #312e81; } }
button { font: inherit; color: inherit; cursor: pointer; }
.bell { position: relative; background: none; border: 0; padding: 6px; border-radius: 50%; }
.bell:focus-visible, button:focus-visible, [role=tab]:focus-visible, li:focus-visible { outline: 2px solid var(--notify-accent); outline-offset: 2px; }
.bell svg { width: 24px; height: 24px; display: block; }
.badge { position: absolute; top: 0; right: 0; min-width: 18px; height: 18px; padding: 0 5px; box-sizing: border-box;
  border-radius: 9px; background: #dc2626; color: #fff; font-size: 11px; font-weight: 600; line-height: 18px; text-align: center; }
.badge[hidden] { display: none; }
.panel { position: absolute; right: 0; top: calc(100% + 6px); width: 360px; max-width: 90vw; max-height: 480px; display: flex;
  flex-direction: column; background: var(--notify-bg); border: 1px solid var(--notify-border); border-radius: var(--notify-radius);
  box-shadow: 0 10px 30px #0003; z-index: 1000; overflow: hidden; }
.panel.align-left { right: auto; left: 0; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; justify-content: space-between; padding: 10px 12px; border-bottom: 1px solid var(--notify-border); gap: 8px; }
header h2 { font-size: 15px; margin: 0; }
.tabs { display: flex; gap: 4px; padding: 6px 12px; border-bottom: 1px solid var(--notify-border); }
[role=tab] { background: none; border: 0; padding: 4px 8px; border-radius: 6px; color: var(--notify-muted); }
[role=tab][aria-selected=true] { background: var(--notify-unread-bg); color: var(--notify-fg); font-weight: 600; }
.link { background: none; border: 0; color: var(--notify-accent); padding: 2px 4px; }
ul { list-style: none; margin: 0; padding: 0; overflow-y: auto; flex: 1; }
li.item { display: grid; grid-template-columns: 1fr auto; gap: 2px 8px; padding: 10px 12px; border-bottom: 1px solid var(--notify-border); cursor: pointer; }
li.item[data-read=false] { background: var(--notify-unread-bg); }
li.item[data-read=false] .title::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--notify-accent); margin-right: 6px; }
.title { font-weight: 600; overflow-wrap: anywhere; }
.body { grid-column: 1; color: var(--notify-muted); overflow-wrap: anywhere; }
time { grid-column: 1; font-size: 12px; color: var(--notify-muted); }
.actions { grid-column: 2; grid-row: 1 / span 3; display: flex; flex-direction: column; gap: 2px; align-items: flex-end; }
.actions button { background: none; border: 0; font-size: 12px; color: var(--notify-muted); padding: 2px 4px; }
.state { padding: 24px 12px; text-align: center; color: var(--notify-muted); }
.offline { padding: 6px 12px; background: #fef3c7; color: #92400e; font-size: 12px; }
.offline[hidden] { display: none; }
.toast { position: fixed; right: 16px; bottom: 16px; max-width: 320px; padding: 12px 14px; border-radius: var(--notify-radius);
  background: var(--notify-bg); border: 1px solid var(--notify-border); box-shadow: 0 10px 30px #0003; z-index: 1001; }
.toast[hidden] { display: none; }
.preferences { padding: 8px 12px; overflow-y: auto; }
.preferences fieldset { border: 1px solid var(--notify-border); border-radius: 8px; margin: 0 0 8px; }
.preferences label { display: inline-flex; gap: 4px; margin-right: 10px; }
`;

const BELL_ICON = `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
<path d="M18 8a6 6 0 1 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.73 21a2 2 0 0 1-3.46 0"/></svg>`;

const TABS = [
  { key: "unread", query: { status: "unread", archived: false } },
  { key: "all", query: { status: "all", archived: false } },
  { key: "archived", query: { status: "all", archived: true } },
];

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** `<notification-bell token="..." server="...">`: a bell, a badge and a live inbox. */
export class NotificationBell extends HTMLElement {
  static observedAttributes = ["token", "server"];

  #strings = { ...DEFAULT_STRINGS };

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this.state = { tab: "unread", items: [], cursor: null, loading: false, error: null, unread: 0, open: false, view: "list" };
  }

  get strings() {
    return this.#strings;
  }

  /** Replace any of `DEFAULT_STRINGS` (to translate the bell); it redraws at once. */
  set strings(strings) {
    this.#strings = { ...DEFAULT_STRINGS, ...strings };
    if (this.isConnected) {
      this.#render();
      this.#setUnread(this.state.unread);
      this.#renderItems();
    }
  }

  connectedCallback() {
    this.#render();
    this.#start();
  }

  disconnectedCallback() {
    this.client?.disconnect();
  }

  attributeChangedCallback() {
    if (this.isConnected && this.client) {
      this.client.disconnect();
      this.#start();
    }
  }

  #start() {
    const token = this.getAttribute("token");
    if (!token) return;
    const server = this.getAttribute("server") || window.location.origin;
    this.client = new NotifyClient({ token, server }).connect();
    this.client.addEventListener("notification", ({ detail }) => this.#arrived(detail));
    this.client.addEventListener("notification_updated", ({ detail }) => this.#updated(detail));
    this.client.addEventListener("unread_count", ({ detail }) => this.#setUnread(detail.unreadCount));
    this.client.addEventListener("connection", ({ detail }) => {
      this.$offline.hidden = detail.online;
      this.dataset.online = String(detail.online);
      if (detail.online && this.state.open) this.#reload();
    });
    this.#reload();
  }

  #render() {
    const s = this.strings;
    this.shadowRoot.innerHTML = "";
    this.shadowRoot.append(element("style", {}, STYLE));
    this.$badge = element("span", { class: "badge", "data-testid": "notification-badge", hidden: true, "aria-hidden": "true" });
    this.$bell = element("button", {
      class: "bell", type: "button", "data-testid": "notification-bell", "aria-haspopup": "dialog",
      "aria-expanded": "false", "aria-label": s.bell, onclick: () => this.toggle(),
    });
    this.$bell.innerHTML = BELL_ICON;
    this.$bell.append(this.$badge);
    this.$tabs = TABS.map(({ key }) => element("button", {
      role: "tab", type: "button", "data-tab": key, "aria-selected": String(key === this.state.tab),
      tabindex: key === this.state.tab ? "0" : "-1", onclick: () => this.#selectTab(key),
      onkeydown: (event) => this.#tabKeys(event),
    }, s[`tab${key[0].toUpperCase()}${key.slice(1)}`]));
    this.$list = element("ul", { role: "list", "aria-label": s.bell });
    this.$sentinel = element("li", { class: "sentinel", "aria-hidden": "true" });
    this.$state = element("div", { class: "state", role: "status" });
    this.$offline = element("div", { class: "offline", role: "status", hidden: true }, s.offline);
    this.$preferences = element("div", { class: "preferences", "data-testid": "notification-preferences", hidden: true });
    this.$main = element("div", { style: "display:contents" },
      element("div", { class: "tabs", role: "tablist" }, ...this.$tabs), this.$list, this.$state);
    this.$prefsButton = element("button", { type: "button", class: "link", onclick: () => this.#togglePreferences() }, s.preferences);
    this.$panel = element("section", { class: "panel", role: "dialog", "aria-label": s.bell, hidden: true, onkeydown: (event) => this.#panelKeys(event) },
      element("header", {},
        element("h2", {}, s.bell),
        element("div", {},
          element("button", { type: "button", class: "link", "data-testid": "mark-all-read", onclick: () => this.markAllRead() }, s.markAllRead),
          this.$prefsButton)),
      this.$offline, this.$main, this.$preferences);
    this.$toast = element("div", { class: "toast", role: "status", "aria-live": "polite", "data-testid": "notification-toast", hidden: true });
    this.shadowRoot.append(this.$bell, this.$panel, this.$toast);
    new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting) && this.state.cursor && !this.state.loading) this.#loadMore();
    }, { root: this.$list }).observe(this.$sentinel);
  }

  toggle(open = !this.state.open) {
    this.state.open = open;
    // Open towards the side with room, so the panel never leaves the viewport.
    this.$panel.classList.toggle("align-left", this.getBoundingClientRect().right < 380);
    this.$panel.hidden = !open;
    this.$bell.setAttribute("aria-expanded", String(open));
    if (open) {
      this.#reload();
      this.$tabs.find((tab) => tab.dataset.tab === this.state.tab).focus();
    } else {
      this.#showList();
      this.$bell.focus();
    }
  }

  async markAllRead() {
    await this.client.readAll();
    this.#reload();
  }

  #setUnread(count) {
    this.state.unread = count;
    this.$badge.hidden = count === 0;
    this.$badge.textContent = count > 99 ? "99+" : String(count);
    this.$bell.setAttribute("aria-label", count ? `${this.strings.bell}, ${this.strings.unreadLabel(count)}` : this.strings.bell);
  }

  #tabKeys(event) {
    const index = this.$tabs.indexOf(event.currentTarget);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = this.$tabs[(index + step + this.$tabs.length) % this.$tabs.length];
    next.focus();
    this.#selectTab(next.dataset.tab);
  }

  #panelKeys(event) {
    if (event.key === "Escape") {
      event.stopPropagation();
      this.toggle(false);
    }
  }

  #selectTab(key) {
    this.state.tab = key;
    for (const tab of this.$tabs) {
      const selected = tab.dataset.tab === key;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    this.#reload();
  }

  async #reload() {
    if (!this.client) return;
    this.state.items = [];
    this.state.cursor = null;
    this.$list.replaceChildren();
    await this.#loadMore();
  }

  async #loadMore() {
    const tab = TABS.find(({ key }) => key === this.state.tab);
    this.state.loading = true;
    this.#showState(this.strings.loading);
    try {
      const page = await this.client.list({ ...tab.query, cursor: this.state.cursor });
      this.state.cursor = page.next_cursor;
      this.state.error = null;
      this.#setUnread(page.unread_count);
      for (const item of page.items) {
        this.client.markShown(item);
        if (!this.state.items.some((known) => known.id === item.id)) this.state.items.push(item);
      }
      this.#renderItems();
      if (this.state.open) this.client.seen(page.items.filter((item) => !item.seen_at).map((item) => item.id))?.catch(() => {});
    } catch (error) {
      this.state.error = error;
      this.#showState(this.strings.error, true);
      return;
    } finally {
      this.state.loading = false;
    }
    this.#showState(this.state.items.length ? null : this.strings.empty);
  }

  #showState(text, retry = false) {
    this.$state.replaceChildren();
    this.$state.hidden = !text;
    if (!text) return;
    this.$state.append(text);
    if (retry) this.$state.append(" ", element("button", { type: "button", class: "link", onclick: () => this.#reload() }, this.strings.retry));
  }

  #belongsInTab(item) {
    if (this.state.tab === "archived") return Boolean(item.archived_at);
    if (item.archived_at) return false;
    return this.state.tab === "all" || !item.read_at;
  }

  #renderItems() {
    const visible = this.state.items.filter((item) => this.#belongsInTab(item));
    this.$list.replaceChildren(...visible.map((item) => this.#renderItem(item)), this.$sentinel);
  }

  #renderItem(item) {
    const s = this.strings;
    const read = Boolean(item.read_at);
    const button = (label, action) => element("button", {
      type: "button", onclick: async (event) => {
        event.stopPropagation();
        this.#merge(await action(item.id));
      },
    }, label);
    return element("li", {
      class: "item", role: "listitem", tabindex: "0", "data-testid": "notification-item", "data-id": item.id,
      "data-read": String(read), onclick: () => this.#open(item),
      onkeydown: (event) => { if (event.key === "Enter") this.#open(item); },
    },
      element("span", { class: "title" }, item.title),
      item.body ? element("span", { class: "body" }, item.body) : null,
      element("time", { datetime: item.created_at, title: new Date(item.created_at).toLocaleString() }, relativeTime(item.created_at)),
      element("span", { class: "actions" },
        read ? button(s.markUnread, (id) => this.client.unread(id)) : button(s.markRead, (id) => this.client.read(id)),
        item.archived_at ? button(s.unarchive, (id) => this.client.unarchive(id)) : button(s.archive, (id) => this.client.archive(id))));
  }

  async #open(item) {
    if (!item.read_at) this.#merge(await this.client.read(item.id));
    const url = item.action_url && safeUrl(item.action_url);
    if (url) window.location.assign(url);
  }

  #merge(changed) {
    const index = this.state.items.findIndex((item) => item.id === changed.id);
    if (index >= 0) this.state.items[index] = { ...this.state.items[index], ...changed };
    this.#renderItems();
  }

  #arrived(notification) {
    this.state.items = [notification, ...this.state.items.filter((item) => item.id !== notification.id)];
    this.#renderItems();
    if (this.#belongsInTab(notification)) this.#showState(null);
    // A connect replays everything after the newest id this tab listed; listed from the
    // Unread tab, that includes what was read before the page opened (or, offline, in
    // another tab). No news: no toast.
    if (notification.read_at) return;
    this.$toast.replaceChildren(element("strong", {}, notification.title), notification.body ? element("div", {}, notification.body) : null);
    this.$toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { this.$toast.hidden = true; }, 5000);
  }

  #updated(update) {
    const ids = update.ids ?? [update.id];
    const { ids: _ids, id: _id, ...fields } = update;
    this.state.items = this.state.items.map((item) => (ids.includes(item.id) ? { ...item, ...fields } : item));
    this.#renderItems();
  }

  #showList() {
    this.state.view = "list";
    this.$preferences.hidden = true;
    this.$main.style.display = "contents";
  }

  async #togglePreferences() {
    if (this.state.view === "preferences") return this.#showList();
    this.state.view = "preferences";
    this.$main.style.display = "none";
    this.$preferences.hidden = false;
    const preferences = await this.client.preferences();
    this.#renderPreferences(preferences);
  }

  #renderPreferences(preferences) {
    const s = this.strings;
    const categories = new Set([...Object.keys(preferences.categories), ...this.state.items.map((item) => item.category)]);
    const toggle = (label, checked, change) => element("label", {},
      element("input", { type: "checkbox", checked, onchange: async (event) => {
        this.#renderPreferences(await this.client.updatePreferences(change(event.target.checked)));
      } }), label);
    const channels = Object.keys(preferences.channels);
    this.$preferences.replaceChildren(
      element("fieldset", {}, element("legend", {}, s.everything),
        ...channels.map((channel) => toggle(s.channelNames[channel] ?? channel, preferences.channels[channel],
          (on) => ({ channels: { [channel]: on } })))),
      ...[...categories].sort().map((category) => element("fieldset", { "data-category": category },
        element("legend", {}, category),
        ...channels.map((channel) => toggle(s.channelNames[channel] ?? channel,
          preferences.categories[category]?.[channel] ?? preferences.channels[channel],
          (on) => ({ categories: { [category]: { [channel]: on } } }))))),
      "serviceWorker" in navigator && "PushManager" in window
        ? element("button", { type: "button", class: "link", onclick: () => this.client.subscribePush().catch(() => {}) }, s.enablePush)
        : null,
    );
  }
}

const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

/** "3 minutes ago", in the page's language. */
export function relativeTime(timestamp, now = Date.now()) {
  const seconds = Math.round((new Date(timestamp).getTime() - now) / 1000);
  const format = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, { numeric: "auto" });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") return format.format(Math.round(seconds / size), unit);
  }
  return "";
}

if (!customElements.get("notification-bell")) customElements.define("notification-bell", NotificationBell);
