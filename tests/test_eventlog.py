"""The bounded event store a session keeps."""

from __future__ import annotations

from vkit.eventlog import EventLog
from vkit.frames import Marker, ProtocolEvent, VadScore


def appended(n: int) -> ProtocolEvent:
    return ProtocolEvent(direction="sent", type="input_audio_buffer.append", t_ns=n)


def test_frequent_kinds_keep_their_newest_and_the_rest_is_kept_in_order():
    log = EventLog(max_per_kind=3)
    for n in range(10):
        log.append(appended(n))
        log.append(VadScore(sample=n, num_samples=1, sample_rate_hz=16_000, probability=0.1, t_ns=n))
        if n % 4 == 0:
            log.append(Marker(name="turn", t_ns=n))
        log.append(ProtocolEvent(direction="received", type="response.done", t_ns=n))
    kinds = [(type(e).__name__, e.t_ns) for e in log]
    assert [t for k, t in kinds if k == "Marker"] == [0, 4, 8]  # rare kinds: all of them
    assert len([k for k, _ in kinds if k == "ProtocolEvent"]) == 3 + 10  # 3 appends + every response.done
    assert [e.t_ns for e in log if getattr(e, "type", "") == "input_audio_buffer.append"] == [7, 8, 9]
    assert [e.t_ns for e in log] == sorted(e.t_ns for e in log)  # publication order
    assert log.num_dropped == 7 + 7 and len(log) == 3 + 3 + 3 + 10 and log[-1].type == "response.done"


def test_keep_all_keeps_everything():
    log = EventLog(max_per_kind=3, keep_all=True)
    for n in range(10):
        log.append(appended(n))
    assert len(log) == 10 and log.num_dropped == 0


def test_a_follower_reads_only_what_is_new_however_much_was_let_go():
    from vkit.eventlog import EventLog
    from vkit.frames import Marker, VadScore

    log = EventLog(max_per_kind=3)
    for i in range(5):
        log.append(VadScore(t_ns=i, sample=i, num_samples=1, sample_rate_hz=16_000, probability=0.5))
    first, cursor = log.since(0)
    assert [e.t_ns for e in first] == [2, 3, 4] and cursor == 5
    log.append(Marker(t_ns=5, name="turn"))
    log.append(VadScore(t_ns=6, sample=6, num_samples=1, sample_rate_hz=16_000, probability=0.5))
    new, cursor = log.since(cursor)
    assert [e.t_ns for e in new] == [5, 6] and cursor == 7 and log.since(cursor) == ([], 7)
