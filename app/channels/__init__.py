"""Channel senders: each takes a notification and its user and delivers it, or raises
`TransientDeliveryError` (try again later) or `PermanentDeliveryError` (never will work)."""
