"""Domain randomization and random pushes, drawn per episode (physics parameters) or per interval (pushes).

Every field of :class:`RandomizationConfig` is a ``(lo, hi)`` uniform range; ``None`` switches a term off.
Defaults follow BeyondMimic's Stage-1 ranges (the ``paper`` profile of :mod:`bm_envs.wrappers.profiles`) where it
publishes one; the terms it does not randomize or publish (marked *bm*) use small ranges of our choosing. The
named profiles (``expert``, the default of every CLI, ``paper``, ``off``) live in :mod:`bm_envs.wrappers.profiles`.

===========================  ====================  ==========================================================
field                        default               applied to
===========================  ====================  ==========================================================
``friction``                 (0.3, 1.2)            sliding friction of the floor and of the foot/floor contact
                                                   pairs (paper's dynamic range; MuJoCo has one coefficient)
``mass_scale``               (0.95, 1.05) *bm*     every robot link's mass and inertia, independently
``torso_com_x``              (-0.025, 0.025)       torso_link centre of mass offset (m)
``torso_com_yz``             (-0.05, 0.05)         same, y and z each (m)
``base_mass_add``            off                   mass added to the pelvis (kg), inertia scaled with it
``kp_scale`` / ``kd_scale``  (0.9, 1.1) *bm*       PD gains, per joint
``armature_scale``           (0.95, 1.05) *bm*     reflected rotor inertia, per joint
``joint_damping``            (0.0, 0.05) *bm*      added viscous damping, per joint (N·m·s/rad)
``default_pos_offset``       (-0.01, 0.01)         calibration offset of the default pose, per joint (rad)
``push_interval_s``          (1.0, 3.0)            time between pushes (s)
``push_lin_vel_xy``          (-0.5, 0.5)           root velocity change, x and y each (m/s)
``push_lin_vel_z``           (-0.2, 0.2)           (m/s)
``push_ang_vel_rp``          (-0.52, 0.52)         roll and pitch rate change (rad/s)
``push_ang_vel_yaw``         (-0.78, 0.78)         yaw rate change (rad/s)
===========================  ====================  ==========================================================

:func:`randomize_model` is a pure function of (nominal values, config, rng) that writes into the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import mujoco
import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.config_dict import from_dict
from bm_envs.wrappers._seeding import SeededWrapper

Range = tuple[float, float] | None


@dataclass(frozen=True)
class RandomizationConfig:
    friction: Range = (0.3, 1.2)
    mass_scale: Range = (0.95, 1.05)
    torso_com_x: Range = (-0.025, 0.025)
    torso_com_yz: Range = (-0.05, 0.05)
    base_mass_add: Range = None
    kp_scale: Range = (0.9, 1.1)
    kd_scale: Range = (0.9, 1.1)
    armature_scale: Range = (0.95, 1.05)
    joint_damping: Range = (0.0, 0.05)
    default_pos_offset: Range = (-0.01, 0.01)
    push_interval_s: Range = (1.0, 3.0)
    push_lin_vel_xy: Range = (-0.5, 0.5)
    push_lin_vel_z: Range = (-0.2, 0.2)
    push_ang_vel_rp: Range = (-0.52, 0.52)
    push_ang_vel_yaw: Range = (-0.78, 0.78)

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if not isinstance(v, (tuple, list, np.ndarray)) or len(v) != 2 or not all(np.isfinite(v)) or v[0] > v[1]:
                raise ValueError(f"RandomizationConfig.{f.name} must be (lo, hi) with lo <= hi, got {v!r}")
        for name in ("friction", "mass_scale", "kp_scale", "kd_scale", "armature_scale", "push_interval_s"):
            v = getattr(self, name)
            if v is not None and v[0] <= 0:
                raise ValueError(f"RandomizationConfig.{name} must be positive, got {v!r}")
        if self.joint_damping is not None and self.joint_damping[0] < 0:
            raise ValueError(f"RandomizationConfig.joint_damping must be >= 0, got {self.joint_damping!r}")

    @classmethod
    def from_dict(cls, d: dict) -> RandomizationConfig:
        return from_dict(cls, {k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in d.items()}, "randomization")

    def to_dict(self) -> dict:
        return asdict(self)


def nominal_params(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    """Copies of the model fields that :func:`randomize_model` changes."""
    return {
        name: getattr(model, name).copy()
        for name in ("geom_friction", "pair_friction", "body_mass", "body_inertia", "body_ipos",
                     "actuator_gainprm", "actuator_biasprm", "dof_armature", "dof_damping")
    }  # fmt: skip


def randomize_model(model, env, nominal: dict[str, np.ndarray], cfg: RandomizationConfig, rng) -> dict:
    """Write one draw of ``cfg`` into ``model`` starting from ``nominal``; return what was drawn."""
    for k, v in nominal.items():
        getattr(model, k)[:] = v
    idx = env.idx
    u = lambda r, n=None: rng.uniform(r[0], r[1], n)  # noqa: E731
    drawn: dict = {}
    if cfg.friction:
        mu = float(u(cfg.friction))
        model.geom_friction[idx.floor_geom, 0] = mu
        model.pair_friction[:, :2] = mu
        drawn["friction"] = mu
    if cfg.mass_scale:
        s = u(cfg.mass_scale, len(idx.body))
        model.body_mass[idx.body] *= s
        model.body_inertia[idx.body] *= s[:, None]
        drawn["mass_scale"] = s
    com = np.zeros(3)
    if cfg.torso_com_x:
        com[0] = u(cfg.torso_com_x)
    if cfg.torso_com_yz:
        com[1:] = u(cfg.torso_com_yz, 2)
    model.body_ipos[idx.torso] += com
    if cfg.base_mass_add:
        add = float(u(cfg.base_mass_add))
        m0 = model.body_mass[idx.pelvis]
        if m0 + add <= 0.1 * m0:
            raise ValueError(f"base_mass_add {add:.2f} kg leaves the pelvis with less than 10 % of its {m0:.2f} kg")
        model.body_inertia[idx.pelvis] *= (m0 + add) / m0
        model.body_mass[idx.pelvis] = m0 + add
        drawn["base_mass_add"] = add
    drawn["torso_com_offset"] = com
    n = g1.NUM_JOINTS
    kp = g1.KP * (u(cfg.kp_scale, n) if cfg.kp_scale else 1.0)
    kd = g1.KD * (u(cfg.kd_scale, n) if cfg.kd_scale else 1.0)
    model.actuator_gainprm[:, 0] = kp
    model.actuator_biasprm[:, 1] = -kp
    model.actuator_biasprm[:, 2] = -kd
    drawn["kp"], drawn["kd"] = kp, kd
    if cfg.armature_scale:
        model.dof_armature[idx.qvel_joint] *= u(cfg.armature_scale, n)
    if cfg.joint_damping:
        model.dof_damping[idx.qvel_joint] += u(cfg.joint_damping, n)
    drawn["default_pos_offset"] = u(cfg.default_pos_offset, n) if cfg.default_pos_offset else np.zeros(n)
    return drawn


class DomainRandomization(SeededWrapper):
    """Randomize physics at every reset and push the robot at random intervals (see module docstring).

    ``info["randomization"]`` (at reset) holds the drawn parameters; pushes are counted in ``info["pushes"]``.
    """

    salt = 2

    def __init__(self, env, config: RandomizationConfig | dict | None = None):
        super().__init__(env)
        if isinstance(config, dict):
            config = RandomizationConfig.from_dict(config)
        if config is not None and not isinstance(config, RandomizationConfig):
            raise ValueError(f"randomize must be True, a dict of ranges or a RandomizationConfig, got {config!r}")
        self.config = config or RandomizationConfig()
        self._nominal = nominal_params(env.unwrapped.model)

    def reset(self, *, seed=None, options=None):
        self._seed_rng(seed)
        base = self.env.unwrapped
        drawn = randomize_model(base.model, base, self._nominal, self.config, self.rng)
        base.joint_offset = drawn["default_pos_offset"]
        obs, info = self.env.reset(seed=seed, options=options)
        self._next_push = self._draw_interval()
        info["randomization"] = drawn
        return obs, info

    def _draw_interval(self) -> float:
        iv = self.config.push_interval_s
        return np.inf if iv is None else float(self.rng.uniform(*iv))

    def step(self, action):
        out = self.env.step(action)
        base = self.env.unwrapped
        if base.time + 1e-9 >= self._next_push:
            c = self.config
            lin = np.zeros(3)
            ang = np.zeros(3)
            if c.push_lin_vel_xy:
                lin[:2] = self.rng.uniform(*c.push_lin_vel_xy, 2)
            if c.push_lin_vel_z:
                lin[2] = self.rng.uniform(*c.push_lin_vel_z)
            if c.push_ang_vel_rp:
                ang[:2] = self.rng.uniform(*c.push_ang_vel_rp, 2)
            if c.push_ang_vel_yaw:
                ang[2] = self.rng.uniform(*c.push_ang_vel_yaw)
            base.apply_push(lin, ang)
            self._next_push = base.time + self._draw_interval()
            out[4]["pushes"] = base._push_count  # the push lands after this step's info was built
        return out
