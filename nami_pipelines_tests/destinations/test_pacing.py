"""The pacer spaces requests under a project's stated rate (on a fake clock: no timing)."""

from nami_pipelines.destinations.pacing import SendPacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_unlimited_until_a_project_states_its_rate():
    clock = FakeClock()
    pacer = SendPacer(clock, clock.sleep)
    for _ in range(5):
        pacer.wait_turn(2000)
    assert clock.slept == [] and pacer.rate is None


def test_requests_are_spaced_to_just_under_the_stated_rate():
    clock = FakeClock()
    pacer = SendPacer(clock, clock.sleep)
    pacer.wait_turn(1000)
    pacer.throttled(1000, 1000)
    sent = 0
    for _ in range(20):
        pacer.wait_turn(500)
        sent += 500
    # The refused 1,000 first (the debt), then 10,000 events at 950/s: about 11.6 s.
    assert 11.0 <= clock.now <= 12.0
    assert 900 <= (1000 + sent) / clock.now <= 1000  # the refused request is sent again too


def test_a_429_at_the_present_pace_slows_down_but_one_sent_before_it_does_not():
    clock = FakeClock()
    pacer = SendPacer(clock, clock.sleep)
    pacer.wait_turn(100)  # sent before the pace was known
    pacer.throttled(1000, 100)
    assert pacer.rate == 950
    pacer.throttled(1000, 100)  # the same early request's sibling: nothing new
    assert pacer.rate == 950
    clock.now += 1
    pacer.wait_turn(100)  # sent at the pace, and still throttled
    pacer.throttled(1000, 100)
    assert pacer.rate == 950 * 0.97
    for _ in range(40):
        clock.now += 1
        pacer.wait_turn(100)
        pacer.throttled(1000, 100)
    assert pacer.rate == 500  # never under half the stated rate


def _throttled_at_1000(share: float = 1.0) -> tuple[FakeClock, SendPacer]:
    """A process with `share` of a project, told by a 429 that the project takes 1,000/s."""
    clock = FakeClock()
    pacer = SendPacer(clock, clock.sleep, share=share)
    pacer.wait_turn(100)
    pacer.throttled(1000, 100)
    return clock, pacer


def test_processes_sharing_a_project_each_pace_at_their_share():
    _, pacer = _throttled_at_1000(share=0.5)
    assert pacer.rate == 475


def test_a_process_with_a_share_takes_more_as_requests_are_accepted_and_gives_it_back():
    clock, pacer = _throttled_at_1000(share=0.5)
    assert pacer.rate == 475
    for _ in range(10):
        pacer.accepted()
    assert pacer.rate == 675  # 20 more per accepted request
    for _ in range(100):
        pacer.accepted()
    assert pacer.rate == 950  # never over the whole stated rate: the others may be done
    clock.now += 1
    pacer.wait_turn(100)
    pacer.throttled(1000, 100)  # the others are not done: back to this process's share
    assert pacer.rate == 475


def test_a_lone_process_keeps_its_pace_when_requests_are_accepted():
    _, pacer = _throttled_at_1000()
    for _ in range(10):
        pacer.accepted()
    assert pacer.rate == 950
