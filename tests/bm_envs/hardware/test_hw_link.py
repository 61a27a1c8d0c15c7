"""RobotLink: every received LowState is untrusted; faults latch damping; the watchdog catches silence and delay.

States are handed to the link's DDS handler directly (the same entry point the SDK's listener uses), so each
case is deterministic; the link's real DDS publisher is used for the commands.
"""

import secrets
import time

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.hardware.link import LinkConfig, RobotLink
from bm_envs.hardware.messages import CommandFrame, StateFrame, lowstate_msg, pack_lowstate
from bm_envs.hardware.safety import Fault, SafetyConfig, SafetyLayer
from bm_envs.scene.builder import build_model


@pytest.fixture(scope="module")
def limits():
    model, _ = build_model()
    jr = model.jnt_range[[model.joint(n).id for n in g1.JOINT_NAMES]]
    return jr[:, 0], jr[:, 1]


@pytest.fixture
def make_link(sdk, domain_id, limits):
    links = []

    def make(stale_periods: float = 50.0) -> RobotLink:
        """A link on fresh topics; a long stale threshold unless the test is about staleness (robust under load)."""
        sfx = "_" + secrets.token_hex(4)
        cfg = LinkConfig(lowcmd_topic="rt/lowcmd" + sfx, lowstate_topic="rt/lowstate" + sfx)
        links.append(RobotLink(sdk, cfg, SafetyLayer(SafetyConfig(stale_periods=stale_periods), *limits)))
        links[-1].armed = True  # as the env does when its first start-up begins
        return links[-1]

    yield make
    for lk in links:
        lk.close()


@pytest.fixture
def link(make_link):
    return make_link()


def _msg(sdk, tick, corrupt=False, **kw):
    st = {"tick": tick, "quat": np.array([1.0, 0, 0, 0]), "gyro": np.zeros(3), "acc": np.array([0, 0, 9.81]),
          "q": g1.DEFAULT_JOINT_POS.copy(), "dq": np.zeros(29), "tau_est": np.zeros(29)}  # fmt: skip
    st.update(kw)
    rec = pack_lowstate(StateFrame(**st))
    if corrupt:
        rec["crc"] ^= 1
    return lowstate_msg(rec, sdk)


def test_untrusted_messages_are_dropped_and_counted(link, sdk):
    link._on_state(_msg(sdk, 100))
    link._on_state(_msg(sdk, 100))  # duplicate
    link._on_state(_msg(sdk, 96))  # older: out of order
    bad = _msg(sdk, 104)
    bad.motor_state = bad.motor_state[:20]
    link._on_state(bad)  # malformed
    link._on_state(object())  # not a LowState at all
    link._on_state(_msg(sdk, 104))
    link._on_state(_msg(sdk, 112))  # one message missing
    c = link.counts
    assert (c["received"], c["accepted"], c["duplicate"], c["out_of_order"], c["malformed"]) == (7, 3, 1, 1, 2)
    assert c["gaps"] == 1 and c["handler_errors"] == 0
    assert link.fault is None and link.latest.tick == 112


@pytest.mark.parametrize(
    "kw, fault",
    [
        ({"corrupt": True}, Fault.BAD_CRC),
        ({"q": np.full(29, np.nan)}, Fault.NONFINITE_STATE),
        ({"gyro": np.array([0, 0, 60.0])}, Fault.IMU_OUT_OF_RANGE),
    ],
)
def test_bad_states_trip_damping(link, sdk, kw, fault):
    link._on_state(_msg(sdk, 10))
    link.send(CommandFrame(q=g1.DEFAULT_JOINT_POS, kp=g1.KP, kd=g1.KD))
    link._on_state(_msg(sdk, 14, **kw))
    assert link.fault is fault and link.stats()["damping"]
    assert link.latest.tick == 10  # the bad state was not used
    sent = link.counts["sent"]
    assert link.send(CommandFrame(q=g1.DEFAULT_JOINT_POS, kp=g1.KP, kd=g1.KD)) is False  # damping is sent instead
    assert link.counts["sent"] > sent


def test_stale_state_watchdog(make_link, sdk):
    link = make_link(stale_periods=3.0)
    link._on_state(_msg(sdk, 10))
    t0 = time.monotonic()
    while link.fault is None and time.monotonic() - t0 < 1.0:
        time.sleep(0.002)
    assert link.fault is Fault.STALE_STATE
    assert 0.06 <= link.fault_time - link.last_state_time < 0.2  # 3 control periods, watchdog at 200 Hz
    time.sleep(0.05)
    assert link.counts["keepalive"] >= 1  # damping keeps being re-sent


def test_delayed_stream_is_late(make_link, sdk):
    link = make_link(stale_periods=10.0)  # 200 ms
    for k in range(40):  # real time advances 20 ms per message, the robot's clock 1 ms: a growing delay
        link._on_state(_msg(sdk, 1000 + k))
        if link.fault is not None:
            break
        time.sleep(0.02)
    assert link.fault is Fault.LATE_STATE and k <= 12


def test_nonfinite_command_trips(link, sdk):
    link._on_state(_msg(sdk, 10))
    assert link.send(CommandFrame(q=g1.DEFAULT_JOINT_POS, kp=g1.KP, kd=g1.KD)) is True
    assert link.send(CommandFrame(q=np.full(29, np.inf), kp=g1.KP, kd=g1.KD)) is False
    assert link.fault is Fault.INVALID_COMMAND
    link.clear_fault()
    assert link.fault is None and link.latest is None


def test_nothing_trips_before_the_link_is_armed(link, sdk):
    link.armed = False  # constructed, no start-up yet: states are counted, nothing is commanded
    link._on_state(_msg(sdk, 10, corrupt=True))
    link._on_state(_msg(sdk, 14, q=np.full(29, np.nan)))
    time.sleep(0.1)
    assert link.fault is None and link.counts["bad_crc"] == 1 and link.counts["rejected"] == 1
    assert link.counts["sent"] == 0
