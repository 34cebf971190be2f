// Many Socket.IO clients in one node process, each like one browser tab: the official
// socket.io-client, websocket transport only, one connection per client (forceNew: no
// multiplexing), `auth: {token}` and, on reconnects, `last_id` (the last notification seen).
//
// Usage: node clients.mjs SPEC.json
//   SPEC: {"clients": [{"url": "http://127.0.0.1:5001", "token": "..."}, ...]}
//
// Driven by JSON-line commands on stdin, answered by one JSON line each on stdout:
//   {"cmd": "connect", "from": 0, "to": 500, "rate": 1000, "last_id": false, "timeout_ms": 30000}
//       opens the clients [from, to) not yet connected, `rate` per second (0: all at once);
//       answers {"ev": "connect", "connected", "pending", "started", "finished",
//       "connect_ms": [...], "errors": {message: count}, "retries"} once all are connected or
//       the timeout passes. Times are epoch milliseconds with sub-millisecond precision.
//   {"cmd": "disconnect", "from": 0, "to": 500}   closes them: {"ev": "disconnect", "closed"}
//   {"cmd": "flush"}   writes out buffered events first: {"ev": "flush"}
//   {"cmd": "exit"}    closes every socket and exits.
// Every `notification` event is reported as it arrives, as {"ev": "n", "c": client index,
// "id": notification id, "t": received}; the driver knows when each id was sent (bench/load.py
// maps each id it was answered to its request's due time), so latency needs no clock in here
// beyond the receive time.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));

// Wall-clock epoch milliseconds, sub-millisecond: comparable with the sender's time.time().
const now = () => performance.timeOrigin + performance.now();

// Event lines are buffered and written in batches, so a burst of events costs one write;
// the receive time is taken when the event arrives, not when it is written.
let buffered = [];
function flush() {
  if (buffered.length) {
    process.stdout.write(buffered.join("\n") + "\n");
    buffered = [];
  }
}
function report(line) {
  buffered.push(JSON.stringify(line));
  if (buffered.length >= 1000) flush();
}
function answer(line) {
  flush();
  process.stdout.write(JSON.stringify(line) + "\n");
}
setInterval(flush, 20);

const clients = spec.clients.map((client, index) => ({
  ...client,
  index,
  socket: null,
  connected: false,
  lastId: null,
  useLastId: false,
  onConnect: null,
}));

function open(client, tally) {
  const started = now();
  client.onConnect = () => tally.connected(now() - started);
  if (client.socket) {
    client.socket.connect();
    return;
  }
  const socket = io(client.url, {
    transports: ["websocket"],
    forceNew: true,
    // A browser's defaults: a connect that fails at the transport retries after 1 to 5 s.
    reconnectionDelay: 1000,
    reconnectionDelayMax: 5000,
    timeout: 20000,
    // A function, so each (re)connect sends the last id seen by then.
    auth: (send) =>
      send(
        client.useLastId && client.lastId
          ? { token: client.token, last_id: client.lastId }
          : { token: client.token },
      ),
  });
  client.socket = socket;
  socket.on("connect", () => {
    client.connected = true;
    const done = client.onConnect;
    client.onConnect = null;
    if (done) done();
  });
  socket.on("disconnect", () => {
    client.connected = false;
  });
  socket.on("connect_error", (error) => client.tally?.error(error.message));
  socket.io.on("reconnect_attempt", () => client.tally?.retry());
  socket.on("notification", (notification) => {
    const t = now();
    client.lastId = notification.id;
    report({ ev: "n", c: client.index, id: notification.id, t });
  });
}

function connect({ from, to, rate, last_id: useLastId, timeout_ms: timeoutMs }) {
  const targets = clients.slice(from, to).filter((client) => !client.connected);
  const started = now();
  const connectMs = [];
  const errors = {};
  let retries = 0;
  let finished = false;
  let opened = 0;
  let pacer = null;
  let deadline = null;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearInterval(pacer);
    clearTimeout(deadline);
    for (const client of targets) client.tally = null;
    answer({
      ev: "connect",
      connected: connectMs.length,
      pending: targets.length - connectMs.length,
      started,
      finished: now(),
      connect_ms: connectMs,
      errors,
      retries,
    });
  };
  const tally = {
    connected(ms) {
      connectMs.push(ms);
      if (connectMs.length === targets.length) finish();
    },
    error(message) {
      errors[message] = (errors[message] || 0) + 1;
    },
    retry() {
      retries += 1;
    },
  };
  for (const client of targets) {
    client.useLastId = Boolean(useLastId);
    client.tally = tally;
  }
  if (targets.length === 0) return finish();
  deadline = setTimeout(finish, timeoutMs);
  const openDue = () => {
    const due = rate > 0 ? Math.min(targets.length, 1 + Math.floor(((now() - started) * rate) / 1000)) : targets.length;
    while (opened < due) open(targets[opened++], tally);
    if (opened === targets.length) clearInterval(pacer);
  };
  openDue();
  if (opened < targets.length) pacer = setInterval(openDue, 2);
}

function disconnect({ from, to }) {
  let closed = 0;
  for (const client of clients.slice(from, to)) {
    if (client.socket && client.connected) {
      client.socket.disconnect();
      closed += 1;
    }
  }
  answer({ ev: "disconnect", closed });
}

function exit() {
  for (const client of clients) client.socket?.disconnect();
  flush();
  // Let the close frames go out before the process ends.
  setTimeout(() => process.exit(0), 100);
}

const commands = { connect, disconnect, flush: () => answer({ ev: "flush" }), exit };
createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  commands[command.cmd](command);
});
// The driver went away: do not linger.
process.stdin.on("end", exit);
