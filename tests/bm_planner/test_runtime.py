"""Runtime (``bm_planner.runtime``): the latency-compensation index, deterministic simulated latency, the sync and
async runners on the shipped planner, and the threaded runner's planner thread."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest

import bm_envs  # noqa: F401
from bm_planner import SHIPPED_PLANNER
from bm_planner.agent import AgentConfig, DiffusionAgent
from bm_planner.runtime import ActionDelayBuffer, DelayedPlanRunner, ThreadedRunner, TimedPlan, plan_index


@pytest.fixture(scope="module")
def agent():
    return DiffusionAgent.from_pretrained(SHIPPED_PLANNER, AgentConfig(threads=1))


def test_a_plan_three_steps_late_starts_with_its_fourth_action():
    plan = TimedPlan(np.arange(8)[:, None] * np.ones((8, 29)), t_obs=10, t_ready=13)
    assert plan_index(plan, 13) == 3 and plan.actions[plan_index(plan, 13), 0] == 3
    assert plan_index(plan, 13, compensate=False) == 0


def test_action_delay_buffer_is_deterministic_and_in_range():
    a, b = ActionDelayBuffer((0, 100), seed=7), ActionDelayBuffer((0, 100), seed=7)
    da, db = [a.delay_steps() for _ in range(200)], [b.delay_steps() for _ in range(200)]
    assert da == db and set(da) == {1, 2, 3, 4, 5}  # ceil(U(0, 100) ms / 20 ms)
    a.reset()
    assert [a.delay_steps() for _ in range(200)] == da
    assert ActionDelayBuffer((60, 60)).delay_steps() == 3
    assert ActionDelayBuffer((0, 0)).delay_steps() == 0
    for bad in ((50, 10), (-1, 5), (0, float("nan"))):
        with pytest.raises(ValueError, match="latency_ms"):
            ActionDelayBuffer(bad)


def _run(runner, steps=14, seed=0):
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=seed)
    runner.reset()
    log = []
    for t in range(steps):
        action, _ = runner.predict(obs)
        cur = runner._current
        log.append((t, action.copy(), None if cur is None else (cur.t_obs, cur.actions.copy())))
        obs, *_ = env.step(action)
    env.close()
    return log


def test_async_runner_executes_the_compensated_action(agent):
    runner = DelayedPlanRunner(agent, latency_ms=(60, 60), mode="async")
    log = _run(runner)
    for t, action, cur in log:
        if t < 3:  # the first plan is ready at step 3: the default pose until then
            assert cur is None and not action.any()
            continue
        t_obs, acts = cur
        i = t - t_obs
        assert t_obs <= t - 3 and np.array_equal(action, acts[min(i, len(acts) - 1)])
    assert log[3][2][0] == 0 and np.array_equal(log[3][1], log[3][2][1][3])  # 3 steps late: its 4th action
    assert runner.info["latency_steps"] == 3


def test_sync_runner_holds_while_waiting_and_zero_latency_matches_direct(agent):
    runner = DelayedPlanRunner(agent, latency_ms=(40, 40), mode="sync")
    log = _run(runner, steps=12)
    # plan at 0 ready at 2: steps 0-1 wait (default pose), 2-3 execute its first two actions, 4-5 hold, ...
    assert not log[0][1].any() and not log[1][1].any()
    first = log[2][2][1]
    assert np.array_equal(log[2][1], first[0]) and np.array_equal(log[3][1], first[1])
    assert np.array_equal(log[4][1], log[3][1]) and np.array_equal(log[5][1], log[3][1])
    assert runner.info["stalled_steps"] >= 6
    # no latency: the runner is the agent itself, action for action
    direct = []
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    agent.reset()
    for _ in range(8):
        a, _ = agent.predict(obs)
        direct.append(a)
        obs, *_ = env.step(a)
    env.close()
    for mode in ("sync", "async"):
        log = _run(DelayedPlanRunner(agent, (0, 0), mode=mode), steps=8)
        assert all(np.allclose(a, d, atol=1e-6) for (_, a, _), d in zip(log, direct)), mode


def test_threaded_runner_plans_in_its_thread_while_the_loop_runs(agent):
    with ThreadedRunner(agent) as runner:
        env = gym.make("BM-G1-Joystick-v0")
        obs, _ = env.reset(seed=0)
        runner.reset()
        for _ in range(40):
            t0 = time.perf_counter()
            action, _ = runner.predict(obs)
            assert action.shape == (29,) and np.isfinite(action).all()
            obs, *_ = env.step(action)
            time.sleep(max(0.0, 0.02 - (time.perf_counter() - t0)))
        env.close()
        info = runner.info
        assert len(info["plan_latency_ms"]) >= 3 and info["plans"] >= 3
        assert runner._current is not None and runner._current.t_ready >= runner._current.t_obs
    assert runner._thread is None


def test_pipelined_requests_keep_every_plan_inside_its_horizon(agent):
    one = DelayedPlanRunner(agent, latency_ms=(100, 100), mode="async")
    _run(one, steps=20)
    assert one.info["starved_steps"] > 0  # one planner at 5 steps of latency: each plan must last 10 > 8 steps
    piped = DelayedPlanRunner(agent, latency_ms=(100, 100), mode="async", max_in_flight=3)
    log = _run(piped, steps=20)
    assert piped.info["starved_steps"] == 0
    for t, action, cur in log[5:]:
        t_obs, acts = cur
        assert 5 <= t - t_obs <= 6 and np.array_equal(action, acts[t - t_obs])
    with pytest.raises(ValueError, match="max_in_flight"):
        DelayedPlanRunner(agent, max_in_flight=0)
