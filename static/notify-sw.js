// Service worker for Notify's Web Push: shows each pushed notification and opens its link.
self.addEventListener("push", (event) => {
  const notification = event.data ? event.data.json() : { title: "New notification" };
  event.waitUntil(
    self.registration.showNotification(notification.title, {
      body: notification.body ?? "",
      tag: notification.id,
      data: { url: notification.action_url },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data?.url;
  if (url && /^https?:\/\//.test(url)) event.waitUntil(self.clients.openWindow(url));
});
