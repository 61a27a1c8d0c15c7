r"""``bm-train-tracking``: train, export, evaluate and play motion-tracking policies on ``BM-G1-Tracking-v0``.

Subcommands (``bm-train-tracking <cmd> --help`` for all options)::

    # short PPO run (SB3, 4 envs in one process), evaluated before/after, exported to the experts' ONNX format;
    # measured on the shared 2-core dev machine: 200k steps in 9 min, mean return 40 -> 79 over 30 seeded episodes
    nice -n 10 bm-train-tracking train --motion sub3_largebox_003_mj --steps 200000 --n-envs 4 --n-steps 256 \
        --eval-episodes 30 --out runs/track-short
    # the long run, not run here: holosoma trained its dancing PPO expert for 30k iterations x 4096 envs x 24 steps
    # (~3e9 steps, GPU sim); SB3 on CPU: ~1.5 days per 1e9 steps on 16 cores (~500 env steps/s/core)
    bm-train-tracking train --motion ppo --steps 1000000000 --n-envs 16 --subproc --n-steps 512 --batch 8192 \
        --lr 1e-3 --target-kl 0.02 --randomize --init-noise 1 --eval-episodes 50 --out runs/track-long
    bm-train-tracking export runs/track-short/model.zip --motion sub3_largebox_003_mj --out runs/track-short/p.onnx
    # N seeded trials from frame 0 over the whole motion (an expert name or an exported .onnx)
    bm-train-tracking eval --policy ppo --trials 20 [--randomize] [--latency-ms 0 100] [--init-noise 1]
    # the dance baked into an exported expert, as a motion file; kinematic playback of any motion to a gif/mp4
    bm-train-tracking extract --policy ppo --out outputs/dance_ppo.npz
    bm-train-tracking play --motion sub3_largebox_003_mj --out outputs/largebox.gif

Training-side policy interface (:class:`TrackingPolicyEnv`): observation = the holosoma/BeyondMimic 154-D actor
observation (:func:`~bm_envs.tracking.expert.build_policy_obs`), action in BeyondMimic's per-joint units
(``q* = default + 0.25·τ_max/kp ⊙ a``). The exported ONNX (:func:`export_onnx`) normalizes the observation itself,
bakes in the motion's reference and loads with :class:`~bm_envs.tracking.expert.TrackingExpert`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np

import bm_envs  # noqa: F401
from bm_envs import g1_constants as g1
from bm_envs.atomic import atomic_path
from bm_envs.observation import proprio_part
from bm_envs.rollout import to_jsonable
from bm_envs.tracking.expert import HOLOSOMA_TERMS, TrackingExpert, build_policy_obs

_TO_BM = g1.ACTION_SCALE / g1.BEYONDMIMIC_ACTION_SCALE  # env action -> BeyondMimic units


class TrackingPolicyEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Flat ``Box(154)`` observation and BeyondMimic-unit actions over a ``BM-G1-Tracking-v0`` env (for SB3).

    ``residual=True``: the policy's action is added to the reference pose of the observed frame expressed as an
    action, ``(q_ref − default) / scale``; the observation's last-action term is the executed total (as the
    exported ONNX, which adds the same feed-forward in its graph, feeds back its own output).
    """

    def __init__(self, env: gym.Env, residual: bool = False):
        gym.utils.RecordConstructorArgs.__init__(self, residual=residual)
        gym.Wrapper.__init__(self, env)
        self.residual = residual
        lo, hi = env.action_space.low * _TO_BM, env.action_space.high * _TO_BM
        if residual:
            lo, hi = lo - hi, hi - lo  # any correction that can still reach every joint target
        self.action_space = gym.spaces.Box(lo.astype(np.float32), hi.astype(np.float32))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (154,), np.float32)
        self._ff = np.zeros(g1.NUM_JOINTS)

    def _obs(self, obs: dict) -> np.ndarray:
        if self.residual:
            self._ff = (obs["command"][: g1.NUM_JOINTS] - g1.DEFAULT_JOINT_POS) / g1.BEYONDMIMIC_ACTION_SCALE
        return build_policy_obs(obs, proprio_part(obs["proprio"], "last_action") * _TO_BM)[0]

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), info

    def step(self, action):
        a = np.asarray(action, dtype=np.float64) + self._ff
        obs, r, term, trunc, info = self.env.step(g1.tracking_to_env_action(a))
        return self._obs(obs), r, term, trunc, info


def make_env(motion: str, episode_length_s: float | None, randomize: bool, latency_ms, seed: int = 0,
             residual: bool = False, **cfg):  # fmt: skip
    """A factory of :class:`TrackingPolicyEnv` s (for SB3 vec envs)."""

    def _f():
        env = gym.make("BM-G1-Tracking-v0", motion=motion, time_limit_s=episode_length_s, randomize=randomize,
                       latency_ms=latency_ms, disable_env_checker=True, **cfg)  # fmt: skip
        env = TrackingPolicyEnv(env, residual=residual)
        env.reset(seed=seed)
        return env

    return _f


def evaluate_return(
    model, vecnorm, motion: str, episodes: int, episode_length_s: float, residual: bool = False
) -> dict:
    """Mean undiscounted return/length of the deterministic policy over seeded episodes (uniform start frames)."""
    env = make_env(motion, episode_length_s, False, None, residual=residual, start="uniform")()
    rets, lens = [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        ret, n, done = 0.0, 0, False
        while not done:
            x = vecnorm.normalize_obs(obs[None]) if vecnorm is not None else obs[None]
            a, _ = model.predict(x, deterministic=True)
            obs, r, term, trunc, _ = env.step(a[0])
            ret, n, done = ret + r, n + 1, term or trunc
        rets.append(ret)
        lens.append(n)
    return {"return_mean": float(np.mean(rets)), "return_std": float(np.std(rets)), "length_mean": float(np.mean(lens))}


def train(args) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor, VecNormalize

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"start": "adaptive", "init_noise": args.init_noise}
    fns = [make_env(args.motion, args.episode_s, args.randomize, args.latency_ms, args.seed + i, args.residual, **cfg)
           for i in range(args.n_envs)]  # fmt: skip
    venv = VecNormalize(VecMonitor((SubprocVecEnv if args.subproc else DummyVecEnv)(fns)), gamma=0.99, clip_obs=10.0)
    # BeyondMimic's PPO settings where SB3 has them (ELU MLP, 5 epochs, clip 0.2, γ 0.99, λ 0.95, entropy 0.005, value
    # coefficient 1, grad-norm 1; their adaptive learning rate is not in SB3: constant ``--lr``). Their initial action
    # std of 1 makes the action-rate penalty outweigh the tracking rewards at first, which a 4096-env run absorbs
    # but a short CPU run does not: the default here is exp(-1) = 0.37 (``--log-std-init``).
    net = {
        "net_arch": {"pi": args.net, "vf": args.net},
        "activation_fn": torch.nn.ELU,
        "log_std_init": args.log_std_init,
    }
    model = PPO(
        "MlpPolicy", venv, n_steps=args.n_steps, batch_size=args.batch, n_epochs=5, learning_rate=args.lr, gamma=0.99,
        gae_lambda=0.95, clip_range=0.2, ent_coef=0.005, vf_coef=1.0, max_grad_norm=1.0, target_kl=args.target_kl,
        seed=args.seed, policy_kwargs=net, tensorboard_log=str(out / "tb"), device="cpu", verbose=0,
    )  # fmt: skip
    before = evaluate_return(model, venv, args.motion, args.eval_episodes, args.episode_s, args.residual)
    print(f"before: {before}", flush=True)
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=False)
    wall = time.perf_counter() - t0
    venv.training = False
    after = evaluate_return(model, venv, args.motion, args.eval_episodes, args.episode_s, args.residual)
    print(f"after:  {after}", flush=True)
    model.save(out / "model.zip")
    venv.save(str(out / "vecnormalize.pkl"))
    export_onnx(model, venv, args.motion, out / "policy.onnx", residual=args.residual)
    summary = {"steps": int(model.num_timesteps), "wall_s": wall, "steps_per_s": model.num_timesteps / wall,
               "before": before, "after": after, "args": vars(args)}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2))
    print(json.dumps(to_jsonable({k: summary[k] for k in ("steps", "wall_s", "steps_per_s")})))
    return summary


def export_onnx(model, vecnorm, motion, path: str | Path, residual: bool = False) -> Path:
    """Export an SB3 PPO tracking policy (+ its ``VecNormalize`` statistics and the motion's reference) to the
    holosoma tracking-expert ONNX format, check it against SB3 on random observations, and return the path.

    ``residual``: the policy was trained with :class:`TrackingPolicyEnv` ``(residual=True)``; the graph adds the
    reference-pose feed-forward, computed from the observation's ``motion_command`` term, to its output."""
    import io

    import onnx
    import torch

    from bm_envs.tracking.env import G1TrackingEnv
    from bm_envs.tracking.library import resolve_motion

    m = G1TrackingEnv(motion=resolve_motion(motion)).motion
    torso = m.body_index(("torso_link",))[0]
    pol = model.policy

    class Export(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.extractor, self.head = pol.mlp_extractor.policy_net, pol.action_net
            rms = vecnorm.obs_rms
            f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
            self.register_buffer("mean", f(rms.mean)[None])
            self.register_buffer("std", f(np.sqrt(rms.var + vecnorm.epsilon))[None])
            self.clip = float(vecnorm.clip_obs)
            self.register_buffer("default", f(g1.DEFAULT_JOINT_POS)[None])
            self.register_buffer("scale", f(g1.BEYONDMIMIC_ACTION_SCALE)[None])
            for k, v in {"joint_pos": m.dof_pos, "joint_vel": m.dof_vel, "ref_pos_xyz": m.body_pos_w[:, torso],
                         "ref_quat_xyzw": m.body_quat_w[:, torso][:, [1, 2, 3, 0]]}.items():  # fmt: skip
                self.register_buffer(f"tab_{k}", f(v))

        def forward(self, obs, time_step):
            x = torch.clamp((obs - self.mean) / self.std, -self.clip, self.clip)
            i = torch.clamp(time_step.long().squeeze(-1), 0, m.num_frames - 1)
            a = self.head(self.extractor(x))
            if residual:  # motion_command joint positions sit at [90, 119) of the sorted-terms layout
                a = a + (obs[:, 90:119] - self.default) / self.scale
            return (a, self.tab_joint_pos[i], self.tab_joint_vel[i], self.tab_ref_pos_xyz[i],
                    self.tab_ref_quat_xyzw[i])  # fmt: skip

    net = Export().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 154), torch.zeros(1, 1)), buf, input_names=["obs", "time_step"],
                          output_names=["actions", "joint_pos", "joint_vel", "ref_pos_xyz", "ref_quat_xyzw"],
                          dynamo=False, opset_version=17)  # fmt: skip
    proto = onnx.load_from_string(buf.getvalue())
    meta = {"dof_names": list(g1.JOINT_NAMES), "kp": g1.KP.tolist(), "kd": g1.KD.tolist(),
            "action_scale": g1.BEYONDMIMIC_ACTION_SCALE.tolist(), "observation_names": list(HOLOSOMA_TERMS),
            "anchor_body_name": "torso_link", "motion": m.source, "exporter": "bm-train-tracking",
            "residual": residual}  # fmt: skip
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=json.dumps(v))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    # parity with SB3 (deterministic action) on normalized random observations
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rms = vecnorm.obs_rms
    x = (np.random.default_rng(0).normal(size=(8, 154)) * np.sqrt(rms.var + 1e-8) + rms.mean).astype(np.float32)
    ref, _ = model.predict(vecnorm.normalize_obs(x), deterministic=True)  # clipped to the action space
    got = np.concatenate(
        [sess.run(["actions"], {"obs": xi[None], "time_step": np.zeros((1, 1), np.float32)})[0] for xi in x]
    )
    if residual:
        got = got - (x[:, 90:119] - g1.DEFAULT_JOINT_POS) / g1.BEYONDMIMIC_ACTION_SCALE
    err = float(np.max(np.abs(np.clip(got, model.action_space.low, model.action_space.high) - ref)))
    if err > 1e-4:
        raise RuntimeError(f"exported ONNX differs from the SB3 policy by {err:.3g}")
    return path


def evaluate_tracking(policy: str, trials: int = 20, motion=None, randomize=False, latency_ms=None,
                      init_noise: float = 0.0, max_seconds: float | None = None) -> dict:  # fmt: skip
    """Run an exported tracking policy from frame 0 of its motion in ``trials`` seeded episodes.

    Returns per-trial outcomes and aggregates: ``full_motion_rate`` (share of trials that reach the last frame
    without termination), ``completed_fraction_mean`` (share of the motion's frames tracked before termination),
    MPJPE (mm, 14 tracked bodies, anchor-aligned), global body-position error (mm) and joint error (rad), all
    averaged over every step of every trial.
    """
    expert = TrackingExpert(policy)
    env = gym.make(
        "BM-G1-Tracking-v0",
        motion=expert.motion if motion is None else motion,
        start="zero",
        init_noise=init_noise,
        randomize=randomize,
        latency_ms=latency_ms,
        disable_env_checker=True,
    )
    base = env.unwrapped
    total = base.motion.num_frames - 1
    limit = total if max_seconds is None else min(total, round(max_seconds / g1.CONTROL_DT))
    rows, sums, t0, n_all = (
        [],
        {"mpjpe_mm": 0.0, "body_pos_error_w_mm": 0.0, "joint_pos_error_rad": 0.0},
        time.perf_counter(),
        0,
    )
    for seed in range(trials):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        n, term, acc = 0, False, dict.fromkeys(sums, 0.0)
        while n < limit:
            obs, _, term, trunc, info = env.step(expert.act(obs))
            n += 1
            for k in acc:
                acc[k] += info[k]
            if term or trunc:
                break
        for k in sums:
            sums[k] += acc[k]
        n_all += n
        rows.append({"seed": seed, "steps": n, "completed_fraction": n / limit, "terminated": bool(term),
                     "termination": info["termination"] or ("fell" if info["fell"] else None),
                     **{k: v / n for k, v in acc.items()}})  # fmt: skip
    wall = time.perf_counter() - t0
    return {
        "policy": policy, "motion": base.motion.source, "frames": limit + 1, "trials": trials,
        "randomize": bool(randomize), "latency_ms": latency_ms, "init_noise": init_noise,
        "full_motion_rate": float(np.mean([r["completed_fraction"] >= 1.0 for r in rows])),
        "completed_fraction_mean": float(np.mean([r["completed_fraction"] for r in rows])),
        **{f"{k}_mean": v / max(n_all, 1) for k, v in sums.items()},
        "steps_per_s": n_all / wall, "wall_s": wall, "trials_detail": rows,
    }  # fmt: skip


def play(
    motion: str, out: str | Path, seconds: float = 4.0, every: int = 2, width: int = 480, height: int = 360
) -> dict:
    """Render the motion kinematically (no physics) to a gif/mp4; return a round-trip check of its file format."""
    import tempfile

    import imageio.v2 as imageio

    from bm_envs.tracking.env import G1TrackingEnv
    from bm_envs.tracking.library import resolve_motion
    from bm_envs.tracking.motion import load_motion, save_motion

    src = resolve_motion(motion)
    with tempfile.TemporaryDirectory() as tmp:
        back = load_motion(save_motion(src, Path(tmp) / "m.npz"))
    fields = ("joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")
    exact = all(np.array_equal(getattr(src, f), getattr(back, f)) for f in fields) and back.body_names == src.body_names
    env = G1TrackingEnv(motion=src, render_mode="rgb_array", width=width, height=height)
    n = min(env.motion.num_frames, round(seconds / g1.CONTROL_DT) + 1)
    frames = []
    for f in range(0, n, every):
        env.set_reference_state(f)
        frames.append(env.render())
    env.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fps = 1.0 / (g1.CONTROL_DT * every)
    imageio.mimsave(out, frames, **({"duration": 1000.0 / fps, "loop": 0} if out.suffix == ".gif" else {"fps": fps}))
    return {"motion": src.source, "frames_in_file": src.num_frames, "fps": src.fps, "bodies": len(src.body_names),
            "round_trip_exact": exact, "rendered_frames": len(frames), "out": str(out)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="PPO on BM-G1-Tracking-v0, then export to ONNX")
    t.add_argument("--motion", default="ppo")
    t.add_argument("--steps", type=int, default=100_000)
    t.add_argument("--n-envs", type=int, default=1)
    t.add_argument("--subproc", action="store_true", help="one process per env (default: all in this process)")
    t.add_argument("--n-steps", type=int, default=1024, help="rollout length per env between updates")
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--net", type=int, nargs="+", default=[512, 256, 128])
    t.add_argument("--target-kl", type=float, default=None, help="stop an update's epochs past this KL")
    t.add_argument("--residual", action="store_true", help="actions are corrections to the reference pose")
    t.add_argument("--log-std-init", type=float, default=-1.0, help="initial log std of the Gaussian policy")
    t.add_argument("--episode-s", type=float, default=10.0)
    t.add_argument("--init-noise", type=float, default=1.0)
    t.add_argument("--randomize", action="store_true")
    t.add_argument("--latency-ms", type=float, nargs=2, default=None)
    t.add_argument("--eval-episodes", type=int, default=10)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs/tracking")
    x = sub.add_parser("export", help="SB3 model.zip (+ vecnormalize.pkl beside it) -> ONNX")
    x.add_argument("model")
    x.add_argument("--motion", default="ppo")
    x.add_argument("--out", required=True)
    x.add_argument("--residual", action="store_true", help="the model was trained with --residual")
    e = sub.add_parser("eval", help="seeded trials of an exported tracking policy over its whole motion")
    e.add_argument("--policy", default="ppo", help="'fastsac', 'ppo' or an exported .onnx")
    e.add_argument("--trials", type=int, default=20)
    e.add_argument("--randomize", action="store_true")
    e.add_argument("--latency-ms", type=float, nargs=2, default=None)
    e.add_argument("--init-noise", type=float, default=0.0)
    e.add_argument("--max-seconds", type=float, default=None)
    e.add_argument("--out", default=None, help="write the result JSON here")
    ex = sub.add_parser("extract", help="write the motion baked into a tracking ONNX as a motion .npz")
    ex.add_argument("--policy", default="ppo", help="'fastsac', 'ppo' or an exported .onnx")
    ex.add_argument("--out", required=True)
    pl = sub.add_parser("play", help="kinematic playback of a motion to a gif/mp4")
    pl.add_argument("--motion", default="ppo")
    pl.add_argument("--out", default="outputs/motion.gif")
    pl.add_argument("--seconds", type=float, default=4.0)
    pl.add_argument("--every", type=int, default=2)
    pl.add_argument("--size", type=int, nargs=2, default=(480, 360), metavar=("W", "H"))
    a = p.parse_args(argv)
    if a.cmd == "train":
        train(a)
    elif a.cmd == "export":
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

        vn = VecNormalize.load(
            str(Path(a.model).with_name("vecnormalize.pkl")), DummyVecEnv([make_env(a.motion, 10.0, False, None)])
        )
        print(export_onnx(PPO.load(a.model, device="cpu"), vn, a.motion, a.out, residual=a.residual))
    elif a.cmd == "eval":
        lat = tuple(a.latency_ms) if a.latency_ms else None
        res = evaluate_tracking(a.policy, a.trials, None, a.randomize, lat, a.init_noise, a.max_seconds)
        print(json.dumps(to_jsonable({k: v for k, v in res.items() if k != "trials_detail"}), indent=2))
        if a.out:
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(to_jsonable(res), indent=2))
    elif a.cmd == "extract":
        from bm_envs.tracking.motion import save_motion

        m = TrackingExpert(a.policy).motion
        print(f"{save_motion(m, a.out)}: {m.num_frames} frames at {m.fps:g} fps ({m.duration_s:.2f} s)")
    else:
        print(json.dumps(play(a.motion, a.out, a.seconds, a.every, *a.size), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
