"""The order in which one round tries a route's targets.

FALLBACK and RACE: as configured. WEIGHTED: drawn by weight without
replacement (weighted random sampling), so the first pick follows the
weights and the others are the fallbacks; weight-0 targets come last, in
configured order.
"""

from __future__ import annotations

import random

from llmrouter_server.routing.route import Route
from llmrouter_server.values import RoutePolicy


def round_order(route: Route, policy: RoutePolicy, rng: random.Random) -> list[int]:
    """Target indexes in the order one round tries them."""
    indexes = list(range(len(route.targets)))
    if policy is not RoutePolicy.WEIGHTED:
        return indexes
    weighted = [i for i in indexes if route.targets[i].weight > 0]
    order: list[int] = []
    while weighted:
        weights = [route.targets[i].weight for i in weighted]
        pick = rng.choices(weighted, weights=weights)[0]
        order.append(pick)
        weighted.remove(pick)
    return order + [i for i in indexes if route.targets[i].weight == 0]
