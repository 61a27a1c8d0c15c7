"""Helpers shared by the bridge tests: the scenario, a hardware env wired to a bridge, the agent's loop."""

from bm_envs.hardware import BridgeProcess, OdometryTopicSource, make_hardware_env
from bm_envs.hardware.link import LinkConfig

SCENARIO = {"name": "walk-0.4", "env": "BM-G1-Joystick-v0", "time_limit_s": 20.0, "joystick": [{"t": 0.0, "vx": 0.4}]}
START = {"damping_s": 0.1, "ramp_s": 0.5, "hold_s": 0.2, "state_timeout_s": 60.0}  # a short start-up for tests


def hardware_env(br: BridgeProcess, **hw):
    """The joystick hardware env on ``br``'s topics, with the bridge's odometry as the root-state source."""
    link = LinkConfig(lowcmd_topic=br.topic("rt/lowcmd"), lowstate_topic=br.topic("rt/lowstate"))
    return make_hardware_env("joystick", interface="lo", domain_id=br.domain_id, scenario=SCENARIO,
                             state_source=OdometryTopicSource(br.topic("rt/bm/odom")),
                             hardware={**START, "link": link, **hw})  # fmt: skip


def walk(env, policy, steps, obs):
    """The agent's loop: no exception handling, stops on terminated/truncated."""
    info, term, trunc = {}, False, False
    for _ in range(steps):
        action, _ = policy.predict(obs)
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            break
    return obs, info, term
