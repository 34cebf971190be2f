// The benchmark's peer: what Node's Socket.IO does with the same job and no database, so the
// product's figures can be read against the transport's own ceiling. Run two of these on one
// Redis and they act as one server, like two `python wsgi.py` processes.
//
// Usage: PORT=5101 REDIS_URL=redis://127.0.0.1:6379 CHANNEL=bench-peer-1 node server.mjs
//
// - Socket.IO (default namespace) with @socket.io/redis-adapter: `auth: {token}` where the
//   token is simply the user id (no signature, no lookup); each socket joins `user:<id>`.
// - POST /notifications {to: id or [ids], title, data, mode}: answers 201
//   {notifications: [{id, user_id}]} after emitting, like the product, which emits after its
//   commit and before its response.
//     mode "rooms" (default): one `notification` per recipient, each with its own id, to that
//       user's room through the adapter (delivered here, published to the other processes).
//     mode "emitter": one `notification` to every recipient's room at once through
//       @socket.io/redis-emitter (one Redis message; every process delivers to its sockets).
// - GET /healthz: 200 once Redis is connected and the port listens.
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { Server } from "socket.io";

const port = Number(process.env.PORT);
const channel = process.env.CHANNEL || "socket.io";
const publisher = createClient({ url: process.env.REDIS_URL });
const subscriber = publisher.duplicate();
const emitterClient = publisher.duplicate();
await Promise.all([publisher.connect(), subscriber.connect(), emitterClient.connect()]);

let lastId = 0;
const idPrefix = `${process.pid}-`;
const room = (userId) => `user:${userId}`;

// The product's notification object, so both serialize the same amount per event.
function notification(userId, body) {
  return {
    id: idPrefix + ++lastId,
    user_id: userId,
    category: body.category || "general",
    title: body.title,
    body: body.body ?? null,
    data: body.data || {},
    action_url: null,
    priority: "normal",
    created_at: new Date().toISOString(),
    seen_at: null,
    read_at: null,
    archived_at: null,
  };
}

function send(body) {
  const recipients = Array.isArray(body.to) ? body.to : [body.to];
  if (body.mode === "emitter") {
    const one = notification(null, body);
    emitter.to(recipients.map(room)).emit("notification", one);
    return recipients.map((userId) => ({ id: one.id, user_id: userId }));
  }
  return recipients.map((userId) => {
    const each = notification(userId, body);
    io.to(room(userId)).emit("notification", each);
    return { id: each.id, user_id: userId };
  });
}

function respond(response, status, payload) {
  const text = JSON.stringify(payload);
  response.writeHead(status, { "Content-Type": "application/json" });
  response.end(text);
}

const http = createServer((request, response) => {
  if (request.method === "GET" && request.url === "/healthz") {
    return respond(response, 200, { status: "ok" });
  }
  if (request.method !== "POST" || request.url !== "/notifications") {
    return respond(response, 404, { error: { code: "not_found" } });
  }
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return respond(response, 400, { error: { code: "malformed_json" } });
    }
    respond(response, 201, { notifications: send(body) });
  });
});

const io = new Server(http, {
  adapter: createAdapter(publisher, subscriber, { key: channel }),
  serveClient: false,
});
const emitter = new Emitter(emitterClient, { key: channel });

io.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  if (typeof token !== "string" || !token) {
    return next(new Error("missing_credential: send auth {token: <user id>}"));
  }
  socket.data.userId = token;
  next();
});
io.on("connection", (socket) => socket.join(room(socket.data.userId)));

http.listen(port, "127.0.0.1");
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
