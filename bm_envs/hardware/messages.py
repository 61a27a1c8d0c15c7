"""``unitree_hg`` ``LowCmd_``/``LowState_`` ⇄ numpy: packed layouts, CRC, validation, typed frames.

The packed layouts are numpy structured dtypes equal, byte for byte, to the ``struct`` formats of the SDK's CRC
helper (``'<2B2x' + 'B3x5fI'*35 + '5I'``, 1004 bytes; ``'<2I2B2xI' + '13fh2x' + 'B3x4f2hf7I'*35 + '40B5I'``,
2092 bytes). Encoding fills a record from arrays, computes the CRC over it and builds the IDL object from the
record's own (float32-rounded) values, so a receiver that repacks the object reproduces the same bytes.

The G1 29-DoF uses motors 0..28 in ``g1_constants.JOINT_NAMES`` order; motors 29..34 are left zero.

Bridge diagnostics (our MuJoCo bridge only, documented so a real robot's zeros are harmless):
``LowCmd_.reserve[0]`` carries a command sequence number and ``reserve[1]`` is 1 for commands of the agent (0 during
start-up and damping); ``LowState_.reserve[0]`` echoes the sequence number of the last command the bridge applied
(0 if none) and ``reserve[1]`` is 1 while that command was a damping command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.hardware.crc import crc32_packed

NUM_MOTORS = 35
N = g1.NUM_JOINTS

MOTOR_CMD = np.dtype(
    [("mode", "u1"), ("_p", "V3"), ("q", "<f4"), ("dq", "<f4"), ("tau", "<f4"), ("kp", "<f4"), ("kd", "<f4"),
     ("reserve", "<u4")]
)  # fmt: skip
LOWCMD = np.dtype(
    [("mode_pr", "u1"), ("mode_machine", "u1"), ("_p", "V2"), ("motor_cmd", MOTOR_CMD, (NUM_MOTORS,)),
     ("reserve", "<u4", (4,)), ("crc", "<u4")]
)  # fmt: skip
IMU = np.dtype(
    [("quaternion", "<f4", (4,)), ("gyroscope", "<f4", (3,)), ("accelerometer", "<f4", (3,)), ("rpy", "<f4", (3,)),
     ("temperature", "<i2"), ("_p", "V2")]
)  # fmt: skip
MOTOR_STATE = np.dtype(
    [("mode", "u1"), ("_p", "V3"), ("q", "<f4"), ("dq", "<f4"), ("ddq", "<f4"), ("tau_est", "<f4"),
     ("temperature", "<i2", (2,)), ("vol", "<f4"), ("sensor", "<u4", (2,)), ("motorstate", "<u4"),
     ("reserve", "<u4", (4,))]
)  # fmt: skip
LOWSTATE = np.dtype(
    [("version", "<u4", (2,)), ("mode_pr", "u1"), ("mode_machine", "u1"), ("_p", "V2"), ("tick", "<u4"),
     ("imu_state", IMU), ("motor_state", MOTOR_STATE, (NUM_MOTORS,)), ("wireless_remote", "u1", (40,)),
     ("reserve", "<u4", (4,)), ("crc", "<u4")]
)  # fmt: skip
assert LOWCMD.itemsize == 1004 and LOWSTATE.itemsize == 2092


class MalformedMessage(ValueError):
    """A received sample does not fit the message layout (wrong lengths, types or value ranges)."""


@dataclass
class CommandFrame:
    """Motor command for the 29 joints (rad, rad/s, N·m, N·m/rad, N·m·s/rad), ``mode`` 1 = enabled."""

    q: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    dq: np.ndarray = field(default_factory=lambda: np.zeros(N))
    tau: np.ndarray = field(default_factory=lambda: np.zeros(N))
    mode: np.ndarray = field(default_factory=lambda: np.ones(N, dtype=np.uint8))
    mode_machine: int = 0
    seq: int = 0
    damping: bool = False
    agent: bool = False


@dataclass
class StateFrame:
    """Decoded ``LowState_``: IMU in the pelvis frame (quaternion wxyz, rad/s, m/s²) and the 29 joints."""

    tick: int
    quat: np.ndarray  # (4,) wxyz
    gyro: np.ndarray  # (3,) rad/s, body frame
    acc: np.ndarray  # (3,) m/s², body frame
    q: np.ndarray  # (29,) rad
    dq: np.ndarray  # (29,) rad/s
    tau_est: np.ndarray  # (29,) N·m
    mode_machine: int = 0
    reserve: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.uint32))
    recv_time: float = 0.0  # time.monotonic() at reception (s)


# ---------------------------------------------------------------------- IDL object -> record
def _fill(rec: np.ndarray, obj, dtype: np.dtype) -> None:
    for name in dtype.names:
        if name == "_p":
            continue
        sub, _ = dtype.fields[name]
        val = getattr(obj, name)
        base = sub.base
        if base.names is None:
            if isinstance(val, (bytes, bytearray)):  # cyclonedds deserializes uint8 arrays to bytes
                val = np.frombuffer(val, dtype=np.uint8)
            rec[name] = val
        elif sub.shape:  # array of structs: one list comprehension per scalar field
            if len(val) != sub.shape[0]:
                raise MalformedMessage(f"{name}: expected {sub.shape[0]} elements, got {len(val)}")
            for f in base.names:
                if f != "_p":
                    rec[name][f] = [getattr(v, f) for v in val]
        else:
            _fill(rec[name], val, sub)


def to_record(msg, dtype: np.dtype) -> np.ndarray:
    """Pack an IDL message object into a 0-d structured array of ``dtype``. Raises :class:`MalformedMessage`."""
    rec = np.zeros((), dtype)
    try:
        _fill(rec, msg, dtype)
    except MalformedMessage:
        raise
    except (AttributeError, TypeError, ValueError, OverflowError) as e:
        raise MalformedMessage(f"{type(msg).__name__}: {type(e).__name__}: {e}") from None
    return rec


def record_crc(rec: np.ndarray) -> int:
    """Unitree CRC of a packed record (all bytes but the final ``crc`` word)."""
    return crc32_packed(rec.tobytes())


def _as_joint_array(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (N,):
        raise ValueError(f"{name} must have shape ({N},), got {a.shape}")
    return a


# ---------------------------------------------------------------------- LowCmd
def pack_lowcmd(cmd: CommandFrame) -> np.ndarray:
    """CommandFrame → LOWCMD record with its CRC. Raises ``ValueError`` on non-finite or mis-shaped fields."""
    rec = np.zeros((), LOWCMD)
    mc = rec["motor_cmd"]
    for name in ("q", "dq", "tau", "kp", "kd"):
        a = _as_joint_array(getattr(cmd, name), name)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"command field {name} contains NaN or inf at {np.flatnonzero(~np.isfinite(a)).tolist()}")
        mc[name][:N] = a
    mc["mode"][:N] = np.asarray(cmd.mode, dtype=np.uint8)
    rec["mode_machine"] = cmd.mode_machine
    rec["reserve"][0] = cmd.seq & 0xFFFFFFFF
    rec["reserve"][1] = int(bool(cmd.agent))
    rec["crc"] = record_crc(rec)
    return rec


def lowcmd_msg(rec: np.ndarray, sdk) -> object:
    """LOWCMD record → ``unitree_hg.msg.dds_.LowCmd_`` (values taken from the record, so the CRC matches)."""
    mc = rec["motor_cmd"]
    cols = [mc[f].tolist() for f in ("mode", "q", "dq", "tau", "kp", "kd", "reserve")]
    motors = [sdk.MotorCmd_(*row) for row in zip(*cols)]
    return sdk.LowCmd_(int(rec["mode_pr"]), int(rec["mode_machine"]), motors, rec["reserve"].tolist(), int(rec["crc"]))


def decode_lowcmd(msg) -> tuple[CommandFrame, bool]:
    """``LowCmd_`` → (CommandFrame, crc_ok). Raises :class:`MalformedMessage` if it does not fit the layout."""
    rec = to_record(msg, LOWCMD)
    mc = rec["motor_cmd"][:N]
    frame = CommandFrame(
        q=mc["q"].astype(np.float64), kp=mc["kp"].astype(np.float64), kd=mc["kd"].astype(np.float64),
        dq=mc["dq"].astype(np.float64), tau=mc["tau"].astype(np.float64), mode=mc["mode"].copy(),
        mode_machine=int(rec["mode_machine"]), seq=int(rec["reserve"][0]), agent=bool(rec["reserve"][1]),
    )  # fmt: skip
    return frame, record_crc(rec) == int(rec["crc"])


# ---------------------------------------------------------------------- LowState
def pack_lowstate(st: StateFrame) -> np.ndarray:
    """StateFrame → LOWSTATE record with its CRC (the bridge's side)."""
    rec = np.zeros((), LOWSTATE)
    rec["tick"] = st.tick & 0xFFFFFFFF
    rec["mode_machine"] = st.mode_machine
    imu = rec["imu_state"]
    imu["quaternion"] = st.quat
    imu["gyroscope"] = st.gyro
    imu["accelerometer"] = st.acc
    imu["rpy"] = _rpy_from_quat(np.asarray(st.quat, dtype=np.float64))
    ms = rec["motor_state"]
    ms["mode"][:N] = 1
    ms["q"][:N], ms["dq"][:N], ms["tau_est"][:N] = st.q, st.dq, st.tau_est
    rec["reserve"] = st.reserve
    rec["crc"] = record_crc(rec)
    return rec


def lowstate_msg(rec: np.ndarray, sdk) -> object:
    """LOWSTATE record → ``unitree_hg.msg.dds_.LowState_``."""
    imu = rec["imu_state"]
    imu_msg = sdk.IMUState_(
        imu["quaternion"].tolist(), imu["gyroscope"].tolist(), imu["accelerometer"].tolist(), imu["rpy"].tolist(),
        int(imu["temperature"]),
    )  # fmt: skip
    ms = rec["motor_state"]
    cols = [ms[f].tolist() for f in ("mode", "q", "dq", "ddq", "tau_est", "temperature", "vol", "sensor",
                                     "motorstate", "reserve")]  # fmt: skip
    motors = [sdk.MotorState_(*row) for row in zip(*cols)]
    return sdk.LowState_(
        rec["version"].tolist(), int(rec["mode_pr"]), int(rec["mode_machine"]), int(rec["tick"]), imu_msg, motors,
        rec["wireless_remote"].tolist(), rec["reserve"].tolist(), int(rec["crc"]),
    )  # fmt: skip


def decode_lowstate(msg, recv_time: float = 0.0) -> tuple[StateFrame, bool]:
    """``LowState_`` → (StateFrame, crc_ok). Raises :class:`MalformedMessage` if it does not fit the layout."""
    rec = to_record(msg, LOWSTATE)
    imu = rec["imu_state"]
    ms = rec["motor_state"][:N]
    frame = StateFrame(
        tick=int(rec["tick"]), quat=imu["quaternion"].astype(np.float64), gyro=imu["gyroscope"].astype(np.float64),
        acc=imu["accelerometer"].astype(np.float64), q=ms["q"].astype(np.float64), dq=ms["dq"].astype(np.float64),
        tau_est=ms["tau_est"].astype(np.float64), mode_machine=int(rec["mode_machine"]),
        reserve=rec["reserve"].copy(), recv_time=recv_time,
    )  # fmt: skip
    return frame, record_crc(rec) == int(rec["crc"])


def _rpy_from_quat(q: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw (rad, ZYX) from a wxyz quaternion, as the G1 IMU reports them."""
    w, x, y, z = q
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.array([roll, pitch, yaw])
