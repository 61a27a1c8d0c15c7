"""MultiG1Env: PettingZoo API tests (parallel and AEC), seeding, parity with the single env, contacts, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pettingzoo")
from pettingzoo.test import api_test, parallel_api_test

import bm_envs  # noqa: F401  (registers the single envs)
from bm_envs.multi import MultiG1Env, parallel_env, swap_scenario
from bm_envs.multi import env as aec_env
from bm_envs.scene.scenario import ScenarioError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PettingZoo warns about Dict observation spaces


@pytest.fixture(scope="module")
def env2():
    env = MultiG1Env(num_robots=2)
    yield env
    env.close()


def _zero(env):
    return {a: np.zeros(29, dtype=np.float32) for a in env.agents}


def test_parallel_api(env2):
    parallel_api_test(env2, num_cycles=150)


def test_aec_api_through_converter():
    env = aec_env(num_robots=2)
    api_test(env, num_cycles=40)
    env.close()


def test_reset_returns_every_agent_with_the_single_env_spaces(env2):
    single = gym.make("BM-G1-Waypoint-v0")
    obs, infos = env2.reset(seed=0)
    assert env2.agents == env2.possible_agents == ["robot_0", "robot_1"]
    for a in env2.agents:
        assert env2.observation_space(a) == single.observation_space
        assert env2.action_space(a) == single.action_space
        assert env2.observation_space(a).contains(obs[a])
        assert not infos[a]["fell"] and not infos[a]["team_success"]
    single.close()


def test_obstacle_scene_gets_the_obstacle_env_space():
    sc = swap_scenario(2, obstacles=[{"type": "cylinder", "pos": [0.0, 1.5], "radius": 0.2}])
    env = MultiG1Env(scenario=sc)
    single = gym.make("BM-G1-Obstacle-v0")
    obs, _ = env.reset(seed=1)
    assert env.observation_space("robot_1") == single.observation_space
    assert obs["robot_1"]["obstacles"][0, 0] == 3 and np.allclose(obs["robot_1"]["obstacles"][0, 1:3], [0.0, 1.5])
    env.close()
    single.close()


def test_robot_matches_the_single_env_step_for_step(env2):
    """Robot 0 far from robot 1 sees exactly what the single waypoint env gives for the same start and actions."""
    sc = {"name": "parity", "env": "BM-G1-Waypoint-v0", "time_limit_s": 20.0,
          "start": {"xy": [-2.5, 0.0], "yaw": 0.3}, "waypoints": [[2.5, 0.0]]}  # fmt: skip
    single = gym.make("BM-G1-Waypoint-v0", scenario=sc).unwrapped
    o1, _ = single.reset(seed=0)
    obs, _ = env2.reset(seed=0, options={"starts": [[-2.5, 0.0, 0.3], [3.0, 4.0, 0.0]]})
    rng = np.random.default_rng(0)
    for t in range(12):
        for k in o1:
            np.testing.assert_array_equal(obs["robot_0"][k], o1[k], err_msg=f"{k} at step {t}")
        a = rng.uniform(-0.3, 0.3, 29).astype(np.float32)
        o1, r1, *_ = single.step(a)
        obs, r, *_ = env2.step({"robot_0": a, "robot_1": np.zeros(29, dtype=np.float32)})
        assert r["robot_0"] == pytest.approx(r1)
    single.close()


def _rollout(env, seed, steps=15):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    trace = [np.concatenate([np.r_[obs[a]["proprio"], obs[a]["root_pos_w"]] for a in env.agents])]
    for _ in range(steps):
        obs, *_ = env.step({a: rng.uniform(-0.2, 0.2, 29) for a in env.agents})
        trace.append(np.concatenate([np.r_[o["proprio"], o["root_pos_w"]] for o in obs.values()]))
    return np.stack(trace), env.state()


def test_seeded_resets_are_deterministic(env2):
    t1, s1 = _rollout(env2, seed=5)
    t2, s2 = _rollout(env2, seed=5)
    t3, _ = _rollout(env2, seed=6)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(t1[0], t3[0])  # start noise differs


@pytest.mark.parametrize("sep", [0.35, 1.5])
def test_touching_robots_count_one_collision(env2, sep):
    env2.reset(seed=0, options={"starts": [[0.0, 0.0, 0.0], [0.0, sep, 0.0]]})
    for _ in range(3):
        _, _, term, _, infos = env2.step(_zero(env2))
    touching = sep < 0.5
    for a in ("robot_0", "robot_1"):
        assert infos[a]["robot_contact"] is touching
        assert infos[a]["robot_collisions"] == int(touching)  # one onset, however many steps it lasts
        assert infos[a]["collided"] is touching and not infos[a]["success"]
        assert infos[a]["reward_terms"]["robot_collision"] == (-1.0 if touching else 0.0)
    assert infos["robot_0"]["team_robot_collisions"] == int(touching)
    assert not any(term.values())  # contact does not end the episode by default


def test_collision_terminates_when_asked():
    env = MultiG1Env(num_robots=2, terminate_on_collision=True)
    env.reset(seed=0, options={"starts": [[0.0, 0.0, 0.0], [0.0, 0.35, 0.0]]})
    _, _, term, _, _ = env.step(_zero(env))
    assert term == {"robot_0": True, "robot_1": True} and env.agents == []
    env.close()


def test_fallen_agent_leaves_and_team_fails(env2):
    env2.reset(seed=0)
    gone, infos = set(), {}
    for _ in range(150):  # holding the default pose without balance control falls within ~1.5 s
        _, _, term, _, info = env2.step(_zero(env2))
        infos.update(info)
        gone |= {a for a, t in term.items() if t}
        if not env2.agents:
            break
    assert gone and all(infos[a]["fell"] for a in gone)
    assert not set(env2.agents) & gone
    assert infos["robot_0"]["team_falls"] >= 1 and not infos["robot_0"]["team_success"]


def test_all_reached_ends_the_episode_with_team_success():
    sc = swap_scenario(2, radius_m=1.0, xy_noise=0.0, yaw_noise=0.0)
    sc["goal_radius_m"] = 2.2  # each robot starts within reach of its goal (2 m away)
    env = MultiG1Env(scenario=sc)
    env.reset(seed=0)
    _, _, term, _, infos = env.step(_zero(env))
    assert all(term.values()) and env.agents == []
    assert all(i["reached"] and i["success"] and i["team_success"] for i in infos.values())
    env.close()


def test_truncation_at_time_limit():
    env = MultiG1Env(num_robots=2, time_limit_s=0.04)
    env.reset(seed=0)
    env.step(_zero(env))
    _, _, term, trunc, _ = env.step(_zero(env))
    assert all(trunc.values()) and not any(term.values()) and env.agents == []
    env.close()


def test_bad_inputs_raise_clear_errors(env2):
    with pytest.raises(ValueError, match="num_robots"):
        MultiG1Env(num_robots=9)
    with pytest.raises(ValueError, match="num_robots"):
        MultiG1Env(num_robots=1)
    with pytest.raises(ValueError, match="has 2 robots"):
        MultiG1Env(scenario="swap-2", num_robots=3)
    with pytest.raises(ValueError, match="render_mode"):
        MultiG1Env(render_mode="ascii")
    env2.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env2.step({"robot_0": np.zeros(28), "robot_1": np.zeros(29)})
    with pytest.raises(ValueError, match="NaN"):
        env2.step({"robot_0": np.full(29, np.nan), "robot_1": np.zeros(29)})
    with pytest.raises(ValueError, match="missing"):
        env2.step({"robot_0": np.zeros(29)})
    with pytest.raises(ValueError, match="unknown agent"):
        env2.step({"robot_0": np.zeros(29), "robot_1": np.zeros(29), "robot_7": np.zeros(29)})
    with pytest.raises(ValueError, match="starts"):
        env2.reset(seed=0, options={"starts": [[0.0, 0.0, 0.0]]})


def test_scenario_validation():
    sc = swap_scenario(2)
    sc["agents"][1]["start"]["xy"] = [-2.2, 0.0]
    with pytest.raises(ScenarioError, match="min_separation_m"):
        MultiG1Env(scenario=sc)
    with pytest.raises(ScenarioError, match="agents"):
        MultiG1Env(scenario={**swap_scenario(2), "agents": swap_scenario(2)["agents"][:1]})
    with pytest.raises(ScenarioError, match=r"agents\[0\]"):
        MultiG1Env(scenario=swap_scenario(2, obstacles=[{"type": "cylinder", "pos": [-2.5, 0.0], "radius": 0.3}]))
    with pytest.raises(ValueError, match="n must be"):
        swap_scenario(9)


@pytest.mark.parametrize("n", [3, 4])
def test_swap_scenario_crosses_at_the_centre(n):
    sc = swap_scenario(n)
    for a in sc["agents"]:
        s, g = np.array(a["start"]["xy"]), np.array(a["waypoints"][0])
        np.testing.assert_allclose(s + g, 0.0, atol=1e-5)  # goal diametrically opposite: every path crosses (0, 0)
        yaw = a["start"]["yaw"]
        assert np.dot([np.cos(yaw), np.sin(yaw)], g - s) > 0  # facing the goal


def test_four_robots_step(tmp_path):
    env = parallel_env(num_robots=4)
    obs, _ = env.reset(seed=0)
    assert len(obs) == 4 and env.state().shape == env.state_space.shape
    obs, *_ = env.step(_zero(env))
    xy = np.array([obs[a]["root_pos_w"][:2] for a in env.possible_agents])
    assert np.min(np.linalg.norm(xy[:, None] - xy[None], axis=-1) + 10 * np.eye(4)) > 2.0
    env.close()


def test_rgb_array_render():
    env = MultiG1Env(num_robots=2, render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    frame = env.render()  # MuJoCo's EGL backend, set in tests/conftest.py
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.close()


def test_example_scenario_files_match_the_presets():
    import json
    from pathlib import Path

    from bm_envs.multi import load_multi_scenario

    root = Path(__file__).resolve().parents[3] / "examples" / "scenarios"
    for n in (2, 4):
        assert json.loads((root / f"swap-{n}.json").read_text()) == swap_scenario(n)
        assert load_multi_scenario(str(root / f"swap-{n}.json")).num_agents == n
    pillars = load_multi_scenario(str(root / "swap-4-pillars.json"))
    assert pillars.agent_env == "BM-G1-Obstacle-v0" and len(pillars.obstacles) == 2
