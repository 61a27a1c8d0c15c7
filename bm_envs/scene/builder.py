"""Build the MuJoCo scene (floor, G1, goal markers, obstacle slots) with ``mujoco.MjSpec``.

The robot MJCF is the pinned holosoma G1 (see :mod:`bm_envs.assets`). Its ``motor`` actuators are turned into
joint-space PD servos evaluated by MuJoCo at every physics step (2 ms): ``τ = kp·(q* − q) − kd·q̇``, clamped to
the motor's torque limit, with ``ctrl = q*`` the joint position target (rad). This is the same PD law the G1's
motor drivers run on hardware (kp/kd sent per joint in ``LowCmd``).

Obstacles change per episode, so the scene holds :data:`MAX_OBSTACLES` pre-allocated obstacle slots (one geom
in a static body of its own each); :func:`place_obstacles` sets their type, pose and size at reset (no
recompilation). Unused slots are parked far away with collisions disabled. Mesh obstacles
(:mod:`bm_envs.scene.mesh_obstacles`) are fixed by the scenario, so they are compiled into the model instead
(:func:`add_mesh_obstacles`): one static body per mesh with the mesh as a visual geom and its convex pieces as
collision geoms (hidden, group 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.assets import asset_path
from bm_envs.scene.scenario import Obstacle

MAX_OBSTACLES = 16  # in total, any mix of primitive types
MAX_GOALS = 8
_PARK = np.array([0.0, 0.0, -10.0])  # below the floor, invisible, collisions off
_TYPES = {
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
}
OBSTACLE_CONTYPE = 2  # obstacles collide with the robot's collision geoms (conaffinity 1), not the floor


@dataclass
class SceneIndex:
    """Ids into the compiled model used by the envs."""

    qpos_joint: np.ndarray  # (29,) qpos addresses of the actuated joints, Unitree order
    qvel_joint: np.ndarray  # (29,) dof addresses
    body: np.ndarray  # (NUM_BODIES,) body ids, g1.BODY_NAMES order
    pelvis: int
    torso: int
    floor_geom: int
    robot_geoms: np.ndarray  # collision geoms of the robot
    obstacle_geoms: np.ndarray  # (MAX_OBSTACLES,) geom ids of the obstacle slots
    goal_sites: np.ndarray  # (MAX_GOALS,) site ids
    head_site: int
    init_pelvis_height: float  # pelvis height (m) at which the default pose stands with feet on the floor
    mesh_geoms: tuple[np.ndarray, ...] = field(default_factory=tuple)  # collision geoms of each mesh obstacle


def add_stage(spec: mujoco.MjSpec) -> None:
    """Render settings, the checker floor (named "floor": the MJCF's foot/floor contact pairs refer to it), a light
    and the :data:`MAX_OBSTACLES` parked obstacle slots. Shared by the single- and multi-robot scenes."""
    spec.option.timestep = g1.PHYSICS_DT
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 720
    spec.stat.extent = 2.0  # the camera clip planes scale with it; parked geoms must not inflate it
    spec.stat.center = [0.0, 0.0, 0.7]

    spec.add_texture(
        name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.22, 0.3, 0.38], rgb2=[0.14, 0.2, 0.27], width=256, height=256, mark=mujoco.mjtMark.mjMARK_EDGE,
        markrgb=[0.7, 0.7, 0.7],
    )  # fmt: skip
    mat = spec.add_material(name="grid", texrepeat=[1, 1], texuniform=True, reflectance=0.1)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"
    wb = spec.worldbody
    wb.add_light(pos=[0, 0, 4], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, diffuse=[0.7, 0.7, 0.7])
    wb.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], material="grid")
    # Each obstacle slot is a static body of its own. Geoms moved at runtime must not sit in a multi-geom body:
    # MuJoCo's midphase culls with per-body BVHs built at compile time (from the parked, non-colliding slots),
    # so obstacles placed in the world body never touch anything. A single-geom body without a BVH is checked
    # geom by geom against the runtime geom_rbound/geom_aabb that place_obstacles sets (it also sets the
    # body-level contype/conaffinity filter, so parked slots stay out of the broadphase).
    for i in range(MAX_OBSTACLES):
        wb.add_body(name=f"obstacle_{i}").add_geom(
            name=f"obstacle_{i}", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.1, 0.1, 0.1], pos=_PARK, contype=0,
            conaffinity=0, rgba=[0.85, 0.45, 0.2, 1.0], group=0,
        )  # fmt: skip


def add_mesh_obstacles(spec: mujoco.MjSpec, obstacles: Sequence[Obstacle]) -> None:
    """Compile the ``"mesh"`` obstacles among ``obstacles`` into ``spec`` (body ``mesh_obstacle_<k>``, k in order
    of appearance): the mesh drawn as it is (no collisions) and its convex pieces colliding like the primitive
    obstacles (contype :data:`OBSTACLE_CONTYPE`). Read back with :func:`mesh_obstacle_geoms`."""
    k = 0
    for o in obstacles:
        if o.type != "mesh" or o.mesh is None:
            continue
        pm, name = o.mesh, f"mesh_obstacle_{k}"
        quat = [np.cos(pm.yaw / 2), 0.0, 0.0, np.sin(pm.yaw / 2)]
        body = spec.worldbody.add_body(name=name, pos=pm.origin.tolist(), quat=quat)
        spec.add_mesh(name=f"{name}_visual", uservert=pm.geometry.vertices.ravel().tolist(),
                      userface=pm.geometry.faces.ravel().tolist())  # fmt: skip
        body.add_geom(name=f"{name}_visual", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"{name}_visual",
                      contype=0, conaffinity=0, mass=0.0, rgba=[0.85, 0.45, 0.2, 1.0], group=0)  # fmt: skip
        for j, (v, f) in enumerate(pm.geometry.convex_pieces):
            spec.add_mesh(name=f"{name}_part_{j}", uservert=v.ravel().tolist(), userface=f.ravel().tolist())
            body.add_geom(name=f"{name}_part_{j}", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"{name}_part_{j}",
                          contype=OBSTACLE_CONTYPE, conaffinity=1, mass=0.0, rgba=[0.85, 0.45, 0.2, 0.0],
                          group=3)  # fmt: skip
        k += 1


def mesh_obstacle_geoms(model: mujoco.MjModel) -> tuple[np.ndarray, ...]:
    """Collision geom ids of each compiled mesh obstacle (see :func:`add_mesh_obstacles`), in order."""
    out = []
    k = 0
    while True:
        try:
            bid = model.body(f"mesh_obstacle_{k}").id
        except KeyError:
            return tuple(out)
        geoms = np.nonzero(model.geom_bodyid == bid)[0]
        out.append(np.array([g for g in geoms if model.geom_contype[g]], dtype=int))
        k += 1


def load_robot_spec(simplified_visuals: bool = False) -> mujoco.MjSpec:
    """The pinned G1 MJCF with a head site on the torso and its motors turned into joint-space PD servos
    (gain kp, bias −kp·q − kd·q̇, force clamped to the torque limit: PD at physics rate, inside MuJoCo).
    ``simplified_visuals``: draw the links with lower-poly copies of the visual meshes
    (:mod:`bm_envs.scene.visual_meshes`; the physics is the same)."""
    robot = mujoco.MjSpec.from_file(str(asset_path(*g1.MJCF_ASSET)))
    if simplified_visuals:
        from bm_envs.scene.visual_meshes import use_simplified_meshes

        use_simplified_meshes(robot)
    robot.body("torso_link").add_site(name="head", pos=g1.HEAD_OFFSET_IN_TORSO, size=[0.01, 0, 0], group=5)
    for j, name in enumerate(g1.JOINT_NAMES):
        act = robot.actuator(name)
        if act is None:
            raise RuntimeError(f"G1 MJCF lacks actuator {name!r}")
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm[0] = g1.KP[j]
        act.biasprm[:3] = [0.0, -g1.KP[j], -g1.KD[j]]
        act.ctrllimited = False
        act.forcelimited = True
        act.forcerange = [-g1.TORQUE_LIMIT[j], g1.TORQUE_LIMIT[j]]
    return robot


def build_model(
    simplified_visuals: bool = False, obstacles: Sequence[Obstacle] = ()
) -> tuple[mujoco.MjModel, SceneIndex]:
    """Compile the G1 scene (``simplified_visuals``: see :func:`load_robot_spec`; the ``"mesh"`` obstacles among
    ``obstacles`` are compiled in, see :func:`add_mesh_obstacles`). Returns the model and the id lookup."""
    spec = load_robot_spec(simplified_visuals)
    add_stage(spec)
    add_mesh_obstacles(spec, obstacles)
    for i in range(MAX_GOALS):
        spec.worldbody.add_site(
            name=f"goal_{i}", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.3, 0.005, 0], pos=_PARK,
            rgba=[0.1, 0.9, 0.2, 0.5], group=0,
        )  # fmt: skip
    model = spec.compile()
    idx = _index(model)
    return model, idx


def _index(model: mujoco.MjModel) -> SceneIndex:
    jid = [model.joint(n).id for n in g1.JOINT_NAMES]
    body = np.array([model.body(n).id for n in g1.BODY_NAMES])
    robot_bodies = set(body.tolist())
    robot_geoms = np.array(
        [g for g in range(model.ngeom) if model.geom_bodyid[g] in robot_bodies and model.geom_contype[g]]
    )
    obstacle_geoms = np.array([model.geom(f"obstacle_{i}").id for i in range(MAX_OBSTACLES)])
    data = mujoco.MjData(model)
    qpos_adr = np.array([model.jnt_qposadr[j] for j in jid])
    data.qpos[qpos_adr] = g1.DEFAULT_JOINT_POS
    data.qpos[3:7] = [1, 0, 0, 0]
    data.qpos[2] = 0.0
    mujoco.mj_kinematics(model, data)
    foot_ids = [model.body(n).id for n in ("left_foot_contact_point", "right_foot_contact_point")]
    # contact points sit 2 mm below the foot capsules' bottom surface; stand 1 mm above the floor.
    init_h = -min(data.xpos[b][2] for b in foot_ids) - 0.001
    return SceneIndex(
        qpos_joint=qpos_adr,
        qvel_joint=np.array([model.jnt_dofadr[j] for j in jid]),
        body=body,
        pelvis=model.body("pelvis").id,
        torso=model.body("torso_link").id,
        floor_geom=model.geom("floor").id,
        robot_geoms=robot_geoms,
        obstacle_geoms=obstacle_geoms,
        goal_sites=np.array([model.site(f"goal_{i}").id for i in range(MAX_GOALS)]),
        head_site=model.site("head").id,
        init_pelvis_height=float(init_h),
        mesh_geoms=mesh_obstacle_geoms(model),
    )


def place_obstacles(model: mujoco.MjModel, idx: SceneIndex, obstacles: list[Obstacle]) -> list[np.ndarray]:
    """Move the primitive obstacle slots to the primitives among ``obstacles`` and park the rest; the ``"mesh"``
    obstacles are compiled in already (:func:`add_mesh_obstacles`, same order). Returns, per obstacle in list order,
    the ids of its collision geoms (one slot for a primitive, the convex pieces for a mesh)."""
    prims = [o for o in obstacles if o.type != "mesh"]
    meshes = [o for o in obstacles if o.type == "mesh"]
    if len(prims) > MAX_OBSTACLES:
        raise ValueError(f"at most {MAX_OBSTACLES} primitive obstacles are supported, got {len(prims)}")
    if len(meshes) != len(idx.mesh_geoms):
        raise ValueError(f"{len(meshes)} mesh obstacles given, the model was compiled with {len(idx.mesh_geoms)}")
    geoms = idx.obstacle_geoms
    model.geom_pos[geoms] = _PARK
    model.geom_contype[geoms] = 0
    model.geom_conaffinity[geoms] = 0
    model.body_contype[model.geom_bodyid[geoms]] = 0
    model.body_conaffinity[model.geom_bodyid[geoms]] = 0
    model.geom_rgba[geoms, 3] = 0.0
    for g, o in zip(geoms, prims):
        model.geom_type[g] = _TYPES[o.type]
        size = np.zeros(3)
        size[: len(o.size)] = o.size
        model.geom_size[g] = size
        model.geom_pos[g] = o.pos
        model.geom_quat[g] = [np.cos(o.yaw / 2), 0, 0, np.sin(o.yaw / 2)]
        if o.type == "sphere":
            half = np.full(3, o.size[0])
        elif o.type == "cylinder":
            half = np.array([o.size[0], o.size[0], o.size[1]])
        else:
            half = np.array(o.size)
        model.geom_aabb[g] = np.concatenate([np.zeros(3), half])
        model.geom_rbound[g] = float(np.linalg.norm(half)) if o.type != "sphere" else o.size[0]
        model.geom_contype[g] = model.body_contype[model.geom_bodyid[g]] = OBSTACLE_CONTYPE
        model.geom_conaffinity[g] = model.body_conaffinity[model.geom_bodyid[g]] = 1
        model.geom_rgba[g, 3] = 1.0
    slots, mesh_sets = iter(geoms[: len(prims)]), iter(idx.mesh_geoms)
    return [np.array([next(slots)]) if o.type != "mesh" else next(mesh_sets).copy() for o in obstacles]


def place_goals(model: mujoco.MjModel, idx: SceneIndex, goals: np.ndarray, radius: float) -> None:
    """Show up to :data:`MAX_GOALS` goal discs at planar positions ``goals`` (n, 2)."""
    for i, s in enumerate(idx.goal_sites):
        if i < len(goals):
            model.site_pos[s] = [goals[i][0], goals[i][1], 0.005]
            model.site_size[s, 0] = radius
        else:
            model.site_pos[s] = _PARK
