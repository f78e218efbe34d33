"""The delivery engine (pure): insights -> subscriptions -> per-channel queues -> deliveries, with receipts.

:mod:`.engine` decides (route, enqueue with dedup, due: send now / batch / quiet hours / rate limit, and the
state transitions begin -> complete | fail, recover after a restart); :mod:`.digest` assembles what is sent;
:mod:`.codec` stores a channel's state as compressed JSON. The I/O (ConfigMaps, Secrets, transports) is in
``api/notifystore.py`` and ``api/notifyrun.py``. No clock is read here: ``now`` is always passed in.

Guarantee (see ``recover``): an (insight id, channel) is delivered at most once within the dedup window; it is
never lost: it stays queued (quiet hours, batches, rate limits, retries with back-off) until it is sent, given
up after MAX_FAILURES failures (a Failed receipt), or - only when a restart interrupted its send on a service
without an idempotency key - recorded InDoubt. Services with one (PagerDuty dedup_key, webhooks'
Idempotency-Key) are resent after a restart under the same key: exactly once.
"""
