"""Where events and joins live: adapters behind :class:`nextbest.policy.ports.EventStore`."""
