"""Expert rollouts for the Stage-2 data set: one episode, one shard of episodes (the unit a worker computes).

Each episode runs the Stage-1 locomotion expert in ``BM-G1-Joystick-v0`` (``gym.make`` with domain randomization
and pushes, ``randomize=True``, and per-episode action latency ``latency_ms``) on a command schedule from
:mod:`bm_planner.data.commands`. The expert sees the true observation and outputs the *clean* action ``a_t``, the
label; the robot executes ``a_t + n_t`` where ``n_t`` is Ornstein–Uhlenbeck noise (paper: θ = 0.8, σ = 0.1),
discretized exactly at the control period dt = 0.02 s:

    n_{t+1} = n_t·e^{−θ·dt} + σ·sqrt((1 − e^{−2θ·dt}) / (2θ))·ξ_t,   ξ_t ~ N(0, I),   n_0 = 0,

i.e. the continuous process dn = −θ·n·dt + σ·dW sampled every dt (stationary std σ/sqrt(2θ) ≈ 0.079 action units
= 0.020 rad of joint target; correlation time 1/θ = 1.25 s), independently per joint.

Everything is seeded by ``(config.seed, episode index)`` only, so any worker — local process or Ray task — produces
the same episode. An episode ending in a fall keeps all its steps but flags (``valid`` = False) the last
``fall_margin_s`` before the fall; the data set never uses flagged steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np

import bm_envs  # noqa: F401  (registers the env ids)
from bm_envs import g1_constants as g1
from bm_envs.config_dict import from_dict
from bm_envs.experts.locomotion import EXPERTS, LocomotionExpert
from bm_envs.scene.scenario import parse_scenario
from bm_planner.data.commands import CommandConfig, kind_at, sample_schedule
from bm_planner.data.state import StateRepresentation, resolve_bodies
from bm_planner.data.takeover_config import TakeoverConfig

ENV_ID = "BM-G1-Joystick-v0"


@dataclass(frozen=True)
class CollectConfig:
    """What a data set is made of. Stored in the manifest; a resumed collection must use the same values."""

    seed: int = 0
    expert: str = "fastsac"
    episode_s: float = 20.0
    episodes_per_shard: int = 4
    #: randomization + latency profile (:mod:`bm_envs.wrappers.profiles`); ``None`` = a data set made before
    #: profiles (the paper's ranges with ``friction`` replacing theirs, and ``latency_ms``)
    profile: str | None = "expert"
    randomize: bool = True
    latency_ms: tuple[float, float] | None = None  # replaces the profile's latency range (ms)
    friction: tuple[float, float] | None = None  # floor friction range, replacing the profile's
    randomization: dict | None = None  # other RandomizationConfig fields replacing the profile's
    ou_theta: float = 0.8
    ou_sigma: float = 0.1
    #: start perturbations (recovery data): joint offsets U(±start_joint_noise) rad, root velocity U(±start_root_vel)
    #: m/s in x and y, drawn per episode
    start_joint_noise: float = 0.0
    start_root_vel: float = 0.0
    fall_margin_s: float = 2.0
    bodies: tuple[str, ...] | str = "default"  # state representation of the manifest's statistics
    commands: CommandConfig = field(default_factory=CommandConfig)
    #: expert take-overs from a planner's states (DAgger), :class:`bm_planner.data.takeover_config.TakeoverConfig` fields
    takeover: dict | None = None

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"CollectConfig.seed must be an int >= 0, got {self.seed=}")
        if self.expert not in EXPERTS:
            raise ValueError(f"CollectConfig.expert must be one of {sorted(EXPERTS)}, got {self.expert=}")
        if not (np.isfinite(self.episode_s) and 0.5 <= self.episode_s <= 3600):
            raise ValueError(f"CollectConfig.episode_s must be in [0.5, 3600] s, got {self.episode_s=}")
        if not (isinstance(self.episodes_per_shard, int) and 1 <= self.episodes_per_shard <= 1000):
            raise ValueError(f"CollectConfig.episodes_per_shard must be in [1, 1000], got {self.episodes_per_shard=}")
        if self.latency_ms is None and self.profile is None:
            object.__setattr__(self, "latency_ms", (0.0, 100.0))  # data sets made before profiles
        if self.latency_ms is not None:
            lo, hi = self.latency_ms
            if not (0 <= lo <= hi <= 1000):
                raise ValueError(
                    f"CollectConfig.latency_ms must be (lo, hi) with 0 <= lo <= hi <= 1000, got {self.latency_ms=}"
                )
            object.__setattr__(self, "latency_ms", (float(lo), float(hi)))
        for name in ("start_joint_noise", "start_root_vel"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and 0 <= v <= 2.0):
                raise ValueError(f"CollectConfig.{name} must be in [0, 2], got {v!r}")
        if not (self.ou_theta > 0 and self.ou_sigma >= 0 and np.isfinite(self.ou_theta + self.ou_sigma)):
            raise ValueError(f"CollectConfig needs ou_theta > 0, ou_sigma >= 0, got {self.ou_theta=}, {self.ou_sigma=}")
        if not (0 <= self.fall_margin_s <= 60):
            raise ValueError(f"CollectConfig.fall_margin_s must be in [0, 60] s, got {self.fall_margin_s=}")
        if self.friction is not None:
            f_lo, f_hi = self.friction
            if not (0 < f_lo <= f_hi <= 5):
                raise ValueError(
                    f"CollectConfig.friction must be (lo, hi) with 0 < lo <= hi <= 5, got {self.friction=}"
                )
            if not self.randomize:
                raise ValueError("CollectConfig.friction needs randomize=True (it is a domain-randomization range)")
            object.__setattr__(self, "friction", (float(f_lo), float(f_hi)))
        object.__setattr__(self, "bodies", resolve_bodies(self.bodies))
        self.resolved_profile()  # validates the profile and its overrides
        if self.takeover is not None:
            TakeoverConfig.from_dict(self.takeover)  # validates

    def resolved_profile(self):
        """The :class:`~bm_envs.wrappers.Profile` the episodes run under (profile + overrides)."""
        from bm_envs.wrappers import Profile, RandomizationConfig, resolve_profile

        over = dict(self.randomization or {})
        if self.friction is not None:
            over["friction"] = list(self.friction)
        if self.profile is None:  # before profiles: paper ranges, the friction override, the recorded latency
            base = Profile("legacy", RandomizationConfig(), self.latency_ms)
            return resolve_profile(base, over or None, None, self.randomize)
        return resolve_profile(self.profile, over or None, self.latency_ms, self.randomize)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["commands"] = self.commands.to_dict()
        d["bodies"] = list(self.bodies)
        d["latency_ms"] = None if self.latency_ms is None else list(self.latency_ms)
        # fields added later are absent at their "off" value, so data sets collected before them keep their hash
        for k, off in (("friction", None), ("randomization", None), ("takeover", None), ("start_joint_noise", 0.0),
                       ("start_root_vel", 0.0), ("profile", None)):  # fmt: skip
            if d[k] == off:
                del d[k]
        if self.friction is not None:
            d["friction"] = list(self.friction)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CollectConfig:
        d = dict(d)
        d.setdefault("profile", None)  # a manifest without the key predates profiles
        if "commands" in d:
            d["commands"] = CommandConfig.from_dict(d["commands"])
        return from_dict(cls, d)


def start_options(cfg: CollectConfig, episode: int) -> dict | None:
    """``reset(options=...)`` start perturbations of one episode (``None`` when off); their own random stream."""
    if not (cfg.start_joint_noise or cfg.start_root_vel):
        return None
    rng = np.random.default_rng([cfg.seed, episode, 3])
    j, v = cfg.start_joint_noise, cfg.start_root_vel
    return {"joint_offset": rng.uniform(-j, j, g1.NUM_JOINTS), "root_lin_vel": [*rng.uniform(-v, v, 2), 0.0]}


def episode_rngs(seed: int, episode: int) -> tuple[int, np.random.Generator, np.random.Generator]:
    """(env reset seed, command-schedule generator, action-noise generator) of one episode: f(seed, episode)."""
    env_seed = int(np.random.SeedSequence([seed, episode]).generate_state(1, np.uint64)[0] >> np.uint64(1))
    return (env_seed, np.random.default_rng([seed, episode, 1]), np.random.default_rng([seed, episode, 2]))


class OUNoise:
    """Ornstein–Uhlenbeck noise ``(dim,)`` sampled exactly every ``dt`` s (see the module docstring)."""

    def __init__(self, dim: int, theta: float, sigma: float, dt: float, rng: np.random.Generator):
        self.decay = float(np.exp(-theta * dt))
        self.scale = float(sigma * np.sqrt((1 - np.exp(-2 * theta * dt)) / (2 * theta)))
        self.rng, self.x = rng, np.zeros(dim)

    def __call__(self) -> np.ndarray:
        out = self.x.copy()
        self.x = self.x * self.decay + self.scale * self.rng.standard_normal(self.x.shape)
        return out


class EpisodeRunner:
    """Holds one env and one expert (built once per worker process) and rolls out episodes of a config."""

    def __init__(self, cfg: CollectConfig):
        self.cfg = cfg
        self.env = self.make_env()
        self.base = self.env.unwrapped
        self.expert = LocomotionExpert(cfg.expert)
        self.rep = StateRepresentation(cfg.bodies)
        m = self.base.model
        self.floor = self.base.idx.floor_geom
        self.feet = [m.body(n).id for n in g1.FOOT_BODIES]

    def make_env(self):
        """A collection env: the joystick env under the config's profile, episodes of ``episode_s``."""
        return gym.make(ENV_ID, **self.cfg.resolved_profile().env_kwargs(), scenario=self._scenario([]),
                        time_limit_s=self.cfg.episode_s)  # fmt: skip

    def _scenario(self, segments: list[dict]) -> dict:
        js = [{k: s[k] for k in ("t", "vx", "vy", "yaw_rate")} for s in segments]
        return {"name": "bm-collect", "env": ENV_ID, "time_limit_s": self.cfg.episode_s,
                "start": {"yaw": 0.0, "yaw_noise": float(np.pi)}, "joystick": js}  # fmt: skip

    def _contact(self, base=None) -> np.ndarray:
        base = self.base if base is None else base
        d = base.data
        g = d.contact.geom[: d.ncon]
        on_floor = (g == self.floor).any(axis=1)
        bodies = base.model.geom_bodyid[g]
        return np.array([bool(np.any(on_floor & (bodies == b).any(axis=1))) for b in self.feet])

    def run(self, episode: int) -> dict:
        """Roll out one episode; returns per-step arrays (float32 where real) and per-episode scalars."""
        cfg = self.cfg
        env_seed, cmd_rng, noise_rng = episode_rngs(cfg.seed, episode)
        segments = sample_schedule(cfg.commands, cfg.episode_s, cmd_rng)
        self.base.scenario = parse_scenario(self._scenario(segments))
        noise = OUNoise(g1.NUM_JOINTS, cfg.ou_theta, cfg.ou_sigma, g1.CONTROL_DT, noise_rng)
        obs, info = self.env.reset(seed=env_seed, options=start_options(cfg, episode))
        self.expert.reset()
        friction = float(info.get("randomization", {}).get("friction", np.nan))
        n = self.base.max_steps
        keys = ("root_pos_w", "root_quat_w", "root_lin_vel_w", "root_ang_vel_w", "body_pos_w", "body_lin_vel_w",
                "proprio", "command")  # fmt: skip
        rec = {k: np.zeros((n, *obs[k].shape), np.float32) for k in keys}
        rec["action"] = np.zeros((n, g1.NUM_JOINTS), np.float32)
        rec["action_exec"] = np.zeros((n, g1.NUM_JOINTS), np.float32)
        rec["contact"] = np.zeros((n, 2), bool)
        low, high = self.env.action_space.low, self.env.action_space.high
        L = 0
        while True:
            for k in keys:
                rec[k][L] = obs[k]
            rec["contact"][L] = self._contact()
            a = self.expert.act(obs, obs["command"])
            a_exec = np.clip(a + noise(), low, high)
            rec["action"][L], rec["action_exec"][L] = a, a_exec
            obs, _, terminated, truncated, info = self.env.step(a_exec)
            L += 1
            if terminated or truncated or L >= n:
                break
        ep = {k: v[:L] for k, v in rec.items()}
        fell = bool(info["fell"])
        margin = round(cfg.fall_margin_s / g1.CONTROL_DT)
        ep["valid"] = np.arange(L) < (L - margin if fell else L)
        ep["command_kind"] = kind_at(segments, np.arange(L) * g1.CONTROL_DT)
        ep["meta"] = {"episode_index": episode, "episode_seed": env_seed, "length": L, "fell": fell,
                      "action_delay_ms": float(info["action_delay_ms"]), "friction": friction,
                      "pushes": int(info["pushes"])}  # fmt: skip
        return ep
