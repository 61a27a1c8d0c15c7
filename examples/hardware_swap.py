"""Hardware swap: the same agent on the simulated G1 and on the robot, one flag apart.

    python examples/hardware_swap.py                      # sim env (MuJoCo)
    python examples/hardware_swap.py --hardware           # hardware env, against a MuJoCo DDS bridge on loopback
    python examples/hardware_swap.py --hardware --robot --interface eth0 --domain-id 0   # the real G1 (careful!)
    python examples/hardware_swap.py --hardware --policy planner --supervisor   # the planner, asynchronous

The agent is the Stage-1 expert walking the task (joystick: the scenario's command; waypoint: pure pursuit to the
goals), or with ``--policy planner`` the shipped diffusion planner in a :class:`~bm_planner.runtime.ThreadedRunner`
(its planner thread replans while the 50 Hz loop executes the newest plan, latency-compensated), optionally under
the :class:`~bm_planner.supervisor.SafetySupervisor` (``--supervisor``: the expert takes over on fall risk). The
output reports the control loop's period (p50 / p99 ms, from one ``predict`` + ``step`` to the next). The loop below is identical for both envs; only the constructor differs. With ``--hardware`` and no
``--robot`` a bridge process is started on ``lo`` (the robot is simulated, real DDS messages, real safety layer),
and the bridge's ground-truth odometry stands in for motion capture. On the real robot, use ``--state-source
kinematic`` (legged odometry) or publish your mocap as ``nav_msgs/Odometry_`` on ``--odom-topic``; the robot must
hang in its gantry for the start-up, and ``kill -USR1 <pid>`` or Ctrl-C puts it into damping.
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np

import bm_envs  # noqa: F401  (registers the sim envs)
from bm_envs.experts.command_laws import PurePursuit
from bm_envs.experts.locomotion import ExpertPolicy

SCENARIOS = {
    "joystick": {"name": "walk-0.4", "env": "BM-G1-Joystick-v0", "time_limit_s": 5.0,
                 "joystick": [{"t": 0.0, "vx": 0.4}, {"t": 3.0, "vx": 0.3, "yaw_rate": 0.4}]},
    "waypoint": {"name": "two-goals", "env": "BM-G1-Waypoint-v0", "time_limit_s": 15.0,
                 "waypoints": [[1.5, 0.0], [1.5, 1.0]], "goal_radius_m": 0.3},
}  # fmt: skip


def run_agent(env, policy, seed: int = 0, realtime: bool = False) -> dict:
    """The agent's loop — the same code for the sim env and the hardware env (which keeps the 50 Hz clock itself;
    ``realtime`` paces the sim env to it, for a planner thread that runs in real time)."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    steps, terminated, truncated = 0, False, False
    stamps = [time.perf_counter()]
    while not (terminated or truncated):
        action, _ = policy.predict(obs)
        obs, _reward, terminated, truncated, info = env.step(action)
        steps += 1
        if realtime:
            time.sleep(max(0.0, stamps[0] + steps * 0.02 - time.perf_counter()))
        stamps.append(time.perf_counter())
    period = np.diff(stamps) * 1000
    out = {"steps": steps, "root_xy": info["root_xy"].round(3).tolist(), "fell": info["fell"],
           "success": info.get("success"),
           "loop_period_ms": {"p50": round(float(np.percentile(period, 50)), 2),
                              "p99": round(float(np.percentile(period, 99)), 2),
                              "max": round(float(period.max()), 2)}}  # fmt: skip
    pinfo = getattr(policy, "info", {})
    if "plan_latency_ms" in pinfo and pinfo["plan_latency_ms"]:
        lat = np.asarray(pinfo["plan_latency_ms"])
        out["planner"] = {"plans": len(lat), "plan_ms_p50": round(float(np.percentile(lat, 50)), 1),
                          "plan_ms_p99": round(float(np.percentile(lat, 99)), 1),
                          "starved_steps": pinfo.get("starved_steps"), "handovers": pinfo.get("handovers")}  # fmt: skip
    if "hardware" in info:
        hw = info["hardware"]
        out["hardware"] = {k: hw[k] for k in ("fault", "command_rate_hz", "rtt_ms_p50", "rtt_ms_p99", "counts")}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hardware", action="store_true", help="use the hardware env instead of the sim env")
    p.add_argument("--robot", action="store_true", help="talk to a real robot (no bridge is started)")
    p.add_argument("--task", choices=sorted(SCENARIOS), default="joystick")
    p.add_argument("--interface", default="lo")
    p.add_argument("--domain-id", type=int, default=None, help="DDS domain (default: free one for the bridge)")
    p.add_argument("--state-source", choices=("odometry", "kinematic"), default="odometry")
    p.add_argument("--odom-topic", default=None, help="nav_msgs/Odometry_ topic of the external root state")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--policy", choices=("expert", "planner"), default="expert")
    p.add_argument("--supervisor", action="store_true", help="planner: hand over to the expert on fall risk")
    a = p.parse_args(argv)
    scenario = SCENARIOS[a.task]
    runner = None
    if a.policy == "expert":
        policy = ExpertPolicy("fastsac", law=PurePursuit(max_speed=0.5) if a.task == "waypoint" else None)
    else:
        from bm_planner import SHIPPED_PLANNER
        from bm_planner.agent import DiffusionAgent
        from bm_planner.runtime import ThreadedRunner
        from bm_planner.supervisor import SafetySupervisor

        policy = runner = ThreadedRunner(
            DiffusionAgent.from_pretrained(SHIPPED_PLANNER, {"threads": 1}, backend="onnx")
        )
        if a.supervisor:
            policy = SafetySupervisor(runner, "fastsac")

    try:
        _run(a, p, scenario, policy)
    finally:
        if runner is not None:
            runner.close()


def _run(a, p, scenario, policy) -> None:
    if not a.hardware:
        env = gym.make(scenario["env"], scenario=scenario)
        print(json.dumps({"env": "sim", **run_agent(env, policy, a.seed, realtime=a.policy == "planner")}, indent=1))
        env.close()
        return

    from bm_envs.hardware import (
        BridgeProcess,
        KinematicOdometry,
        OdometryTopicSource,
        free_domain_id,
        make_hardware_env,
    )
    from bm_envs.hardware.link import LinkConfig

    if a.robot and (a.domain_id is None or a.interface == "lo"):
        p.error("--robot needs --interface (the robot's network interface) and --domain-id")
    domain = a.domain_id if a.domain_id is not None else free_domain_id()
    bridge = (
        None if a.robot else BridgeProcess(domain, task=a.task, scenario=scenario, seed=a.seed, interface=a.interface)
    )
    topic = (lambda t: t) if bridge is None else bridge.topic
    source = (
        KinematicOdometry()
        if a.state_source == "kinematic"
        else OdometryTopicSource(a.odom_topic or topic("rt/bm/odom"))
    )
    try:
        env = make_hardware_env(
            a.task, interface=a.interface, domain_id=domain, scenario=scenario, state_source=source,
            hardware={"link": LinkConfig(lowcmd_topic=topic("rt/lowcmd"), lowstate_topic=topic("rt/lowstate"))},
        )  # fmt: skip
        if bridge is not None:
            bridge.wait_ready()
        try:
            print(json.dumps({"env": "hardware" + ("" if a.robot else " (bridge)"), **run_agent(env, policy, a.seed)},
                             indent=1, default=lambda x: np.asarray(x).tolist()))  # fmt: skip
        finally:
            env.close()  # damping, then the DDS endpoints are closed
    finally:
        if bridge is not None:
            bridge.stop()


if __name__ == "__main__":
    main()
