"""Ray Serve LLM's prefix-aware router, made to learn behind HAProxy and safe for a request that
carries no prompt.

Behind HAProxy (direct streaming) Ray's LLMRouter only asks the router for a replica
(`choose_replica(_reserve=False)`, core/ingress/router.py), takes the first it names, and HAProxy
sends the request. Serve then never calls the router's `on_request_routed`, the one place Ray's
router adds a prompt to its prefix tree (serve/_private/router.py). The tree stayed empty, every
prompt matched nothing, and every request went to the first of the replicas tied at zero
characters: one replica took all the load. So this router names its candidates in random order
(Serve's own pick among them, where it makes one, still goes by queue length) and remembers each
prompt for the first. Where Serve sends the request itself and picks another candidate, Ray's
`on_request_routed` records that one too.

Ray 2.60's PrefixCacheAffinityRouter raises on a request whose arguments hold no prompt or
messages (routing_policies/prefix_aware/prefix_aware_router.py:158-164). Behind HAProxy, Serve's
Python proxy routes exactly such requests (the raw HTTP request) whenever HAProxy falls back to
it: while it reloads with new replicas, and when the ingress router picks a replica HAProxy does
not know yet, as after a scale-up. Each would be a 500. This router routes them by load instead,
as Ray's does a prompt that matches too little.

With one replica there is nothing to choose, yet Ray's router still asks the tree actor for a
match and for its least-used replica (`ray.get`, blocking the router's loop), and probes a stale
queue length: a quarter of the LLM router replica's CPU (py-spy, at 8 in flight on the shipped
chat service, min_replicas 1). So one candidate is returned as it is; its prompt is still
remembered, so the first turns after a scale-out go where their history is.

Serve pickles a router's module by value, and its base class by reference: Serve's proxy and the
LLM router replica load it while the engine starts. So the base is Ray's own class, not its public
alias in ray.serve.llm.request_router (a `pass` subclass), whose package imports vLLM: 17 s of CPU
and 0.5 GB in each of them, beside the engine's own import, for nothing they use. Keep this module
to Ray's imports.
"""

import random
import time

from ray.llm._internal.serve.routing_policies.prefix_aware.prefix_aware_router import PrefixCacheAffinityRouter


class PrefixRouter(PrefixCacheAffinityRouter):
    def _extract_text_from_request(self, pending_request) -> str | None:
        try:
            return super()._extract_text_from_request(pending_request)
        except ValueError:  # no prompt to match: Ray's router then picks by load
            return None

    async def choose_replicas(self, candidate_replicas, pending_request=None):
        if len(candidate_replicas) == 1:  # Ray's router picks it too, after up to three round trips
            ranks = [list(candidate_replicas)]
        else:
            ranks = await super().choose_replicas(candidate_replicas, pending_request)
        if pending_request is None or not ranks or not ranks[0]:
            return ranks
        first = random.sample(ranks[0], len(ranks[0]))
        if pending_request.args and (text := self._extract_text_from_request(pending_request)):
            # Actor calls from one caller run in order: the next request's match sees this prompt.
            self._tree_actor.insert.remote(text, first[0].replica_id.to_full_id_str(), time.time())
        return [first, *ranks[1:]]
