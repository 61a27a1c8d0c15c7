"""CRC and message packing against the SDK's own pure-Python reference (``CRC._crc_py`` and its struct formats)."""

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.hardware import messages as M
from bm_envs.hardware.crc import crc32_mpeg2, crc32_packed, crc32_words


def _bitwise_crc(words):
    """Textbook MSB-first CRC-32 (poly 0x04C11DB7, init 0xFFFFFFFF) over 32-bit words: an independent oracle."""
    crc = 0xFFFFFFFF
    for w in words:
        for b in range(31, -1, -1):
            top = ((crc >> 31) ^ (int(w) >> b)) & 1
            crc = ((crc << 1) & 0xFFFFFFFF) ^ (0x04C11DB7 if top else 0)
    return crc


def test_crc_check_value_and_oracle():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # the catalogued check value of CRC-32/MPEG-2
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 64):
        w = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        assert crc32_words(w) == _bitwise_crc(w)
    with pytest.raises(ValueError):
        crc32_packed(b"\x00" * 6)


@pytest.fixture(scope="module")
def ref(sdk):
    """The SDK's CRC helper with its pack formats; its compiled library is missing, so __init__ stops after them."""
    from unitree_sdk2py.utils.crc import CRC

    c = object.__new__(CRC)
    try:
        CRC.__init__(c)
    except OSError:
        pass
    return c


def _messages(sdk):
    from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowCmd_, unitree_hg_msg_dds__LowState_

    cmd0, st0 = unitree_hg_msg_dds__LowCmd_(), unitree_hg_msg_dds__LowState_()
    cmd = unitree_hg_msg_dds__LowCmd_()
    cmd.mode_pr, cmd.mode_machine, cmd.reserve = 1, 5, [9, 1, 0, 3]
    for i, m in enumerate(cmd.motor_cmd):
        m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve = 1, 0.1 * i - 1, -0.5, 2.25, 40.0 + i, 1.5, i
    st = unitree_hg_msg_dds__LowState_()
    st.version, st.tick, st.mode_machine = [3, 4], 123456, 7
    st.imu_state.quaternion, st.imu_state.gyroscope = [0.99, 0.01, -0.1, 0.05], [0.1, -0.2, 0.3]
    st.imu_state.accelerometer, st.imu_state.temperature = [0.0, 0.3, 9.8], -12
    for i, m in enumerate(st.motor_state):
        m.mode, m.q, m.dq, m.ddq, m.tau_est, m.temperature = 1, 0.01 * i, -0.2, 3.0, -7.5, [30 + i, -1]
        m.vol, m.sensor, m.motorstate, m.reserve = 24.5, [i, 2 * i], 0xFFFF0000, [1, 2, 3, i]
    st.wireless_remote = [i * 6 % 256 for i in range(40)]
    st.reserve = [0, 1, 2, 0xFFFFFFFF]
    return [(cmd0, M.LOWCMD, "_CRC__PackHGLowCmd"), (cmd, M.LOWCMD, "_CRC__PackHGLowCmd"),
            (st0, M.LOWSTATE, "_CRC__PackHGLowState"), (st, M.LOWSTATE, "_CRC__PackHGLowState")]  # fmt: skip


def test_packing_and_crc_match_sdk_reference(sdk, ref):
    for msg, dtype, pack in _messages(sdk):
        words = getattr(ref, pack)(msg)  # the SDK's struct packing as 32-bit words, crc excluded
        rec = M.to_record(msg, dtype)
        assert np.array_equal(np.frombuffer(rec.tobytes(), "<u4")[:-1], np.array(words, dtype=np.uint32))
        assert M.record_crc(rec) == ref._crc_py(words)


def test_encode_decode_roundtrip_through_cdr(sdk, ref):
    cmd = M.CommandFrame(q=g1.DEFAULT_JOINT_POS + 0.123, kp=g1.KP, kd=g1.KD, tau=np.linspace(-1, 1, 29), seq=42)
    msg = M.lowcmd_msg(M.pack_lowcmd(cmd), sdk)
    assert msg.crc == ref._crc_py(ref._CRC__PackHGLowCmd(msg))
    back, ok = M.decode_lowcmd(sdk.LowCmd_.deserialize(msg.serialize()))
    assert ok and back.seq == 42 and np.allclose(back.q, cmd.q, atol=1e-6) and np.allclose(back.kp, g1.KP, rtol=1e-6)
    st = M.StateFrame(tick=77, quat=np.array([1.0, 0, 0, 0]), gyro=np.array([0.1, 0, 0]), acc=np.array([0, 0, 9.81]),
                      q=g1.DEFAULT_JOINT_POS, dq=np.full(29, 0.5), tau_est=np.zeros(29))  # fmt: skip
    smsg = M.lowstate_msg(M.pack_lowstate(st), sdk)
    assert smsg.crc == ref._crc_py(ref._CRC__PackHGLowState(smsg))
    back, ok = M.decode_lowstate(sdk.LowState_.deserialize(smsg.serialize()))
    assert ok and back.tick == 77 and np.allclose(back.q, st.q, atol=1e-6) and np.allclose(back.dq, 0.5)
    smsg.motor_state[4].q += 1e-3  # any change after the CRC was computed is detected
    assert not M.decode_lowstate(smsg)[1]


def test_malformed_and_nonfinite_are_rejected(sdk):
    cmd = M.CommandFrame(q=np.full(29, np.nan), kp=g1.KP, kd=g1.KD)
    with pytest.raises(ValueError, match="NaN"):
        M.pack_lowcmd(cmd)
    msg = M.lowcmd_msg(M.pack_lowcmd(M.CommandFrame(q=g1.DEFAULT_JOINT_POS, kp=g1.KP, kd=g1.KD)), sdk)
    msg.motor_cmd = msg.motor_cmd[:30]
    with pytest.raises(M.MalformedMessage, match="35"):
        M.decode_lowcmd(msg)
    msg = M.lowcmd_msg(M.pack_lowcmd(M.CommandFrame(q=g1.DEFAULT_JOINT_POS, kp=g1.KP, kd=g1.KD)), sdk)
    msg.motor_cmd[0].mode = 300
    with pytest.raises(M.MalformedMessage):
        M.decode_lowcmd(msg)
