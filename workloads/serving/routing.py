"""Ray Serve LLM's prefix-aware router, safe for a request that carries no prompt.

Ray 2.60's PrefixCacheAffinityRouter raises on a request whose arguments hold no prompt or
messages (routing_policies/prefix_aware/prefix_aware_router.py:158-164). Behind HAProxy, Serve's
Python proxy routes exactly such requests (the raw HTTP request) whenever HAProxy falls back to
it: while it reloads with new replicas, and when the ingress router picks a replica HAProxy does
not know yet, as after a scale-up. Each would be a 500. This router routes them by load instead,
as Ray's does a prompt that matches too little.

Serve pickles a router's module by value, and its base class by reference: Serve's proxy and the
LLM router replica load it while the engine starts. So the base is Ray's own class, not its public
alias in ray.serve.llm.request_router (a `pass` subclass), whose package imports vLLM: 17 s of CPU
and 0.5 GB in each of them, beside the engine's own import, for nothing they use.
"""

from ray.llm._internal.serve.routing_policies.prefix_aware.prefix_aware_router import PrefixCacheAffinityRouter


class PrefixRouter(PrefixCacheAffinityRouter):
    def _extract_text_from_request(self, pending_request) -> str | None:
        try:
            return super()._extract_text_from_request(pending_request)
        except ValueError:  # no prompt to match: Ray's router then picks by load
            return None
