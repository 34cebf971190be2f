// Connects like a browser tab with the official socket.io-client and prints every pushed
// event as one JSON line: {"event": name, "data": payload}. Exits after `count` notification
// events, or with status 2 on a connect error (printed the same way).
// Usage: node listen.mjs URL TOKEN TRANSPORT COUNT [LAST_ID]
// With RECONNECT=1 in the environment it reconnects as a browser's client does when the
// connection drops (after 0.2 to 1 s here), and prints each drop as a "disconnect" line.
import { io } from "socket.io-client";

const [url, token, transport, count, lastId] = process.argv.slice(2);
const auth = lastId ? { token, last_id: lastId } : { token };
const reconnection = process.env.RECONNECT === "1";
const socket = io(url, {
  auth,
  transports: [transport],
  reconnection,
  reconnectionDelay: 200,
  reconnectionDelayMax: 1000,
});
let notifications = 0;

const print = (event, data) => process.stdout.write(JSON.stringify({ event, data }) + "\n");

socket.on("connect", () => print("connect", { id: socket.id }));
if (reconnection) socket.on("disconnect", (reason) => print("disconnect", { reason }));
socket.on("connect_error", (error) => {
  print("connect_error", { message: error.message });
  process.exit(2);
});
for (const name of ["notification_updated", "unread_count", "resync"]) {
  socket.on(name, (data) => print(name, data));
}
socket.on("notification", (data) => {
  print("notification", data);
  notifications += 1;
  if (notifications >= Number(count)) {
    socket.close();
    process.exit(0);
  }
});
setTimeout(() => {
  print("timeout", {});
  process.exit(3);
}, 30000);
