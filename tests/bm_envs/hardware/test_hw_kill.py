"""The bridge process killed mid-run (SIGKILL): the hardware env goes to damping and reports it.

In its own module so that the main rig of ``test_hw_bridge.py`` (a bridge and an env) is gone by then.
"""

import numpy as np
import pytest
from _hw_rig import SCENARIO, hardware_env, walk

from bm_envs.experts.locomotion import ExpertPolicy
from bm_envs.hardware import BridgeProcess, SafetyFault

# Real-time tests on a shared 2-core machine: a process starved for > 100 ms trips the watchdog exactly as a
# real late message would (that is the safety layer working). Rerun such a test up to twice before failing.
pytestmark = [pytest.mark.flaky(reruns=2, reruns_delay=1), pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def policy(fastsac):
    return ExpertPolicy(fastsac)


def test_bridge_killed_mid_run(domain_id, policy):
    br = BridgeProcess(domain_id, scenario=SCENARIO)
    env = hardware_env(br)
    try:
        br.wait_ready()
        obs, _ = env.reset(seed=0)
        policy.reset()
        obs, info, term = walk(env, policy, 25, obs)
        assert not term
        t_kill = br.kill()
        obs, info, term = walk(env, policy, 50, obs)
        hw = info["hardware"]
        assert term and hw["fault"] == "stale_state" and hw["damping"]
        ttd = (hw["fault_time"] - t_kill) * 1e3
        print(f"\nbridge killed (SIGKILL) | damping (stale_state) | {ttd:.0f} ms after the kill")
        assert 0 < ttd < 250
        with pytest.raises(SafetyFault):
            env.step(np.zeros(29))
    finally:
        env.close()
        br.stop()
