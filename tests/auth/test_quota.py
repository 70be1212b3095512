"""Token buckets and one identity's quota, on a clock the tests move."""

from __future__ import annotations

import pytest

from llmrouter_server.auth.quota import Quota, TokenBucket
from llmrouter_server.config import IdentityLimits
from llmrouter_server.errors import InvalidArgument

pytestmark = pytest.mark.timeout(10)

ENTRY = "auth.api_keys[team-a]"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_bucket_starts_full_and_refills_continuously_up_to_its_capacity(clock: Clock) -> None:
    bucket = TokenBucket(120, clock=clock)  # 2 tokens a second

    bucket.take(100)
    assert bucket.level() == 20
    clock.now += 10
    assert bucket.level() == 40
    clock.now += 1000
    assert bucket.level() == 120
    assert bucket.full()


def test_wait_says_when_the_tokens_are_there(clock: Clock) -> None:
    bucket = TokenBucket(60, clock=clock)  # 1 token a second
    bucket.take(60)

    assert bucket.wait(15) == 15.0
    clock.now += 5
    assert bucket.wait(15) == 10.0
    clock.now += 10
    assert bucket.wait(15) == 0.0


def test_a_refund_never_overfills_and_a_charge_beyond_the_reservation_is_a_debt(
    clock: Clock,
) -> None:
    bucket = TokenBucket(60, clock=clock)
    bucket.take(50)
    bucket.give(80)
    assert bucket.level() == 60

    bucket.take(60)
    bucket.give(-30)  # used 30 more than reserved

    assert bucket.level() == -30
    assert bucket.wait(10) == 40.0


def test_a_smaller_capacity_keeps_at_most_the_new_capacity(clock: Clock) -> None:
    bucket = TokenBucket(120, clock=clock)
    bucket.take(20)

    bucket.resize(60)

    assert (bucket.level(), bucket.rate) == (60, 1.0)


def test_concurrency_refuses_without_a_retry_delay(clock: Clock) -> None:
    quota = Quota(IdentityLimits(concurrent_generations=2), ENTRY, clock)
    quota.take(10)
    quota.take(10)

    refusal = quota.refusal(10)

    assert refusal is not None
    assert refusal.message == (
        "auth.api_keys[team-a].limits.concurrent_generations: 2 generations running of 2; "
        "retry when one of them ends"
    )
    assert refusal.retry_after is None
    quota.settle(10, 3)
    assert quota.refusal(10) is None


def test_the_token_bucket_refuses_naming_the_limit_and_when_it_has_room(clock: Clock) -> None:
    quota = Quota(IdentityLimits(output_tokens_per_minute=2000), ENTRY, clock)
    quota.take(1900)

    refusal = quota.refusal(500)

    assert refusal is not None
    assert refusal.message == (
        "auth.api_keys[team-a].limits.output_tokens_per_minute: 1900 tokens reserved of 2000, "
        "this request reserves 500; retry in 12.0 s"
    )
    assert refusal.retry_after == pytest.approx(12.0)
    clock.now += 12
    assert quota.refusal(500) is None


def test_settling_refunds_what_was_not_used(clock: Clock) -> None:
    quota = Quota(IdentityLimits(output_tokens_per_minute=100), ENTRY, clock)
    quota.take(80)
    assert (quota.running, quota.reserved, quota.tokens_available()) == (1, 80, 20)

    quota.settle(80, 30)

    assert (quota.running, quota.reserved, quota.tokens_available()) == (0, 0, 70)


def test_requests_per_minute_refuse_until_a_request_refills(clock: Clock) -> None:
    quota = Quota(IdentityLimits(requests_per_minute=3), ENTRY, clock)
    for _ in range(3):
        assert quota.refusal(0) is None
        quota.take(0)
        quota.settle(0, 0)

    refusal = quota.refusal(0)

    assert refusal is not None
    assert refusal.message == (
        "auth.api_keys[team-a].limits.requests_per_minute: 3 requests started of 3; retry in 20.0 s"
    )
    clock.now += 20
    assert quota.refusal(0) is None


def test_the_refusal_with_the_longer_wait_is_the_one_given(clock: Clock) -> None:
    limits = IdentityLimits(requests_per_minute=60, output_tokens_per_minute=60)
    quota = Quota(limits, ENTRY, clock)
    quota.take(60)

    refusal = quota.refusal(30)

    assert refusal is not None
    assert refusal.message.startswith(f"{ENTRY}.limits.output_tokens_per_minute: ")
    assert refusal.retry_after == pytest.approx(30.0)


def test_a_request_larger_than_the_bucket_is_invalid_argument(clock: Clock) -> None:
    quota = Quota(IdentityLimits(output_tokens_per_minute=100), ENTRY, clock)

    with pytest.raises(InvalidArgument) as caught:
        quota.check_size(101)
    with pytest.raises(InvalidArgument) as merged:
        quota.check_size(120, lanes=2)

    assert caught.value.field == "start.sampling.max_tokens"
    assert caught.value.message == (
        "start.sampling.max_tokens: 101 tokens exceed "
        "auth.api_keys[team-a].limits.output_tokens_per_minute of 100: such a request is "
        "never admitted; ask for at most 100"
    )
    assert merged.value.message == (
        "start.sampling.max_tokens: 60 tokens for each of the route's 2 targets (MERGE) exceed "
        "auth.api_keys[team-a].limits.output_tokens_per_minute of 100: such a request is "
        "never admitted; ask for at most 50"
    )
    quota.check_size(100)


def test_a_quota_is_idle_once_nothing_runs_and_its_buckets_are_full(clock: Clock) -> None:
    limits = IdentityLimits(concurrent_generations=1, output_tokens_per_minute=60)
    quota = Quota(limits, ENTRY, clock)
    quota.take(30)
    assert not quota.idle()

    quota.settle(30, 6)
    assert not quota.idle()
    clock.now += 6

    assert quota.idle()


def test_new_limits_keep_what_is_in_use(clock: Clock) -> None:
    quota = Quota(IdentityLimits(output_tokens_per_minute=100), ENTRY, clock)
    quota.take(90)

    quota.update(IdentityLimits(output_tokens_per_minute=50, concurrent_generations=1))

    assert (quota.running, quota.tokens_available()) == (1, 10)
    refusal = quota.refusal(5)
    assert refusal is not None
    assert refusal.message.startswith(f"{ENTRY}.limits.concurrent_generations: 1 ")
