"""Multi-robot scene: N copies of the G1 attached with name prefixes ``r0/`` … ``r{N-1}/`` into one ``MjSpec``.

Everything else matches :mod:`bm_envs.scene.builder`: the same floor (named ``floor``), light and checker material, the
same PD servos (kp/kd/torque limits from :mod:`bm_envs.g1_constants`, ``ctrl`` = joint target), the same head
site, :data:`~bm_envs.scene.builder.MAX_OBSTACLES` single-geom obstacle bodies moved by
:func:`bm_envs.scene.builder.place_obstacles`, and :data:`~bm_envs.scene.builder.MAX_GOALS` goal discs per robot (tinted per robot)
for :func:`bm_envs.scene.builder.place_goals`. Robot collision geoms keep contype/conaffinity 1, so robots collide with each
other, with obstacles and with the floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import mujoco
import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.scene.builder import (
    _PARK,
    MAX_GOALS,
    MAX_OBSTACLES,
    add_mesh_obstacles,
    add_stage,
    load_robot_spec,
    mesh_obstacle_geoms,
)  # fmt: skip

#: goal disc colours per robot (RGBA), cycled
AGENT_COLORS = np.array([[0.1, 0.9, 0.2], [0.2, 0.5, 1.0], [1.0, 0.8, 0.1], [0.9, 0.2, 0.8],
                         [0.1, 0.9, 0.9], [1.0, 0.4, 0.3], [0.6, 0.4, 1.0], [0.9, 0.9, 0.9]])  # fmt: skip


def agent_prefix(i: int) -> str:
    return f"r{i}/"


@dataclass
class AgentIndex:
    """Ids of one robot in the compiled multi-robot model (same meaning as :class:`bm_envs.scene.builder.SceneIndex`)."""

    root_qpos: int  # qpos address of the free joint (x, y, z, qw, qx, qy, qz)
    root_qvel: int  # dof address of the free joint (vx, vy, vz, wx, wy, wz)
    qpos_joint: np.ndarray  # (29,) Unitree order
    qvel_joint: np.ndarray  # (29,)
    actuators: np.ndarray  # (29,) actuator ids, Unitree order
    body: np.ndarray  # (NUM_BODIES,) body ids, g1.BODY_NAMES order
    pelvis: int
    head_site: int
    geoms: np.ndarray  # collision geoms of this robot
    goal_sites: np.ndarray  # (MAX_GOALS,) site ids


@dataclass
class MultiSceneIndex:
    agents: list[AgentIndex]
    floor_geom: int
    obstacle_geoms: np.ndarray  # (MAX_OBSTACLES,)
    geom_agent: np.ndarray  # (ngeom,) owning robot of each collision geom, -1 for non-robot geoms
    init_pelvis_height: float
    mesh_geoms: tuple[np.ndarray, ...] = field(default_factory=tuple)  # collision geoms of each mesh obstacle

    def goal_index(self, i: int) -> SimpleNamespace:
        """A stand-in for ``SceneIndex`` exposing robot ``i``'s goal sites (for :func:`bm_envs.scene.builder.place_goals`)."""
        return SimpleNamespace(goal_sites=self.agents[i].goal_sites)


def build_multi_model(n: int, obstacles=()) -> tuple[mujoco.MjModel, MultiSceneIndex]:
    """Compile the scene with ``n`` G1s (parked 2 m apart along y; the env places them at reset) and the
    ``"mesh"`` obstacles among ``obstacles`` (:func:`bm_envs.scene.builder.add_mesh_obstacles`)."""
    spec = mujoco.MjSpec()
    add_stage(spec)
    add_mesh_obstacles(spec, obstacles)
    wb = spec.worldbody
    for i in range(n):
        rgba = [*AGENT_COLORS[i % len(AGENT_COLORS)], 0.5]
        for k in range(MAX_GOALS):
            wb.add_site(name=f"{agent_prefix(i)}goal_{k}", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                        size=[0.3, 0.005, 0], pos=_PARK, rgba=rgba, group=0)  # fmt: skip
        robot = load_robot_spec()
        spec.attach(robot, prefix=agent_prefix(i), frame=wb.add_frame(pos=[0.0, 2.0 * i, 0.0]))
    model = spec.compile()
    return model, _index(model, n)


def _index(model: mujoco.MjModel, n: int) -> MultiSceneIndex:
    geom_agent = np.full(model.ngeom, -1, dtype=np.int64)
    agents = []
    for i in range(n):
        p = agent_prefix(i)
        jid = [model.joint(p + name).id for name in g1.JOINT_NAMES]
        free = model.joint(p + "floating_base_joint").id
        body = np.array([model.body(p + name).id for name in g1.BODY_NAMES])
        bodies = set(body.tolist())
        geoms = np.array([g for g in range(model.ngeom) if model.geom_bodyid[g] in bodies and model.geom_contype[g]])
        geom_agent[geoms] = i
        agents.append(
            AgentIndex(
                root_qpos=int(model.jnt_qposadr[free]),
                root_qvel=int(model.jnt_dofadr[free]),
                qpos_joint=np.array([model.jnt_qposadr[j] for j in jid]),
                qvel_joint=np.array([model.jnt_dofadr[j] for j in jid]),
                actuators=np.array([model.actuator(p + name).id for name in g1.JOINT_NAMES]),
                body=body,
                pelvis=model.body(p + "pelvis").id,
                head_site=model.site(p + "head").id,
                geoms=geoms,
                goal_sites=np.array([model.site(f"{p}goal_{k}").id for k in range(MAX_GOALS)]),
            )
        )
    # standing height of the default pose (as bm_envs.scene.builder._index computes it, on robot 0)
    a = agents[0]
    data = mujoco.MjData(model)
    data.qpos[a.qpos_joint] = g1.DEFAULT_JOINT_POS
    data.qpos[a.root_qpos : a.root_qpos + 7] = [0, 0, 0, 1, 0, 0, 0]
    mujoco.mj_kinematics(model, data)
    feet = [model.body(agent_prefix(0) + b).id for b in ("left_foot_contact_point", "right_foot_contact_point")]
    init_h = -min(data.xpos[b][2] for b in feet) - 0.001
    return MultiSceneIndex(
        agents=agents,
        floor_geom=model.geom("floor").id,
        obstacle_geoms=np.array([model.geom(f"obstacle_{i}").id for i in range(MAX_OBSTACLES)]),
        geom_agent=geom_agent,
        init_pelvis_height=float(init_h),
        mesh_geoms=mesh_obstacle_geoms(model),
    )
