"""DiffusionAgent: the state–action diffusion planner as a drop-in, SB3-style policy for the bm envs.

Receding horizon (timing at 50 Hz, N = 4 history steps, plan of H = 16 states)::

    obs:      o_{t-4} o_{t-3} o_{t-2} o_{t-1} o_t                   ← from the env (kept in a FIFO)
    states:   s_{t-4} ....................... s_t | s_{t+1} ... s_{t+16}   (planned)
    actions:  a_{t-4} ................ a_{t-1}    | a_t ... a_{t+7}         (planned; a_t.. executed)

Every ``replan_every`` steps the agent encodes the last N+1 observations (``StateRepresentation``, reference frame
= the current step's character frame), samples a plan with the history inpainted, and queues the first
``replan_every`` planned actions; the actions it executes become the next history actions. Before N steps of
history exist, the first observation is repeated and the history actions are the default pose (0).

Guidance: the task is read from the observation (``command`` → :class:`JoystickCost`, ``waypoints_w`` →
:class:`WaypointCost` over the remaining goals, ``obstacles`` → + :class:`ObstacleAvoidanceCost`) unless a cost is
given explicitly; ``guidance_scale = 0`` plans unguided.

Out of distribution: when the normalized history leaves the training range (``|z| > ood_threshold`` anywhere)
or the pelvis is below the fall height, ``agent.info["ood"]`` is set and the agent returns the safe action
(hold the default pose, action 0) instead of a plan. ``info["ood_plans"]`` counts those fallbacks in the episode and
``info["ood_reason"]`` says what triggered the first one: ``"history"`` (with ``info["ood_dim"]``, the state
feature ``s<i>`` or action joint ``a<j>`` that had the largest |z|), ``"height"`` or ``"quaternion"``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bm_envs import g1_constants as g1
from bm_envs.config_dict import from_dict
from bm_envs.experts.command_laws import PurePursuit
from bm_envs.scene.scenario import OBSTACLE_TYPE_IDS
from bm_planner.data.state import OBS_KEYS, StateRepresentation
from bm_planner.guidance.classifier import ClassifierGuidance, GuidanceConfig
from bm_planner.guidance.costs import Cost, JoystickCost, ObstacleAvoidanceCost, WaypointCost, WholeBodyJoystickCost
from bm_planner.guidance.rolling import RollingGuidanceInference
from bm_planner.guidance.sdf import SignedDistanceField
from bm_planner.model.samplers import make_sampler

#: Approximate radius (m) of the sphere around each tracked body, for the obstacle cost.
DEFAULT_BODY_RADIUS = {"torso_link": 0.2, "left_hip_roll_link": 0.12, "right_hip_roll_link": 0.12}


@dataclass
class AgentConfig:
    """Inference settings. ``num_steps``: denoising steps per plan (≤ K); ``sampler``: "ddpm" | "ddim";
    ``replan_every``: control steps executed per plan (1 … action_loss_steps); ``guidance_scale`` ≥ 0;
    ``warm_start``: rolling inference (:class:`RollingGuidanceInference`: the previous plan re-noised to the model's
    warm-start levels, ``warm_steps`` denoising steps, default proportional to ``num_steps``); ``two_stage``: re-sample
    the actions given the final (guided) planned states (see :class:`RollingGuidanceInference`); ``use_command``: with
    a command-conditioned model, condition each plan on the task's velocity command (:meth:`DiffusionAgent.task_command`;
    ``False`` plans with the "no command" embedding); ``command_guidance``: classifier-free guidance weight on that
    command (:class:`~bm_planner.guidance.classifier_free.CommandGuidedDenoiser`; 1 = plain conditioning; every
    backend); ``whole_body_weight``: joystick tasks add this weight times
    :class:`~bm_planner.guidance.costs.WholeBodyJoystickCost` (every tracked body on the path the command implies)
    to the root :class:`JoystickCost`; ``settle_steps``: after a reset, hold the default pose (action
    0) for this many control steps before the first plan, so the planner's history holds real frames (the data never
    shows the padded, motionless history of the very first step); ``noise_scale``: temperature of the start noise of
    every plan, in [0, 1] (1 = the distribution the model was trained on; 0 = the deterministic DDIM path from
    x_K = 0, the plan closest to the model's mean — lower off-policy action error, see the v3 card)."""

    num_steps: int = 10
    sampler: str = "ddim"
    replan_every: int = 2
    warm_start: bool = False
    warm_steps: int | None = None
    two_stage: bool = False
    guidance_scale: float = 0.0
    guidance_max_grad_norm: float = 10.0
    guidance_stop_below: int = 0
    obstacle_weight: float = 1.0
    ood_threshold: float = 12.0
    seed: int = 0
    threads: int | None = None
    use_command: bool = True
    command_guidance: float = 1.0
    settle_steps: int = 0
    whole_body_weight: float = 0.0
    noise_scale: float = 1.0

    @classmethod
    def from_dict(cls, d: dict) -> AgentConfig:
        """From a dict (e.g. JSON); unknown keys are rejected with the valid ones listed."""
        return from_dict(cls, d)

    def __post_init__(self):
        if self.sampler not in ("ddpm", "ddim"):
            raise ValueError(f"AgentConfig.sampler must be 'ddpm' or 'ddim', got {self.sampler=}")
        if not 1 <= self.num_steps <= 1000:
            raise ValueError(f"AgentConfig.num_steps must be in [1, 1000], got {self.num_steps=}")
        if not 1 <= self.replan_every <= 16:
            raise ValueError(f"AgentConfig.replan_every must be in [1, 16], got {self.replan_every=}")
        if not (math.isfinite(self.guidance_scale) and self.guidance_scale >= 0):
            raise ValueError(f"AgentConfig.guidance_scale must be finite and >= 0, got {self.guidance_scale=}")
        if not self.ood_threshold > 0:
            raise ValueError(f"AgentConfig.ood_threshold must be > 0, got {self.ood_threshold=}")
        if not (math.isfinite(self.command_guidance) and self.command_guidance >= 0):
            raise ValueError(f"AgentConfig.command_guidance must be finite and >= 0, got {self.command_guidance=}")
        if not (math.isfinite(self.whole_body_weight) and self.whole_body_weight >= 0):
            raise ValueError(f"AgentConfig.whole_body_weight must be finite and >= 0, got {self.whole_body_weight=}")
        if not (math.isfinite(self.noise_scale) and 0.0 <= self.noise_scale <= 1.0):
            raise ValueError(f"AgentConfig.noise_scale must be in [0, 1], got {self.noise_scale=}")
        if not 0 <= self.settle_steps <= 500:
            raise ValueError(f"AgentConfig.settle_steps must be in [0, 500], got {self.settle_steps=}")


def _shipped_agent_config(ckpt_path, path) -> dict:
    """The inference settings shipped with the checkpoint at ``ckpt_path`` (its config.json's ``agent_config``, or
    for older checkpoints ``agent_config.json`` beside it, in its run directory or in ``path``), or {}."""
    from bm_planner.training.checkpoint import CheckpointError, checkpoint_description, load_checkpoint

    ckpt = load_checkpoint(Path(ckpt_path), load_train_state=False, verify=False)
    try:
        return dict(checkpoint_description(ckpt, path).get("agent_config", {}))
    except CheckpointError:  # no state layout either: not a planner checkpoint this function can describe
        return {}


def _check_command(command) -> np.ndarray:
    c = np.asarray(command, dtype=np.float64)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise ValueError(f"command must be a finite (vx, vy, yaw_rate) triple, got {command!r}")
    return c


def _check_obs(obs) -> dict:
    if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):
        raise ValueError("predict() got an (obs, info) tuple: pass only the observation returned by env.reset()")
    if not isinstance(obs, dict):
        raise TypeError(f"predict() expects a bm env observation dict, got {type(obs).__name__}")
    for k in OBS_KEYS:
        if k not in obs:
            raise ValueError(f"observation lacks {k!r}: use an unwrapped-observation bm env (has {sorted(obs)})")
        v = np.asarray(obs[k])
        if not np.all(np.isfinite(v)):
            raise ValueError(f"obs[{k!r}] contains NaN or inf")
    if np.asarray(obs["root_pos_w"]).shape != (3,):
        raise ValueError(f"predict() takes one unbatched observation; obs['root_pos_w'] has shape "
                         f"{np.shape(obs['root_pos_w'])}")  # fmt: skip
    # task keys: a goal-directed observation must carry all of its keys, each well shaped (a missing or mis-shaped
    # one would silently plan unguided, or with a wrong command)
    if any(k in obs for k in ("goal_b", "waypoints_w", "goal_index")):
        for k in ("goal_b", "waypoints_w"):
            if k not in obs:
                raise ValueError(f"a waypoint observation needs {k!r} (has {sorted(obs)})")
    for k, want in TASK_SHAPES.items():
        if k in obs:
            v = np.asarray(obs[k])
            if v.ndim != len(want) or any(w is not None and n != w for n, w in zip(v.shape, want)):
                raise ValueError(f"obs[{k!r}] must have shape {tuple('M' if w is None else w for w in want)}, got "
                                 f"{v.shape}")  # fmt: skip
            if not np.all(np.isfinite(v)):
                raise ValueError(f"obs[{k!r}] contains NaN or inf")
    return obs


#: Shapes of the task observation keys (``None``: any length).
TASK_SHAPES = {"command": (3,), "goal_b": (2,), "waypoints_w": (None, 3), "obstacles": (None, 8)}


class DiffusionAgent:
    """SB3-style planner policy: ``predict(obs, state=None, episode_start=None, deterministic=True)``.

    Args: ``model`` (:class:`StateActionDiffusionModel`), ``normalizer`` (data normalizer module),
    ``state_rep`` (the data's :class:`StateRepresentation`), ``config`` (:class:`AgentConfig`), ``cost``
    (an explicit :class:`Cost`, else the task is read from observations); ``command`` (3,) (an explicit velocity
    command for a command-conditioned model, else :meth:`task_command` reads it from observations).
    """

    def __init__(self, model, normalizer, state_rep: StateRepresentation, config: AgentConfig | None = None,
                 cost: Cost | None = None, device: str = "cpu", backend: str = "torch",
                 onnx_path: str | Path | None = None, command=None):  # fmt: skip
        self.model = model.to(device).eval()
        self.normalizer = normalizer.to(device)
        self.rep = state_rep
        self.config = config or AgentConfig()
        self.cost = cost
        self.command = None if command is None else _check_command(command)
        self.device = torch.device(device)
        mc = model.config
        if mc.state_dim != state_rep.dim:
            raise ValueError(f"model state_dim {mc.state_dim} != state representation dim {state_rep.dim}")
        self.N = mc.n_history
        if self.config.replan_every > mc.action_horizon:
            raise ValueError(f"replan_every {self.config.replan_every} exceeds the planned actions {mc.action_horizon}")
        self.body_radii = np.array([DEFAULT_BODY_RADIUS.get(b, 0.08) for b in state_rep.bodies])
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.backend = backend  # "torch" | "onnx" | "tensorrt": only the denoiser moves; sampler/guidance stay torch
        if backend != "torch" or onnx_path is not None:
            from bm_planner.backends import with_backend

            self.model = with_backend(
                self.model, backend, onnx_path, self.config.threads or 1, self.normalizer, state_rep
            )
        if self.config.command_guidance != 1.0 and getattr(mc, "command_dim", 0):
            from bm_planner.guidance.classifier_free import CommandGuidedDenoiser

            # a copy: the caller's model keeps its plain denoiser
            self.model = self.model.with_denoiser(
                CommandGuidedDenoiser(self.model.denoiser, self.config.command_guidance)
            )
        self.planner = RollingGuidanceInference(self.model, self.normalizer, state_rep, self.config.num_steps,
                                                self.config.warm_start, warm_steps=self.config.warm_steps,
                                                sampler=make_sampler(self.config.sampler, fast=backend != "torch"),
                                                two_stage=self.config.two_stage,
                                                noise_scale=self.config.noise_scale)  # fmt: skip
        self.path: str | None = None
        self.reset()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, path: str | Path, config: AgentConfig | dict | None = None, device: str = "cpu",
                        backend: str = "torch", **kw):  # fmt: skip
        """Load a checkpoint directory (or a run directory: its latest checkpoint). The state layout comes from
        ``state_layout.json`` next to the checkpoint (or in the run directory), else from the state dimension.
        ``config``: an :class:`AgentConfig`; or a dict of overrides of the inference settings shipped with the
        checkpoint (``agent_config.json`` next to it or in the run directory, written by :meth:`save`); ``None`` =
        the shipped settings, else the :class:`AgentConfig` defaults."""
        from bm_planner.training.checkpoint import checkpoint_description, load_diffusion_model, load_normalizer

        model, ckpt = load_diffusion_model(Path(path), use_ema=True, device=device)
        normalizer = load_normalizer(ckpt)
        desc = checkpoint_description(ckpt, path)  # the checkpoint's own, or the legacy sidecar files
        if not isinstance(config, AgentConfig):
            if "agent_config" not in desc:
                warnings.warn(f"{ckpt.path}: no shipped inference settings (agent_config.json); using the AgentConfig "
                              f"defaults (unguided) with the overrides given", stacklevel=2)  # fmt: skip
            config = AgentConfig.from_dict({**desc.get("agent_config", {}), **(config or {})})
        rep = StateRepresentation(desc["state_layout"]["bodies"])
        if rep.dim != model.config.state_dim:
            raise ValueError(f"{ckpt.path}: state layout of {rep.dim} dims, model state_dim {model.config.state_dim}")
        agent = cls(model, normalizer, rep, config=config, device=device, backend=backend, **kw)
        agent.path = str(ckpt.path)
        return agent

    load = from_pretrained

    def save(self, path: str | Path) -> None:
        """Write the agent config next to a checkpoint (weights are saved by the trainer)."""
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "agent_config.json").write_text(json.dumps(asdict(self.config), indent=2))

    # ------------------------------------------------------------------ episode state
    def reset(self) -> None:
        self._obs: deque[dict] = deque(maxlen=self.N + 1)
        self._acts: deque[np.ndarray] = deque(maxlen=self.N)
        self._queue: deque[np.ndarray] = deque(np.zeros((self.config.settle_steps, g1.NUM_JOINTS), np.float32))
        self._gen = torch.Generator(device="cpu").manual_seed(self.config.seed)
        self._waypoints: WaypointCost | None = None
        self._pursuit: PurePursuit | None = None
        self.last_plan = None
        self._meshes: list | None = None
        self.planner.reset()
        self.info: dict = {"ood": False, "ood_plans": 0, "plan_time_s": 0.0, "plan_time_total_s": 0.0, "plans": 0,
                           "warm_plans": 0}  # fmt: skip

    def set_obstacles(self, obstacles) -> None:
        """The scene's obstacles as the env lists them (``info["obstacles"]`` of ``BM-G1-Obstacle-v0`` at reset:
        dicts, or :class:`bm_envs.scene.scenario.Obstacle` objects), in the order of ``obs["obstacles"]``'s rows. A row
        cannot hold a mesh, so this is how the obstacle cost gets the exact shape of ``"mesh"`` obstacles (without
        it they are their bounding boxes); primitives are read from the rows either way. Cleared by :meth:`reset`,
        so call it after ``reset`` (:func:`bm_envs.rollout.run_episode` does)."""
        from bm_planner.guidance.sdf import placed_mesh

        meshes = []
        for o in obstacles:
            d = o if isinstance(o, dict) else o.to_dict()
            if d.get("type") == "mesh":
                m = getattr(o, "mesh", None)
                meshes.append(m if m is not None else placed_mesh(d))
        self._meshes = meshes

    # ------------------------------------------------------------------ task costs
    def task_cost(self, obs: dict) -> Cost | None:
        """The cost for this observation's task (explicit ``cost`` wins)."""
        if self.cost is not None:
            return self.cost
        cost: Cost | None = None
        if "command" in obs:
            c = np.asarray(obs["command"], dtype=np.float64)
            cost = JoystickCost(c[:2], yaw_rate=float(c[2]))
            if self.config.whole_body_weight > 0:
                wb = WholeBodyJoystickCost.from_obs(obs, c, self.rep.body_ids, self.model.config.horizon)
                cost = cost + self.config.whole_body_weight * wb
        elif "waypoints_w" in obs:
            wp = np.asarray(obs["waypoints_w"], dtype=np.float64)
            remaining = wp[wp[:, 2] > 0, :2]
            if len(remaining):
                cost = WaypointCost(remaining)
        if "obstacles" in obs:
            rows = np.asarray(obs["obstacles"], dtype=np.float64)
            if (rows[:, 0] > 0).any():
                is_mesh = rows[:, 0] == OBSTACLE_TYPE_IDS["mesh"]
                meshes = self._meshes if self._meshes is not None and is_mesh.any() else None
                if meshes is not None and len(meshes) != int(is_mesh.sum()):
                    raise ValueError(f"obs['obstacles'] has {int(is_mesh.sum())} mesh rows, "
                                     f"set_obstacles gave {len(meshes)} meshes")  # fmt: skip
                sdf = SignedDistanceField(rows, meshes=meshes)
                oc = self.config.obstacle_weight * ObstacleAvoidanceCost(sdf, self.body_radii)
                cost = oc if cost is None else cost + oc
        return cost

    def task_command(self, obs: dict) -> np.ndarray | None:
        """The velocity command (vx, vy m/s, yaw rate rad/s) (3,) a command-conditioned model plans with: the explicit
        ``command``, else the joystick env's ``obs["command"]``, else for goal-directed tasks (``obs["goal_b"]``) the
        pure-pursuit law the Stage-1 expert is driven by in the same tasks (:class:`bm_envs.experts.command_laws.PurePursuit`,
        avoiding ``obs["obstacles"]`` when present); ``None`` for an unconditional model, with
        ``use_command=False``, or when the task gives no command (the "no command" embedding)."""
        if not getattr(self.model.config, "command_dim", 0) or not self.config.use_command:
            return None
        if self.command is not None:
            return self.command
        if "command" in obs:
            return _check_command(obs["command"])
        if "goal_b" in obs:
            if self._pursuit is None:
                self._pursuit = PurePursuit(avoid_obstacles="obstacles" in obs)
            return _check_command(self._pursuit(obs))
        return None

    # ------------------------------------------------------------------ acting
    def _history(self, history: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized history states (1, N+1, D) and actions (1, N, A) from the agent's FIFOs, or from ``history`` =
        (observations, executed actions) (a snapshot taken by a planner thread)."""
        obs_seq, act_seq = history if history is not None else (self._obs, self._acts)
        obs = list(obs_seq)[-(self.N + 1) :]
        obs = [obs[0]] * (self.N + 1 - len(obs)) + obs
        window = {k: np.stack([np.asarray(o[k], dtype=np.float64) for o in obs]) for k in OBS_KEYS}
        states = self.rep.encode(window, ref_index=self.N)
        acts = list(act_seq)[-self.N :] if self.N else []
        acts = [np.zeros(g1.NUM_JOINTS)] * (self.N - len(acts)) + acts
        s = torch.as_tensor(states, dtype=torch.float32, device=self.device)[None]
        a = torch.as_tensor(np.stack(acts), dtype=torch.float32, device=self.device)[None]
        return self.normalizer.normalize_states(s), self.normalizer.normalize_actions(a)

    def out_of_distribution(self, hs: torch.Tensor, ha: torch.Tensor, obs: dict) -> bool:
        """Whether the normalized history ``hs`` (1, N+1, D) / ``ha`` (1, N, A) leaves the training range
        (|z| > ``ood_threshold``), the pelvis is below the fall height, or the root quaternion is not a unit one.
        The history actions count only for a model that reads them (``config.history_actions``; v2/v3 hide them, so
        an unusual executed action says nothing about its next plan). Records ``info["history_max_z"]`` (this plan)
        and ``info["history_max_z_episode"]`` (the episode's largest, with its feature ``history_max_z_dim``), and on
        the episode's first firing ``info["ood_reason"]`` (and ``info["ood_dim"]`` for ``"history"``)."""
        reads_actions = getattr(self.model.config, "history_actions", True)
        zs = hs.abs().amax(dim=(0, 1))
        za = ha.abs().amax(dim=(0, 1)) if reads_actions and ha.numel() else hs.new_zeros(0)
        zall = torch.cat([zs, za])
        i = int(zall.argmax())
        z = float(zall[i])
        dim = f"s{i}" if i < zs.numel() else f"a{i - zs.numel()}"
        self.info["history_max_z"] = z
        if z > self.info.get("history_max_z_episode", -1.0):
            self.info["history_max_z_episode"], self.info["history_max_z_dim"] = z, dim
        q_norm = float(np.linalg.norm(np.asarray(obs["root_quat_w"], dtype=np.float64)))
        reason = None
        if abs(q_norm - 1.0) > 0.05:  # not a rotation (e.g. all zeros): the state estimate cannot be trusted
            self.info["bad_quaternion"] = True
            reason = "quaternion"
        elif float(obs["root_pos_w"][2]) < g1.FALL_PELVIS_HEIGHT:
            reason = "height"
        elif z > self.config.ood_threshold:
            reason = "history"
        if reason is not None and "ood_reason" not in self.info:
            self.info["ood_reason"] = reason
            if reason == "history":
                self.info["ood_dim"] = dim
        return reason is not None

    def guidance_config(self) -> GuidanceConfig:
        c = self.config
        return GuidanceConfig(c.guidance_scale, c.guidance_max_grad_norm, c.guidance_stop_below)

    def safe_actions(self, n: int | None = None) -> np.ndarray:
        """The out-of-distribution fallback: hold the default pose (action 0) for ``n`` (default ``replan_every``)
        steps."""
        return np.zeros((n or self.config.replan_every, g1.NUM_JOINTS), dtype=np.float32)

    def _plan(self, obs: dict, n_actions: int | None = None, executed: int | None = None,
              history: tuple | None = None) -> np.ndarray:  # fmt: skip
        """Plan from the current history (or ``history``, see :meth:`_history`); the first ``n_actions`` (default
        ``replan_every``) planned actions (n, 29). ``executed``: control steps since the previous plan's observation
        (its warm start; default ``replan_every``)."""
        n = n_actions or self.config.replan_every
        hs, ha = self._history(history)
        if self.out_of_distribution(hs, ha, obs):
            self.info["ood"] = True
            self.info["ood_plans"] = self.info.get("ood_plans", 0) + 1
            self.planner.reset()
            self.last_plan = None
            return self.safe_actions(n)
        guidance = None
        ref_pos, ref_yaw = self.rep.reference_frame(obs)
        if self.config.guidance_scale > 0:
            cost = self.task_cost(obs)
            if cost is not None:
                guidance = ClassifierGuidance(cost, self.rep, self.normalizer, ref_pos, ref_yaw, self.guidance_config())
        t0 = time.perf_counter()
        executed = (executed or self.config.replan_every) if self.last_plan is not None else None
        cmd = self.task_command(obs)
        cmd = None if cmd is None else torch.as_tensor(cmd, dtype=torch.float32, device=self.device)[None]
        self.info["command"] = None if cmd is None else cmd[0].tolist()
        plan = self.planner.plan(hs, ha, ref_pos[None], [ref_yaw], executed=executed, guidance=guidance,
                                 generator=self._gen, command=cmd)  # fmt: skip
        self.info["plan_time_s"] = time.perf_counter() - t0
        self.info["plan_time_total_s"] += self.info["plan_time_s"]
        self.info["plans"] += 1
        self.info["warm_plans"] += int(self.planner.last_was_warm)
        self.last_plan = plan
        acts = self.normalizer.unnormalize_actions(plan.actions[:, self.N : self.N + n])
        return acts[0].detach().cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        """One action (29,) float32 for one observation; ``(action, state)`` like SB3 (``state`` passes through)."""
        obs = _check_obs(obs)
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        self._obs.append(obs)
        if not self._queue:
            self._queue.extend(self._plan(obs))
        action = self._queue.popleft()
        self._acts.append(action.astype(np.float64))
        return action, state


__all__ = ["AgentConfig", "DiffusionAgent"]
