"""A request's routing overrides may only tighten its route's plan; and the backoff caps."""

from __future__ import annotations

from dataclasses import replace

import pytest
from llmrouter.v1 import generation_pb2 as gen_pb

from llmrouter_server.api.decode import overrides
from llmrouter_server.errors import InvalidArgument
from llmrouter_server.routing.route import Backoff, Overrides, Plan, tighten
from llmrouter_server.values import MidStreamAction, RoutePolicy

ROUTE = Plan(
    policy=RoutePolicy.FALLBACK,
    max_attempts=3,
    first_token_timeout=10.0,
    idle_timeout=5.0,
    race_after=2.0,
    on_mid_stream_failure=MidStreamAction.CONTINUE,
)


def _refused(plan: Plan, overrides: Overrides) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        tighten(plan, overrides, None)
    return caught.value


def test_no_overrides_keep_the_route_and_set_the_deadline() -> None:
    assert tighten(ROUTE, Overrides(), 1234.5) == replace(ROUTE, deadline=1234.5)


def test_every_override_within_the_limits_is_applied() -> None:
    asked = Overrides(
        policy=RoutePolicy.WEIGHTED,
        first_token_timeout=2.5,
        idle_timeout=1.0,
        max_attempts=2,
        on_mid_stream_failure=MidStreamAction.FAIL,
        race_after=3.0,
    )

    assert tighten(ROUTE, asked, 99.0) == Plan(
        policy=RoutePolicy.WEIGHTED,
        max_attempts=2,
        backoff=ROUTE.backoff,
        first_token_timeout=2.5,
        idle_timeout=1.0,
        race_after=3.0,
        on_mid_stream_failure=MidStreamAction.FAIL,
        deadline=99.0,
    )


def test_values_equal_to_the_route_are_allowed() -> None:
    asked = Overrides(first_token_timeout=10.0, idle_timeout=5.0, max_attempts=3, race_after=2.0)

    assert tighten(ROUTE, asked, None) == ROUTE


@pytest.mark.parametrize(
    ("asked", "field", "message"),
    [
        (
            Overrides(first_token_timeout=10.5),
            "start.routing.first_token_timeout",
            "10.5 s is longer than the route's 10 s",
        ),
        (
            Overrides(first_token_timeout=0.0),
            "start.routing.first_token_timeout",
            "must be positive",
        ),
        (Overrides(idle_timeout=0.0), "start.routing.idle_timeout", "must be positive"),
        (Overrides(idle_timeout=-1.0), "start.routing.idle_timeout", "must be positive"),
        (
            Overrides(idle_timeout=6.0),
            "start.routing.idle_timeout",
            "6 s is longer than the route's 5 s",
        ),
        (
            Overrides(max_attempts=4),
            "start.routing.max_attempts",
            "must be between 1 and the route's 3",
        ),
        (
            Overrides(race_after=1.5),
            "start.routing.race_after",
            "must be between the route's 2 s and 3600 s",
        ),
        (
            Overrides(race_after=3601.0),
            "start.routing.race_after",
            "must be between the route's 2 s and 3600 s",
        ),
    ],
)
def test_looser_values_are_refused_naming_the_field(
    asked: Overrides, field: str, message: str
) -> None:
    error = _refused(ROUTE, asked)

    assert (error.field, error.message) == (field, f"{field}: {message}")


def test_max_attempts_zero_from_the_contract_keeps_the_route() -> None:
    decoded = overrides(gen_pb.RoutingOverrides(max_attempts=0))

    assert decoded == Overrides()
    assert tighten(ROUTE, decoded, None).max_attempts == 3


def test_max_attempts_zero_in_the_domain_is_refused() -> None:
    assert _refused(ROUTE, Overrides(max_attempts=0)).field == "start.routing.max_attempts"


def test_timeouts_on_a_route_without_limits_are_bounded_by_the_cap() -> None:
    unlimited = replace(ROUTE, first_token_timeout=None, idle_timeout=None)

    assert tighten(unlimited, Overrides(first_token_timeout=3600.0), None).first_token_timeout == (
        3600.0
    )
    error = _refused(unlimited, Overrides(idle_timeout=3600.5))
    assert (error.field, error.message) == (
        "start.routing.idle_timeout", "start.routing.idle_timeout: must be at most 3600 s"
    )  # fmt: skip


@pytest.mark.parametrize("policy", [RoutePolicy.RACE, RoutePolicy.MERGE])
def test_several_at_once_is_refused_on_a_fallback_route(policy: RoutePolicy) -> None:
    error = _refused(ROUTE, Overrides(policy=policy))

    assert error.field == "start.routing.policy"
    assert error.message == (
        f"start.routing.policy: {policy.upper()} runs several targets at once; this route's "
        "policy is FALLBACK (FALLBACK or WEIGHTED may be asked for)"
    )


@pytest.mark.parametrize(
    ("route", "asked"),
    [
        (RoutePolicy.RACE, RoutePolicy.MERGE),
        (RoutePolicy.MERGE, RoutePolicy.RACE),
        (RoutePolicy.WEIGHTED, RoutePolicy.RACE),
    ],
)
def test_another_several_at_once_policy_is_refused(route: RoutePolicy, asked: RoutePolicy) -> None:
    error = _refused(replace(ROUTE, policy=route), Overrides(policy=asked))

    assert error.field == "start.routing.policy"


@pytest.mark.parametrize("route", list(RoutePolicy))
@pytest.mark.parametrize("asked", [RoutePolicy.FALLBACK, RoutePolicy.WEIGHTED])
def test_fallback_and_weighted_are_allowed_on_any_route(
    route: RoutePolicy, asked: RoutePolicy
) -> None:
    assert tighten(replace(ROUTE, policy=route), Overrides(policy=asked), None).policy is asked


@pytest.mark.parametrize("policy", [RoutePolicy.RACE, RoutePolicy.MERGE])
def test_a_route_may_be_asked_for_its_own_policy(policy: RoutePolicy) -> None:
    plan = replace(ROUTE, policy=policy)

    assert tighten(plan, Overrides(policy=policy), None).policy is policy


@pytest.mark.parametrize("route", list(MidStreamAction))
def test_fail_mid_stream_is_allowed_on_any_route(route: MidStreamAction) -> None:
    plan = replace(ROUTE, on_mid_stream_failure=route)

    asked = Overrides(on_mid_stream_failure=MidStreamAction.FAIL)
    assert tighten(plan, asked, None).on_mid_stream_failure is MidStreamAction.FAIL


@pytest.mark.parametrize("asked", [MidStreamAction.CONTINUE, MidStreamAction.RESTART])
def test_going_on_mid_stream_is_refused_on_a_route_that_fails(asked: MidStreamAction) -> None:
    plan = replace(ROUTE, on_mid_stream_failure=MidStreamAction.FAIL)

    error = _refused(plan, Overrides(on_mid_stream_failure=asked))

    assert (error.field, error.message) == (
        "start.routing.on_mid_stream_failure",
        "start.routing.on_mid_stream_failure: this route fails mid-stream; only FAIL is allowed",
    )


@pytest.mark.parametrize(
    ("route", "asked"),
    [
        (MidStreamAction.CONTINUE, MidStreamAction.RESTART),
        (MidStreamAction.RESTART, MidStreamAction.CONTINUE),
    ],
)
def test_continue_and_restart_swap_where_the_route_does_not_fail(
    route: MidStreamAction, asked: MidStreamAction
) -> None:
    plan = replace(ROUTE, on_mid_stream_failure=route)

    assert tighten(plan, Overrides(on_mid_stream_failure=asked), None).on_mid_stream_failure is (
        asked
    )


def test_backoff_cap_doubles_from_the_initial_wait_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.2, maximum=1.0, multiplier=2.0)

    # Doubling is exact in binary floating point, so the caps compare exactly.
    assert [backoff.cap(round_) for round_ in range(1, 7)] == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
