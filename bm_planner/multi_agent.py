"""Several robots, one diffusion planner each: the others' bodies enter every robot's guidance as moving spheres.

Team interface (as :class:`bm_envs.multi.policies.ExpertTeam`): ``team.reset()``, ``team.predict(observations,
agents=None) -> actions`` with dicts keyed by agent (observations of agents that just ended may be passed: the
positions of their robots still matter). Two teams share the per-robot logic of :class:`CoordinatedDiffusionAgent`:

* :class:`SeparateTeam` — N planners, each an unchanged :meth:`DiffusionAgent.predict` (one ``model.sample`` of
  batch 1 per robot and replan);
* :class:`BatchedTeam` — the N robots' histories stacked into one batch (B = robots replanning now) for a single
  ``model.sample`` with a per-sample cost (:class:`BatchCost`).

What a robot sees of the others (``others``), as spheres of the others' tracked bodies (the planner's
``StateRepresentation`` bodies, radii ``DiffusionAgent.body_radii``) over its planned future steps::

    "current"            their body positions now, held still over the plan (H = 1)
    "constant_velocity"  p + v·(k+1)·dt for planned step k, from their body velocities now
    "planned"            their last plan's future body positions, aligned in time (shifted by the steps since it
                         was made, the last step held); constant velocity for robots without one

Snapshots of the others are taken before a planning round, so both teams give every robot the same inputs (in a
separate team a robot does not see a plan made earlier in the same control step).

Same plans? A team of one robot plans exactly like :class:`DiffusionAgent` in both modes (same seed → same plan,
tested). With more robots the batched and separate plans differ by their noise only: ``model.sample`` draws the
initial noise of the whole batch from one generator, so sample i of a batch does not get robot i's separate
generator's draw. Given the same noise they agree (guidance and gradient clipping are per sample; the transformer
mixes no information across the batch — tested by changing one sample and checking the others do not move).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch

from bm_envs import g1_constants as g1
from bm_planner.agent import AgentConfig, DiffusionAgent, _check_obs
from bm_planner.data._torch_rot import array_namespace
from bm_planner.guidance.classifier import ClassifierGuidance
from bm_planner.guidance.costs import Cost, MovingObstacleCost, WaypointCost
from bm_planner.guidance.rolling import RollingGuidanceInference
from bm_planner.guidance.sdf import MovingSpheres

OTHERS_MODES = ("current", "constant_velocity", "planned")


class BatchCost(Cost):
    """Per-sample costs for a batch: ``costs[b]`` scores sample b (``None`` → 0). ``cost(traj) -> (B,)``."""

    def __init__(self, costs: Sequence[Cost | None]):
        self.costs = list(costs)
        if not self.costs:
            raise ValueError("BatchCost needs at least one entry")
        keys = {k for c in self.costs if c is not None for k in c.keys}
        self.keys = tuple(sorted(keys)) or ("root_pos_w",)

    def forward(self, traj):
        B = traj[self.keys[0]].shape[0]
        if B != len(self.costs):
            raise ValueError(f"BatchCost has {len(self.costs)} costs for a batch of {B}")
        ref = traj[self.keys[0]]
        out = []
        for b, c in enumerate(self.costs):
            if c is None:
                out.append(ref.new_zeros(1) + 0.0 * ref[b : b + 1].sum())  # keeps the graph for autograd
            else:
                out.append(c({k: v[b : b + 1] for k, v in traj.items()}))
        return torch.cat(out)

    def _value_and_grad(self, traj):
        B = traj[self.keys[0]].shape[0]
        if B != len(self.costs):
            raise ValueError(f"BatchCost has {len(self.costs)} costs for a batch of {B}")
        xp = array_namespace(traj[self.keys[0]])
        value = xp.zeros_like(traj[self.keys[0]][:, 0, 0] if traj[self.keys[0]].ndim > 2 else traj[self.keys[0]][:, 0])
        grads = {k: xp.zeros_like(traj[k]) for k in self.keys}
        for b, c in enumerate(self.costs):
            if c is not None:
                v, g = c.value_and_grad({k: t[b : b + 1] for k, t in traj.items()})
                value[b] = v[0]
                for k, t in g.items():
                    grads[k][b] = t[0]
        return value, grads


class CoordinatedDiffusionAgent(DiffusionAgent):
    """A :class:`DiffusionAgent` whose task cost adds ``robot_weight ×`` :class:`MovingObstacleCost` against
    :attr:`others` (a :class:`MovingSpheres` set by the team before each step, or ``None``). Once all its goals are
    reached it keeps a :class:`WaypointCost` on the last one (stand there) instead of planning unguided."""

    def __init__(self, *args, robot_weight: float = 1.0, **kwargs):
        if not (np.isfinite(robot_weight) and robot_weight >= 0):
            raise ValueError(f"robot_weight must be finite and >= 0, got {robot_weight!r}")
        self.robot_weight = float(robot_weight)
        self.others: MovingSpheres | None = None
        super().__init__(*args, **kwargs)

    def task_cost(self, obs: dict) -> Cost | None:
        cost = super().task_cost(obs)
        if self.cost is None and "waypoints_w" in obs:
            wp = np.asarray(obs["waypoints_w"], dtype=np.float64)
            if not (wp[:, 2] > 0).any() and (wp[:, :2] != 0).any():
                last = wp[np.flatnonzero((wp[:, :2] != 0).any(axis=1))[-1], :2]
                hold = WaypointCost(last[None])
                cost = hold if cost is None else cost + hold
        if self.others is not None and len(self.others) and self.robot_weight > 0:
            mc = self.robot_weight * MovingObstacleCost(self.others, self.body_radii)
            cost = mc if cost is None else cost + mc
        return cost

    def predicted_bodies(self, plan_states: torch.Tensor, obs: dict) -> np.ndarray:
        """World positions (H, K, 3) of the tracked bodies over the future steps of a plan (normalized states
        (1, T, D)) made from observation ``obs``."""
        ref_pos, ref_yaw = self.rep.reference_frame(obs)
        states = self.normalizer.unnormalize_states(plan_states)[:, self.N + 1 :]
        out = self.rep.decode(states, torch.as_tensor(ref_pos, dtype=states.dtype).reshape(1, 3),
                              torch.as_tensor([ref_yaw], dtype=states.dtype))  # fmt: skip
        return out["body_pos_w"][0].detach().cpu().numpy().astype(np.float64)


class _Team:
    """Shared machinery: the agents, the others' snapshots, timing."""

    def __init__(self, agents: dict[str, CoordinatedDiffusionAgent], others: str = "planned"):
        if others not in OTHERS_MODES:
            raise ValueError(f"others must be one of {OTHERS_MODES}, got {others!r}")
        if not agents:
            raise ValueError("a team needs at least one agent")
        self.agents = agents
        self.others_mode = others
        first = next(iter(agents.values()))
        self.horizon = first.model.config.horizon
        self.reset()

    @classmethod
    def from_pretrained(cls, path, agent_ids: Sequence[str], config: AgentConfig | None = None,
                        robot_weight: float = 1.0, device: str = "cpu", **kw):  # fmt: skip
        """Load a checkpoint once; robot i's planner gets ``config`` with ``seed = config.seed + i``."""
        config = config or AgentConfig(guidance_scale=1.0)
        ids = list(agent_ids)
        first = CoordinatedDiffusionAgent.from_pretrained(path, config=config, device=device, robot_weight=robot_weight)
        agents = {ids[0]: first}
        for i, a in enumerate(ids[1:], start=1):
            cfg = dataclasses.replace(config, seed=config.seed + i)
            agents[a] = CoordinatedDiffusionAgent(first.model, first.normalizer, first.rep, cfg, device=device,
                                                  robot_weight=robot_weight)  # fmt: skip
            agents[a].path = first.path
        return cls(agents, **kw)

    def reset(self) -> None:
        for ag in self.agents.values():
            ag.reset()
        self._step = 0
        self._plans: dict[str, tuple[int, np.ndarray]] = {}  # agent -> (step made, future bodies (H, K, 3))
        self._bodies: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # agent -> (body pos, body vel) (K, 3) now
        self._seen: dict[str, int] = {}  # agent -> step of its latest observation
        self.info = {"plan_time_s": 0.0, "plan_time_total_s": 0.0, "plan_calls": 0, "plans": 0,
                     "predict_time_total_s": 0.0}  # fmt: skip

    def set_obstacles(self, infos: dict) -> None:
        """Each robot's ``infos[agent]["obstacles"]`` (the env's reset infos) to its obstacle cost, so that mesh
        obstacles are exact (:meth:`DiffusionAgent.set_obstacles`). Call after :meth:`reset`."""
        for a, ag in self.agents.items():
            if a in infos and "obstacles" in infos[a]:
                ag.set_obstacles(infos[a]["obstacles"])

    # ------------------------------------------------------------------ the others as moving spheres
    def _observe(self, observations: dict) -> None:
        for a, o in observations.items():
            ids = self.agents[a].rep.body_ids if a in self.agents else None
            if ids is None:
                raise ValueError(f"unknown agent {a!r}; this team drives {list(self.agents)}")
            self._bodies[a] = (np.asarray(o["body_pos_w"], dtype=np.float64)[ids],
                               np.asarray(o["body_lin_vel_w"], dtype=np.float64)[ids])  # fmt: skip
            self._seen[a] = self._step

    def _future_of(self, a: str) -> np.ndarray:
        """Robot ``a``'s body positions over the next planned steps: (H, K, 3), or (1, K, 3) for "current"."""
        pos, vel = self._bodies[a]
        if self.others_mode == "current" or self._seen[a] < self._step:  # ended robots stand where they were
            return pos[None]
        if self.others_mode == "planned" and a in self._plans:
            made, fut = self._plans[a]
            idx = np.minimum(np.arange(self.horizon) + (self._step - made), len(fut) - 1)
            return fut[idx]
        k = np.arange(1, self.horizon + 1)[:, None, None]
        return pos[None] + vel[None] * k * g1.CONTROL_DT

    def _set_others(self) -> None:
        futures = {a: self._future_of(a) for a in self._bodies}
        for a, ag in self.agents.items():
            others = [f for b, f in futures.items() if b != a]
            if not others:
                ag.others = None
                continue
            h = max(len(f) for f in others)
            centers = np.concatenate([np.broadcast_to(f, (h, *f.shape[1:])) for f in others], axis=1)
            radii = np.tile(ag.body_radii, len(others))
            ag.others = MovingSpheres(centers, radii)

    def _record_plan(self, a: str, plan_states: torch.Tensor, obs: dict) -> None:
        if self.others_mode == "planned":
            self._plans[a] = (self._step, self.agents[a].predicted_bodies(plan_states, obs))

    # ------------------------------------------------------------------ acting
    def predict(self, observations: dict, agents=None) -> dict:
        t0 = time.perf_counter()
        self._observe(observations)
        self._set_others()
        acting = list(observations if agents is None else agents)
        unknown = [a for a in acting if a not in self.agents or a not in observations]
        if unknown:
            raise ValueError(f"no planner or no observation for agent(s) {unknown}; team: {list(self.agents)}")
        self.info["plan_time_s"] = 0.0
        actions = self._act({a: observations[a] for a in acting})
        self.info["plan_time_total_s"] += self.info["plan_time_s"]
        self.info["predict_time_total_s"] += time.perf_counter() - t0
        self._step += 1
        return actions

    def _act(self, observations: dict) -> dict:
        raise NotImplementedError


class SeparateTeam(_Team):
    """One :meth:`DiffusionAgent.predict` per robot (batch 1 each); ``info["plan_time_s"]`` sums their
    ``model.sample`` times this step."""

    def _act(self, observations):
        actions = {}
        for a, o in observations.items():
            ag = self.agents[a]
            before = ag.info["plans"]
            actions[a], _ = ag.predict(o)
            if ag.info["plans"] > before:
                self.info["plan_time_s"] += ag.info["plan_time_s"]
                self.info["plan_calls"] += 1
                self.info["plans"] += 1
                self._record_plan(a, ag.last_plan.states, o)
        return actions


class BatchedTeam(_Team):
    """All robots that replan this step in one ``model.sample`` (B = their number) with a :class:`BatchCost`;
    noise from one generator seeded with the first robot's ``config.seed``. ``info["plan_time_s"]`` is the one
    call's time. Per robot it reproduces :meth:`DiffusionAgent.predict` (history FIFO, OOD → safe action,
    receding-horizon queue)."""

    def reset(self) -> None:
        super().reset()
        first = next(iter(self.agents.values()))
        self._gen = torch.Generator(device="cpu").manual_seed(first.config.seed)
        # the robots' own sampler settings (steps, sampler, two-stage), always a cold start: the set of robots
        # that replan together changes from call to call, so there is no batch-wide previous plan to carry over
        c = first.config
        self._planner = RollingGuidanceInference(first.model, first.normalizer, first.rep, c.num_steps,
                                                 warm_start=False, sampler=first.planner.sampler,
                                                 two_stage=c.two_stage,
                                                 noise_scale=c.noise_scale)  # fmt: skip

    def _act(self, observations):
        need = []
        for a, o in observations.items():
            ag = self.agents[a]
            ag._obs.append(_check_obs(o))
            if not ag._queue:
                need.append(a)
        if need:
            self._plan_batch(need, observations)
        actions = {}
        for a in observations:
            ag = self.agents[a]
            action = ag._queue.popleft()
            ag._acts.append(action.astype(np.float64))
            actions[a] = action
        return actions

    def _plan_batch(self, need: list[str], observations: dict) -> None:
        first = self.agents[need[0]]
        cfg = first.config
        rows, costs, refs = [], [], []
        for a in need:
            ag, obs = self.agents[a], observations[a]
            hs, ha = ag._history()
            if ag.out_of_distribution(hs, ha, obs):
                ag.info["ood"] = True
                ag._queue.extend(ag.safe_actions())
                continue
            rows.append((a, hs, ha, ag.task_command(obs)))
            costs.append(ag.task_cost(obs) if cfg.guidance_scale > 0 else None)
            refs.append(ag.rep.reference_frame(obs))
        if not rows:
            return
        hs = torch.cat([r[1] for r in rows])
        ha = torch.cat([r[2] for r in rows])
        guidance = None
        ref_pos = np.stack([np.asarray(p, dtype=np.float64) for p, _ in refs])
        ref_yaw = np.array([y for _, y in refs], dtype=np.float64)
        if cfg.guidance_scale > 0 and any(c is not None for c in costs):
            guidance = ClassifierGuidance(BatchCost(costs), first.rep, first.normalizer, ref_pos, ref_yaw,
                                          first.guidance_config())  # fmt: skip
        t0 = time.perf_counter()
        cmds = [r[3] for r in rows]
        command = None  # a conditioned model: robots whose task gives no command are asked to stand (0, 0, 0)
        if any(c is not None for c in cmds):
            command = torch.as_tensor(np.stack([np.zeros(3) if c is None else c for c in cmds]), dtype=torch.float32)
        plan = self._planner.plan(hs, ha, ref_pos, ref_yaw, guidance=guidance, generator=self._gen, command=command)
        dt = time.perf_counter() - t0
        self.info["plan_time_s"] += dt
        self.info["plan_calls"] += 1
        self.info["plans"] += len(rows)
        n = first.N
        for b, (a, *_) in enumerate(rows):
            ag = self.agents[a]
            ag.last_plan = type(plan)(plan.states[b : b + 1], plan.actions[b : b + 1])
            ag.info["plan_time_s"] = dt
            ag.info["plan_time_total_s"] += dt
            ag.info["plans"] += 1
            acts = ag.normalizer.unnormalize_actions(plan.actions[b : b + 1, n : n + ag.config.replan_every])
            ag._queue.extend(acts[0].detach().cpu().numpy().astype(np.float32))
            self._record_plan(a, ag.last_plan.states, observations[a])


def load_team(path, agent_ids: Sequence[str], batched: bool = True, config: AgentConfig | None = None,
              others: str = "planned", robot_weight: float = 1.0, device: str = "cpu") -> _Team:  # fmt: skip
    """A :class:`BatchedTeam` or :class:`SeparateTeam` of planners loaded from checkpoint ``path``."""
    cls = BatchedTeam if batched else SeparateTeam
    return cls.from_pretrained(path, agent_ids, config=config, robot_weight=robot_weight, device=device,
                               others=others)  # fmt: skip


__all__ = [
    "OTHERS_MODES",
    "BatchCost",
    "BatchedTeam",
    "CoordinatedDiffusionAgent",
    "MovingSpheres",
    "SeparateTeam",
    "load_team",
]  # fmt: skip
