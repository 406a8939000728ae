//! undertaker.events.v1: the event payloads the shim publishes, and their topics.
